"""The record gateway (`medledger gateway serve`): a custodian's FHIR REST service that releases a record
only to a wallet-authenticated reader with live on-chain consent, commits an audit entry before it answers,
and anchors the audit log on chain in Merkle batches. See docs/GATEWAY.md.

Modules: `service` (the core, no HTTP), `app` (FastAPI: `create_app`), `auth` (SIWE sessions, EIP-712
requests, ERC-1271), `consent` (the consent view and the per-read decision), `auditlog` (write-ahead
AuditEvents, Merkle batches, proofs), `journal` (writes journaled before their anchor, recovered after a
crash), `keys` (the gateway keyring and rotation), `sealing`, `store` (SQLAlchemy tables, migrated by
`migrations` on open), `client` (the SDK client the CLI and the web app use).
"""
from __future__ import annotations

__all__ = ["create_app", "GatewaySettings"]


def __getattr__(name: str):  # lazy: importing the package does not pull in FastAPI
    if name == "create_app":
        from .app import create_app
        return create_app
    if name == "GatewaySettings":
        from .service import GatewaySettings
        return GatewaySettings
    raise AttributeError(name)
