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
from pathlib import Path
from typing import Any

from eth_utils import keccak

from .errors import CommitmentMismatch, FhirInvalid

SALT_BYTES = 32
#: The opening of a committed file is kept beside it: ``claim.json`` -> ``claim.json.salt.json``.
SIDECAR_SUFFIX = ".salt.json"


@dataclass(frozen=True)
class Opening:
    """What the counterparty receives off chain to check a commitment: the salt and the document."""

    salt: bytes
    canonical: bytes

    @property
    def commitment(self) -> bytes:
        return keccak(self.salt + self.canonical)

    @property
    def document_keccak(self) -> bytes:
        """keccak256 of the document alone: names which document a salt belongs to (kept off chain)."""
        return keccak(self.canonical)

    def to_json(self) -> dict[str, Any]:
        return {"salt": "0x" + self.salt.hex(), "document": json.loads(self.canonical)}


def commit(document: Any, salt: bytes | None = None) -> Opening:
    """Commits to a JSON document (a dict, or JSON text/bytes) with fresh random salt unless given."""
    from .fhir import canonicalize

    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise CommitmentMismatch(f"a commitment salt has {SALT_BYTES} bytes, not {len(salt)}")
    return Opening(salt, canonicalize(document))


def document_bytes(raw: bytes) -> bytes:
    """What a file commitment covers: the RFC 8785 canonical bytes of a JSON document (so formatting and
    key order do not matter), else the file's raw bytes (a PDF, a scanned letter)."""
    from .fhir import canonicalize

    try:
        return canonicalize(raw)
    except FhirInvalid:
        return bytes(raw)


def commit_bytes(raw: bytes, salt: bytes | None = None) -> Opening:
    """Commits to a file's content (JSON canonicalised, anything else as is) with fresh salt unless given."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise CommitmentMismatch(f"a commitment salt has {SALT_BYTES} bytes, not {len(salt)}")
    return Opening(salt, document_bytes(raw))


def verify(commitment: bytes, opening: Opening) -> None:
    """Raises CommitmentMismatch unless `opening` opens `commitment`."""
    if not hmac.compare_digest(opening.commitment, commitment):
        raise CommitmentMismatch("the document and salt do not match the commitment on chain")


def random_control_number() -> bytes:
    """A fresh 32-byte control number: nothing about the claim can be learned or guessed from it."""
    return os.urandom(32)


#: HKDF salt of the provider-insurer control-number key (fixed: the key must be the same on both sides).
CONTROL_KEY_LABEL = b"MedLedger claim control number v1"


def control_key(own_private_key: bytes, counterparty_public_key: bytes) -> bytes:
    """The key a provider and an insurer share for their claims' control numbers, and no one else has:
    ``HKDF-SHA256(ikm = ECDH(own secp256k1 key, counterparty's published key), salt = CONTROL_KEY_LABEL)``.
    ECDH is symmetric, so the provider (its key, the insurer's public key) and the insurer (its key, the
    provider's public key) derive the same 32 bytes."""
    import coincurve
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from .crypto import normalize_public_key

    try:
        shared = coincurve.PrivateKey(own_private_key).ecdh(normalize_public_key(counterparty_public_key))
    except ValueError as exc:
        raise CommitmentMismatch(f"cannot derive a control-number key: {exc}") from None
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=CONTROL_KEY_LABEL, info=b"control-number").derive(shared)


def keyed_control_number(key: bytes, text: str) -> bytes:
    """HMAC-SHA256(key, text): a party re-derives its own numbering ("RIV-0001") with its secret key,
    while an observer who guesses the text cannot confirm the guess."""
    if len(key) < 32:
        raise CommitmentMismatch("a control-number key needs at least 32 bytes")
    return hmac.new(key, text.encode(), sha256).digest()


# --------------------------------------------------------------------------- files with a sidecar opening


def sidecar_path(file: Path) -> Path:
    """Where the salt of a committed file is kept: beside it, ``FILE`` -> ``FILE.salt.json``."""
    return file.with_name(file.name + SIDECAR_SUFFIX)


@dataclass(frozen=True)
class SaltedFile:
    """A file's salted commitment and where its opening (the salt) lives.

    The sidecar travels with the file to the counterparty (the off-chain package): file + sidecar open the
    on-chain value, the file alone does not."""

    file: Path
    sidecar: Path
    opening: Opening

    @property
    def commitment(self) -> bytes:
        return self.opening.commitment

    def save(self, **context: Any) -> Path:
        """Keeps the salt beside the file (atomically, readable by its owner only); returns the sidecar."""
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(json.dumps({"salt": "0x" + self.opening.salt.hex(),
                                   "docHash": "0x" + self.commitment.hex(),
                                   "resourceKeccak": "0x" + self.opening.document_keccak.hex(),
                                   "file": self.file.name, **context}, indent=2) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.sidecar)
        return self.sidecar


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise CommitmentMismatch(f"{file}: cannot read ({exc.strerror})") from None


def _sidecar_salt(file: Path, sidecar: Path, opening_of: Opening) -> bytes:
    """The salt in ``sidecar``, checked to belong to ``file``'s current content."""
    try:
        data = json.loads(sidecar.read_text())
        salt = bytes.fromhex(data["salt"].removeprefix("0x"))
        expected = bytes.fromhex(data["resourceKeccak"].removeprefix("0x"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CommitmentMismatch(f"{sidecar}: not a MedLedger salt file ({type(exc).__name__}: {exc}); "
                                 "move it away") from None
    if len(salt) != SALT_BYTES:
        raise CommitmentMismatch(f"{sidecar}: not a MedLedger salt file (a {len(salt)}-byte salt); move it away")
    if opening_of.document_keccak != expected:
        raise CommitmentMismatch(f"{sidecar}: holds the salt of a different version of {file.name} (keccak "
                                 f"{data['resourceKeccak']}); the file changed since it was committed: move the "
                                 "salt file away to commit anew")
    return salt


def salted_file(file: Path, sidecar: Path | None = None) -> SaltedFile:
    """The commitment to ``file``: with the salt already beside it (committing the same file again gives the
    same value, so re-running is idempotent), else with fresh salt. Nothing is written: call `SaltedFile.save`
    once the commitment is on chain. Raises CommitmentMismatch when the sidecar is corrupt or belongs to
    another version of the file."""
    sidecar = sidecar_path(file) if sidecar is None else sidecar
    fresh = commit_bytes(_read(file))
    if not sidecar.exists():
        return SaltedFile(file, sidecar, fresh)
    return SaltedFile(file, sidecar, Opening(_sidecar_salt(file, sidecar, fresh), fresh.canonical))


def open_file(file: Path, sidecar: Path | None = None) -> SaltedFile:
    """``file`` with the salt of its sidecar, to check against the chain; CommitmentMismatch when the sidecar
    is missing, corrupt or of another version."""
    sidecar = sidecar_path(file) if sidecar is None else sidecar
    if not sidecar.exists():
        raise CommitmentMismatch(f"{file}: no salt file {sidecar.name} beside it; the commitment on chain cannot "
                                 "be opened without the salt the committing party sent with the document")
    return salted_file(file, sidecar)
