"""Typed wrappers over the MedLedger contracts. Views return frozen dataclasses; writes go
through `Chain.transact` (estimate first, EIP-1559 fees, receipts, decoded custom errors).
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import Web3ValidationError

from . import eip712, record_ids
from .accounts import Signer
from .chain import Chain, TxResult
from .errors import InsufficientEscrow, LabelKeyError, SignatureUsed, SignedConsentInvalid
from .labels import SealedLabelKey
from .merkle import RecordLeaf
from .scopes import ClaimFrequency, ClaimStatus, DataClass, Purpose, Role
from .units import TokenInfo

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

    def _view(self, call: Any, block: int | None = None) -> Any:
        return self.chain.call(call, block)

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
    gateway_endpoint: str | None = None
    party_id: int = 0
    home: str = ""  # the account the party was first registered under: its state's key in the other contracts
    migrated_from: str | None = None  # the account asked about, when the party has moved away from it


@dataclass(frozen=True)
class Resolved:
    """Where the party known by an account stands now (CareRegistry.resolve)."""

    role: Role  # the current account's role if active, else Role.NONE
    party_id: int
    home: str
    current: str


class CareRegistry(_Wrapper):
    NAME = "CareRegistry"

    def migrate(self, signer: Signer, account: str, new_account: str) -> TxResult:
        """The governor moves the party at `account` to the fresh `new_account` (a governed deployment:
        `medledger.timelock.migrate` through the timelock)."""
        return self._send(signer, self.fn.migrate(to_checksum_address(account), to_checksum_address(new_account)))

    def resolve(self, account: str) -> Resolved:
        """The party known by `account` (any account it has had): its status, id, home and current account. An
        account never registered is its own home and current account (the contract answers all zero)."""
        account = to_checksum_address(account)
        role, party_id, home, current = self._view(self.fn.resolve(account))
        if int(party_id) == 0:
            return Resolved(Role.NONE, 0, account, account)
        return Resolved(Role(role), int(party_id), to_checksum_address(home), to_checksum_address(current))

    def home_of(self, account: str) -> str:
        """The account a party's money, claims and consents are keyed by (the account itself if it never moved)."""
        return self.resolve(account).home

    def register(self, signer: Signer, account: str, role: Role, metadata_hash: bytes) -> TxResult:
        return self._send(signer, self.fn.register(to_checksum_address(account), int(role), _b32(metadata_hash)))

    def suspend(self, signer: Signer, account: str, reason_code: bytes = ZERO32) -> TxResult:
        return self._send(signer, self.fn.suspend(to_checksum_address(account), _b32(reason_code)))

    def reinstate(self, signer: Signer, account: str) -> TxResult:
        return self._send(signer, self.fn.reinstate(to_checksum_address(account)))

    def assign_arbiter(self, signer: Signer, insurer: str, arbiter: str) -> TxResult:
        """The governor assigns `arbiter` to resolve `insurer`'s disputes (zero address: none)."""
        return self._send(signer, self.fn.assignArbiter(to_checksum_address(insurer), to_checksum_address(arbiter)))

    def arbiter_of(self, insurer: str) -> tuple[str, bool]:
        """The arbiter assigned to `insurer` (zero address if none) and whether it is active now."""
        arbiter, active = self._view(self.fn.arbiterOf(to_checksum_address(insurer)))
        return to_checksum_address(arbiter), bool(active)

    def publish_encryption_key(self, signer: Signer, public_key: bytes) -> TxResult:
        return self._send(signer, self.fn.publishEncryptionKey(public_key))

    def set_gateway_endpoint(self, signer: Signer, url: str) -> TxResult | None:
        """Publishes `url` (checked by medledger.endpoints: an https origin, no credentials, query or fragment)
        as the signer's gateway endpoint. Idempotent: None, and no transaction, when it is published already."""
        from .endpoints import check_gateway_url
        url = check_gateway_url(url)
        if self.gateway_endpoint(signer.address) == url:
            return None
        return self._send(signer, self.fn.setGatewayEndpoint(url))

    def clear_gateway_endpoint(self, signer: Signer) -> TxResult | None:
        """Withdraws the signer's gateway endpoint (None, and no transaction, when none is published)."""
        if self.gateway_endpoint(signer.address) is None:
            return None
        return self._send(signer, self.fn.clearGatewayEndpoint())

    def gateway_endpoint(self, party: str, *, block: int | None = None) -> str | None:
        """The gateway URL `party` published, as published (None if none). The contract checks only its length:
        check it with medledger.endpoints.check_gateway_url before using it."""
        url = str(self._view(self.fn.gatewayEndpointOf(to_checksum_address(party)), block))
        return url or None

    def party(self, account: str) -> Party:
        """The party known by `account`, shown under its current account (a migrated account's party is the one
        it moved to; `migrated_from` then names `account`)."""
        asked = to_checksum_address(account)
        where = self.resolve(asked)
        account = where.current
        role, active, registered, updated, party_id, _migrated, _successor = self._view(self.fn.partyOf(account))
        return Party(account, Role(role), active, registered, updated,
                     "0x" + bytes(self._view(self.fn.metadataOf(account))).hex(),
                     "0x" + bytes(self._view(self.fn.encryptionKeyOf(account))).hex(),
                     self.gateway_endpoint(account), int(party_id), where.home,
                     asked if asked != account else None)

    def encryption_key(self, account: str) -> bytes:
        return bytes(self._view(self.fn.encryptionKeyOf(to_checksum_address(account))))

    def is_active(self, account: str, role: Role) -> bool:
        return bool(self._view(self.fn.isActive(to_checksum_address(account), int(role))))

    def grant_registrar(self, signer: Signer, account: str) -> TxResult:
        return self._send(signer, self.fn.grantRole(self._view(self.fn.REGISTRAR_ROLE()), to_checksum_address(account)))

    def parties(self, from_block: int = 0) -> list[tuple[str, Role]]:
        """Every party ever registered, under its current account, with its role, in registration order (from
        events; a migrated party is listed once, under the account it moved to)."""
        found: dict[str, Role] = {}
        for log in self.contract.events.PartyRegistered.get_logs(from_block=from_block):
            found[to_checksum_address(log["args"]["account"])] = Role(int(log["args"]["role"]))
        moves = {to_checksum_address(log["args"]["account"]): to_checksum_address(log["args"]["newAccount"])
                 for log in self.contract.events.PartyMigrated.get_logs(from_block=from_block)}
        current: dict[str, Role] = {}
        for account, role in found.items():
            while account in moves:  # each account migrates at most once, so this ends
                account = moves[account]
            current[account] = role
        return list(current.items())


@dataclass(frozen=True)
class BreakGlass:
    """A provider's break-glass window on one patient (all zero: never opened)."""

    patient: str
    provider: str
    opened_at: int
    expires_at: int
    period_start: int
    openings: int  # windows opened in the current period
    blocked: bool  # closed by the patient or a guardian; reopening waits for allowBreakGlass


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
    nonce: int = 0  # the pair's signature nonce (bumped by every grant, revoke and cancellation)

    def covers(self, now: int, data_class: int) -> bool:
        """Whether this stored grant is live now and names `data_class` (break-glass never counts)."""
        return self.live(now) and bool(self.data_classes >> data_class & 1)

    def live(self, now: int) -> bool:
        return self.purposes != 0 and self.valid_from <= now and (self.valid_until == 0 or now < self.valid_until)


#: The kinds of signed patient action a `SignedConsent` file holds, with the message field naming the
#: pair's counterparty (whose `nonces(patient, counterparty)` the message carries).
SIGNED_KINDS: dict[str, str] = {
    "grant": "grantee",
    "revoke": "grantee",
    "appoint-guardian": "guardian",
    "remove-guardian": "guardian",
    "close-break-glass": "provider",
    "allow-break-glass": "provider",
}


@dataclass(frozen=True)
class SignedConsent:
    """An EIP-712 signed patient action, ready to relay (what `consent sign`, `consent guardian add|remove
    --sign` and `emergency close|allow --sign` write to a file): a grant, a revoke, a guardian appointment
    or removal, or a break-glass close or allowance (`kind`, one of SIGNED_KINDS)."""

    kind: str
    chain_id: int
    verifying_contract: str
    message: dict
    signature: str
    #: A pairwise pseudonym's grant carries its label key, sealed to the grantee (docs/PRIVACY.md, section 2).
    label_key: SealedLabelKey | None = None

    @property
    def signer(self) -> str:
        """Who signed: the message's `signer`, or the patient for the guardian actions (patient-only)."""
        return str(self.message.get("signer", self.message.get("patient", "")))

    @property
    def counterparty(self) -> str:
        """The grantee, guardian or provider: the pair (patient, counterparty) whose nonce is spent."""
        return str(self.message.get(SIGNED_KINDS.get(self.kind, "grantee"), ""))

    def to_json(self) -> dict:
        data = {"kind": self.kind, "chainId": self.chain_id, "verifyingContract": self.verifying_contract,
                "message": self.message, "signature": self.signature}
        return {**data, "labelKey": self.label_key.to_json()} if self.label_key else data

    @classmethod
    def from_json(cls, data: Any, source: str = "signed consent") -> SignedConsent:
        """The inverse of `to_json`; SignedConsentInvalid names what is missing or malformed."""
        try:
            signed = cls(str(data["kind"]), int(data["chainId"]), str(data["verifyingContract"]),
                         dict(data["message"]), str(data["signature"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SignedConsentInvalid(f"{source} is not a signed consent file ({type(exc).__name__}: {exc})") \
                from None
        if signed.kind not in SIGNED_KINDS:
            raise SignedConsentInvalid(f"{source} is a signed '{signed.kind}', not one of "
                                       f"{', '.join(SIGNED_KINDS)}")
        if data.get("labelKey") is not None:
            try:
                sealed = SealedLabelKey.from_json(data["labelKey"])
            except LabelKeyError as exc:
                raise SignedConsentInvalid(f"{source}: {exc}") from None
            if signed.kind != "grant" or (sealed.pseudonym.lower(), sealed.recipient.lower()) != (
                    signed.signer.lower(), signed.counterparty.lower()):
                raise SignedConsentInvalid(f"{source} carries the label key of {sealed.pseudonym} for "
                                           f"{sealed.recipient}, not of the signer for the grantee of its grant")
            signed = replace(signed, label_key=sealed)
        return signed

    @classmethod
    def load(cls, path: Path) -> SignedConsent:
        """A signed consent file as `medledger consent sign` writes it."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise SignedConsentInvalid(f"{path} is not a signed consent file ({exc})") from None
        return cls.from_json(data, str(path))


class _PartyKeyed(_Wrapper):
    """A contract that keys party state (consents, money, claims) by the party's home account."""

    def home_of(self, account: str) -> str:
        """The key of `account`'s party state here: its home account (CareRegistry.resolve), so that a migrated
        party's state is found by any account it has had (an unregistered account is its own home)."""
        return CareRegistry(self.chain, self._view(self.fn.registry())).home_of(account)


class ConsentRegistry(_PartyKeyed):
    NAME = "ConsentRegistry"

    def grant(self, signer: Signer, patient: str, grantee: str, purposes: int, data_classes: int,
              valid_from: int = 0, valid_until: int = 0, doc_hash: bytes = ZERO32) -> TxResult:
        return self._send(signer, self.fn.grant(to_checksum_address(patient), self.home_of(grantee),
                                                purposes, data_classes, valid_from, valid_until, _b32(doc_hash)))

    def revoke(self, signer: Signer, patient: str, grantee: str) -> TxResult:
        return self._send(signer, self.fn.revoke(to_checksum_address(patient), self.home_of(grantee)))

    def appoint_guardian(self, signer: Signer, guardian: str) -> TxResult:
        return self._send(signer, self.fn.appointGuardian(to_checksum_address(guardian)))

    def remove_guardian(self, signer: Signer, guardian: str) -> TxResult:
        return self._send(signer, self.fn.removeGuardian(to_checksum_address(guardian)))

    def open_break_glass(self, signer: Signer, patient: str, duration: int, reason_code: bytes) -> TxResult:
        return self._send(signer, self.fn.openBreakGlass(to_checksum_address(patient), duration, _b32(reason_code)))

    def close_break_glass(self, signer: Signer, patient: str, provider: str) -> TxResult:
        """Ends `provider`'s window now and blocks it from reopening until `allow_break_glass`."""
        return self._send(signer, self.fn.closeBreakGlass(to_checksum_address(patient), self.home_of(provider)))

    def allow_break_glass(self, signer: Signer, patient: str, provider: str) -> TxResult:
        """The patient (or a guardian) lets `provider` open break-glass again after a close."""
        return self._send(signer, self.fn.allowBreakGlass(to_checksum_address(patient), self.home_of(provider)))

    def cancel_signatures(self, signer: Signer, patient: str, grantee: str) -> TxResult:
        """Voids every pending signed action of the (patient, grantee) pair: grants and revokes, and the guardian
        or emergency actions whose guardian or provider is `grantee`."""
        return self._send(signer, self.fn.cancelSignatures(to_checksum_address(patient), self.home_of(grantee)))

    def nonce(self, patient: str, grantee: str) -> int:
        """The nonce the next signed request for the (patient, grantee) pair must carry."""
        return int(self._view(self.fn.nonces(to_checksum_address(patient), self.home_of(grantee))))

    def consent(self, patient: str, grantee: str, *, block: int | None = None) -> Consent:
        """The pair's stored consent (at `block`, else the latest)."""
        patient, grantee = to_checksum_address(patient), self.home_of(grantee)
        purposes, classes, start, until, granted, nonce = self._view(self.fn.consentOf(patient, grantee), block)
        return Consent(patient, grantee, purposes, classes, start, until, granted, nonce)

    def break_glass(self, patient: str, provider: str, *, block: int | None = None) -> BreakGlass:
        """The provider's break-glass window on the patient (at `block`, else the latest)."""
        patient, provider = to_checksum_address(patient), self.home_of(provider)
        opened, expires, period_start, openings, blocked = self._view(self.fn.breakGlassOf(patient, provider), block)
        return BreakGlass(patient, provider, opened, expires, period_start, openings, blocked)

    def has_consent(self, patient: str, grantee: str, purpose: Purpose, data_class: DataClass) -> bool:
        return bool(self._view(self.fn.hasConsent(to_checksum_address(patient), to_checksum_address(grantee),
                                                  int(purpose), int(data_class))))

    def is_guardian(self, patient: str, guardian: str, *, block: int | None = None) -> bool:
        return bool(self._view(self.fn.isGuardian(to_checksum_address(patient), to_checksum_address(guardian)),
                               block))

    def domain(self) -> eip712.ConsentDomain:
        return eip712.ConsentDomain(self.chain.chain_id, self.address)

    def signed_public_key(self, patient: str, from_block: int = 0) -> bytes:
        """`patient`'s 65-byte public key, recovered from a `grantBySig` it signed itself (b"" if none).

        A pseudonym never sends a transaction and so never publishes a key in the CareRegistry; its first
        signed consent discloses its public key instead, and the provider seals records to it. The nonce is
        not in the calldata, so each one the pair has used is tried until the signature recovers to `patient`.
        """
        from eth_account.messages import encode_typed_data
        from eth_keys import keys as eth_keys

        patient = to_checksum_address(patient)
        logs = self.contract.events.ConsentGranted.get_logs(argument_filters={"patient": patient},
                                                            from_block=from_block)
        for tx_hash in dict.fromkeys(log["transactionHash"] for log in reversed(logs)):
            tx = self.chain.w3.eth.get_transaction(tx_hash)
            try:
                fn, args = self.contract.decode_function_input(tx["input"])
            except ValueError:  # not a direct call to the registry (e.g. through a Safe)
                continue
            if fn.fn_name != "grantBySig" or to_checksum_address(args["signer"]) != patient:
                continue
            signature = bytes(args["signature"])
            if len(signature) != 65:
                continue
            v = signature[64] - 27 if signature[64] >= 27 else signature[64]
            for nonce in range(self.nonce(patient, args["grantee"])):
                request = eip712.GrantRequest(
                    patient=patient, grantee=to_checksum_address(args["grantee"]), purposes=args["purposes"],
                    data_classes=args["dataClasses"], valid_from=args["validFrom"], valid_until=args["validUntil"],
                    consent_doc_hash=bytes(args["consentDocHash"]), signer=patient, nonce=nonce,
                    deadline=args["deadline"])
                signable = encode_typed_data(full_message=eip712.grant_typed_data(self.domain(), request))
                digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
                public = eth_keys.Signature(signature[:64] + bytes([v])).recover_public_key_from_msg_hash(digest)
                if public.to_checksum_address() == patient:
                    return b"\x04" + public.to_bytes()
        return b""

    def _deadline(self, deadline: int | None) -> int:
        """`deadline`, or an hour from now; refused beyond the contract's MAX_SIGNATURE_LIFETIME. "Now" is the
        chain's (the latest block's time, which the contract compares with), or the clock if that is later."""
        now = max(int(time.time()), int(self.chain.w3.eth.get_block("latest")["timestamp"]))
        if deadline is None:
            return now + 3600
        eip712.check_deadline(deadline, now)
        return deadline

    def sign_grant(self, signer: Signer, patient: str, grantee: str, purposes: int, data_classes: int,
                   valid_from: int = 0, valid_until: int = 0, doc_hash: bytes = ZERO32,
                   deadline: int | None = None) -> SignedConsent:
        """An EIP-712 `Grant` signed by `signer` (the patient or a guardian), for anyone to relay."""
        grantee = self.home_of(grantee)  # consents are keyed by the grantee's home account
        request = eip712.GrantRequest(
            patient=patient, grantee=grantee, purposes=purposes, data_classes=data_classes,
            valid_from=valid_from, valid_until=valid_until, consent_doc_hash=_b32(doc_hash), signer=signer.address,
            nonce=self.nonce(patient, grantee), deadline=self._deadline(deadline))
        typed = eip712.grant_typed_data(self.domain(), request)
        signature = signer.sign_typed_data(self.chain.w3, typed)
        message = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in request.as_message().items()}
        return SignedConsent("grant", self.chain.chain_id, self.address, message, "0x" + signature.hex())

    def sign_revoke(self, signer: Signer, patient: str, grantee: str, deadline: int | None = None) -> SignedConsent:
        grantee = self.home_of(grantee)
        request = eip712.RevokeRequest(patient=patient, grantee=grantee, signer=signer.address,
                                       nonce=self.nonce(patient, grantee), deadline=self._deadline(deadline))
        signature = signer.sign_typed_data(self.chain.w3, eip712.revoke_typed_data(self.domain(), request))
        return SignedConsent("revoke", self.chain.chain_id, self.address, request.as_message(), "0x" + signature.hex())

    def _signed(self, kind: str, signer: Signer, typed: dict) -> SignedConsent:
        signature = signer.sign_typed_data(self.chain.w3, typed)
        return SignedConsent(kind, self.chain.chain_id, self.address, dict(typed["message"]), "0x" + signature.hex())

    def _guardian_request(self, patient: str, guardian: str, deadline: int | None) -> eip712.GuardianRequest:
        return eip712.GuardianRequest(patient=patient, guardian=guardian, nonce=self.nonce(patient, guardian),
                                      deadline=self._deadline(deadline))

    def _break_glass_request(self, signer: Signer, patient: str, provider: str,
                             deadline: int | None) -> eip712.BreakGlassRequest:
        provider = self.home_of(provider)
        return eip712.BreakGlassRequest(patient=patient, provider=provider, signer=signer.address,
                                        nonce=self.nonce(patient, provider), deadline=self._deadline(deadline))

    def sign_appoint_guardian(self, signer: Signer, guardian: str, deadline: int | None = None) -> SignedConsent:
        """An EIP-712 `AppointGuardian` signed by `signer` (the patient), for anyone to relay."""
        request = self._guardian_request(signer.address, guardian, deadline)
        return self._signed("appoint-guardian", signer, eip712.appoint_guardian_typed_data(self.domain(), request))

    def sign_remove_guardian(self, signer: Signer, guardian: str, deadline: int | None = None) -> SignedConsent:
        """An EIP-712 `RemoveGuardian` signed by `signer` (the patient), for anyone to relay."""
        request = self._guardian_request(signer.address, guardian, deadline)
        return self._signed("remove-guardian", signer, eip712.remove_guardian_typed_data(self.domain(), request))

    def sign_close_break_glass(self, signer: Signer, patient: str, provider: str,
                               deadline: int | None = None) -> SignedConsent:
        """An EIP-712 `CloseBreakGlass` signed by `signer` (the patient or a guardian), for anyone to relay."""
        request = self._break_glass_request(signer, patient, provider, deadline)
        return self._signed("close-break-glass", signer, eip712.close_break_glass_typed_data(self.domain(), request))

    def sign_allow_break_glass(self, signer: Signer, patient: str, provider: str,
                               deadline: int | None = None) -> SignedConsent:
        """An EIP-712 `AllowBreakGlass` signed by `signer` (the patient or a guardian), for anyone to relay."""
        request = self._break_glass_request(signer, patient, provider, deadline)
        return self._signed("allow-break-glass", signer, eip712.allow_break_glass_typed_data(self.domain(), request))

    def _by_sig_call(self, kind: str, m: dict, sig: bytes) -> Any:
        """The `...BySig` call that relays the signed `kind` with message `m`."""
        if kind == "grant":
            return self.fn.grantBySig(m["patient"], m["grantee"], m["purposes"], m["dataClasses"], m["validFrom"],
                                      m["validUntil"], _b32(m["consentDocHash"]), m["signer"], m["deadline"], sig)
        if kind == "revoke":
            return self.fn.revokeBySig(m["patient"], m["grantee"], m["signer"], m["deadline"], sig)
        if kind in ("appoint-guardian", "remove-guardian"):
            fn = self.fn.appointGuardianBySig if kind == "appoint-guardian" else self.fn.removeGuardianBySig
            return fn(m["patient"], m["guardian"], m["deadline"], sig)
        fn = self.fn.closeBreakGlassBySig if kind == "close-break-glass" else self.fn.allowBreakGlassBySig
        return fn(m["patient"], m["provider"], m["signer"], m["deadline"], sig)

    def relay(self, relayer: Signer, signed: SignedConsent) -> TxResult:
        """Submits a signed patient action (any of SIGNED_KINDS); `relayer` pays the gas.

        Refused before sending: a signature for another chain or contract (SignedConsentInvalid) and
        one whose nonce is spent, i.e. already relayed or superseded (SignatureUsed).
        """
        if signed.chain_id != self.chain.chain_id or signed.verifying_contract.lower() != self.address.lower():
            raise SignedConsentInvalid(f"the signed {signed.kind} was signed for chain {signed.chain_id} / "
                                       f"{signed.verifying_contract}, not this deployment (chain {self.chain.chain_id}"
                                       f" / {self.address})")
        m = signed.message
        try:
            sig = bytes.fromhex(signed.signature.removeprefix("0x"))
            signer, nonce = to_checksum_address(signed.signer), int(m["nonce"])
            # Interface 2: one nonce per (patient, counterparty) pair; any grant, revoke or cancel of the pair,
            # and every relayed signed action of it, bumps it.
            patient, counterparty = to_checksum_address(m["patient"]), to_checksum_address(signed.counterparty)
            call = self._by_sig_call(signed.kind, m, sig)
        except (KeyError, TypeError, ValueError, Web3ValidationError) as exc:
            raise SignedConsentInvalid(f"the signed {signed.kind} is malformed ({type(exc).__name__}: {exc})") \
                from None
        current = int(self._view(self.fn.nonces(patient, counterparty)))
        if nonce < current:
            raise SignatureUsed(f"this signature was already used: the signed {signed.kind} for {counterparty} on "
                                f"{patient} (nonce {nonce}) was relayed, superseded by a later grant, revoke or "
                                f"signed action of the pair, or cancelled (the pair's next nonce is {current}); "
                                f"nothing was sent", "SignatureUsed", (signer, nonce))
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
    """A record's current version: its content tag (`content_tag`: keccak256(contentHash)[:20]) and metadata."""

    record_id: str
    content_tag: str
    info: RecordVersion

    def matches(self, content_hash: bytes | str) -> bool:
        """Whether `content_hash` is this version (its keccak256 carries this version's 160-bit tag)."""
        return "0x" + content_tag(content_hash).hex() == self.content_tag


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
    log_index: int = 0


def content_tag(content_hash: bytes | str) -> bytes:
    """The 160-bit tag RecordRegistry stores for a latest version: keccak256(contentHash)[:20]."""
    return keccak(_b32(content_hash))[:20]


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
        """Anchors version 1 of `patient`'s record `record_id` (whose first 20 bytes name `patient`)."""
        record_ids.require_patient(_b32(record_id), patient)
        return self._send(signer, self.fn.anchor(_b32(record_id), _b32(content_hash), int(data_class)))

    def amend(self, signer: Signer, record_id: bytes, patient: str, previous_content_hash: bytes,
              new_content_hash: bytes) -> TxResult:
        record_ids.require_patient(_b32(record_id), patient)
        return self._send(signer, self.fn.amend(_b32(record_id), _b32(previous_content_hash), _b32(new_content_hash)))

    def anchor_batch(self, signer: Signer, root: bytes, count: int, manifest_hash: bytes,
                     on_sent: Callable[[str], None] | None = None) -> TxResult:
        """Anchors a record batch; `on_sent` gets the tx hash before the receipt is awaited."""
        return self.chain.transact(signer, self.fn.anchorBatch(_b32(root), int(count), _b32(manifest_hash)),
                                   on_sent=on_sent)

    def attest_batch_record(self, signer: Signer, leaf: RecordLeaf, proof: Sequence[bytes], batch_id: int) -> TxResult:
        return self._send(signer, self.fn.attestBatchRecord(*_leaf_args(leaf), [_b32(p) for p in proof], int(batch_id)))

    def log_access(self, signer: Signer, patient: str, record_id: bytes, purpose: Purpose | int) -> TxResult:
        record_ids.require_patient(_b32(record_id), patient)
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
        rid = _hex32(_b32(record_id))
        return [ev for ev in self._version_events(from_block) if ev.record_id == rid]

    def patient_versions(self, patients: Sequence[str], from_block: int = 0) -> list[RecordEvent]:
        """Every version of every record of `patients` in chain order, from the chain's events (the fallback of
        the event index, medledger.index.queries.record_versions)."""
        wanted = {to_checksum_address(p) for p in patients}
        return [ev for ev in self._version_events(from_block) if ev.patient in wanted]

    def _version_events(self, from_block: int) -> list[RecordEvent]:
        from .audit import fetch_events

        out = []
        for ev in fetch_events(self.chain, {"RecordRegistry": self.address}, from_block):
            if ev.event not in _VERSION_EVENTS:
                continue
            a = ev.args
            out.append(RecordEvent(
                record_id=_hex32(a["recordId"]),
                version=1 if ev.event == "RecordAnchored" else int(a["version"]),
                content_hash=_hex32(a["contentHash"]),
                patient=to_checksum_address(a["patient"]),
                author=to_checksum_address(a["author"]),
                event=ev.event, block=ev.block, tx_hash=ev.tx_hash,
                previous_content_hash=_hex32(a["previousContentHash"]) if "previousContentHash" in a else None,
                data_class=int(a["dataClass"]) if "dataClass" in a else None,
                batch_id=int(a["batchId"]) if "batchId" in a else None,
                log_index=ev.log_index,
            ))
        return out

    def batch_anchored_events(self, batch_id: int, from_block: int = 0) -> list[dict]:
        """The BatchAnchored event(s) of `batch_id` (at most one: the contract refuses a second)."""
        logs = self.contract.events.BatchAnchored.get_logs(argument_filters={"batchId": int(batch_id)},
                                                           from_block=from_block)
        return [{**dict(e["args"]), "block": e["blockNumber"], "tx": "0x" + bytes(e["transactionHash"]).hex()}
                for e in logs]


    def access_log_batches(self, accessor: str, from_block: int = 0) -> dict[int, dict]:
        """`accessor`'s AccessLogBatchAnchored events by batch id: root, count, block and tx."""
        logs = self.contract.events.AccessLogBatchAnchored.get_logs(
            argument_filters={"accessor": to_checksum_address(accessor)}, from_block=from_block)
        return {int(e["args"]["batchId"]): {"root": _hex32(e["args"]["root"]), "count": int(e["args"]["count"]),
                                            "block": int(e["blockNumber"]),
                                            "tx": "0x" + bytes(e["transactionHash"]).hex()} for e in logs}


def _record_version(raw: Any) -> RecordVersion:
    author, version, data_class, anchored_at, latest = raw
    return RecordVersion(to_checksum_address(author), int(version), int(data_class), int(anchored_at), bool(latest))


def _leaf_args(leaf: RecordLeaf) -> tuple:
    return (leaf.record_id, leaf.content_hash, leaf.patient, leaf.version, leaf.data_class, leaf.author)


# ============================================================================ escrow



@dataclass(frozen=True)
class ClaimState:
    """A claim as stored: the status, the amount in play and the deadline (escrow time)."""

    claim_id: str
    coverage_id: int
    amount: int
    status: ClaimStatus
    deadline: int
    revision: int
    dispute_window: int = 0


@dataclass(frozen=True)
class InsurerTerms:
    """An insurer's prompt-pay and dispute windows and its auto-approval rule. Automatic approval
    (auto_max_amount > 0) needs a velocity cap: at most `auto_max_per_period` approvals per provider,
    coverage and `auto_period` seconds (at least one hour). The classes a claim may cite are each
    coverage's (`Enrolment.auto_data_classes`, ClaimEscrow interface 3)."""

    prompt_pay_window: int
    dispute_window: int
    auto_max_amount: int = 0
    auto_service_min: int = 0
    auto_service_max: int = 0
    auto_max_per_period: int = 0
    auto_period: int = 0

    def as_tuple(self) -> tuple:
        return (self.prompt_pay_window, self.dispute_window, self.auto_max_amount, self.auto_service_min,
                self.auto_service_max, self.auto_max_per_period, self.auto_period)


@dataclass(frozen=True)
class Enrolment:
    """A patient's coverage with an insurer. `auto_data_classes` is the mask of classes a claim may cite for
    automatic approval, in the patient address's label space (docs/PRIVACY.md, section 2)."""

    insurer: str
    patient: str
    coverage_id: int
    valid_from: int
    valid_until: int
    per_claim_limit: int
    per_period_limit: int
    period_length: int
    period_used: int
    policy_hash: str
    auto_data_classes: int = 0


@dataclass(frozen=True)
class Balances:
    """Escrow balances of one account (insurer side and provider side) and its token balance."""

    account: str
    free: int
    encumbered: int
    owed: int
    paid_out: int
    push_payments: bool
    wallet: int


@dataclass(frozen=True)
class ClaimRequest:
    """A claim submission (X12 837 analogue): only ids, hashes, addresses and amounts."""

    control_number: bytes
    patient: str
    insurer: str
    billed: int
    service_code: int
    claim_hash: bytes
    records: tuple[tuple[bytes, bytes], ...]
    frequency: ClaimFrequency = ClaimFrequency.ORIGINAL

    def as_tuple(self) -> tuple:
        return (_b32(self.control_number), to_checksum_address(self.patient), to_checksum_address(self.insurer),
                self.billed, self.service_code, int(self.frequency), _b32(self.claim_hash),
                [(_b32(r), _b32(h)) for r, h in self.records])


class Token(_Wrapper):
    """The escrow's ERC-20 stablecoin (EIP-2612 permit when the token has it)."""

    NAME = "MockStablecoin"

    def decimals(self) -> int:
        return int(self._view(self.fn.decimals()))

    def symbol(self) -> str:
        return str(self._view(self.fn.symbol()))

    def info(self) -> TokenInfo:
        """Address, symbol and decimals: what amounts need to be read and shown in token units."""
        return TokenInfo(self.address, self.symbol(), self.decimals())

    def balance_of(self, account: str) -> int:
        return int(self._view(self.fn.balanceOf(to_checksum_address(account))))

    def approve(self, signer: Signer, spender: str, amount: int) -> TxResult:
        return self._send(signer, self.fn.approve(to_checksum_address(spender), amount))

    def supports_permit(self) -> bool:
        try:
            self._view(self.fn.nonces(self.address))
            self._view(self.fn.DOMAIN_SEPARATOR())
            return True
        except Exception:  # noqa: BLE001 - any failure means "no permit"
            return False

    def sign_permit(self, signer: Signer, spender: str, value: int, deadline: int) -> tuple[int, bytes, bytes]:
        """An EIP-2612 permit signature (v, r, s) for `spender` to pull `value`."""
        _fields, name, version, chain_id, contract, _salt, _ext = self._view(self.fn.eip712Domain())
        request = eip712.PermitRequest(owner=signer.address, spender=spender, value=value,
                                       nonce=int(self._view(self.fn.nonces(signer.address))), deadline=deadline)
        domain = eip712.ConsentDomain(chain_id=chain_id, verifying_contract=contract, name=name, version=version)
        return eip712.split_signature(signer.sign_typed_data(self.chain.w3, eip712.permit_typed_data(domain, request)))


class ClaimEscrow(_PartyKeyed):
    NAME = "ClaimEscrow"

    def __init__(self, chain: Chain, address: str) -> None:
        super().__init__(chain, address)
        if chain.messages.token is None:  # error messages show amounts in this escrow's token
            chain.messages.token = lambda: self.token.info()

    @property
    def token(self) -> Token:
        return Token(self.chain, self._view(self.fn.token()))

    # ------------------------------------------------------------ insurer funds
    def deposit(self, signer: Signer, amount: int, permit_deadline: int | None = None) -> TxResult:
        """Deposits `amount`: one transaction with a permit where the token has one, else approve + deposit."""
        token = self.token
        held = token.balance_of(signer.address)
        if held < amount:
            info = token.info()
            raise InsufficientEscrow(f"{signer.address} holds {info.format(held)}, cannot deposit "
                                     f"{info.format(amount)}", "InsufficientBalance", (signer.address, amount, held))
        if token.supports_permit():
            # The chain's clock, not the wall clock: a development chain may run days ahead.
            deadline = permit_deadline or int(self.chain.w3.eth.get_block("latest")["timestamp"]) + 3600
            v, r, s = token.sign_permit(signer, self.address, amount, deadline)
            return self._send(signer, self.fn.depositWithPermit(amount, deadline, v, r, s))
        token.approve(signer, self.address, amount)
        return self._send(signer, self.fn.deposit(amount))

    def withdraw_free(self, signer: Signer, amount: int) -> TxResult:
        return self._send(signer, self.fn.withdrawFree(amount))

    # ------------------------------------------------------------ operations (PAUSER_ROLE)
    def pause(self, signer: Signer) -> TxResult:
        return self._send(signer, self.fn.pause())

    def unpause(self, signer: Signer) -> TxResult:
        return self._send(signer, self.fn.unpause())

    def paused(self) -> bool:
        return bool(self._view(self.fn.paused()))

    def set_terms(self, signer: Signer, terms: InsurerTerms) -> TxResult:
        return self._send(signer, self.fn.setTerms(terms.as_tuple()))

    def terms(self, insurer: str) -> InsurerTerms:
        return InsurerTerms(*self._view(self.fn.termsOf(self.home_of(insurer))))

    def set_coverage(self, signer: Signer, patient: str, policy_hash: bytes, valid_from: int, valid_until: int,
                     per_claim_limit: int = 0, per_period_limit: int = 0, period_length: int = 0,
                     auto_data_classes: int = 0) -> TxResult:
        """Enrols `patient`; `auto_data_classes` is the on-chain mask (labels for a pairwise pseudonym)."""
        return self._send(signer, self.fn.setCoverage(to_checksum_address(patient), _b32(policy_hash), valid_from,
                                                      valid_until, per_claim_limit, per_period_limit, period_length,
                                                      auto_data_classes))

    def end_coverage(self, signer: Signer, patient: str) -> TxResult:
        return self._send(signer, self.fn.endCoverage(to_checksum_address(patient)))

    def enrolment(self, insurer: str, patient: str) -> Enrolment:
        insurer, patient = self.home_of(insurer), to_checksum_address(patient)
        coverage_id, start, until, auto_classes = self._view(self.fn.enrolmentOf(insurer, patient))
        c = self._view(self.fn.coverageOf(coverage_id))
        return Enrolment(insurer, patient, coverage_id, start, until, c[5], c[6], c[9], c[7], "0x" + bytes(c[10]).hex(),
                         auto_classes)

    def balances(self, account: str) -> Balances:
        account = to_checksum_address(account)
        home = self.home_of(account)
        free, encumbered = self._view(self.fn.insurerAccountOf(home))
        owed, paid, push = self._view(self.fn.providerAccountOf(home))
        return Balances(account, free, encumbered, owed, paid, push, self.token.balance_of(account))

    # ------------------------------------------------------------ claims
    def claim_id(self, provider: str, control_number: bytes) -> str:
        return "0x" + bytes(self._view(self.fn.claimIdOf(self.home_of(provider), _b32(control_number)))).hex()

    def claim(self, provider: str, control_number: bytes) -> ClaimState:
        cid = self.claim_id(provider, control_number)
        coverage_id, amount, status, deadline, revision, dispute_window = self._view(self.fn.claimOf(cid))
        return ClaimState(cid, coverage_id, amount, ClaimStatus(status), deadline, revision, dispute_window)

    def submit(self, signer: Signer, request: ClaimRequest) -> TxResult:
        # Claims name the insurer by its home account (a migrated insurer's enrolments stay there).
        request = dataclasses.replace(request, insurer=self.home_of(request.insurer))
        return self._send(signer, self.fn.submitClaim(request.as_tuple()))

    def adjudicate(self, signer: Signer, provider: str, control_number: bytes, approved: int,
                   share: tuple[int, int, int] = (0, 0, 0), reason_codes: tuple[int, ...] = ()) -> TxResult:
        revision = self.claim(provider, control_number).revision
        return self._send(signer, self.fn.adjudicate(self.home_of(provider), _b32(control_number), revision,
                                                     approved, share, list(reason_codes)))

    def finalize_deemed(self, signer: Signer, provider: str, control_number: bytes) -> TxResult:
        return self._send(signer, self.fn.finalizeDeemed(self.home_of(provider), _b32(control_number)))

    def dispute(self, signer: Signer, control_number: bytes, evidence_hash: bytes) -> TxResult:
        return self._send(signer, self.fn.dispute(_b32(control_number), _b32(evidence_hash)))

    def resolve(self, signer: Signer, provider: str, control_number: bytes, award: int,
                decision_hash: bytes) -> TxResult:
        return self._send(signer, self.fn.resolveDispute(self.home_of(provider), _b32(control_number), award,
                                                         _b32(decision_hash)))

    def release(self, signer: Signer, provider: str, control_number: bytes) -> TxResult:
        return self._send(signer, self.fn.release(self.home_of(provider), _b32(control_number)))

    def withdraw(self, signer: Signer, amount: int | None = None) -> TxResult:
        """The signer (a provider) withdraws `amount` of what it is owed (None: everything)."""
        if int(self._view(self.fn.providerAccountOf(self.home_of(signer.address)))[0]) == 0:
            raise InsufficientEscrow(f"{signer.address} is owed nothing", "InsufficientOwed", (signer.address, 0, 0))
        return self._send(signer, self.fn.withdrawAll() if amount is None else self.fn.withdraw(amount))

    def withdraw_to(self, signer: Signer, recipient: str) -> TxResult:
        """Withdraws everything owed to the signer (a provider) to `recipient`."""
        return self._send(signer, self.fn.withdrawTo(to_checksum_address(recipient)))

    def deemed_pool(self, insurer: str) -> tuple[int, int]:
        """(unpaid, funded): the insurer's deemed-approved, unfunded claims and what is set aside for them."""
        unpaid, funded = self._view(self.fn.deemedPoolOf(self.home_of(insurer)))
        return int(unpaid), int(funded)

    def version(self) -> int:
        return int(self._view(self.fn.version()))

    def set_push_payments(self, signer: Signer, enabled: bool) -> TxResult:
        return self._send(signer, self.fn.setPushPayments(enabled))

    def escrow_time(self) -> int:
        return int(self._view(self.fn.escrowTime()))
