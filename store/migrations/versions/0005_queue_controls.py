"""queue controls: holds, stop policies, per-user limits, dependencies, arrays, start estimates

- ``jobs.held``: a held job is never admitted (``POST /v1/jobs/{id}/hold``);
- ``jobs.depends_on``: ``[{"job": id, "condition": "succeeded|failed|finished"}]``;
- ``jobs.array_id``, ``array_index``, ``array_parallelism``: the tasks of a job array;
- ``jobs.estimated_start`` and ``estimate_is_bound``: the projected start of a queued job, and
  whether it is only an "at the earliest" bound (running jobs without a time limit);
- ``tenants.stop_policy`` and ``flavors.stop_policy``: ``open``, ``hold``, ``hold_and_drain``;
- ``tenants.max_*_per_user``: per-user limit defaults; ``user_limits``: per-user overrides.

Revision ID: 0005_queue_controls
Revises: 0004_ux_scheduler_heartbeat
Create Date: 2026-11-30 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_queue_controls"
down_revision = "0004_ux_scheduler_heartbeat"
branch_labels = None
depends_on = None

LIMIT_COLUMNS = ("max_gpus_per_user", "max_running_jobs_per_user", "max_queued_jobs_per_user")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("depends_on", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("array_id", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("array_index", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("array_parallelism", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("estimated_start", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("estimate_is_bound", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_jobs_array_id", ["array_id"])
    for table in ("tenants", "flavors"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "stop_policy", sa.String(16), nullable=False, server_default=sa.text("'open'")
                )
            )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        for column in LIMIT_COLUMNS:
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))
    op.create_table(
        "user_limits",
        sa.Column(
            "tenant",
            sa.String(63),
            sa.ForeignKey("tenants.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user", sa.String(63), primary_key=True),
        sa.Column("max_gpus", sa.Integer(), nullable=True),
        sa.Column("max_running_jobs", sa.Integer(), nullable=True),
        sa.Column("max_queued_jobs", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("user_limits")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        for column in reversed(LIMIT_COLUMNS):
            batch_op.drop_column(column)
    for table in ("flavors", "tenants"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("stop_policy")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_array_id")
        for column in (
            "estimate_is_bound",
            "estimated_start",
            "array_parallelism",
            "array_index",
            "array_id",
            "depends_on",
            "held",
        ):
            batch_op.drop_column(column)
