"""Stateful property test: a Python model of consents, guardians, break-glass, registry status and time
agrees with `ConsentRegistry.hasConsent` after random sequences of actions.

Time is modelled on a virtual clock advanced in whole hours with `chain.mine(timestamp=...)`. Every
validity bound and break-glass window is placed half an hour off that grid, so the few seconds of
wall-clock drift between blocks can never move a check across a bound.
"""

from dataclasses import dataclass

import brownie
from brownie import ConsentRegistry, chain
from eth_utils import keccak
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from support.errors import error_message, reverts_with
from support.stateful import stateful_settings
from support.vocabulary import ETREAT, INSURER_ROLE, PROVIDER_ROLE
from support.world import key

from medledger.eip712 import (
    BreakGlassRequest,
    ConsentDomain,
    GuardianRequest,
    allow_break_glass_typed_data,
    appoint_guardian_typed_data,
    close_break_glass_typed_data,
    remove_guardian_typed_data,
    sign_typed_data,
)

HOUR = 3600
HALF = 1800
REASON = keccak(text="ER")
DOC = keccak(text="fhir:Consent/model")
# (purpose, data class) pairs the invariant cycles through, including out-of-range values.
PROBES = [(p, c) for p in range(8) for c in range(16)]
PERIOD, CAP = 30 * 24 * HOUR, 3
# Issue 14: each guardian / break-glass rule runs the direct function or its signed variant, relayed.
ACTIONS = {  # kind -> (direct function, ...BySig function, typed-data builder)
    "appoint": ("appointGuardian", "appointGuardianBySig", appoint_guardian_typed_data),
    "remove": ("removeGuardian", "removeGuardianBySig", remove_guardian_typed_data),
    "close": ("closeBreakGlass", "closeBreakGlassBySig", close_break_glass_typed_data),
    "allow": ("allowBreakGlass", "allowBreakGlassBySig", allow_break_glass_typed_data),
}


@dataclass(frozen=True)
class ModelConsent:
    purposes: int
    classes: int
    valid_from: int
    valid_until: int

    def live(self, purpose: int, cls: int, now: int) -> bool:
        return (
            bool(self.purposes >> purpose & 1 and self.classes >> cls & 1)
            and self.valid_from <= now
            and (self.valid_until == 0 or now < self.valid_until)
        )


class ConsentMachine(RuleBasedStateMachine):
    """Rules mirror every state-changing entry point; `expected_has_consent` is the spec in Python."""

    def __init__(cls, consent, care, registrar, governor, patients, grantees, guardians, roles):
        # brownie's state_machine calls __init__ once, as a class method, with the fixtures.
        cls.consent = consent
        cls.care = care
        cls.registrar = registrar
        cls.governor = governor  # reinstates (issue 18: a single registrar suspends, only the governor reinstates)
        cls.patients = patients
        cls.grantees = grantees
        cls.guardians = guardians
        cls.roles = roles  # address -> registered role (PROVIDER_ROLE / INSURER_ROLE); absent = unregistered

    def setup(self):
        # Called by brownie for every example, right after reverting the chain to the start snapshot.
        chain.mine()
        self.now = chain[-1].timestamp  # the virtual clock; the chain runs at most seconds ahead
        self.consents: dict[tuple[str, str], ModelConsent] = {}
        self.guardianships: set[tuple[str, str]] = set()
        self.windows: dict[tuple[str, str], tuple[int, int]] = {}  # -> (virtual expiry, on-chain expiry)
        self.suspended: set[str] = set()
        # Interface 2: a closed window blocks its provider until allowed; 3 windows per 30 days.
        self.blocked: set[tuple[str, str]] = set()
        self.periods: dict[tuple[str, str], tuple[int, int, int]] = {}  # -> (virtual start, chain start, openings)
        self.probe = 0

    # ------------------------------------------------------------------ model

    def authorised(self, patient, actor) -> bool:
        return actor == patient or (patient.address, actor.address) in self.guardianships

    def active_role(self, account) -> int:
        return 0 if account.address in self.suspended else self.roles.get(account.address, 0)

    def window_open(self, patient, provider) -> bool:
        return self.now < self.windows.get((patient.address, provider.address), (0, 0))[0]

    def expected_has_consent(self, patient, grantee, purpose: int, cls: int) -> bool:
        record = self.consents.get((patient.address, grantee.address))
        if record is not None and record.live(purpose, cls, self.now):
            return self.active_role(grantee) != 0
        # Break-glass covers every defined class bit 0-10 (interface 3: they are per-pseudonym labels, and
        # the gateway excludes the sensitive classes); never undefined bits.
        if purpose == ETREAT and cls <= 10 and self.window_open(patient, grantee):
            return self.active_role(grantee) == PROVIDER_ROLE
        return False

    def not_authorised(self, patient, actor) -> str:
        return error_message(ConsentRegistry, "NotPatientOrGuardian", patient.address, actor.address)

    def act(self, kind: str, patient, counterparty, actor, signed: bool):
        """`kind` on the (patient, guardian or provider) pair by `actor`: sent by `actor`, or signed by `actor`
        and relayed by the registrar (the two paths must be indistinguishable to the model)."""
        direct, by_sig, typed_data = ACTIONS[kind]
        guardian_change = kind in ("appoint", "remove")
        if not signed:
            args = (counterparty,) if guardian_change else (patient, counterparty)
            return getattr(self.consent, direct)(*args, {"from": actor})
        nonce, deadline = self.consent.nonces(patient, counterparty), self.now + HOUR
        if guardian_change:
            request = GuardianRequest(patient.address, counterparty.address, nonce, deadline)
            args = (patient, counterparty, deadline)
        else:
            request = BreakGlassRequest(patient.address, counterparty.address, actor.address, nonce, deadline)
            args = (patient, counterparty, actor, deadline)
        signature = sign_typed_data(key(actor), typed_data(ConsentDomain(chain.id, self.consent.address), request))
        return getattr(self.consent, by_sig)(*args, signature, {"from": self.registrar})

    # ------------------------------------------------------------------ rules

    @rule(
        p=st.integers(0, 1),
        g=st.integers(0, 3),
        a=st.integers(0, 3),
        purposes=st.integers(1, 0x3F),
        classes=st.integers(1, 0x7FF),
        start=st.one_of(st.none(), st.integers(-3, 3)),
        length=st.one_of(st.none(), st.integers(-1, 4)),
    )
    def grant(self, p, g, a, purposes, classes, start, length):
        patient, grantee = self.patients[p], self.grantees[g]
        actor = [patient, *self.guardians, grantee][a]
        valid_from = 0 if start is None else self.now + start * HOUR + HALF
        effective_from = valid_from or self.now + HALF
        valid_until = 0 if length is None else effective_from + length * HOUR
        args = (patient, grantee, purposes, classes, valid_from, valid_until, DOC, {"from": actor})
        if not self.authorised(patient, actor):
            with brownie.reverts(self.not_authorised(patient, actor)):
                self.consent.grant(*args)
        elif valid_until != 0 and (valid_until <= valid_from or valid_until <= self.now):
            with reverts_with(ConsentRegistry, "InvalidValidity", valid_from, valid_until):
                self.consent.grant(*args)
        else:
            self.consent.grant(*args)
            self.consents[patient.address, grantee.address] = ModelConsent(
                purposes, classes, valid_from, valid_until
            )

    @rule(p=st.integers(0, 1), g=st.integers(0, 3), a=st.integers(0, 3))
    def revoke(self, p, g, a):
        patient, grantee = self.patients[p], self.grantees[g]
        actor = [patient, *self.guardians, grantee][a]
        if not self.authorised(patient, actor):
            with brownie.reverts(self.not_authorised(patient, actor)):
                self.consent.revoke(patient, grantee, {"from": actor})
        elif (patient.address, grantee.address) not in self.consents:
            with reverts_with(ConsentRegistry, "ConsentNotFound", patient.address, grantee.address):
                self.consent.revoke(patient, grantee, {"from": actor})
        else:
            self.consent.revoke(patient, grantee, {"from": actor})
            del self.consents[patient.address, grantee.address]

    @rule(p=st.integers(0, 1), gd=st.integers(0, 1), appoint=st.booleans(), signed=st.booleans())
    def set_guardian(self, p, gd, appoint, signed):
        patient, guardian = self.patients[p], self.guardians[gd]
        pair = (patient.address, guardian.address)
        kind = "appoint" if appoint else "remove"
        if appoint and pair in self.guardianships:
            with reverts_with(ConsentRegistry, "GuardianAlreadyAppointed", patient.address, guardian.address):
                self.act(kind, patient, guardian, patient, signed)
        elif appoint:
            self.act(kind, patient, guardian, patient, signed)
            self.guardianships.add(pair)
        elif pair not in self.guardianships:
            with reverts_with(ConsentRegistry, "GuardianNotAppointed", patient.address, guardian.address):
                self.act(kind, patient, guardian, patient, signed)
        else:
            self.act(kind, patient, guardian, patient, signed)
            self.guardianships.discard(pair)

    @rule(p=st.integers(0, 1), g=st.integers(0, 3), hours=st.integers(0, 72))
    def open_break_glass(self, p, g, hours):
        patient, provider = self.patients[p], self.grantees[g]
        duration = hours * HOUR + HALF
        key = (patient.address, provider.address)
        if self.active_role(provider) != PROVIDER_ROLE:
            with reverts_with(ConsentRegistry, "NotActiveProvider", provider.address):
                self.consent.openBreakGlass(patient, duration, REASON, {"from": provider})
        elif duration > 72 * HOUR:
            with reverts_with(ConsentRegistry, "InvalidBreakGlassDuration", duration, 72 * HOUR):
                self.consent.openBreakGlass(patient, duration, REASON, {"from": provider})
        elif self.window_open(patient, provider):
            on_chain_expiry = self.windows[key][1]
            with reverts_with(ConsentRegistry, "BreakGlassAlreadyOpen", patient.address,
                    provider.address,
                    on_chain_expiry):
                self.consent.openBreakGlass(patient, duration, REASON, {"from": provider})
        elif key in self.blocked:
            with reverts_with(ConsentRegistry, "BreakGlassBlocked", patient.address, provider.address):
                self.consent.openBreakGlass(patient, duration, REASON, {"from": provider})
        else:
            start, chain_start, openings = self.periods.get(key, (0, 0, 0))
            if self.now - start == PERIOD:
                return  # exactly on the period's end: the chain's seconds of drift decide, so skip
            if self.now > start + PERIOD:
                start, chain_start, openings = self.now, 0, 0
            if openings >= CAP:
                with reverts_with(ConsentRegistry, "BreakGlassLimitReached", patient.address, provider.address,
                                  chain_start + PERIOD):
                    self.consent.openBreakGlass(patient, duration, REASON, {"from": provider})
                return
            tx = self.consent.openBreakGlass(patient, duration, REASON, {"from": provider})
            self.windows[key] = (self.now + duration, tx.events["BreakGlassOpened"]["expiresAt"])
            self.periods[key] = (start, chain_start or tx.timestamp, openings + 1)

    @rule(p=st.integers(0, 1), g=st.integers(0, 3), a=st.integers(0, 3), signed=st.booleans())
    def close_break_glass(self, p, g, a, signed):
        patient, provider = self.patients[p], self.grantees[g]
        actor = [patient, *self.guardians, provider][a]
        if not self.authorised(patient, actor):
            with brownie.reverts(self.not_authorised(patient, actor)):
                self.act("close", patient, provider, actor, signed)
        elif not self.window_open(patient, provider):
            with reverts_with(ConsentRegistry, "BreakGlassNotOpen", patient.address, provider.address):
                self.act("close", patient, provider, actor, signed)
        else:
            self.act("close", patient, provider, actor, signed)
            del self.windows[patient.address, provider.address]
            self.blocked.add((patient.address, provider.address))

    @rule(p=st.integers(0, 1), g=st.integers(0, 3), a=st.integers(0, 3), signed=st.booleans())
    def allow_break_glass(self, p, g, a, signed):
        patient, provider = self.patients[p], self.grantees[g]
        actor = [patient, *self.guardians, provider][a]
        pair = (patient.address, provider.address)
        if not self.authorised(patient, actor):
            with brownie.reverts(self.not_authorised(patient, actor)):
                self.act("allow", patient, provider, actor, signed)
        elif pair not in self.blocked:
            with reverts_with(ConsentRegistry, "BreakGlassNotBlocked", patient.address, provider.address):
                self.act("allow", patient, provider, actor, signed)
        else:
            self.act("allow", patient, provider, actor, signed)
            self.blocked.discard(pair)

    @rule(g=st.integers(0, 2))
    def toggle_suspension(self, g):
        party = self.grantees[g]  # providers and the insurer; the stranger is never registered
        if party.address in self.suspended:
            self.care.reinstate(party, {"from": self.governor})
            self.suspended.discard(party.address)
        else:
            self.care.suspend(party, REASON, {"from": self.registrar})
            self.suspended.add(party.address)

    @rule(hours=st.integers(1, 30))
    def sleep(self, hours):
        self.now += hours * HOUR
        chain.mine(timestamp=self.now)

    @rule(p=st.integers(0, 1), g=st.integers(0, 3), purpose=st.integers(0, 7), cls=st.integers(0, 15))
    def check(self, p, g, purpose, cls):
        patient, grantee = self.patients[p], self.grantees[g]
        assert self.consent.hasConsent(patient, grantee, purpose, cls) == self.expected_has_consent(
            patient, grantee, purpose, cls
        )

    @invariant()
    def has_consent_matches_model(self):
        purpose, cls = PROBES[self.probe % len(PROBES)]
        self.probe += 7  # co-prime with len(PROBES): every probe gets visited
        for patient in self.patients:
            for grantee in self.grantees:
                actual = self.consent.hasConsent(patient, grantee, purpose, cls)
                assert actual == self.expected_has_consent(patient, grantee, purpose, cls), (
                    patient,
                    grantee,
                    purpose,
                    cls,
                )


def test_consent_model(
    state_machine,
    consent,
    care,
    registrar,
    admin,
    patient,
    patient2,
    provider,
    provider2,
    insurer,
    stranger,
    guardian,
):
    roles = {provider.address: PROVIDER_ROLE, provider2.address: PROVIDER_ROLE, insurer.address: INSURER_ROLE}
    state_machine(
        ConsentMachine,
        consent,
        care,
        registrar,
        admin,
        [patient, patient2],
        [provider, provider2, insurer, stranger],
        [guardian, stranger],
        roles,
        settings=stateful_settings(20, 25),
    )
