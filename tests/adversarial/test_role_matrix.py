"""Role escalation across CareRegistry, ConsentRegistry, RecordRegistry and ClaimEscrow: every
access-restricted state-changing function, called by every other party, fails with its exact custom
error, and every entitled party succeeds. Forbidden calls run as `eth_call` against the module's world.

Separated powers (issue 18): the world's `admin` holds DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE of the
CareRegistry, as the timelock does in a deployment; a single registrar is refused every governed function
(reinstate, registering and assigning arbiters, appointing registrars), and only the arbiter assigned to
the claim's insurer resolves its disputes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import brownie
import pytest
from brownie import ClaimEscrow, ConsentRegistry, RecordRegistry
from support.errors import error_message
from support.escrow import DECISION, EVIDENCE, PROMPT_PAY, USD, control, h, sleep, submission, terms
from support.records import leaf_args, rid
from support.vocabulary import ARBITER_ROLE, HPAYMT, INSURER_ROLE, LABS, NOTES, PROVIDER_ROLE, TREAT, ClaimStatus, bit
from support.world import (
    ADMIN_ROLE,
    DOC,
    MANIFEST,
    META,
    REASON,
    ErrorFn,
    World,
    addresses,
    admin_role,
    bad_confirmation,
    governor_role,
    not_active,
    not_custodian,
    not_patient_or_guardian,
    not_provider,
    not_provider_or_insurer,
    pauser_role,
    registrar_role,
    signed_break_glass,
    signed_grant,
    signed_guardian_change,
    signed_revoke,
    unauthorized,
    unless,
)

GATEWAY_URL = "https://records.example"
CALLERS = ("admin", "registrar", "provider", "provider2", "insurer", "insurer2", "arbiter", "patient",
           "guardian", "stranger", "suspended")


def test_world_is_what_the_matrix_assumes(world):
    w = world
    assert not w.care.isActive(w.suspended, PROVIDER_ROLE) and w.care.partyOf(w.suspended)[0] == PROVIDER_ROLE
    assert w.care.isActive(w.insurer2, INSURER_ROLE)
    assert w.consent.isGuardian(w.patient, w.guardian)
    assert w.consent.hasConsent(w.patient, w.provider, TREAT, NOTES)
    assert not w.consent.hasConsent(w.patient, w.provider2, TREAT, NOTES)
    assert w.consent.hasConsent(w.patient, w.insurer, HPAYMT, NOTES)
    expected = {"open": ClaimStatus.SUBMITTED, "owed": ClaimStatus.SETTLED, "contestable": ClaimStatus.CONTESTABLE,
                "disputed": ClaimStatus.DISPUTED, "deemed": ClaimStatus.SUBMITTED, "denied": ClaimStatus.CONTESTABLE}
    for label, status in expected.items():
        assert w.desk.status(label) == status, label
    assert w.desk.owed() == (50 + 40 + 40) * USD and w.desk.owed(w.suspended) == 30 * USD
    assert w.escrow.insurerAccountOf(w.insurer2) == (0, 0)
    assert w.records.verifyInBatch(*leaf_args(w.batch_leaf), w.batch_proof, w.batch_id)
    w.assert_solvent()


@dataclass(frozen=True)
class Guarded:
    """An access-restricted state-changing function.

    `target(w, who)` gives (bound function, args, sender); the sender is `who` except for the
    signature entries, where `who` is the signer and the relayer sends. `allowed` names the callers
    entitled to it; `error(w, name, who)` is the exact revert any other caller must get; `event` is
    emitted by an entitled call and names the entitled party among its addresses.
    """

    name: str
    allowed: frozenset[str]
    target: Callable[[World, Any], tuple]
    error: ErrorFn
    event: str
    prepare: Callable[[World], Any] | None = None


@dataclass(frozen=True)
class Case:
    entry: Guarded
    caller: str

    @property
    def stateless(self) -> bool:
        return self.caller not in self.entry.allowed and self.entry.prepare is None

    def __str__(self) -> str:
        return f"{self.entry.name}-by-{self.caller}"

    def arrange(self, w: World) -> tuple[Any, tuple]:
        """The caller's account and the entry's (bound function, args, sender) for it, after the entry's
        `prepare` (if any) has run."""
        who = w.who[self.caller]
        if self.entry.prepare:
            self.entry.prepare(w)
        return who, self.entry.target(w, who)


def beneficiary(w: World, who):
    """Whom a role grant names: the caller itself (self-escalation), or a newcomer when the caller is admin."""
    return w.newcomer if who == w.admin else who


def _open_break_glass(w: World):
    return w.consent.openBreakGlass(w.patient, 3600, REASON, {"from": w.provider})


def _open_and_close_break_glass(w: World):
    _open_break_glass(w)
    return w.consent.closeBreakGlass(w.patient, w.provider, {"from": w.patient})


def _pause(w: World):
    return w.escrow.pause({"from": w.admin})


REGISTRAR = frozenset({"registrar"})
ADMIN = frozenset({"admin"})
PATIENT_SIDE = frozenset({"patient", "guardian"})
PROVIDERS = frozenset({"provider", "provider2"})
INSURERS = frozenset({"insurer", "insurer2"})


def role_entries(contract: str, attr: str, role: Callable[[World], Any], holder: str,
                 role_admin: Callable[[World], bytes] = admin_role) -> list[Guarded]:
    """grantRole, revokeRole and renounceRole of `contract` (the World's `attr`) on `role`, which the party
    named `holder` holds: granting and revoking are the role admin's (held by the world's admin),
    renouncing is the holder's own."""

    def call(function: str, account: Callable[[World, Any], Any]) -> Callable[[World, Any], tuple]:
        return lambda w, who: (getattr(getattr(w, attr), function), (role(w), account(w, who)), who)

    def held_by(w: World, who) -> Any:
        return getattr(w, holder)

    return [
        Guarded(f"{contract}.grantRole", ADMIN, call("grantRole", beneficiary), unauthorized(role_admin),
                "RoleGranted"),
        Guarded(f"{contract}.revokeRole", ADMIN, call("revokeRole", held_by), unauthorized(role_admin),
                "RoleRevoked"),
        Guarded(f"{contract}.renounceRole", frozenset({holder}), call("renounceRole", held_by), bad_confirmation,
                "RoleRevoked"),
    ]


def patient_side(function: str, grantee: str, event: str, prepare: Callable[[World], Any] | None = None) -> Guarded:
    """ConsentRegistry.`function`(patient, the World's `grantee`), the patient's or a guardian's to call."""
    return Guarded(f"ConsentRegistry.{function}", PATIENT_SIDE,
                   lambda w, who: (getattr(w.consent, function), (w.patient, getattr(w, grantee)), who),
                   not_patient_or_guardian, event, prepare)


GUARDED = [
    # ------------------------------------------------------------------ CareRegistry
    Guarded("CareRegistry.register", REGISTRAR,
            lambda w, who: (w.care.register, (w.newcomer, PROVIDER_ROLE, META), who),
            unauthorized(registrar_role), "PartyRegistered"),
    Guarded("CareRegistry.updateMetadata", REGISTRAR,
            lambda w, who: (w.care.updateMetadata, (w.provider, META), who),
            unauthorized(registrar_role), "PartyMetadataUpdated"),
    Guarded("CareRegistry.suspend", REGISTRAR,
            lambda w, who: (w.care.suspend, (w.provider, REASON), who),
            unauthorized(registrar_role), "PartySuspended"),
    # Issue 18: the governor's (the timelock in a deployment); a single registrar is refused.
    Guarded("CareRegistry.register(arbiter)", ADMIN,
            lambda w, who: (w.care.register, (w.newcomer, ARBITER_ROLE, META), who),
            unauthorized(governor_role), "PartyRegistered"),
    Guarded("CareRegistry.reinstate", ADMIN,
            lambda w, who: (w.care.reinstate, (w.suspended,), who),
            unauthorized(governor_role), "PartyReinstated"),
    Guarded("CareRegistry.assignArbiter", ADMIN,
            lambda w, who: (w.care.assignArbiter, (w.insurer2, w.arbiter), who),
            unauthorized(governor_role), "ArbiterAssigned"),
    # Issue 18 item 3: account migration is governed (timelocked in a deployment); to a fresh account.
    Guarded("CareRegistry.migrate", ADMIN,
            lambda w, who: (w.care.migrate, (w.provider2, w.newcomer), who),
            unauthorized(governor_role), "PartyMigrated"),
    *role_entries("CareRegistry", "care", lambda w: w.registrar_role, holder="registrar", role_admin=governor_role),
    *role_entries("CareRegistry", "care", governor_role, holder="admin"),
    Guarded("CareRegistry.setGatewayEndpoint", PROVIDERS | INSURERS,
            lambda w, who: (w.care.setGatewayEndpoint, (GATEWAY_URL,), who),
            not_custodian, "GatewayEndpointSet"),
    # ------------------------------------------------------------------ ConsentRegistry
    Guarded("ConsentRegistry.grant", PATIENT_SIDE,
            lambda w, who: (w.consent.grant, (w.patient, w.provider2, bit(TREAT), bit(LABS), 0, 0, DOC), who),
            not_patient_or_guardian, "ConsentGranted"),
    patient_side("revoke", "provider", "ConsentRevoked"),
    patient_side("closeBreakGlass", "provider", "BreakGlassClosed", prepare=_open_break_glass),
    Guarded("ConsentRegistry.openBreakGlass", PROVIDERS,
            lambda w, who: (w.consent.openBreakGlass, (w.patient, 3600, REASON), who),
            not_provider, "BreakGlassOpened"),
    Guarded("ConsentRegistry.setMaxBreakGlassDuration", ADMIN,
            lambda w, who: (w.consent.setMaxBreakGlassDuration, (3600,), who),
            unauthorized(admin_role), "MaxBreakGlassDurationSet"),
    *role_entries("ConsentRegistry", "consent", lambda w: ADMIN_ROLE, holder="admin"),
    Guarded("ConsentRegistry.removeGuardian", frozenset({"patient"}),
            lambda w, who: (w.consent.removeGuardian, (w.guardian,), who),
            lambda w, name, who: error_message(ConsentRegistry, "GuardianNotAppointed", who.address,
                                              w.guardian.address),
            "GuardianRemoved"),
    Guarded("ConsentRegistry.grantBySig(signer)", PATIENT_SIDE, signed_grant, not_patient_or_guardian,
            "ConsentGranted"),
    patient_side("cancelSignatures", "provider2", "SignaturesCancelled"),
    patient_side("allowBreakGlass", "provider", "BreakGlassAllowed", prepare=_open_and_close_break_glass),
    Guarded("ConsentRegistry.revokeBySig(signer)", PATIENT_SIDE, signed_revoke, not_patient_or_guardian,
            "ConsentRevoked"),
    # Issue 14: the guardian changes are the patient's alone, so any other signer is an invalid signature.
    Guarded("ConsentRegistry.appointGuardianBySig(signer)", frozenset({"patient"}), signed_guardian_change(True),
            lambda w, name, who: error_message(ConsentRegistry, "InvalidSignature", w.patient.address),
            "GuardianAppointed"),
    Guarded("ConsentRegistry.removeGuardianBySig(signer)", frozenset({"patient"}), signed_guardian_change(False),
            lambda w, name, who: error_message(ConsentRegistry, "InvalidSignature", w.patient.address),
            "GuardianRemoved"),
    Guarded("ConsentRegistry.closeBreakGlassBySig(signer)", PATIENT_SIDE, signed_break_glass(True),
            not_patient_or_guardian, "BreakGlassClosed", prepare=_open_break_glass),
    Guarded("ConsentRegistry.allowBreakGlassBySig(signer)", PATIENT_SIDE, signed_break_glass(False),
            not_patient_or_guardian, "BreakGlassAllowed", prepare=_open_and_close_break_glass),
    # ------------------------------------------------------------------ RecordRegistry
    Guarded("RecordRegistry.anchor", frozenset({"provider"}),
            lambda w, who: (w.records.anchor, (rid("m:new", w.patient), h("m:new:v1"), NOTES), who),
            unless(not_provider, provider2=lambda w, name, who: error_message(
                RecordRegistry, "NoTreatmentRelationship", w.patient.address, who.address, NOTES)),
            "RecordAnchored"),
    Guarded("RecordRegistry.amend", frozenset({"provider"}),
            lambda w, who: (w.records.amend, (w.r1.record_id, w.r1.content_hash, h("m:r1:v2")), who),
            unless(not_provider, provider2=lambda w, name, who: error_message(
                RecordRegistry, "NoTreatmentRelationship", w.patient.address, who.address, NOTES)),
            "RecordAmended"),
    Guarded("RecordRegistry.attestBatchRecord", frozenset({"provider", "patient"}),
            lambda w, who: (w.records.attestBatchRecord, (*leaf_args(w.batch_leaf), w.batch_proof, w.batch_id), who),
            lambda w, name, who: error_message(RecordRegistry, "NotAuthorOrPatient", w.batch_leaf.record_id,
                                               who.address),
            "RecordAttested"),
    Guarded("RecordRegistry.anchorBatch", PROVIDERS,
            lambda w, who: (w.records.anchorBatch, (h("m:root"), 2, MANIFEST), who),
            not_provider, "BatchAnchored"),
    Guarded("RecordRegistry.logAccess", frozenset({"provider", "insurer"}),
            lambda w, who: (w.records.logAccess, (w.patient, w.r1.record_id, HPAYMT), who),
            unless(not_provider_or_insurer, **{name: lambda w, name, who: error_message(
                RecordRegistry, "NoConsent", w.patient.address, who.address, HPAYMT, NOTES)
                for name in ("provider2", "insurer2")}),
            "AccessLogged"),
    Guarded("RecordRegistry.logAccessBatch", PROVIDERS | INSURERS,
            lambda w, who: (w.records.logAccessBatch, (h("m:log"), 3), who),
            not_provider_or_insurer, "AccessLogBatchAnchored"),
    # ------------------------------------------------------------------ ClaimEscrow
    Guarded("ClaimEscrow.setTerms", INSURERS,
            lambda w, who: (w.escrow.setTerms, (terms(),), who),
            not_active(INSURER_ROLE), "InsurerTermsSet"),
    Guarded("ClaimEscrow.setCoverage", INSURERS,
            lambda w, who: (w.escrow.setCoverage, (w.patient2, h("m:policy"), 0, 2**40 - 1, 0, 0, 0, 0), who),
            not_active(INSURER_ROLE), "CoverageSet"),
    Guarded("ClaimEscrow.endCoverage", frozenset({"insurer"}),
            lambda w, who: (w.escrow.endCoverage, (w.patient,), who),
            unless(not_active(INSURER_ROLE), insurer2=lambda w, name, who: error_message(
                ClaimEscrow, "CoverageInactive", who.address, w.patient.address)),
            "CoverageEnded"),
    Guarded("ClaimEscrow.deposit", INSURERS,
            lambda w, who: (w.escrow.deposit, (10 * USD,), who),
            not_active(INSURER_ROLE), "Deposited"),
    Guarded("ClaimEscrow.depositWithPermit", INSURERS,  # an expired permit: the allowance carries it
            lambda w, who: (w.escrow.depositWithPermit, (10 * USD, 0, 27, h("r"), h("s")), who),
            not_active(INSURER_ROLE), "Deposited"),
    Guarded("ClaimEscrow.withdrawFree", frozenset({"insurer"}),
            lambda w, who: (w.escrow.withdrawFree, (USD,), who),
            unless(not_active(INSURER_ROLE), insurer2=lambda w, name, who: error_message(
                ClaimEscrow, "InsufficientEscrow", who.address, USD, 0)),
            "FundsWithdrawn"),
    Guarded("ClaimEscrow.setPushPayments", PROVIDERS,
            lambda w, who: (w.escrow.setPushPayments, (True,), who),
            not_active(PROVIDER_ROLE), "PushPaymentsSet"),
    Guarded("ClaimEscrow.submitClaim", frozenset({"provider"}),
            lambda w, who: (w.escrow.submitClaim,
                            (submission(control("m:new"), w.patient, w.insurer, 10 * USD, [w.r2]),), who),
            unless(not_active(PROVIDER_ROLE), provider2=lambda w, name, who: error_message(
                ClaimEscrow, "MissingConsent", w.patient.address, who.address, TREAT, NOTES)),
            "ClaimSubmitted"),
    # Issue 13: dispute checks no party status (open to a suspended provider); anyone else has no such claim.
    Guarded("ClaimEscrow.dispute", frozenset({"provider"}),
            lambda w, who: (w.escrow.dispute, (control("contestable"), EVIDENCE), who),
            lambda w, name, who: error_message(
                ClaimEscrow, "InvalidStatus", w.cid("contestable", who), int(ClaimStatus.NONE)),
            "ClaimDisputed"),
    Guarded("ClaimEscrow.withdraw", frozenset({"provider"}),
            lambda w, who: (w.escrow.withdraw, (USD,), who),
            unless(not_active(PROVIDER_ROLE), provider2=lambda w, name, who: error_message(
                ClaimEscrow, "InsufficientOwed", who.address, USD, 0)),
            "PayoutWithdrawn"),
    Guarded("ClaimEscrow.withdrawAll", frozenset({"provider"}),
            lambda w, who: (w.escrow.withdrawAll, (), who),
            unless(not_active(PROVIDER_ROLE), provider2=lambda w, name, who: error_message(ClaimEscrow, "ZeroAmount")),
            "PayoutWithdrawn"),
    Guarded("ClaimEscrow.withdrawTo", frozenset({"provider"}),
            lambda w, who: (w.escrow.withdrawTo, (w.stranger,), who),
            unless(not_active(PROVIDER_ROLE), provider2=lambda w, name, who: error_message(ClaimEscrow, "ZeroAmount")),
            "PayoutWithdrawn"),
    Guarded("ClaimEscrow.adjudicate", frozenset({"insurer"}),
            lambda w, who: (w.escrow.adjudicate, (w.provider, control("open"), 0, 100 * USD, (0, 0, 0), []), who),
            lambda w, name, who: error_message(ClaimEscrow, "NotClaimInsurer", w.cid("open"), who.address),
            "ClaimAdjudicated"),
    # Issue 18: only the active arbiter assigned to the claim's insurer, not any active arbiter.
    Guarded("ClaimEscrow.resolveDispute", frozenset({"arbiter"}),
            lambda w, who: (w.escrow.resolveDispute, (w.provider, control("disputed"), 10 * USD, DECISION), who),
            lambda w, name, who: error_message(ClaimEscrow, "NotAssignedArbiter", who.address, w.insurer.address),
            "DisputeResolved"),
    Guarded("ClaimEscrow.pause", ADMIN, lambda w, who: (w.escrow.pause, (), who),
            unauthorized(pauser_role), "EscrowPaused"),
    Guarded("ClaimEscrow.unpause", ADMIN, lambda w, who: (w.escrow.unpause, (), who),
            unauthorized(pauser_role), "EscrowUnpaused", prepare=_pause),
    *role_entries("ClaimEscrow", "escrow", lambda w: w.pauser_role, holder="admin"),
]

FORBIDDEN = [Case(entry, caller) for entry in GUARDED for caller in CALLERS if caller not in entry.allowed]
ENTITLED = [Case(entry, caller) for entry in GUARDED for caller in CALLERS if caller in entry.allowed]


def test_matrix_covers_every_restricted_function(world):
    """Every non-view ABI function of the four contracts is in the matrix, or in the short list of
    functions that are open to anyone / scoped to the caller itself (tested below)."""
    open_or_self_scoped = {
        "CareRegistry": {"publishEncryptionKey", "clearGatewayEndpoint"},
        "ConsentRegistry": {"appointGuardian"},
        "RecordRegistry": set(),
        "ClaimEscrow": {"finalizeDeemed", "release"},
    }
    matrix = {entry.name.split("(")[0] for entry in GUARDED}
    for contract in (world.care, world.consent, world.records, world.escrow):
        name = contract._name
        mutating = {f["name"] for f in contract.abi if f["type"] == "function"
                    and f["stateMutability"] not in ("view", "pure")}
        assert mutating == {m.split(".")[1] for m in matrix if m.startswith(name + ".")} | open_or_self_scoped[name]


@pytest.mark.parametrize("case", FORBIDDEN, ids=str)
def test_forbidden_caller_gets_the_exact_error(world, case):
    who, (function, args, sender) = case.arrange(world)
    with brownie.reverts(case.entry.error(world, case.caller, who)):
        function.call(*args, {"from": sender})


@pytest.mark.parametrize("case", ENTITLED, ids=str)
def test_entitled_caller_succeeds(world, case):
    who, (function, args, sender) = case.arrange(world)
    tx = function(*args, {"from": sender})
    assert tx.status == 1
    parties = addresses(tx.events[case.entry.event])
    assert who.address in parties  # the event names the entitled party as the actor ...
    if sender != who:
        assert sender.address not in parties  # ... never the relayer that sent it


def test_clear_gateway_endpoint_is_scoped_to_the_caller(world):
    """Anyone may call clearGatewayEndpoint (a suspended party too), but it withdraws only the caller's own."""
    w = world
    w.care.setGatewayEndpoint(GATEWAY_URL, {"from": w.provider})
    for name in CALLERS:
        if name != "provider":
            w.care.clearGatewayEndpoint({"from": w.who[name]})
    assert w.care.gatewayEndpointOf(w.provider) == GATEWAY_URL
    w.care.clearGatewayEndpoint({"from": w.provider})
    assert w.care.gatewayEndpointOf(w.provider) == ""


def test_nobody_makes_himself_a_patients_guardian(world):
    """appointGuardian is scoped to the caller: whatever anyone appoints, only the patient's own
    appointments make guardians of the patient."""
    w = world
    for name in CALLERS:
        if name in PATIENT_SIDE:
            continue
        who = w.who[name]
        w.consent.appointGuardian(w.patient, {"from": who})  # makes the patient a guardian of `who`, nothing more
        assert not w.consent.isGuardian(w.patient, who)
        with brownie.reverts(not_patient_or_guardian(w, name, who)):
            w.consent.grant(w.patient, w.provider2, 1, 1, 0, 0, DOC, {"from": who})
    assert w.consent.isGuardian(w.patient, w.guardian)


def test_open_functions_pay_the_rightful_party_whoever_calls(world):
    """finalizeDeemed and release are open to anyone: every party can call them (checked by eth_call),
    and the effect is the same whoever sends it - a stranger gains nothing. (attestBatchRecord is the
    author's or the patient's since interface 2: it is in the matrix.)"""
    w = world
    sleep(PROMPT_PAY + 1)  # past "deemed"'s prompt-pay deadline and "denied"'s dispute window
    open_calls = [
        (w.escrow.finalizeDeemed, (w.provider, control("deemed"))),
        (w.escrow.release, (w.provider, control("denied"))),
    ]
    for function, args in open_calls:
        for name in CALLERS:
            function.call(*args, {"from": w.who[name]})
    owed, free, stranger_balance = w.desk.owed(), w.desk.free(), w.usdc.balanceOf(w.stranger)
    for function, args in open_calls:
        function(*args, {"from": w.stranger})
    assert w.desk.owed() == owed + 10 * USD  # the deemed approval went to the provider
    assert w.desk.free() == free - 10 * USD + 20 * USD  # ... out of, and the release back to, the insurer
    assert w.usdc.balanceOf(w.stranger) == stranger_balance
    assert w.escrow.providerAccountOf(w.stranger) == (0, 0, False)
    assert w.escrow.insurerAccountOf(w.stranger) == (0, 0)
    w.assert_solvent()


def test_a_revoked_registrar_and_pauser_lose_their_powers(world):
    w = world
    w.care.revokeRole(w.registrar_role, w.registrar, {"from": w.admin})
    with brownie.reverts(unauthorized(registrar_role)(w, "registrar", w.registrar)):
        w.care.suspend(w.provider, REASON, {"from": w.registrar})
    w.escrow.grantRole(w.pauser_role, w.stranger, {"from": w.admin})
    w.escrow.pause({"from": w.stranger})
    w.escrow.renounceRole(w.pauser_role, w.stranger, {"from": w.stranger})
    with brownie.reverts(unauthorized(pauser_role)(w, "stranger", w.stranger)):
        w.escrow.unpause({"from": w.stranger})
    w.escrow.unpause({"from": w.admin})


def test_no_account_grants_itself_a_role_in_any_contract(world):
    """Issue 18 item 3 (#13 finding 7's separation of powers): the ConsentRegistry and the ClaimEscrow refuse a
    self-grant as the CareRegistry does, the role's own admin included; granting another account still works."""
    w = world
    cases = [(w.care, governor_role(w)), (w.care, w.registrar_role), (w.consent, ADMIN_ROLE),
             (w.escrow, ADMIN_ROLE), (w.escrow, w.pauser_role)]
    for contract, role in cases:
        with brownie.reverts(error_message(contract, "SelfGrant", w.admin.address, role)):
            contract.grantRole(role, w.admin, {"from": w.admin})
    w.consent.grantRole(ADMIN_ROLE, w.stranger, {"from": w.admin})
    assert w.consent.hasRole(ADMIN_ROLE, w.stranger)
    w.escrow.grantRole(w.pauser_role, w.stranger, {"from": w.admin})
    assert w.escrow.hasRole(w.pauser_role, w.stranger)
