"""Administrative acts in the tamper-evident log; one party per ODS code.

``admin_events.entry_id``: the audit log entry (kind ``admin``) that records the act, written in
the same transaction by ``broker.audit.admin.log_admin_event``; ``broker audit verify`` checks
each row against it. Rows from before this revision have none.
``ix_parties_ods_code``: an ODS code belongs to one party (the upgrade fails, naming the index,
if two parties already share one: give one of them its own code first).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("admin_events") as batch:
        batch.add_column(sa.Column("entry_id", sa.String(36), nullable=True))
    op.create_index("ix_admin_events_entry_id", "admin_events", ["entry_id"], unique=True)
    op.create_index("ix_parties_ods_code", "parties", ["ods_code"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_parties_ods_code", table_name="parties")
    op.drop_index("ix_admin_events_entry_id", table_name="admin_events")
    with op.batch_alter_table("admin_events") as batch:
        batch.drop_column("entry_id")
