"""Sealing records for the custodian, and opening them at an authorised read.

A record version is sealed with `medledger.crypto.seal` for exactly two recipients: the patient (so the
patient can always open their own data with their own key, gateway or not) and the gateway's current
key. Readers never get a wrapped key: the gateway decrypts at each authorised read and returns only the
resources of the classes the reader may see (see docs/GATEWAY.md, "why decrypted FHIR and not a re-wrap").
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from .. import crypto
from ..errors import DecryptionFailed
from ..vault import LocalVault
from . import store as T
from .keys import GatewayKey, unwrap
from .store import Store


def assign_ids(doc: dict[str, Any]) -> dict[str, Any]:
    """Server-assigned logical ids: every resource without an ``id`` gets one (a Bundle entry's
    ``urn:uuid:`` fullUrl if it has one, else a fresh UUID)."""
    doc = dict(doc)
    if doc.get("resourceType") != "Bundle":
        doc.setdefault("id", str(uuid.uuid4()))
        return doc
    if not isinstance(doc.get("entry", []), list):
        return doc  # validation names the problem
    entries = []
    for entry in doc.get("entry", []):
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict) and "id" not in entry["resource"]:
            full = entry.get("fullUrl")
            rid = full[9:] if isinstance(full, str) and full.startswith("urn:uuid:") else str(uuid.uuid4())
            entry = {**entry, "resource": {**entry["resource"], "id": rid}}
        entries.append(entry)
    doc["entry"] = entries
    return doc


def seal_for_custodian(canonical: bytes, record_id: bytes, version: int, patient: str, patient_key: bytes,
                       key: GatewayKey) -> crypto.Envelope:
    return crypto.seal(canonical, record_id, version, patient, {patient: patient_key, key.address: key.public_key})


def data_key_for(store: Store, vault: LocalVault | None, content_id: str, key: GatewayKey,
                 envelope: crypto.Envelope | None) -> bytes:
    """The data key of blob ``content_id`` under the gateway key ``key``: from a rotation wrap if one
    exists, else from the envelope's own wrapped key for ``key``."""
    with store.read() as conn:
        row = conn.execute(select(T.key_wraps.c.wrapped).where(T.key_wraps.c.content_id == content_id,
                                                               T.key_wraps.c.key_address == key.address)).first()
    if row is not None:
        return unwrap(key, bytes(row.wrapped))
    if envelope is None:
        if vault is None:
            raise DecryptionFailed(f"blob {content_id} has no wrap for the gateway key {key.address}")
        envelope = crypto.Envelope.from_bytes(vault.get(content_id))
    wrapped = envelope.wrapped_keys.get(key.address)
    if wrapped is None:
        raise DecryptionFailed(f"blob {content_id} is not wrapped for the gateway key {key.address}")
    return unwrap(key, wrapped)


def resource_rows(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(resource type, id) of every resource of a record, in order."""
    from ..data_classes import resources_of

    return [(str(r.get("resourceType")), str(r.get("id", ""))) for r in resources_of(doc)]
