"""Cohorts, flavors, tenants and their quotas: the administrative objects of the platform."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.common import utcnow
from store.errors import AlreadyExists, Conflict, InvalidRequest, NotFound
from store.jobstates import FINAL_STATES
from store.models import Cohort, Flavor, Job, QuotaEntry, Tenant

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
    if clear_cohort:
        tenant.cohort = None
    elif cohort is not None:
        _check_cohort_exists(session, cohort)
        tenant.cohort = cohort
    if weight is not None:
        tenant.weight = weight
    return tenant


def delete_tenant(session: Session, name: str) -> None:
    tenant = get_tenant(session, name)
    active = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.tenant == name, Job.status.not_in([s.value for s in FINAL_STATES]))
    )
    if active:
        raise Conflict(f"tenant {name!r} still has {active} unfinished jobs; cancel them first")
    session.execute(
        delete(QuotaEntry).where(QuotaEntry.owner_kind == TENANT, QuotaEntry.owner == name)
    )
    session.execute(delete(Job).where(Job.tenant == name))
    session.delete(tenant)


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
