"""Audit sequence numbers become 64-bit on PostgreSQL (a 32-bit serial runs out after 2^31 reads). SQLite's
INTEGER PRIMARY KEY is the 64-bit rowid already: nothing to do there.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (("gw_audit_batches", "seq"), ("gw_audit_entries", "seq"), ("gw_audit_entries", "batch_seq"))
#: The sequences behind the serial columns (PostgreSQL names them <table>_<column>_seq).
SEQUENCES = ("gw_audit_batches_seq_seq", "gw_audit_entries_seq_seq")


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())
    for sequence in SEQUENCES:
        op.execute(f"ALTER SEQUENCE {sequence} AS bigint")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for sequence in SEQUENCES:
        op.execute(f"ALTER SEQUENCE {sequence} AS integer")
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
