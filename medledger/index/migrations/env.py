"""Alembic environment of the index: runs on the connection `medledger.index.db.upgrade` hands over."""
from __future__ import annotations

from medledger.index.db import run_migrations
from medledger.index.models import Base

run_migrations(Base.metadata)
