"""SQLAlchemy 2.0 typed models: the database schema of the control plane.

Quantities are stored as integers in base units (GPU count, CPU millicores, memory bytes) so that
SQLite and PostgreSQL compare and sum them identically. Jobs carry a ``version`` column used by
SQLAlchemy as its version counter: every UPDATE of a job is ``... WHERE id = ? AND version = ?``,
so two writers that read the same job cannot both apply a transition (the loser gets
:class:`sqlalchemy.orm.exc.StaleDataError`, which :mod:`store.jobs` turns into a conflict).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME_LENGTH = 63


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Cohort(Base):
    __tablename__ = "cohorts"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    parent: Mapped[str | None] = mapped_column(
        String(NAME_LENGTH), ForeignKey("cohorts.name", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime]
    weights_from_allocation: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    """The fair-share weights of its tenants follow the credits allocated to them this month
    (migration 0006; see :func:`store.wallets.allocations`)."""


class Flavor(Base):
    __tablename__ = "flavors"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    node_labels: Mapped[dict[str, Any]]
    cpu_milli_per_gpu: Mapped[int] = mapped_column(BigInteger)
    memory_bytes_per_gpu: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    stop_policy: Mapped[str] = mapped_column(String(16), default="open", server_default="open")


class Tenant(Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    cohort: Mapped[str | None] = mapped_column(
        String(NAME_LENGTH), ForeignKey("cohorts.name", ondelete="RESTRICT")
    )
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    namespace: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime]
    stop_policy: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    """``open``, ``hold`` (admit nothing new) or ``hold_and_drain`` (also stop running jobs)."""
    max_gpus_per_user: Mapped[int | None] = mapped_column(Integer)
    max_running_jobs_per_user: Mapped[int | None] = mapped_column(Integer)
    max_queued_jobs_per_user: Mapped[int | None] = mapped_column(Integer)


class UserLimit(Base):
    """A user's overrides of their tenant's per-user limits (``None``: the tenant default)."""

    __tablename__ = "user_limits"

    tenant: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("tenants.name", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    max_gpus: Mapped[int | None] = mapped_column(Integer)
    max_running_jobs: Mapped[int | None] = mapped_column(Integer)
    max_queued_jobs: Mapped[int | None] = mapped_column(Integer)


class QuotaEntry(Base):
    """Nominal quota and limits of one (flavor, resource) for a tenant or a cohort."""

    __tablename__ = "quota_entries"
    __table_args__ = (UniqueConstraint("owner_kind", "owner", "flavor", "resource"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_kind: Mapped[str] = mapped_column(String(8))  # "tenant" | "cohort"
    owner: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    flavor: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("flavors.name", ondelete="RESTRICT")
    )
    resource: Mapped[str] = mapped_column(String(16))
    nominal: Mapped[int] = mapped_column(BigInteger)
    borrowing_limit: Mapped[int | None] = mapped_column(BigInteger)
    lending_limit: Mapped[int | None] = mapped_column(BigInteger)


class User(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Membership(Base):
    __tablename__ = "memberships"

    user: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("users.name", ondelete="CASCADE"), primary_key=True
    )
    tenant: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("tenants.name", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))


class Token(Base):
    """An API token; only the SHA-256 of the secret is stored."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("users.name", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("user", "idempotency_key"),
        Index("ix_jobs_tenant_seq", "tenant", "seq"),
        Index("ix_jobs_status_seq", "status", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(16), unique=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    tenant: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("tenants.name", ondelete="RESTRICT")
    )
    user: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    image: Mapped[str] = mapped_column(String(512))
    command: Mapped[list[Any]]
    args: Mapped[list[Any]]
    env: Mapped[dict[str, Any]]
    flavor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    gpus: Mapped[int] = mapped_column(Integer)
    workers: Mapped[int] = mapped_column(Integer)
    cpu_milli: Mapped[int] = mapped_column(BigInteger)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    priority: Mapped[str] = mapped_column(String(8))
    max_runtime_seconds: Mapped[int | None] = mapped_column(Integer)
    checkpoint_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    annotations: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    queue_position: Mapped[int | None] = mapped_column(Integer)
    placement: Mapped[list[Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None]
    evicted_at: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    """Epoch seconds of the job's evictions (transitions into ``preempted``) in the 24 hours
    before the latest one, kept by :func:`store.jobs.transition`; read by every cycle."""
    exit_code: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    admitted_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    depends_on: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    """``[{"job": id, "condition": "succeeded" | "failed" | "finished"}]``."""
    array_id: Mapped[str | None] = mapped_column(String(16), index=True)
    array_index: Mapped[int | None] = mapped_column(Integer)
    array_parallelism: Mapped[int | None] = mapped_column(Integer)
    estimated_start: Mapped[datetime | None]
    estimate_is_bound: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The estimate is only "at the earliest": jobs without a time limit hold what it needs."""

    __mapper_args__ = {"version_id_col": version}


class JobEvent(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]]


class Node(Base):
    """The cluster inventory as last seen by the scheduler (read by the API)."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    flavor: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    labels: Mapped[dict[str, Any]]
    gpu_capacity: Mapped[int] = mapped_column(Integer)
    gpu_allocatable: Mapped[int] = mapped_column(Integer)
    gpu_allocated: Mapped[int] = mapped_column(Integer, default=0)
    cpu_milli_allocatable: Mapped[int] = mapped_column(BigInteger)
    memory_bytes_allocatable: Mapped[int] = mapped_column(BigInteger)
    ready: Mapped[bool] = mapped_column(Boolean)
    schedulable: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime]


class Usage(Base):
    """Decayed past GPU usage (GPU-seconds) of a tenant (``user`` empty) or of a user in it."""

    __tablename__ = "usage"

    tenant: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    user: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True, default="")
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime]


class Installation(Base):
    """The identity of this installation: one row, created with the database (migration 0003).

    Stamped on every pod and Service the scheduler creates (label ``yushan.io/installation``),
    so a scheduler never adopts or deletes another installation's pods.
    """

    __tablename__ = "installation"
    singleton: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column()


class SchedulerHeartbeat(Base):
    """The scheduler's last committed cycle: one row, rewritten by the leader in every cycle's
    transaction, so a fenced (rolled-back) cycle of a deposed leader leaves no beat.

    ``yushan doctor`` reads it through ``GET /v1/scheduler`` to tell whether a scheduler is
    alive, which replica leads, and which namespace mode it runs in (migration 0004).
    """

    __tablename__ = "scheduler_heartbeat"
    singleton: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(NAME_LENGTH * 4))
    beat_at: Mapped[datetime] = mapped_column()
    interval_seconds: Mapped[float] = mapped_column(Float)
    create_namespaces: Mapped[bool] = mapped_column(Boolean)


# -- accounting (migration 0006) -------------------------------------------------------------
# Money is integer micro-credits (1 credit = 1_000_000): sums are exact on both backends.


class Price(Base):
    """An hourly price of one flavor for one tenant kind, from ``effective_from`` on (until a
    later row for the same flavor and kind takes over). Micro-credits per hour."""

    __tablename__ = "prices"
    __table_args__ = (UniqueConstraint("flavor", "tenant_kind", "effective_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flavor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    tenant_kind: Mapped[str] = mapped_column(String(16))
    effective_from: Mapped[datetime]
    gpu_hour: Mapped[int] = mapped_column(BigInteger)
    """Per GPU-hour."""
    cpu_hour: Mapped[int] = mapped_column(BigInteger, default=0)
    """Per CPU-core-hour."""
    memory_gib_hour: Mapped[int] = mapped_column(BigInteger, default=0)
    """Per GiB-hour of memory."""


class Wallet(Base):
    """A tenant's credits. A tenant without a wallet is not metered (usage is still ledgered).

    ``balance`` always equals the sum of the tenant's :class:`WalletTransaction` amounts: both
    change in the same transaction."""

    __tablename__ = "wallets"

    tenant: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("tenants.name", ondelete="CASCADE"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_limit: Mapped[int] = mapped_column(BigInteger, default=0)
    """How far below zero the balance may go (postpaid tenants; always 0 when prepaid)."""
    on_exhausted: Mapped[str] = mapped_column(String(16), default="finish")
    """``finish`` (running jobs go on) or ``stop`` (they are stopped) once the credit is gone."""
    require_cover: Mapped[bool] = mapped_column(Boolean, default=False)
    """Admit a job only when the available credit covers its maximum cost."""
    updated_at: Mapped[datetime]


class WalletTransaction(Base):
    """One movement of a wallet: ``topup``, ``adjustment``, ``charge`` (negative) or
    ``refund``; ``user`` names the member it is charged to (their budget), if any."""

    __tablename__ = "wallet_transactions"
    __table_args__ = (Index("ix_wallet_transactions_tenant_id", "tenant", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("wallets.tenant", ondelete="CASCADE")
    )
    user: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    note: Mapped[str] = mapped_column(String(200), default="")


class MemberBudget(Base):
    """A member's sub-wallet: what they may spend of their tenant's credit, and have spent."""

    __tablename__ = "member_budgets"

    tenant: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("wallets.tenant", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    budget: Mapped[int] = mapped_column(BigInteger)
    spent: Mapped[int] = mapped_column(BigInteger, default=0)


class JobAccrual(Base):
    """How far one attempt of a job has been accrued into the ledger.

    Advanced in the same transaction as the ledger rows it covers, so a rolled-back iteration
    or a killed scheduler neither loses nor repeats an interval."""

    __tablename__ = "job_accruals"

    job_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_ms: Mapped[int] = mapped_column(BigInteger)
    accrued_until_ms: Mapped[int] = mapped_column(BigInteger)
    carry: Mapped[int] = mapped_column(BigInteger, default=0)
    """The remainder of the exact cost below one micro-credit, carried to the next interval
    (numerator over :data:`quotas.money.DENOMINATOR`)."""
    charged: Mapped[int] = mapped_column(BigInteger, default=0)
    """Cost of the attempt so far, credited losses deducted (micro-credits)."""
    closed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class LedgerEntry(Base):
    """Append-only usage: one row per job attempt and accrued interval (``kind`` ``run``), and
    one per preemption loss (``preemption_loss``, negative cost: credited back)."""

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt", "kind", "start_ms"),
        Index("ix_ledger_end_ms", "end_ms"),
        Index("ix_ledger_tenant_end_ms", "tenant", "end_ms"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(16), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str] = mapped_column(String(NAME_LENGTH))
    user: Mapped[str] = mapped_column(String(NAME_LENGTH))
    flavor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    gpus: Mapped[int] = mapped_column(Integer)
    cpu_milli: Mapped[int] = mapped_column(BigInteger)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    gpu_hour: Mapped[int] = mapped_column(BigInteger)
    """The GPU-hour price the interval was charged at (micro-credits)."""
    cost: Mapped[int] = mapped_column(BigInteger)
    """Micro-credits; negative for a credited preemption loss."""
    charged_to_wallet: Mapped[bool] = mapped_column(Boolean, default=False)


class LedgerJobMonth(Base):
    """One job's ledger rows that ended in one UTC month, summed: a line of the month's
    statement (migration 0007).

    Written by :func:`store.ledger.roll_up` in the transaction that appends the rows, so it
    always equals the ``GROUP BY`` of the ledger it summarises; the ledger stays the source of
    truth. ``first_entry`` is the id of the job's first row in the month, the statement's order.
    """

    __tablename__ = "ledger_job_months"
    __table_args__ = (Index("ix_ledger_job_months_tenant_month", "tenant", "month", "first_entry"),)

    job_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    """``2026-11``: the UTC month the rows ended in."""
    tenant: Mapped[str] = mapped_column(String(NAME_LENGTH))
    user: Mapped[str] = mapped_column(String(NAME_LENGTH))
    flavor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    gpu_ms: Mapped[int] = mapped_column(BigInteger)
    """GPU-milliseconds of its ``run`` rows."""
    gpu_hour: Mapped[int] = mapped_column(BigInteger)
    """The highest GPU-hour price of its ``run`` rows (0 without one)."""
    cost: Mapped[int] = mapped_column(BigInteger)
    """Cost of its ``run`` rows (micro-credits)."""
    credited: Mapped[int] = mapped_column(BigInteger)
    """Preemption losses credited back (positive micro-credits)."""
    first_entry: Mapped[int] = mapped_column(BigInteger)


class LedgerTenantDay(Base):
    """Net cost of a tenant's ledger rows that ended in one UTC day (the wallet page's spend
    per day; migration 0007), kept like :class:`LedgerJobMonth`."""

    __tablename__ = "ledger_tenant_days"

    tenant: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    day_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """The day's first instant, epoch milliseconds (UTC)."""
    net: Mapped[int] = mapped_column(BigInteger)
    """Run cost less credited preemption losses (micro-credits)."""
