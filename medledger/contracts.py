"""Typed wrappers over the MedLedger contracts. Views return frozen dataclasses; writes go
through `Chain.transact` (estimate first, EIP-1559 fees, receipts, decoded custom errors).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from . import eip712
from .accounts import Signer
from .chain import Chain, TxResult
from .merkle import RecordLeaf
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


# --------------------------------------------------------------------------- records


class BatchKind(IntEnum):
    """What an anchored Merkle batch commits to (IRecordRegistry.BatchKind)."""

    NONE = 0
    RECORDS = 1
    ACCESS_LOG = 2


@dataclass(frozen=True)
class RecordVersion:
    """One version of a record as the RecordRegistry knows it (all zero when not anchored)."""

    author: str
    version: int
    data_class: int
    anchored_at: int
    latest: bool

    @property
    def anchored(self) -> bool:
        return self.anchored_at != 0


@dataclass(frozen=True)
class Verification:
    """The answer of `RecordRegistry.verify(recordId, contentHash)`."""

    record_id: str
    content_hash: str
    anchored: bool
    version: int
    author: str
    anchored_at: int
    latest: bool


@dataclass(frozen=True)
class LatestVersion:
    """A record's current version: the first 20 bytes of its content hash and its metadata."""

    record_id: str
    content_tag: str
    info: RecordVersion

    def matches(self, content_hash: bytes | str) -> bool:
        """Whether `content_hash` carries this version's 160-bit tag."""
        return "0x" + _b32(content_hash)[:20].hex() == self.content_tag


@dataclass(frozen=True)
class BatchInfo:
    """An anchored Merkle batch (all zero when `batch_id` is unknown)."""

    batch_id: int
    submitter: str
    count: int
    anchored_at: int
    kind: BatchKind

    @property
    def exists(self) -> bool:
        return self.kind != BatchKind.NONE


@dataclass(frozen=True)
class RecordEvent:
    """One version of a record, from its RecordAnchored / RecordAmended / RecordAttested event."""

    record_id: str
    version: int
    content_hash: str
    patient: str
    author: str
    event: str
    block: int
    tx_hash: str
    previous_content_hash: str | None = None
    data_class: int | None = None
    batch_id: int | None = None


def batch_id_of(submitter: str, root: bytes | str) -> int:
    """`RecordRegistry.batchIdOf` computed locally: uint256(keccak256(abi.encode(submitter, root)))."""
    return int.from_bytes(keccak(abi_encode(["address", "bytes32"], [to_checksum_address(submitter), _b32(root)])),
                          "big")


def _hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


_VERSION_EVENTS = ("RecordAnchored", "RecordAmended", "RecordAttested")


class RecordRegistry(_Wrapper):
    NAME = "RecordRegistry"

    # ---------------------------------------------------------------- writes
    def anchor(self, signer: Signer, record_id: bytes, patient: str, content_hash: bytes, data_class: int) -> TxResult:
        return self._send(signer, self.fn.anchor(_b32(record_id), to_checksum_address(patient), _b32(content_hash),
                                                 int(data_class)))

    def amend(self, signer: Signer, record_id: bytes, patient: str, previous_content_hash: bytes,
              new_content_hash: bytes) -> TxResult:
        return self._send(signer, self.fn.amend(_b32(record_id), to_checksum_address(patient),
                                                _b32(previous_content_hash), _b32(new_content_hash)))

    def anchor_batch(self, signer: Signer, root: bytes, count: int, manifest_hash: bytes,
                     on_sent: Callable[[str], None] | None = None) -> TxResult:
        """Anchors a record batch; `on_sent` gets the tx hash before the receipt is awaited."""
        return self.chain.transact(signer, self.fn.anchorBatch(_b32(root), int(count), _b32(manifest_hash)),
                                   on_sent=on_sent)

    def attest_batch_record(self, signer: Signer, leaf: RecordLeaf, proof: Sequence[bytes], batch_id: int) -> TxResult:
        return self._send(signer, self.fn.attestBatchRecord(*_leaf_args(leaf), [_b32(p) for p in proof], int(batch_id)))

    def log_access(self, signer: Signer, patient: str, record_id: bytes, purpose: Purpose | int) -> TxResult:
        return self._send(signer, self.fn.logAccess(to_checksum_address(patient), _b32(record_id), int(purpose)))

    def log_access_batch(self, signer: Signer, root: bytes, count: int) -> TxResult:
        return self._send(signer, self.fn.logAccessBatch(_b32(root), int(count)))

    # ---------------------------------------------------------------- views
    def verify(self, record_id: bytes, content_hash: bytes) -> Verification:
        rid, digest = _b32(record_id), _b32(content_hash)
        anchored, version, author, anchored_at, latest = self._view(self.fn.verify(rid, digest))
        return Verification(_hex32(rid), _hex32(digest), bool(anchored), int(version), to_checksum_address(author),
                            int(anchored_at), bool(latest))

    def record_info(self, record_id: bytes, content_hash: bytes) -> RecordVersion:
        return _record_version(self._view(self.fn.recordInfo(_b32(record_id), _b32(content_hash))))

    def latest_of(self, record_id: bytes) -> LatestVersion | None:
        """The record's current version, or None if no record has this id."""
        rid = _b32(record_id)
        tag, info = self._view(self.fn.latestOf(rid))
        version = _record_version(info)
        if not version.anchored:
            return None
        return LatestVersion(_hex32(rid), "0x" + bytes(tag).hex(), version)

    def verify_in_batch(self, leaf: RecordLeaf, proof: Sequence[bytes], batch_id: int) -> bool:
        return bool(self._view(self.fn.verifyInBatch(*_leaf_args(leaf), [_b32(p) for p in proof], int(batch_id))))

    def batch_of(self, batch_id: int) -> BatchInfo:
        submitter, count, anchored_at, kind = self._view(self.fn.batchOf(int(batch_id)))
        return BatchInfo(int(batch_id), to_checksum_address(submitter), int(count), int(anchored_at), BatchKind(kind))

    def batch_id_of(self, submitter: str, root: bytes) -> int:
        return int(self._view(self.fn.batchIdOf(to_checksum_address(submitter), _b32(root))))

    # ---------------------------------------------------------------- events
    def history(self, record_id: bytes, from_block: int = 0) -> list[RecordEvent]:
        """Every version of `record_id` in chain order, from its events (see medledger.audit)."""
        from .audit import fetch_events

        rid = _b32(record_id)
        out = []
        for ev in fetch_events(self.chain, {"RecordRegistry": self.address}, from_block):
            if ev.event not in _VERSION_EVENTS or bytes(ev.args["recordId"]) != rid:
                continue
            a = ev.args
            out.append(RecordEvent(
                record_id=_hex32(rid),
                version=1 if ev.event == "RecordAnchored" else int(a["version"]),
                content_hash=_hex32(a["contentHash"]),
                patient=to_checksum_address(a["patient"]),
                author=to_checksum_address(a["author"]),
                event=ev.event, block=ev.block, tx_hash=ev.tx_hash,
                previous_content_hash=_hex32(a["previousContentHash"]) if "previousContentHash" in a else None,
                data_class=int(a["dataClass"]) if "dataClass" in a else None,
                batch_id=int(a["batchId"]) if "batchId" in a else None,
            ))
        return out

    def batch_anchored_events(self, batch_id: int, from_block: int = 0) -> list[dict]:
        """The BatchAnchored event(s) of `batch_id` (at most one: the contract refuses a second)."""
        logs = self.contract.events.BatchAnchored.get_logs(argument_filters={"batchId": int(batch_id)},
                                                           from_block=from_block)
        return [{**dict(e["args"]), "block": e["blockNumber"], "tx": "0x" + bytes(e["transactionHash"]).hex()}
                for e in logs]


def _record_version(raw: Any) -> RecordVersion:
    author, version, data_class, anchored_at, latest = raw
    return RecordVersion(to_checksum_address(author), int(version), int(data_class), int(anchored_at), bool(latest))


def _leaf_args(leaf: RecordLeaf) -> tuple:
    return (leaf.record_id, leaf.content_hash, leaf.patient, leaf.version, leaf.data_class, leaf.author)
