"""Cohorts, flavors, tenants and their quotas: the administrative objects of the platform.

Updates and deletions keep the state consistent or refuse with :class:`Conflict` saying what
to do first: a cohort with tenants or child cohorts, a flavor named by a quota or by an
unfinished job are not deleted; tenants are deleted by :mod:`store.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store.common import utcnow
from store.errors import AlreadyExists, Conflict, InvalidRequest, NotFound
from store.jobstates import FINAL_STATES
from store.models import Cohort, Flavor, Job, QuotaEntry, Tenant, Wallet
from store.prices import POSTPAID_KINDS

TENANT = "tenant"
COHORT = "cohort"
RESOURCE_NAMES = ("gpu", "cpu", "memory")


@dataclass(frozen=True, slots=True)
class Limits:
    """Quota of one (flavor, resource) in base units; ``None`` limits mean unlimited."""

    nominal: int
    borrowing_limit: int | None = None
    lending_limit: int | None = None


QuotaSpec = Mapping[str, Mapping[str, Limits]]
"""flavor → resource → limits."""


# -- cohorts ----------------------------------------------------------------------------------


def create_cohort(session: Session, name: str, parent: str | None) -> Cohort:
    if session.get(Cohort, name) is not None:
        raise AlreadyExists(f"cohort {name!r} already exists", field="name")
    if parent is not None:
        if parent == name:
            raise InvalidRequest("a cohort cannot be its own parent", field="parent")
        if session.get(Cohort, parent) is None:
            raise InvalidRequest(f"parent cohort {parent!r} does not exist", field="parent")
    cohort = Cohort(name=name, parent=parent, created_at=utcnow())
    session.add(cohort)
    return cohort


def list_cohorts(session: Session) -> Sequence[Cohort]:
    return session.scalars(select(Cohort).order_by(Cohort.name)).all()


def get_cohort(session: Session, name: str) -> Cohort:
    cohort = session.get(Cohort, name)
    if cohort is None:
        raise NotFound(f"cohort {name!r} not found")
    return cohort


def set_cohort_parent(session: Session, name: str, parent: str | None) -> Cohort:
    """Move a cohort under ``parent`` (``None``: make it a root), refusing cycles."""
    cohort = get_cohort(session, name)
    ancestor = parent
    while ancestor is not None:
        if ancestor == name:
            raise InvalidRequest(
                f"cohort {parent!r} is {name!r} or one of its descendants: a cohort cannot be "
                "its own ancestor",
                field="body.parent",
            )
        row = session.get(Cohort, ancestor)
        if row is None:
            raise InvalidRequest(f"parent cohort {ancestor!r} does not exist", field="body.parent")
        ancestor = row.parent
    cohort.parent = parent
    return cohort


def delete_cohort(session: Session, name: str) -> None:
    """Delete an empty cohort and its quota; refuse while tenants or cohorts are in it."""
    cohort = get_cohort(session, name)
    members = session.scalars(select(Tenant.name).where(Tenant.cohort == name)).all()
    children = session.scalars(select(Cohort.name).where(Cohort.parent == name)).all()
    if members or children:
        inside = [f"tenants {', '.join(members)}"] if members else []
        inside += [f"cohorts {', '.join(children)}"] if children else []
        raise Conflict(
            f"cohort {name!r} still holds {' and '.join(inside)}: move them to another cohort "
            "(yushan tenants update NAME --cohort OTHER / --no-cohort, yushan cohorts update "
            "NAME --parent OTHER / --no-parent) first"
        )
    session.execute(
        delete(QuotaEntry).where(QuotaEntry.owner_kind == COHORT, QuotaEntry.owner == name)
    )
    session.delete(cohort)


# -- flavors ----------------------------------------------------------------------------------


def create_flavor(
    session: Session,
    name: str,
    node_labels: Mapping[str, str],
    cpu_milli_per_gpu: int,
    memory_bytes_per_gpu: int,
) -> Flavor:
    if session.get(Flavor, name) is not None:
        raise AlreadyExists(f"flavor {name!r} already exists", field="name")
    flavor = Flavor(
        name=name,
        node_labels=dict(node_labels),
        cpu_milli_per_gpu=cpu_milli_per_gpu,
        memory_bytes_per_gpu=memory_bytes_per_gpu,
        created_at=utcnow(),
    )
    session.add(flavor)
    return flavor


def list_flavors(session: Session) -> Sequence[Flavor]:
    return session.scalars(select(Flavor).order_by(Flavor.name)).all()


def get_flavor(session: Session, name: str) -> Flavor:
    flavor = session.get(Flavor, name)
    if flavor is None:
        raise NotFound(f"flavor {name!r} not found")
    return flavor


def update_flavor(
    session: Session,
    name: str,
    *,
    node_labels: Mapping[str, str] | None = None,
    cpu_milli_per_gpu: int | None = None,
    memory_bytes_per_gpu: int | None = None,
) -> Flavor:
    """Change a flavor; new per-GPU defaults apply to jobs submitted from now on."""
    flavor = get_flavor(session, name)
    if node_labels is not None:
        flavor.node_labels = dict(node_labels)
    if cpu_milli_per_gpu is not None:
        flavor.cpu_milli_per_gpu = cpu_milli_per_gpu
    if memory_bytes_per_gpu is not None:
        flavor.memory_bytes_per_gpu = memory_bytes_per_gpu
    return flavor


def delete_flavor(session: Session, name: str) -> None:
    """Delete a flavor no quota and no unfinished job names."""
    flavor = get_flavor(session, name)
    owners = session.execute(
        select(QuotaEntry.owner_kind, QuotaEntry.owner)
        .where(QuotaEntry.flavor == name)
        .distinct()
        .order_by(QuotaEntry.owner_kind, QuotaEntry.owner)
    ).all()
    if owners:
        named = ", ".join(f"{kind} {owner}" for kind, owner in owners)
        raise Conflict(
            f"flavor {name!r} is in the quota of {named}: remove it from those quotas "
            "(yushan quota set / yushan cohorts quota set) first"
        )
    active = _unfinished_jobs(session, Job.flavor == name)
    if active:
        raise Conflict(
            f"flavor {name!r} has {active} unfinished jobs: wait for them to finish or cancel "
            "them first"
        )
    session.delete(flavor)


def _unfinished_jobs(session: Session, *where: Any) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Job)
            .where(*where, Job.status.not_in([s.value for s in FINAL_STATES]))
        )
        or 0
    )


# -- tenants ----------------------------------------------------------------------------------


def create_tenant(
    session: Session,
    name: str,
    kind: str,
    cohort: str | None,
    weight: float,
    namespace: str,
) -> Tenant:
    if session.get(Tenant, name) is not None:
        raise AlreadyExists(f"tenant {name!r} already exists", field="name")
    _check_cohort_exists(session, cohort)
    tenant = Tenant(
        name=name, kind=kind, cohort=cohort, weight=weight, namespace=namespace, created_at=utcnow()
    )
    session.add(tenant)
    return tenant


def _check_cohort_exists(session: Session, cohort: str | None) -> None:
    if cohort is not None and session.get(Cohort, cohort) is None:
        raise InvalidRequest(f"cohort {cohort!r} does not exist", field="cohort")


def get_tenant(session: Session, name: str) -> Tenant:
    tenant = session.get(Tenant, name)
    if tenant is None:
        raise NotFound(f"tenant {name!r} not found")
    return tenant


def list_tenants(session: Session, names: Sequence[str] | None = None) -> Sequence[Tenant]:
    query = select(Tenant).order_by(Tenant.name)
    if names is not None:
        query = query.where(Tenant.name.in_(names))
    return session.scalars(query).all()


def update_tenant(
    session: Session,
    name: str,
    *,
    kind: str | None = None,
    cohort: str | None = None,
    clear_cohort: bool = False,
    weight: float | None = None,
) -> Tenant:
    tenant = get_tenant(session, name)
    if kind is not None:
        tenant.kind = kind
        if kind not in POSTPAID_KINDS:
            # A prepaid tenant cannot go below 0: a postpaid credit limit does not carry over.
            session.execute(update(Wallet).where(Wallet.tenant == name).values(credit_limit=0))
    if clear_cohort:
        tenant.cohort = None
    elif cohort is not None:
        _check_cohort_exists(session, cohort)
        tenant.cohort = cohort
    if weight is not None:
        tenant.weight = weight
    return tenant


# -- quotas -----------------------------------------------------------------------------------


def get_quota(session: Session, owner_kind: str, owner: str) -> dict[str, dict[str, Limits]]:
    entries = session.scalars(
        select(QuotaEntry)
        .where(QuotaEntry.owner_kind == owner_kind, QuotaEntry.owner == owner)
        .order_by(QuotaEntry.flavor, QuotaEntry.resource)
    ).all()
    quota: dict[str, dict[str, Limits]] = {}
    for entry in entries:
        quota.setdefault(entry.flavor, {})[entry.resource] = Limits(
            entry.nominal, entry.borrowing_limit, entry.lending_limit
        )
    return quota


def set_quota(session: Session, owner_kind: str, owner: str, quota: QuotaSpec) -> None:
    """Replace the whole quota of a tenant or cohort."""
    for flavor in quota:
        if session.get(Flavor, flavor) is None:
            raise InvalidRequest(f"flavor {flavor!r} does not exist", field=f"flavors.{flavor}")
    session.execute(
        delete(QuotaEntry).where(QuotaEntry.owner_kind == owner_kind, QuotaEntry.owner == owner)
    )
    for flavor, resources in quota.items():
        for resource, limits in resources.items():
            session.add(
                QuotaEntry(
                    owner_kind=owner_kind,
                    owner=owner,
                    flavor=flavor,
                    resource=resource,
                    nominal=limits.nominal,
                    borrowing_limit=limits.borrowing_limit,
                    lending_limit=limits.lending_limit,
                )
            )


def all_quotas(session: Session) -> dict[tuple[str, str], dict[str, dict[str, Limits]]]:
    """Every quota entry, keyed by (owner kind, owner)."""
    result: dict[tuple[str, str], dict[str, dict[str, Limits]]] = {}
    for entry in session.scalars(select(QuotaEntry)).all():
        owner = result.setdefault((entry.owner_kind, entry.owner), {})
        owner.setdefault(entry.flavor, {})[entry.resource] = Limits(
            entry.nominal, entry.borrowing_limit, entry.lending_limit
        )
    return result
