"""ConsentRegistry signed guardian and break-glass actions (issue 14, "a patient never needs gas"):
`appointGuardianBySig`, `removeGuardianBySig`, `closeBreakGlassBySig` and `allowBreakGlassBySig`, signed
with medledger.eip712 (eth-account) and relayed by accounts unrelated to the patient."""

from collections.abc import Callable
from dataclasses import dataclass, replace

import brownie
import pytest
from brownie import ConsentRegistry, chain
from eth_utils import keccak
from support.errors import error_message, reverts_with
from support.vocabulary import LABS, TREAT
from support.world import key

from medledger.eip712 import (
    BREAK_GLASS_FIELDS,
    GUARDIAN_FIELDS,
    MAX_SIGNATURE_LIFETIME,
    BreakGlassRequest,
    ConsentDomain,
    GrantRequest,
    GuardianRequest,
    allow_break_glass_typed_data,
    appoint_guardian_typed_data,
    close_break_glass_typed_data,
    remove_guardian_typed_data,
    sign_grant,
    sign_typed_data,
)

DAY = 24 * 3600
REASON = keccak(text="UNCONSCIOUS")
GUARDIAN_KINDS = ("appoint-guardian", "remove-guardian")
BREAK_GLASS_KINDS = ("close-break-glass", "allow-break-glass")
KINDS = GUARDIAN_KINDS + BREAK_GLASS_KINDS


def addr(account) -> str:
    return account if isinstance(account, str) else account.address


@pytest.fixture(scope="module")
def domain(consent):
    return ConsentDomain(chain_id=chain.id, verifying_contract=consent.address)


# ------------------------------------------------------------ the four actions


@dataclass(frozen=True)
class Kind:
    """One signed action: how to build its typed data, relay it, set the chain up for it and see it done."""

    name: str
    primary_type: str
    typed_data: Callable
    function: str  # the ...BySig function
    event: str


KIND = {
    "appoint-guardian": Kind("appoint-guardian", "AppointGuardian", appoint_guardian_typed_data,
                             "appointGuardianBySig", "GuardianAppointed"),
    "remove-guardian": Kind("remove-guardian", "RemoveGuardian", remove_guardian_typed_data,
                            "removeGuardianBySig", "GuardianRemoved"),
    "close-break-glass": Kind("close-break-glass", "CloseBreakGlass", close_break_glass_typed_data,
                              "closeBreakGlassBySig", "BreakGlassClosed"),
    "allow-break-glass": Kind("allow-break-glass", "AllowBreakGlass", allow_break_glass_typed_data,
                              "allowBreakGlassBySig", "BreakGlassAllowed"),
}


def make_request(consent, kind: str, patient, counterparty, signer=None, **overrides):
    """The request of `kind` on the (patient, counterparty) pair at its current nonce, due in a day."""
    values = dict(patient=addr(patient), nonce=consent.nonces(addr(patient), addr(counterparty)),
                  deadline=chain.time() + DAY)
    if kind in GUARDIAN_KINDS:
        request = GuardianRequest(guardian=addr(counterparty), **values)
    else:
        request = BreakGlassRequest(provider=addr(counterparty), signer=addr(signer or patient), **values)
    return replace(request, **overrides)


def sign(kind: str, signing_account, domain, request) -> bytes:
    return sign_typed_data(key(signing_account), KIND[kind].typed_data(domain, request))


def relay(consent, kind: str, request, signature: bytes, relayer):
    fn = getattr(consent, KIND[kind].function)
    if kind in GUARDIAN_KINDS:
        return fn(request.patient, request.guardian, request.deadline, signature, {"from": relayer})
    return fn(request.patient, request.provider, request.signer, request.deadline, signature, {"from": relayer})


def prepare(consent, kind: str, patient, counterparty) -> None:
    """Brings the chain to a state where `kind` succeeds (`patient` must be an EOA acting directly)."""
    if kind == "remove-guardian":
        consent.appointGuardian(counterparty, {"from": patient})
    elif kind in BREAK_GLASS_KINDS:
        consent.openBreakGlass(patient, 3600, REASON, {"from": counterparty})
        if kind == "allow-break-glass":
            consent.closeBreakGlass(patient, counterparty, {"from": patient})


def undo(consent, kind: str, patient, counterparty) -> None:
    """After `kind` took effect: brings the chain back to where it would succeed again (directly)."""
    if kind == "appoint-guardian":
        consent.removeGuardian(counterparty, {"from": patient})
    elif kind == "remove-guardian":
        consent.appointGuardian(counterparty, {"from": patient})
    elif kind == "close-break-glass":
        consent.allowBreakGlass(patient, counterparty, {"from": patient})
        consent.openBreakGlass(patient, 3600, REASON, {"from": counterparty})
    else:
        consent.openBreakGlass(patient, 3600, REASON, {"from": counterparty})
        consent.closeBreakGlass(patient, counterparty, {"from": patient})


def took_effect(consent, kind: str, patient, counterparty) -> bool:
    if kind in GUARDIAN_KINDS:
        return consent.isGuardian(patient, counterparty) == (kind == "appoint-guardian")
    return consent.breakGlassOf(patient, counterparty)[4] == (kind == "close-break-glass")  # `blocked`


def counterparty_of(kind: str, guardian, provider):
    return guardian if kind in GUARDIAN_KINDS else provider


def invalid_signature(signer) -> str:
    return error_message(ConsentRegistry, "InvalidSignature", addr(signer))


# ---------------------------------------------------------------- type hashes


def type_string(name: str, fields: list[dict[str, str]]) -> str:
    return f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


def test_type_hashes_match_python(consent):
    for getter, name, fields in (
        (consent.APPOINT_GUARDIAN_TYPEHASH, "AppointGuardian", GUARDIAN_FIELDS),
        (consent.REMOVE_GUARDIAN_TYPEHASH, "RemoveGuardian", GUARDIAN_FIELDS),
        (consent.CLOSE_BREAK_GLASS_TYPEHASH, "CloseBreakGlass", BREAK_GLASS_FIELDS),
        (consent.ALLOW_BREAK_GLASS_TYPEHASH, "AllowBreakGlass", BREAK_GLASS_FIELDS),
    ):
        assert getter() == "0x" + keccak(text=type_string(name, fields)).hex(), name
    assert type_string("CloseBreakGlass", BREAK_GLASS_FIELDS) == (
        "CloseBreakGlass(address patient,address provider,address signer,uint256 nonce,uint256 deadline)")
    assert type_string("AppointGuardian", GUARDIAN_FIELDS) == (
        "AppointGuardian(address patient,address guardian,uint256 nonce,uint256 deadline)")


# -------------------------------------------------------------------- success


@pytest.mark.parametrize("kind", KINDS)
def test_patient_signs_stranger_relays(consent, domain, kind, patient, guardian, provider, stranger):
    other = counterparty_of(kind, guardian, provider)
    prepare(consent, kind, patient, other)
    nonce = consent.nonces(patient, other)
    request = make_request(consent, kind, patient, other)
    balance = patient.balance()
    tx = relay(consent, kind, request, sign(kind, patient, domain, request), stranger)
    assert took_effect(consent, kind, patient, other)
    event = tx.events[KIND[kind].event]
    assert event["patient"] == patient and event["actor"] == patient
    assert consent.nonces(patient, other) == nonce + 1  # the pair's nonce is spent
    assert patient.balance() == balance  # the patient sent nothing and paid nothing
    assert tx.sender == stranger


@pytest.mark.parametrize("kind", BREAK_GLASS_KINDS)
def test_guardian_signs_break_glass(consent, domain, kind, patient, guardian, provider, relayer):
    consent.appointGuardian(guardian, {"from": patient})
    prepare(consent, kind, patient, provider)
    request = make_request(consent, kind, patient, provider, signer=guardian)
    tx = relay(consent, kind, request, sign(kind, guardian, domain, request), relayer)
    assert took_effect(consent, kind, patient, provider)
    assert tx.events[KIND[kind].event]["actor"] == guardian


def test_signed_close_then_signed_allow(consent, domain, patient, provider, relayer):
    """The break-glass cycle without the patient sending a transaction: close, allow, and the provider reopens."""
    consent.openBreakGlass(patient, 3600, REASON, {"from": provider})
    for kind in BREAK_GLASS_KINDS:
        request = make_request(consent, kind, patient, provider)
        relay(consent, kind, request, sign(kind, patient, domain, request), relayer)
        if kind == "close-break-glass":
            assert not consent.hasConsent(patient, provider, 1, LABS)  # ETREAT, a non-sensitive class
            with reverts_with(ConsentRegistry, "BreakGlassBlocked", patient.address, provider.address):
                consent.openBreakGlass(patient, 3600, REASON, {"from": provider})
    assert consent.nonces(patient, provider) == 2
    consent.openBreakGlass(patient, 3600, REASON, {"from": provider})


def test_deadline_second_itself_is_accepted(consent, domain, patient, guardian, relayer):
    deadline = chain.time() + 100
    request = make_request(consent, "appoint-guardian", patient, guardian, deadline=deadline)
    signature = sign("appoint-guardian", patient, domain, request)
    chain.mine(timestamp=deadline - 1)
    tx = relay(consent, "appoint-guardian", request, signature, relayer)
    assert deadline - 1 <= tx.timestamp <= deadline
    assert consent.isGuardian(patient, guardian)


def test_direct_actions_leave_the_nonce_alone(consent, patient, guardian, provider):
    """The direct variants cost what they did: no nonce write (a pending signature stays until relayed,
    expired or cancelled)."""
    consent.appointGuardian(guardian, {"from": patient})
    consent.openBreakGlass(patient, 3600, REASON, {"from": provider})
    consent.closeBreakGlass(patient, provider, {"from": guardian})
    consent.allowBreakGlass(patient, provider, {"from": patient})
    consent.removeGuardian(guardian, {"from": patient})
    assert consent.nonces(patient, guardian) == consent.nonces(patient, provider) == 0


# ----------------------------------------------------------------- rejections


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_signer_rejected(consent, domain, kind, patient, guardian, provider, stranger, relayer):
    other = counterparty_of(kind, guardian, provider)
    prepare(consent, kind, patient, other)
    request = make_request(consent, kind, patient, other)
    with brownie.reverts(invalid_signature(patient)):
        relay(consent, kind, request, sign(kind, stranger, domain, request), relayer)
    assert consent.nonces(patient, other) == 0


@pytest.mark.parametrize("kind", GUARDIAN_KINDS)
def test_guardian_cannot_sign_guardian_changes(consent, domain, kind, patient, guardian, patient2, relayer):
    """Only the patient appoints or removes guardians, signed or not: a guardian's signature is not the patient's."""
    consent.appointGuardian(guardian, {"from": patient})
    prepare(consent, kind, patient, patient2)
    request = make_request(consent, kind, patient, patient2)
    with brownie.reverts(invalid_signature(patient)):
        relay(consent, kind, request, sign(kind, guardian, domain, request), relayer)


@pytest.mark.parametrize("kind", BREAK_GLASS_KINDS)
def test_signer_must_be_patient_or_guardian(consent, domain, kind, patient, provider, stranger, relayer):
    prepare(consent, kind, patient, provider)
    request = make_request(consent, kind, patient, provider, signer=stranger)
    with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient.address, stranger.address):
        relay(consent, kind, request, sign(kind, stranger, domain, request), relayer)


@pytest.mark.parametrize("kind", BREAK_GLASS_KINDS)
def test_removed_guardian_signature_rejected(consent, domain, kind, patient, guardian, provider, relayer):
    consent.appointGuardian(guardian, {"from": patient})
    prepare(consent, kind, patient, provider)
    request = make_request(consent, kind, patient, provider, signer=guardian)
    signature = sign(kind, guardian, domain, request)
    consent.removeGuardian(guardian, {"from": patient})
    with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient.address, guardian.address):
        relay(consent, kind, request, signature, relayer)


@pytest.mark.parametrize("kind", KINDS)
def test_expired_deadline_rejected(consent, domain, kind, patient, guardian, provider, relayer):
    other = counterparty_of(kind, guardian, provider)
    prepare(consent, kind, patient, other)
    deadline = chain.time() + 60
    request = make_request(consent, kind, patient, other, deadline=deadline)
    signature = sign(kind, patient, domain, request)
    chain.mine(timestamp=deadline + 1)
    with reverts_with(ConsentRegistry, "SignatureExpired", deadline):
        relay(consent, kind, request, signature, relayer)


@pytest.mark.parametrize("kind", KINDS)
def test_too_long_lifetime_rejected(consent, domain, kind, patient, guardian, provider, relayer):
    other = counterparty_of(kind, guardian, provider)
    prepare(consent, kind, patient, other)
    deadline = chain.time() + MAX_SIGNATURE_LIFETIME + 3600
    request = make_request(consent, kind, patient, other, deadline=deadline)
    with brownie.reverts(revert_pattern=rf"SignatureDeadlineTooFar: {deadline}, \d+"):
        relay(consent, kind, request, sign(kind, patient, domain, request), relayer)


@pytest.mark.parametrize("kind", KINDS)
def test_replay_rejected(consent, domain, kind, patient, guardian, provider, relayer, stranger):
    """Only the nonce stops a replay: the state is put back so that the action itself would succeed."""
    other = counterparty_of(kind, guardian, provider)
    prepare(consent, kind, patient, other)
    request = make_request(consent, kind, patient, other)
    signature = sign(kind, patient, domain, request)
    relay(consent, kind, request, signature, relayer)
    undo(consent, kind, patient, other)
    for sender in (relayer, stranger):
        with brownie.reverts(invalid_signature(patient)):
            relay(consent, kind, request, signature, sender)
    assert not took_effect(consent, kind, patient, other)


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_signatures_voids_pending(consent, domain, kind, patient, guardian, provider, relayer):
    other = counterparty_of(kind, guardian, provider)
    prepare(consent, kind, patient, other)
    request = make_request(consent, kind, patient, other)
    signature = sign(kind, patient, domain, request)
    tx = consent.cancelSignatures(patient, other, {"from": patient})
    assert tx.events["SignaturesCancelled"]["nonce"] == 1
    with brownie.reverts(invalid_signature(patient)):
        relay(consent, kind, request, signature, relayer)
    assert not took_effect(consent, kind, patient, other)


def test_nonce_space_is_shared_with_consent(consent, domain, patient, provider, relayer):
    """One nonce per (patient, provider): a relayed signed close voids a pending signed grant to that provider,
    and a later grant voids a pending signed allow."""
    consent.openBreakGlass(patient, 3600, REASON, {"from": provider})
    grant = GrantRequest(patient=patient.address, grantee=provider.address, purposes=1 << TREAT,
                         data_classes=1 << LABS, valid_from=0, valid_until=0, consent_doc_hash=b"\x00" * 32,
                         signer=patient.address, nonce=0, deadline=chain.time() + DAY)
    grant_sig = sign_grant(key(patient), domain, grant)
    close = make_request(consent, "close-break-glass", patient, provider)
    relay(consent, "close-break-glass", close, sign("close-break-glass", patient, domain, close), relayer)
    with brownie.reverts(invalid_signature(patient)):
        consent.grantBySig(grant.patient, grant.grantee, grant.purposes, grant.data_classes, 0, 0,
                           grant.consent_doc_hash, grant.signer, grant.deadline, grant_sig, {"from": relayer})
    allow = make_request(consent, "allow-break-glass", patient, provider)
    allow_sig = sign("allow-break-glass", patient, domain, allow)
    consent.grant(patient, provider, 1 << TREAT, 1 << LABS, 0, 0, b"\x00" * 32, {"from": patient})
    with brownie.reverts(invalid_signature(patient)):
        relay(consent, "allow-break-glass", allow, allow_sig, relayer)


def test_failed_action_does_not_burn_nonce(consent, domain, patient, guardian, relayer):
    request = make_request(consent, "remove-guardian", patient, guardian)
    signature = sign("remove-guardian", patient, domain, request)
    with reverts_with(ConsentRegistry, "GuardianNotAppointed", patient.address, guardian.address):
        relay(consent, "remove-guardian", request, signature, relayer)
    assert consent.nonces(patient, guardian) == 0
    consent.appointGuardian(guardian, {"from": patient})
    relay(consent, "remove-guardian", request, signature, relayer)
    assert not consent.isGuardian(patient, guardian)


def test_action_checks_still_apply(consent, domain, patient, provider, relayer):
    bad = make_request(consent, "appoint-guardian", patient, patient)
    with reverts_with(ConsentRegistry, "InvalidGuardian", patient.address):
        relay(consent, "appoint-guardian", bad, sign("appoint-guardian", patient, domain, bad), relayer)
    close = make_request(consent, "close-break-glass", patient, provider)
    with reverts_with(ConsentRegistry, "BreakGlassNotOpen", patient.address, provider.address):
        relay(consent, "close-break-glass", close, sign("close-break-glass", patient, domain, close), relayer)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_patient_rejected(consent, domain, kind, patient, guardian, provider, relayer):
    request = make_request(consent, kind, "0x" + "00" * 20, counterparty_of(kind, guardian, provider),
                           signer=patient)
    with reverts_with(ConsentRegistry, "ZeroAddress"):
        relay(consent, kind, request, sign(kind, patient, domain, request), relayer)


@pytest.mark.parametrize("field", ["patient", "counterparty", "deadline", "nonce"])
def test_tampered_field_rejected(consent, domain, field, patient, patient2, guardian, provider, relayer):
    consent.openBreakGlass(patient, 3600, REASON, {"from": provider})
    request = make_request(consent, "close-break-glass", patient, provider)
    signature = sign("close-break-glass", patient, domain, request)
    tampered = {"patient": replace(request, patient=patient2.address, signer=patient2.address),
                "counterparty": replace(request, provider=guardian.address),
                "deadline": replace(request, deadline=request.deadline - 1),
                "nonce": request}[field]
    if field == "nonce":  # the signature is for nonce 1; the pair is at 0
        signature = sign("close-break-glass", patient, domain, replace(request, nonce=1))
    with brownie.reverts(invalid_signature(tampered.signer)):
        relay(consent, "close-break-glass", tampered, signature, relayer)
    assert consent.nonces(patient, provider) == 0


# --------------------------------------------------------------------- ERC-1271


@pytest.mark.parametrize("kind", GUARDIAN_KINDS)
def test_contract_wallet_patient_signs_guardian_changes(consent, domain, kind, wallet, patient, guardian, relayer):
    """A contract-wallet patient cannot send appointGuardian itself here; its owner's signature, vouched for
    through ERC-1271, does it."""
    if kind == "remove-guardian":
        first = make_request(consent, "appoint-guardian", wallet.address, guardian)
        relay(consent, "appoint-guardian", first, sign("appoint-guardian", patient, domain, first), relayer)
    request = make_request(consent, kind, wallet.address, guardian)
    tx = relay(consent, kind, request, sign(kind, patient, domain, request), relayer)
    assert tx.events[KIND[kind].event]["actor"] == wallet
    assert took_effect(consent, kind, wallet.address, guardian)


@pytest.mark.parametrize("kind", BREAK_GLASS_KINDS)
def test_contract_wallet_guardian_signs_break_glass(consent, domain, kind, wallet, patient, patient2, provider,
                                                    relayer):
    consent.appointGuardian(wallet, {"from": patient2})
    prepare(consent, kind, patient2, provider)
    request = make_request(consent, kind, patient2, provider, signer=wallet.address)
    assert wallet.owner() == patient
    tx = relay(consent, kind, request, sign(kind, patient, domain, request), relayer)
    assert tx.events[KIND[kind].event]["actor"] == wallet
    assert took_effect(consent, kind, patient2, provider)


@pytest.mark.parametrize("kind", KINDS)
def test_contract_wallet_bad_magic_rejected(consent, domain, kind, bad_wallet, patient, guardian, provider,
                                            relayer):
    other = counterparty_of(kind, guardian, provider)
    request = make_request(consent, kind, bad_wallet.address, other, signer=bad_wallet.address)
    with brownie.reverts(invalid_signature(bad_wallet.address)):
        relay(consent, kind, request, sign(kind, patient, domain, request), relayer)


def test_contract_wallet_rejects_foreign_signature(consent, domain, wallet, stranger, guardian, relayer):
    request = make_request(consent, "appoint-guardian", wallet.address, guardian)
    with brownie.reverts(invalid_signature(wallet.address)):
        relay(consent, "appoint-guardian", request, sign("appoint-guardian", stranger, domain, request), relayer)
