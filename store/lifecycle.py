"""Deleting a tenant: the one administrative deletion that reaches into jobs.

A tenant with unfinished jobs is refused unless forced. Forced, its unfinished jobs are
cancelled (each with a ``TenantDeleted`` event, as any cancel), then the tenant goes with its
quota, memberships, usage, jobs and their events, in one transaction. Pods of those jobs may
still run: the scheduler loop deletes pods whose job row no longer exists (orphans) on its next
iteration and keeps their nodes closed until they are gone.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store import tenants
from store.errors import Conflict
from store.jobs import transition
from store.jobstates import FINAL_STATES, JobStatus
from store.models import Job, JobEvent, Membership, QuotaEntry, Usage, UserLimit


def delete_tenant(session: Session, name: str, *, force: bool = False, by: str = "") -> list[Job]:
    """Delete a tenant with its quota, memberships, jobs and usage; returns the unfinished
    jobs ``force`` cancelled. Without ``force`` a tenant with unfinished jobs is refused. The
    scheduler deletes the pods of jobs whose rows are gone (orphans) on its next iteration."""
    tenant = tenants.get_tenant(session, name)
    unfinished = session.scalars(
        select(Job).where(Job.tenant == name, Job.status.not_in([s.value for s in FINAL_STATES]))
    ).all()
    if unfinished and not force:
        raise Conflict(
            f"tenant {name!r} still has {len(unfinished)} unfinished jobs: cancel them, or "
            "repeat with force=true (CLI --force) to cancel them and delete the tenant; the "
            "scheduler then removes their pods",
            field="query.force",
        )
    for job in unfinished:
        transition(session, job, JobStatus.CANCELLED, "TenantDeleted", f"tenant deleted by {by}")
    session.flush()
    session.execute(
        delete(QuotaEntry).where(QuotaEntry.owner_kind == tenants.TENANT, QuotaEntry.owner == name)
    )
    session.execute(delete(Membership).where(Membership.tenant == name))
    session.execute(delete(UserLimit).where(UserLimit.tenant == name))
    session.execute(delete(Usage).where(Usage.tenant == name))
    job_ids = select(Job.id).where(Job.tenant == name).scalar_subquery()
    session.execute(delete(JobEvent).where(JobEvent.job_id.in_(job_ids)))
    session.execute(delete(Job).where(Job.tenant == name))
    session.delete(tenant)
    return list(unfinished)
