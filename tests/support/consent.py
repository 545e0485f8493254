"""Shared constants for the ConsentRegistry tests (not a test module itself)."""
from __future__ import annotations

#: The longest break-glass window the ConsentRegistry accepts (72 h); the `consent` fixture uses it.
BREAK_GLASS_MAX = 72 * 3600
