"""The write journal: gw_intents holds a record version between its durable intent and its catalogue rows.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('gw_intents',
    sa.Column('record_id', sa.String(length=66), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_id', sa.String(length=66), nullable=False),
    sa.Column('previous_content_id', sa.String(length=66), nullable=True),
    sa.Column('patient', sa.String(length=42), nullable=False),
    sa.Column('author', sa.String(length=42), nullable=False),
    sa.Column('classes_mask', sa.Integer(), nullable=False),
    sa.Column('primary_class', sa.Integer(), nullable=False),
    sa.Column('resources', sa.Text(), nullable=False),
    sa.Column('from_block', sa.BigInteger(), nullable=False),
    sa.Column('boot', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('record_id', 'version')
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('gw_intents')
