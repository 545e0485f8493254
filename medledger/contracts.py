"""Typed wrappers over the MedLedger contracts. Views return frozen dataclasses; writes go
through `Chain.transact` (estimate first, EIP-1559 fees, receipts, decoded custom errors).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from . import eip712
from .accounts import Signer
from .chain import Chain, TxResult
from .scopes import DataClass, Purpose, Role

ZERO32 = b"\x00" * 32


def _b32(value: bytes | str) -> bytes:
    if isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    if len(value) != 32:
        raise ValueError("expected 32 bytes")
    return bytes(value)


class _Wrapper:
    NAME = ""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        self.contract = chain.contract(self.NAME, self.address)
        self.fn = self.contract.functions

    def _send(self, signer: Signer, call: Any) -> TxResult:
        return self.chain.transact(signer, call)

    def _view(self, call: Any) -> Any:
        return self.chain.call(call)

    def events(self, result: TxResult, name: str) -> list[dict]:
        """The decoded `name` events this contract emitted in `result`."""
        event = getattr(self.contract.events, name)()
        return [dict(e["args"]) for e in event.process_receipt(result.receipt, errors=_DISCARD)]


try:  # web3 7 moved the enum
    from web3.logs import DISCARD as _DISCARD
except ImportError:  # pragma: no cover
    _DISCARD = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Party:
    """A party in the CareRegistry."""

    address: str
    role: Role
    active: bool
    registered_at: int
    updated_at: int
    metadata_hash: str
    encryption_key: str


class CareRegistry(_Wrapper):
    NAME = "CareRegistry"

    def register(self, signer: Signer, account: str, role: Role, metadata_hash: bytes) -> TxResult:
        return self._send(signer, self.fn.register(to_checksum_address(account), int(role), _b32(metadata_hash)))

    def suspend(self, signer: Signer, account: str, reason_code: bytes = ZERO32) -> TxResult:
        return self._send(signer, self.fn.suspend(to_checksum_address(account), _b32(reason_code)))

    def reinstate(self, signer: Signer, account: str) -> TxResult:
        return self._send(signer, self.fn.reinstate(to_checksum_address(account)))

    def publish_encryption_key(self, signer: Signer, public_key: bytes) -> TxResult:
        return self._send(signer, self.fn.publishEncryptionKey(public_key))

    def party(self, account: str) -> Party:
        account = to_checksum_address(account)
        role, active, registered, updated = self._view(self.fn.partyOf(account))
        return Party(account, Role(role), active, registered, updated,
                     "0x" + bytes(self._view(self.fn.metadataOf(account))).hex(),
                     "0x" + bytes(self._view(self.fn.encryptionKeyOf(account))).hex())

    def encryption_key(self, account: str) -> bytes:
        return bytes(self._view(self.fn.encryptionKeyOf(to_checksum_address(account))))

    def is_active(self, account: str, role: Role) -> bool:
        return bool(self._view(self.fn.isActive(to_checksum_address(account), int(role))))

    def grant_registrar(self, signer: Signer, account: str) -> TxResult:
        return self._send(signer, self.fn.grantRole(self._view(self.fn.REGISTRAR_ROLE()), to_checksum_address(account)))


@dataclass(frozen=True)
class Consent:
    """The current consent of one (patient, grantee) pair."""

    patient: str
    grantee: str
    purposes: int
    data_classes: int
    valid_from: int
    valid_until: int
    granted_at: int

    def live(self, now: int) -> bool:
        return self.purposes != 0 and self.valid_from <= now and (self.valid_until == 0 or now < self.valid_until)


@dataclass(frozen=True)
class SignedConsent:
    """An EIP-712 signed grant or revoke, ready to relay (what `consent sign` writes to a file)."""

    kind: str  # "grant" | "revoke"
    chain_id: int
    verifying_contract: str
    message: dict
    signature: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "chainId": self.chain_id, "verifyingContract": self.verifying_contract,
                "message": self.message, "signature": self.signature}


class ConsentRegistry(_Wrapper):
    NAME = "ConsentRegistry"

    def grant(self, signer: Signer, patient: str, grantee: str, purposes: int, data_classes: int,
              valid_from: int = 0, valid_until: int = 0, doc_hash: bytes = ZERO32) -> TxResult:
        return self._send(signer, self.fn.grant(to_checksum_address(patient), to_checksum_address(grantee),
                                                purposes, data_classes, valid_from, valid_until, _b32(doc_hash)))

    def revoke(self, signer: Signer, patient: str, grantee: str) -> TxResult:
        return self._send(signer, self.fn.revoke(to_checksum_address(patient), to_checksum_address(grantee)))

    def appoint_guardian(self, signer: Signer, guardian: str) -> TxResult:
        return self._send(signer, self.fn.appointGuardian(to_checksum_address(guardian)))

    def remove_guardian(self, signer: Signer, guardian: str) -> TxResult:
        return self._send(signer, self.fn.removeGuardian(to_checksum_address(guardian)))

    def open_break_glass(self, signer: Signer, patient: str, duration: int, reason_code: bytes) -> TxResult:
        return self._send(signer, self.fn.openBreakGlass(to_checksum_address(patient), duration, _b32(reason_code)))

    def close_break_glass(self, signer: Signer, patient: str, provider: str) -> TxResult:
        return self._send(signer, self.fn.closeBreakGlass(to_checksum_address(patient), to_checksum_address(provider)))

    def consent(self, patient: str, grantee: str) -> Consent:
        patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
        purposes, classes, start, until, granted = self._view(self.fn.consentOf(patient, grantee))
        return Consent(patient, grantee, purposes, classes, start, until, granted)

    def has_consent(self, patient: str, grantee: str, purpose: Purpose, data_class: DataClass) -> bool:
        return bool(self._view(self.fn.hasConsent(to_checksum_address(patient), to_checksum_address(grantee),
                                                  int(purpose), int(data_class))))

    def is_guardian(self, patient: str, guardian: str) -> bool:
        return bool(self._view(self.fn.isGuardian(to_checksum_address(patient), to_checksum_address(guardian))))

    def domain(self) -> eip712.ConsentDomain:
        return eip712.ConsentDomain(self.chain.chain_id, self.address)

    def sign_grant(self, signer: Signer, patient: str, grantee: str, purposes: int, data_classes: int,
                   valid_from: int = 0, valid_until: int = 0, doc_hash: bytes = ZERO32,
                   deadline: int | None = None) -> SignedConsent:
        """An EIP-712 `Grant` signed by `signer` (the patient or a guardian), for anyone to relay."""
        request = eip712.GrantRequest(
            patient=patient, grantee=grantee, purposes=purposes, data_classes=data_classes,
            valid_from=valid_from, valid_until=valid_until, consent_doc_hash=_b32(doc_hash), signer=signer.address,
            nonce=int(self._view(self.fn.nonces(signer.address))),
            deadline=deadline if deadline is not None else int(time.time()) + 3600)
        typed = eip712.grant_typed_data(self.domain(), request)
        signature = signer.sign_typed_data(self.chain.w3, typed)
        message = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in request.as_message().items()}
        return SignedConsent("grant", self.chain.chain_id, self.address, message, "0x" + signature.hex())

    def sign_revoke(self, signer: Signer, patient: str, grantee: str, deadline: int | None = None) -> SignedConsent:
        request = eip712.RevokeRequest(patient=patient, grantee=grantee, signer=signer.address,
                                       nonce=int(self._view(self.fn.nonces(signer.address))),
                                       deadline=deadline if deadline is not None else int(time.time()) + 3600)
        signature = signer.sign_typed_data(self.chain.w3, eip712.revoke_typed_data(self.domain(), request))
        return SignedConsent("revoke", self.chain.chain_id, self.address, request.as_message(), "0x" + signature.hex())

    def relay(self, relayer: Signer, signed: SignedConsent) -> TxResult:
        """Submits a signed grant or revoke; `relayer` pays the gas."""
        m, sig = signed.message, bytes.fromhex(signed.signature.removeprefix("0x"))
        if signed.kind == "grant":
            call = self.fn.grantBySig(m["patient"], m["grantee"], m["purposes"], m["dataClasses"], m["validFrom"],
                                      m["validUntil"], _b32(m["consentDocHash"]), m["signer"], m["deadline"], sig)
        else:
            call = self.fn.revokeBySig(m["patient"], m["grantee"], m["signer"], m["deadline"], sig)
        return self._send(relayer, call)
