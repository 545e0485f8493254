"""Alembic migrations of the gateway's tables, shipped in the package and applied by
`medledger.gateway.store.Store` on every open (docs/GATEWAY.md, "Storage")."""

#: The gateway's own Alembic version table: the index (its own ``alembic_version``) may share the database.
VERSION_TABLE = "gw_alembic_version"
#: The revision whose schema `metadata.create_all` made before migrations existed (stamped, not recreated).
BASELINE = "0001"
