"""Idempotent creates: gw_creates remembers which record a create's Idempotency-Key or If-None-Exist identifier
made, so a client's retry (after a timeout, across a gateway restart) gets that record back instead of a second one.
gw_intents.batch_root: the Merkle batch a journaled create belongs to (POST [base] with a batch Bundle).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('gw_creates',
    sa.Column('author', sa.String(length=42), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('request_hash', sa.String(length=66), nullable=True),
    sa.Column('record_id', sa.String(length=66), nullable=False),
    sa.Column('batch_root', sa.String(length=66), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('author', 'key')
    )
    with op.batch_alter_table('gw_intents') as batch:
        batch.add_column(sa.Column('batch_root', sa.String(length=66), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('gw_intents') as batch:
        batch.drop_column('batch_root')
    op.drop_table('gw_creates')
