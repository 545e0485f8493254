"""EIP-712 typed data for the ConsentRegistry's gasless `grantBySig` and `revokeBySig`, its signed
guardian and break-glass actions (`appointGuardianBySig`, `removeGuardianBySig`, `closeBreakGlassBySig`,
`allowBreakGlassBySig`), and the stablecoin's EIP-2612 `permit` (the escrow's `depositWithPermit`).

The values are frozen dataclasses; `grant_typed_data` / `revoke_typed_data` build the full typed-data
dict (as `eth_signTypedData_v4` and wallets expect it) and `sign_grant` / `sign_revoke` sign it with
a raw private key, returning the 65-byte `r || s || v` signature the contract takes; the guardian and
break-glass builders (`appoint_guardian_typed_data`, ...) are signed with `sign_typed_data` (or a wallet).

The type strings here must match `GRANT_TYPEHASH` / `REVOKE_TYPEHASH` in contracts/ConsentRegistry.sol.
Domain version "2": `nonce` is the (patient, grantee) pair's nonce (`nonces(patient, grantee)`), which
every grant, revoke and `cancelSignatures` of that pair increments, so any change to the pair voids its
pending signatures. A deadline may be at most `MAX_SIGNATURE_LIFETIME` ahead when the request is relayed.

The guardian and break-glass messages share that nonce space: `AppointGuardian` / `RemoveGuardian`
(signed by the patient only, so no `signer` field) carry `nonces(patient, guardian)`, and
`CloseBreakGlass` / `AllowBreakGlass` (the patient or a guardian) carry `nonces(patient, provider)`.
Relaying one spends that nonce; `cancelSignatures(patient, guardian or provider)` voids it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import is_address, keccak, to_checksum_address

from medledger.errors import TypedDataError

DOMAIN_NAME = "MedLedger ConsentRegistry"
DOMAIN_VERSION = "2"
#: ConsentRegistry.MAX_SIGNATURE_LIFETIME: a signed request is never relayed with more life left.
MAX_SIGNATURE_LIFETIME = 7 * 24 * 3600

EIP712_DOMAIN_FIELDS: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
GRANT_FIELDS: list[dict[str, str]] = [
    {"name": "patient", "type": "address"},
    {"name": "grantee", "type": "address"},
    {"name": "purposes", "type": "uint8"},
    {"name": "dataClasses", "type": "uint16"},
    {"name": "validFrom", "type": "uint40"},
    {"name": "validUntil", "type": "uint40"},
    {"name": "consentDocHash", "type": "bytes32"},
    {"name": "signer", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
PERMIT_FIELDS: list[dict[str, str]] = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
REVOKE_FIELDS: list[dict[str, str]] = [
    {"name": "patient", "type": "address"},
    {"name": "grantee", "type": "address"},
    {"name": "signer", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
#: `AppointGuardian` and `RemoveGuardian`: the patient is the signer.
GUARDIAN_FIELDS: list[dict[str, str]] = [
    {"name": "patient", "type": "address"},
    {"name": "guardian", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
#: `CloseBreakGlass` and `AllowBreakGlass`: the signer is the patient or a guardian.
BREAK_GLASS_FIELDS: list[dict[str, str]] = [
    {"name": "patient", "type": "address"},
    {"name": "provider", "type": "address"},
    {"name": "signer", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


def _address(field: str, value: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise TypedDataError(f"{field}: not an address: {value!r}")
    return to_checksum_address(value)


def _uint(field: str, value: int, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise TypedDataError(f"{field}: not a uint{bits}: {value!r}")
    return value


def check_deadline(deadline: int, now: int) -> None:
    """Refuses a deadline in the past or more than `MAX_SIGNATURE_LIFETIME` after `now` (the contract
    would refuse to relay it)."""
    _uint("deadline", deadline, 256)
    if deadline < now:
        raise TypedDataError(f"deadline {deadline} is in the past (now {now})")
    if deadline > now + MAX_SIGNATURE_LIFETIME:
        raise TypedDataError(f"deadline {deadline} is more than {MAX_SIGNATURE_LIFETIME // 86400} days ahead; "
                             f"a signed consent lives at most that long")


def _bytes32(field: str, value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise TypedDataError(f"{field}: not 32 bytes: {value!r}")
    return bytes(value)


@dataclass(frozen=True)
class ConsentDomain:
    """The EIP-712 domain of one deployed ConsentRegistry."""

    chain_id: int
    verifying_contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def __post_init__(self) -> None:
        _uint("chain_id", self.chain_id, 256)
        object.__setattr__(
            self, "verifying_contract", _address("verifying_contract", self.verifying_contract)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


@dataclass(frozen=True)
class GrantRequest:
    """The `Grant` message: `signer` (the patient or a guardian) sets `grantee`'s scope for `patient`.

    `valid_until == 0` means no expiry; `consent_doc_hash` commits to the FHIR Consent resource.
    """

    patient: str
    grantee: str
    purposes: int
    data_classes: int
    valid_from: int
    valid_until: int
    consent_doc_hash: bytes
    signer: str
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        for field in ("patient", "grantee", "signer"):
            object.__setattr__(self, field, _address(field, getattr(self, field)))
        _uint("purposes", self.purposes, 8)
        _uint("data_classes", self.data_classes, 16)
        _uint("valid_from", self.valid_from, 40)
        _uint("valid_until", self.valid_until, 40)
        object.__setattr__(self, "consent_doc_hash", _bytes32("consent_doc_hash", self.consent_doc_hash))
        _uint("nonce", self.nonce, 256)
        _uint("deadline", self.deadline, 256)

    def as_message(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "grantee": self.grantee,
            "purposes": self.purposes,
            "dataClasses": self.data_classes,
            "validFrom": self.valid_from,
            "validUntil": self.valid_until,
            "consentDocHash": self.consent_doc_hash,
            "signer": self.signer,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


class _PlainMessage:
    """Base of the messages whose Python field names are their EIP-712 names: the fields named in
    `_ADDRESSES` are checksummed addresses, every other one a uint256."""

    _ADDRESSES: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for field in fields(self):  # every subclass is a frozen dataclass
            value = getattr(self, field.name)
            if field.name in self._ADDRESSES:
                object.__setattr__(self, field.name, _address(field.name, value))
            else:
                _uint(field.name, value, 256)

    def as_message(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True)
class RevokeRequest(_PlainMessage):
    """The `Revoke` message: `signer` (the patient or a guardian) revokes `grantee`'s consent."""

    _ADDRESSES = ("patient", "grantee", "signer")

    patient: str
    grantee: str
    signer: str
    nonce: int
    deadline: int


@dataclass(frozen=True)
class GuardianRequest(_PlainMessage):
    """The `AppointGuardian` / `RemoveGuardian` message: `patient` (the signer) appoints or removes `guardian`.

    `nonce` is `nonces(patient, guardian)`.
    """

    _ADDRESSES = ("patient", "guardian")

    patient: str
    guardian: str
    nonce: int
    deadline: int


@dataclass(frozen=True)
class BreakGlassRequest(_PlainMessage):
    """The `CloseBreakGlass` / `AllowBreakGlass` message: `signer` (the patient or a guardian) closes or
    re-allows `provider`'s break-glass on `patient`. `nonce` is `nonces(patient, provider)`."""

    _ADDRESSES = ("patient", "provider", "signer")

    patient: str
    provider: str
    signer: str
    nonce: int
    deadline: int


@dataclass(frozen=True)
class PermitRequest(_PlainMessage):
    """The EIP-2612 `Permit` message: `owner` lets `spender` pull `value` tokens until `deadline`.

    Its domain is the token's (a `ConsentDomain` with the token's name, version and address).
    """

    _ADDRESSES = ("owner", "spender")

    owner: str
    spender: str
    value: int
    nonce: int
    deadline: int


def _typed_data(
    domain: ConsentDomain, primary_type: str, fields: list[dict[str, str]], message: dict
) -> dict:
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_FIELDS, primary_type: fields},
        "primaryType": primary_type,
        "domain": domain.as_dict(),
        "message": message,
    }


def grant_typed_data(domain: ConsentDomain, request: GrantRequest) -> dict[str, Any]:
    """The full `Grant` typed-data dict, ready for `eth_signTypedData_v4` or `encode_typed_data`."""
    return _typed_data(domain, "Grant", GRANT_FIELDS, request.as_message())


def revoke_typed_data(domain: ConsentDomain, request: RevokeRequest) -> dict[str, Any]:
    """The full `Revoke` typed-data dict, ready for `eth_signTypedData_v4` or `encode_typed_data`."""
    return _typed_data(domain, "Revoke", REVOKE_FIELDS, request.as_message())


def appoint_guardian_typed_data(domain: ConsentDomain, request: GuardianRequest) -> dict[str, Any]:
    """The full `AppointGuardian` typed-data dict (for `appointGuardianBySig`)."""
    return _typed_data(domain, "AppointGuardian", GUARDIAN_FIELDS, request.as_message())


def remove_guardian_typed_data(domain: ConsentDomain, request: GuardianRequest) -> dict[str, Any]:
    """The full `RemoveGuardian` typed-data dict (for `removeGuardianBySig`)."""
    return _typed_data(domain, "RemoveGuardian", GUARDIAN_FIELDS, request.as_message())


def close_break_glass_typed_data(domain: ConsentDomain, request: BreakGlassRequest) -> dict[str, Any]:
    """The full `CloseBreakGlass` typed-data dict (for `closeBreakGlassBySig`)."""
    return _typed_data(domain, "CloseBreakGlass", BREAK_GLASS_FIELDS, request.as_message())


def allow_break_glass_typed_data(domain: ConsentDomain, request: BreakGlassRequest) -> dict[str, Any]:
    """The full `AllowBreakGlass` typed-data dict (for `allowBreakGlassBySig`)."""
    return _typed_data(domain, "AllowBreakGlass", BREAK_GLASS_FIELDS, request.as_message())


def permit_typed_data(domain: ConsentDomain, request: PermitRequest) -> dict[str, Any]:
    """The full EIP-2612 `Permit` typed-data dict for the token whose domain is `domain`."""
    return _typed_data(domain, "Permit", PERMIT_FIELDS, request.as_message())


def typed_data_digest(typed_data: dict[str, Any]) -> bytes:
    """The 32-byte EIP-712 digest (`keccak256(0x1901 || domainSeparator || structHash)`) of `typed_data`."""
    signable: SignableMessage = encode_typed_data(full_message=typed_data)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign_typed_data(private_key: bytes | str, typed_data: dict[str, Any]) -> bytes:
    """Signs `typed_data` with `private_key`; returns the 65-byte `r || s || v` signature (low-s)."""
    try:
        signed = Account.sign_message(encode_typed_data(full_message=typed_data), private_key)
    except (ValueError, TypeError) as exc:
        raise TypedDataError(f"cannot sign typed data: {exc}") from exc
    return bytes(signed.signature)


def sign_grant(private_key: bytes | str, domain: ConsentDomain, request: GrantRequest) -> bytes:
    """Signs a `Grant` request for `grantBySig`; `private_key` must belong to `request.signer`."""
    return sign_typed_data(private_key, grant_typed_data(domain, request))


def sign_revoke(private_key: bytes | str, domain: ConsentDomain, request: RevokeRequest) -> bytes:
    """Signs a `Revoke` request for `revokeBySig`; `private_key` must belong to `request.signer`."""
    return sign_typed_data(private_key, revoke_typed_data(domain, request))


def split_signature(signature: bytes) -> tuple[int, bytes, bytes]:
    """A 65-byte `r || s || v` signature as the `(v, r, s)` that `permit`-style functions take."""
    if len(signature) != 65:
        raise TypedDataError(f"a signature is 65 bytes, got {len(signature)}")
    return signature[64], bytes(signature[:32]), bytes(signature[32:64])


def sign_permit(private_key: bytes | str, domain: ConsentDomain, request: PermitRequest) -> tuple[int, bytes, bytes]:
    """Signs an EIP-2612 `Permit`; returns `(v, r, s)`. `private_key` must belong to `request.owner`."""
    return split_signature(sign_typed_data(private_key, permit_typed_data(domain, request)))
