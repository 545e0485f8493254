"""Initial schema: events, blocks, cursors and the record, consent and claim projections.

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
    op.create_table('blocks',
    sa.Column('chain_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('number', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=66), nullable=False),
    sa.PrimaryKeyConstraint('chain_id', 'number')
    )
    op.create_table('claims',
    sa.Column('chain_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('claim_id', sa.String(length=66), nullable=False),
    sa.Column('provider', sa.String(length=42), nullable=False),
    sa.Column('insurer', sa.String(length=42), nullable=False),
    sa.Column('patient', sa.String(length=42), nullable=False),
    sa.Column('control_number', sa.String(length=66), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('billed', sa.String(length=80), nullable=False),
    sa.Column('approved', sa.String(length=80), nullable=False),
    sa.Column('contested', sa.String(length=80), nullable=False),
    sa.Column('awarded', sa.String(length=80), nullable=False),
    sa.Column('service_code', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('deadline', sa.BigInteger(), nullable=False),
    sa.Column('adjudication', sa.String(length=16), nullable=True),
    sa.Column('claim_hash', sa.String(length=66), nullable=True),
    sa.Column('submitted_block', sa.BigInteger(), nullable=False),
    sa.Column('updated_block', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('chain_id', 'claim_id')
    )
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.create_index('ix_claims_insurer', ['chain_id', 'insurer', 'status', 'deadline'], unique=False)
        batch_op.create_index('ix_claims_patient', ['chain_id', 'patient'], unique=False)
        batch_op.create_index('ix_claims_provider', ['chain_id', 'provider', 'status', 'deadline'], unique=False)

    op.create_table('consent_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('patient', sa.String(length=42), nullable=False),
    sa.Column('grantee', sa.String(length=42), nullable=False),
    sa.Column('actor', sa.String(length=42), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('purposes', sa.Integer(), nullable=False),
    sa.Column('data_classes', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.BigInteger(), nullable=False),
    sa.Column('valid_until', sa.BigInteger(), nullable=False),
    sa.Column('doc_hash', sa.String(length=66), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_changes', schema=None) as batch_op:
        batch_op.create_index('ix_consents_grantee', ['chain_id', 'grantee', 'block_number'], unique=False)
        batch_op.create_index('ix_consents_patient', ['chain_id', 'patient', 'grantee', 'block_number'], unique=False)

    op.create_table('cursors',
    sa.Column('chain_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('next_block', sa.BigInteger(), nullable=False),
    sa.Column('start_block', sa.BigInteger(), nullable=False),
    sa.Column('addresses', sa.JSON(), nullable=False),
    sa.Column('head_seen', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('chain_id')
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('contract', sa.String(length=40), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('args', sa.Text(), nullable=False),
    sa.Column('patient', sa.String(length=42), nullable=True),
    sa.Column('subject', sa.String(length=66), nullable=True),
    sa.Column('party', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('chain_id', 'tx_hash', 'log_index', name='uq_events_chain_tx_log')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_chain_block', ['chain_id', 'block_number', 'log_index'], unique=False)
        batch_op.create_index('ix_events_chain_party', ['chain_id', 'party'], unique=False)
        batch_op.create_index('ix_events_chain_patient', ['chain_id', 'patient'], unique=False)
        batch_op.create_index('ix_events_chain_subject', ['chain_id', 'subject'], unique=False)

    op.create_table('record_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('record_id', sa.String(length=66), nullable=False),
    sa.Column('patient', sa.String(length=42), nullable=False),
    sa.Column('author', sa.String(length=42), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=66), nullable=False),
    sa.Column('data_class', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.String(length=80), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('record_versions', schema=None) as batch_op:
        batch_op.create_index('ix_records_chain_author', ['chain_id', 'author'], unique=False)
        batch_op.create_index('ix_records_chain_patient', ['chain_id', 'patient'], unique=False)
        batch_op.create_index('ix_records_chain_record', ['chain_id', 'record_id'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('record_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_records_chain_record')
        batch_op.drop_index('ix_records_chain_patient')
        batch_op.drop_index('ix_records_chain_author')

    op.drop_table('record_versions')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_chain_subject')
        batch_op.drop_index('ix_events_chain_patient')
        batch_op.drop_index('ix_events_chain_party')
        batch_op.drop_index('ix_events_chain_block')

    op.drop_table('events')
    op.drop_table('cursors')
    with op.batch_alter_table('consent_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_patient')
        batch_op.drop_index('ix_consents_grantee')

    op.drop_table('consent_changes')
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_index('ix_claims_provider')
        batch_op.drop_index('ix_claims_patient')
        batch_op.drop_index('ix_claims_insurer')

    op.drop_table('claims')
    op.drop_table('blocks')
