"""Pairwise patient pseudonyms: one unlinkable key and address per care relationship (issue #14).

A patient who uses one address with every provider and insurer lets anyone who learns that address
list all of her relationships. Here the SDK derives, for each relationship (a provider, an insurer, a
guardian link…), a separate secp256k1 key from the patient's own root secret:

    sk = HKDF-SHA256(ikm = root secret, salt = "MedLedger pseudonym v1",
                     info = chain id ‖ relationship kind ‖ counterparty address ‖ index)  mod n

- **Recoverable:** the patient re-derives every pseudonym from her wallet alone; nothing to back up.
- **Unlinkable:** without the root secret, two pseudonyms of one patient are independent keys (HKDF
  is a PRF); a counterparty learns only the pseudonym of its own relationship.
- **Deterministic, so countable by the patient:** ``index`` rotates a relationship's pseudonym (after a
  compromise, or to start afresh) and the patient's audit trail scans indexes until an unused one.

Why pairwise derivation and not ERC-5564 stealth addresses: a stealth address is made by the *sender*
for a recipient's published meta-address, and the recipient must scan every announcement to find it.
Here the patient makes her own pseudonyms, for counterparties she chooses, and must recover all of
them without scanning the chain; pairwise identifiers (DIDComm / Hyperledger Aries: one DID per
connection) fit that directly. A stealth meta-address remains the way for a provider to anchor a record
for a patient who has not yet contacted it (see docs/PRIVACY.md).

Root secret: the patient keystore's private key, or for a wallet that cannot export keys, the
signature of a fixed EIP-712 message (:data:`ROOT_MESSAGE`) by that wallet — deterministic for
RFC 6979 signers (every mainstream wallet), so the same wallet always yields the same pseudonyms.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_canonical_address, to_checksum_address

from .accounts import LocalSigner, Signer
from .errors import AccountError
from .scopes import Role

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HKDF_SALT = b"MedLedger pseudonym v1"

#: What a wallet that cannot export its key signs once to give the SDK a root secret (chain-agnostic:
#: the same pseudonyms on every chain id are then separated by the derivation's `info`).
ROOT_MESSAGE: dict[str, Any] = {
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
        "PseudonymRoot": [{"name": "purpose", "type": "string"}],
    },
    "primaryType": "PseudonymRoot",
    "domain": {"name": "MedLedger", "version": "1"},
    "message": {"purpose": "Derive my MedLedger pseudonyms. Sign only in a MedLedger app."},
}


class Relationship(str, Enum):
    """The kind of counterparty a pseudonym is for."""

    PROVIDER = "provider"
    INSURER = "insurer"
    GUARDIAN = "guardian"


@dataclass(frozen=True)
class Pseudonym:
    """One relationship's key. `account` signs consents and claims' patient parts; it never sends a
    transaction (relayers do), so it never needs gas that would link it to a funding source."""

    chain_id: int
    kind: Relationship
    counterparty: str
    index: int
    account: LocalAccount

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def signer(self) -> Signer:
        return LocalSigner(self.account)


def root_secret(signer: Signer, w3: Any = None) -> bytes:
    """The patient's root secret: the private key of a local signer, else the signature of
    :data:`ROOT_MESSAGE` by the wallet (never stored; derive again when needed)."""
    if isinstance(signer, LocalSigner):
        return signer.private_key
    signature = signer.sign_typed_data(w3, ROOT_MESSAGE)
    if len(signature) != 65:
        raise AccountError("the wallet's signature of the pseudonym root message is not 65 bytes")
    return signature


def derive(root: bytes, chain_id: int, kind: Relationship, counterparty: str, index: int = 0) -> Pseudonym:
    """The pseudonym of one relationship (see the module docstring for the construction)."""
    if len(root) < 32:
        raise AccountError("a pseudonym root secret must have at least 32 bytes")
    if not 0 <= index < 2**32:
        raise AccountError(f"pseudonym index {index} is outside 0..2^32-1")
    info = (chain_id.to_bytes(32, "big") + kind.value.encode() + b"\x00" + to_canonical_address(counterparty)
            + index.to_bytes(4, "big"))
    counter = 0
    while True:  # rejection sampling: about 2^-128 odds of a second round
        okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT,
                   info=info + counter.to_bytes(1, "big")).derive(root)
        key = int.from_bytes(okm, "big")
        if 0 < key < SECP256K1_N:
            return Pseudonym(chain_id, kind, to_checksum_address(counterparty), index,
                             Account.from_key(key.to_bytes(32, "big")))
        counter += 1


def pseudonyms_of(root: bytes, chain_id: int, relationships: list[tuple[Relationship, str]],
                  indexes: int = 1) -> list[Pseudonym]:
    """Every pseudonym of the given relationships, indexes 0..indexes-1 (the patient's own view)."""
    return [derive(root, chain_id, kind, counterparty, i) for kind, counterparty in relationships
            for i in range(indexes)]


#: The relationship a registered party's role makes with a patient (arbiters and registrars make none).
RELATIONSHIP_OF_ROLE: dict[Role, Relationship] = {Role.PROVIDER: Relationship.PROVIDER,
                                                  Role.INSURER: Relationship.INSURER}


@dataclass(frozen=True)
class PatientIdentity:
    """One patient's pseudonyms on one chain, all derived from her root secret (see :func:`root_secret`).

    The SDK's commands take the patient's usual wallet or keystore and ask this object which key acts:
    :meth:`for_party` gives the pseudonym of a relationship with a registered provider or insurer, and
    :meth:`find` tells which of her pseudonyms an address is (so a command given a pseudonym address signs
    with its key). `parties` is every registered provider and insurer: the relationships the patient may
    have, from which she recovers all her pseudonyms without any backup.
    """

    root: bytes
    chain_id: int

    @classmethod
    def of(cls, signer: Signer, chain_id: int, w3: Any = None) -> PatientIdentity:
        return cls(root_secret(signer, w3), chain_id)

    def pseudonym(self, kind: Relationship, counterparty: str, index: int = 0) -> Pseudonym:
        return derive(self.root, self.chain_id, kind, counterparty, index)

    def for_party(self, counterparty: str, role: Role, index: int = 0) -> Pseudonym:
        """The pseudonym for a relationship with `counterparty`, a registered party of `role`."""
        kind = RELATIONSHIP_OF_ROLE.get(role)
        if kind is None:
            raise AccountError(f"{to_checksum_address(counterparty)} is not a registered provider or insurer "
                               f"(role {role.name.lower()}), so a patient has no relationship with it")
        return self.pseudonym(kind, counterparty, index)

    def all(self, parties: Iterable[tuple[str, Role]], indexes: int = 1) -> list[Pseudonym]:
        """Every pseudonym of every relationship with `parties` (account, role), indexes 0..indexes-1."""
        return [self.for_party(account, role, i) for account, role in parties if role in RELATIONSHIP_OF_ROLE
                for i in range(indexes)]

    def find(self, address: str, parties: Iterable[tuple[str, Role]], indexes: int = 1) -> Pseudonym | None:
        """Which of this patient's pseudonyms `address` is, or None."""
        wanted = to_checksum_address(address)
        return next((p for p in self.all(parties, indexes) if p.address == wanted), None)
