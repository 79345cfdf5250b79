"""accounting: price list, wallets, member budgets, usage ledger, per-attempt accrual

- ``prices``: effective-dated hourly prices per flavor and tenant kind (micro-credits);
- ``wallets``, ``wallet_transactions``, ``member_budgets``: a tenant's credits, every movement
  of them (the balance is their sum) and its members' sub-wallets;
- ``job_accruals``: how far each job attempt has been accrued (idempotent accrual);
- ``ledger``: append-only usage rows, unique per (job, attempt, kind, interval start);
- ``cohorts.weights_from_allocation``: its tenants' fair-share weights follow their allocation.

Revision ID: 0006_accounting
Revises: 0005_queue_controls
Create Date: 2026-12-01 00:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_accounting"
down_revision = "0005_queue_controls"
branch_labels = None
depends_on = None

NAME = 63
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cohorts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "weights_from_allocation", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "prices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("flavor", sa.String(NAME), nullable=False),
        sa.Column("tenant_kind", sa.String(16), nullable=False),
        sa.Column("effective_from", TIME, nullable=False),
        sa.Column("gpu_hour", sa.BigInteger(), nullable=False),
        sa.Column("cpu_hour", sa.BigInteger(), nullable=False),
        sa.Column("memory_gib_hour", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("flavor", "tenant_kind", "effective_from"),
    )
    op.create_table(
        "wallets",
        sa.Column(
            "tenant",
            sa.String(NAME),
            sa.ForeignKey("tenants.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("credit_limit", sa.BigInteger(), nullable=False),
        sa.Column("on_exhausted", sa.String(16), nullable=False),
        sa.Column("require_cover", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "wallet_transactions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "tenant",
            sa.String(NAME),
            sa.ForeignKey("wallets.tenant", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user", sa.String(NAME), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(NAME), nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
    )
    op.create_index("ix_wallet_transactions_tenant_id", "wallet_transactions", ["tenant", "id"])
    op.create_table(
        "member_budgets",
        sa.Column(
            "tenant",
            sa.String(NAME),
            sa.ForeignKey("wallets.tenant", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user", sa.String(NAME), primary_key=True),
        sa.Column("budget", sa.BigInteger(), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "job_accruals",
        sa.Column(
            "job_id", sa.String(16), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("accrued_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("carry", sa.BigInteger(), nullable=False),
        sa.Column("charged", sa.BigInteger(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_job_accruals_closed", "job_accruals", ["closed"])
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(NAME), nullable=False),
        sa.Column("user", sa.String(NAME), nullable=False),
        sa.Column("flavor", sa.String(NAME), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("cpu_milli", sa.BigInteger(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("gpu_hour", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("charged_to_wallet", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("job_id", "attempt", "kind", "start_ms"),
    )
    op.create_index("ix_ledger_job_id", "ledger", ["job_id"])
    op.create_index("ix_ledger_end_ms", "ledger", ["end_ms"])
    op.create_index("ix_ledger_tenant_end_ms", "ledger", ["tenant", "end_ms"])


def downgrade() -> None:
    for table in (
        "ledger",
        "job_accruals",
        "member_budgets",
        "wallet_transactions",
        "wallets",
        "prices",
    ):
        op.drop_table(table)
    with op.batch_alter_table("cohorts", schema=None) as batch_op:
        batch_op.drop_column("weights_from_allocation")
