"""scheduler_heartbeat: the leader's last committed cycle

One row (``singleton = 1``), written by the leading scheduler in every cycle: who leads, when
its last cycle committed, its longest pause between cycles and whether it creates tenant
namespaces. ``GET /v1/scheduler`` and ``yushan doctor`` read it.

Revision ID: 0004_ux_scheduler_heartbeat
Revises: 0003_installation_identity
Create Date: 2026-11-30 22:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_ux_scheduler_heartbeat"
down_revision = "0003_installation_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_heartbeat",
        sa.Column("singleton", sa.Integer(), primary_key=True),
        sa.Column("holder", sa.String(252), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("create_namespaces", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scheduler_heartbeat")
