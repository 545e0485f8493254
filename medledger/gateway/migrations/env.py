"""Alembic environment of the gateway: runs on the connection `medledger.gateway.store.Store` hands over."""
from __future__ import annotations

from medledger.gateway.migrations import VERSION_TABLE
from medledger.gateway.store import metadata
from medledger.index.db import run_migrations

run_migrations(metadata, VERSION_TABLE)
