"""installation: the identity of this installation

One row (``singleton = 1``) holding a random id, created with the database. The scheduler
stamps it on every pod it creates and never adopts or deletes pods of another identity.

Revision ID: 0003_installation_identity
Revises: 0002_checkpoint_evictions
Create Date: 2026-11-30 20:10:00.000000
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_installation_identity"
down_revision = "0002_checkpoint_evictions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "installation",
        sa.Column("singleton", sa.Integer(), primary_key=True),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(
        table, [{"singleton": 1, "id": uuid.uuid4().hex, "created_at": datetime.now(UTC)}]
    )


def downgrade() -> None:
    op.drop_table("installation")
