"""jobs: checkpoint interval and recent evictions

``checkpoint_interval_seconds`` is part of the job spec (the job saves its progress this often).
``evicted_at`` holds the epoch seconds of the job's evictions in the last 24 hours; the
scheduler reads it every cycle for the per-day eviction cap, from the job rows it loads anyway.

Revision ID: 0002_checkpoint_evictions
Revises: 0001
Create Date: 2026-11-30 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_checkpoint_evictions"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checkpoint_interval_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("evicted_at", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("evicted_at")
        batch_op.drop_column("checkpoint_interval_seconds")
