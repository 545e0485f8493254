"""Alembic migrations of the index, shipped in the package and applied by `medledger.index.db.open_index`."""
