"""MedLedger: the trust layer for healthcare records on Ethereum (SDK and CLI)."""

__version__ = "0.1.0"
