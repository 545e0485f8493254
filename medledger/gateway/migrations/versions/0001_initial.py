"""Initial schema: the tables `metadata.create_all` made before migrations (sessions, nonces, the record
catalogue, key wraps, the audit log and its batches). A database made by that code is stamped with this
revision, not recreated.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('gw_audit_batches',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('root', sa.String(length=66), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tree', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('block', sa.BigInteger(), nullable=True),
    sa.Column('batch_id', sa.String(length=80), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('root')
    )
    op.create_table('gw_key_wraps',
    sa.Column('content_id', sa.String(length=66), nullable=False),
    sa.Column('key_address', sa.String(length=42), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('content_id', 'key_address')
    )
    op.create_table('gw_login_nonces',
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('nonce')
    )
    op.create_table('gw_records',
    sa.Column('record_id', sa.String(length=66), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('patient', sa.String(length=42), nullable=False),
    sa.Column('author', sa.String(length=42), nullable=False),
    sa.Column('content_id', sa.String(length=66), nullable=False),
    sa.Column('classes_mask', sa.Integer(), nullable=False),
    sa.Column('primary_class', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.Float(), nullable=False),
    sa.Column('anchor_tx', sa.String(length=66), nullable=True),
    sa.Column('anchor_block', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('record_id', 'version')
    )
    with op.batch_alter_table('gw_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gw_records_patient'), ['patient'], unique=False)

    op.create_table('gw_request_nonces',
    sa.Column('signer', sa.String(length=42), nullable=False),
    sa.Column('nonce', sa.String(length=66), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('signer', 'nonce')
    )
    op.create_table('gw_resources',
    sa.Column('record_id', sa.String(length=66), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('data_class', sa.Integer(), nullable=False),
    sa.Column('patient', sa.String(length=42), nullable=False),
    sa.Column('last_updated', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('record_id', 'version', 'position')
    )
    with op.batch_alter_table('gw_resources', schema=None) as batch_op:
        batch_op.create_index('gw_resources_lookup', ['resource_type', 'resource_id'], unique=False)
        batch_op.create_index('gw_resources_patient', ['patient', 'resource_type'], unique=False)

    op.create_table('gw_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('origin', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('gw_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gw_sessions_address'), ['address'], unique=False)

    op.create_table('gw_audit_entries',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('time', sa.Float(), nullable=False),
    sa.Column('reader', sa.String(length=42), nullable=False),
    sa.Column('patient', sa.String(length=42), nullable=False),
    sa.Column('record_id', sa.String(length=66), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.Integer(), nullable=False),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('classes_mask', sa.Integer(), nullable=False),
    sa.Column('decided_at_block', sa.BigInteger(), nullable=False),
    sa.Column('consent_granted_at', sa.BigInteger(), nullable=True),
    sa.Column('consent_block', sa.BigInteger(), nullable=True),
    sa.Column('consent_tx', sa.String(length=66), nullable=True),
    sa.Column('event', sa.Text(), nullable=False),
    sa.Column('event_hash', sa.String(length=66), nullable=False),
    sa.Column('batch_seq', sa.Integer(), nullable=True),
    sa.Column('batch_index', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['batch_seq'], ['gw_audit_batches.seq'], ),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('gw_audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gw_audit_entries_batch_seq'), ['batch_seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_gw_audit_entries_patient'), ['patient'], unique=False)
        batch_op.create_index(batch_op.f('ix_gw_audit_entries_reader'), ['reader'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('gw_audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gw_audit_entries_reader'))
        batch_op.drop_index(batch_op.f('ix_gw_audit_entries_patient'))
        batch_op.drop_index(batch_op.f('ix_gw_audit_entries_batch_seq'))

    op.drop_table('gw_audit_entries')
    with op.batch_alter_table('gw_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gw_sessions_address'))

    op.drop_table('gw_sessions')
    with op.batch_alter_table('gw_resources', schema=None) as batch_op:
        batch_op.drop_index('gw_resources_patient')
        batch_op.drop_index('gw_resources_lookup')

    op.drop_table('gw_resources')
    op.drop_table('gw_request_nonces')
    with op.batch_alter_table('gw_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gw_records_patient'))

    op.drop_table('gw_records')
    op.drop_table('gw_login_nonces')
    op.drop_table('gw_key_wraps')
    op.drop_table('gw_audit_batches')
