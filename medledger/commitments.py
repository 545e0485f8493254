"""Salted commitments and unguessable control numbers (issue #14.3).

A plain ``keccak256(document)`` on a public chain can be *matched*: anyone holding a copy of the
document (a FHIR Claim, a policy, a decision letter) hashes it and finds the transaction. Every
document commitment is therefore ``keccak256(salt ‖ RFC 8785 canonical bytes)`` with 32 random bytes
of salt that travel only in the off-chain package the counterparty receives (:class:`Opening`).
Control numbers are random, or keyed (HMAC) when a party needs to derive them again from its own
text ("RIV-0001"), never the hash of guessable text.
"""
from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from eth_utils import keccak

from .errors import CommitmentMismatch

SALT_BYTES = 32


@dataclass(frozen=True)
class Opening:
    """What the counterparty receives off chain to check a commitment: the salt and the document."""

    salt: bytes
    canonical: bytes

    @property
    def commitment(self) -> bytes:
        return keccak(self.salt + self.canonical)

    def to_json(self) -> dict[str, Any]:
        return {"salt": "0x" + self.salt.hex(), "document": json.loads(self.canonical)}


def commit(document: Any, salt: bytes | None = None) -> Opening:
    """Commits to a JSON document (a dict, or JSON text/bytes) with fresh random salt unless given."""
    from .fhir import canonicalize

    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise CommitmentMismatch(f"a commitment salt has {SALT_BYTES} bytes, not {len(salt)}")
    return Opening(salt, canonicalize(document))


def verify(commitment: bytes, opening: Opening) -> None:
    """Raises CommitmentMismatch unless `opening` opens `commitment`."""
    if not hmac.compare_digest(opening.commitment, commitment):
        raise CommitmentMismatch("the document and salt do not match the commitment on chain")


def random_control_number() -> bytes:
    """A fresh 32-byte control number: nothing about the claim can be learned or guessed from it."""
    return os.urandom(32)


def keyed_control_number(key: bytes, text: str) -> bytes:
    """HMAC-SHA256(key, text): a party re-derives its own numbering ("RIV-0001") with its secret key,
    while an observer who guesses the text cannot confirm the guess."""
    if len(key) < 32:
        raise CommitmentMismatch("a control-number key needs at least 32 bytes")
    return hmac.new(key, text.encode(), sha256).digest()
