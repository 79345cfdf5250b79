"""ledger roll-ups: the monthly statement and the spend per day without grouping the ledger

- ``ledger_job_months``: per job and UTC month, its ledger rows summed (a statement line);
- ``ledger_tenant_days``: per tenant and UTC day, the net cost of its ledger rows.

Both are kept by ``store.ledger.roll_up`` in the transaction that appends ledger rows; here they
are filled from the ledger already written, with the same sums as the ``GROUP BY`` queries they
replace.

Revision ID: 0007_ledger_rollups
Revises: 0006_accounting
Create Date: 2026-12-01 03:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_ledger_rollups"
down_revision = "0006_accounting"
branch_labels = None
depends_on = None

NAME = 63
DAY_MS = 86_400_000
MONTH_OF_END = {
    "sqlite": "strftime('%Y-%m', end_ms / 1000, 'unixepoch')",
    "postgresql": "to_char(to_timestamp(end_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM')",
}


def upgrade() -> None:
    op.create_table(
        "ledger_job_months",
        sa.Column("job_id", sa.String(16), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("tenant", sa.String(NAME), nullable=False),
        sa.Column("user", sa.String(NAME), nullable=False),
        sa.Column("flavor", sa.String(NAME), nullable=False),
        sa.Column("gpu_ms", sa.BigInteger(), nullable=False),
        sa.Column("gpu_hour", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("credited", sa.BigInteger(), nullable=False),
        sa.Column("first_entry", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_ledger_job_months_tenant_month",
        "ledger_job_months",
        ["tenant", "month", "first_entry"],
    )
    op.create_table(
        "ledger_tenant_days",
        sa.Column("tenant", sa.String(NAME), primary_key=True),
        sa.Column("day_ms", sa.BigInteger(), primary_key=True),
        sa.Column("net", sa.BigInteger(), nullable=False),
    )
    month = MONTH_OF_END[op.get_bind().dialect.name]
    op.execute(
        f"""
        INSERT INTO ledger_job_months
            (job_id, month, tenant, "user", flavor, gpu_ms, gpu_hour, cost, credited, first_entry)
        SELECT job_id, {month}, MAX(tenant), MAX("user"), MAX(flavor),
            COALESCE(SUM(CASE WHEN kind = 'run' THEN gpus * (end_ms - start_ms) ELSE 0 END), 0),
            MAX(CASE WHEN kind = 'run' THEN gpu_hour ELSE 0 END),
            COALESCE(SUM(CASE WHEN kind = 'run' THEN cost ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN kind = 'run' THEN 0 ELSE -cost END), 0),
            MIN(id)
        FROM ledger GROUP BY job_id, {month}
        """
    )
    op.execute(
        f"""
        INSERT INTO ledger_tenant_days (tenant, day_ms, net)
        SELECT tenant, (end_ms / {DAY_MS}) * {DAY_MS}, SUM(cost)
        FROM ledger GROUP BY tenant, (end_ms / {DAY_MS}) * {DAY_MS}
        """
    )


def downgrade() -> None:
    op.drop_table("ledger_tenant_days")
    op.drop_table("ledger_job_months")
