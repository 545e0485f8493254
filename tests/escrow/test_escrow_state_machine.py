"""Stateful property test of ClaimEscrow money flows: random sequences of deposits, withdrawals,
submissions, replacements, voids, adjudications, deemed approvals, disputes, awards, releases, push
opt-ins and time jumps across two insurers and two providers, checked against a Python model.

Invariants after every step:
- solvency: token balance of the escrow == sum(insurer free) + sum(encumbered) + sum(owed) + sum(deemed
  pools' funded), and every deemed pool matches the model (issue 13: deemed approved, unfunded);
- no claim is ever paid twice: each claim is adjudicated at most once and resolved at most once, it is
  never paid more than it billed, and every provider's owed + paid-out equals the sum of the
  payments of its claims as seen in events.
"""

from dataclasses import dataclass, field

import brownie
from brownie import ClaimEscrow, chain
from brownie.test import strategy
from support.errors import error_message, reverts_with
from support.escrow import (
    CARC_MAX_ALLOWABLE,
    DAY,
    DISPUTE_WINDOW,
    PROMPT_PAY,
    USD,
    Desk,
    control,
    grant,
    h,
    submission,
    terms,
)
from support.stateful import stateful_settings
from support.vocabulary import (
    ALL_CLASSES,
    BILLING,
    HPAYMT,
    INSURER_ROLE,
    NOTES,
    REPLACEMENT,
    TREAT,
    VOID,
    ClaimStatus,
    bit,
)

MARGIN = 120  # seconds: actions this close to a deadline are skipped (block times may drift a little)
RECORDS = 24


@dataclass
class ModelClaim:
    label: str
    provider: object
    insurer: object
    billed: int
    status: ClaimStatus = ClaimStatus.SUBMITTED
    deadline: int = 0
    revision: int = 0
    contested: int = 0
    paid: int = 0
    adjudications: int = 0
    resolutions: int = 0


@dataclass
class Model:
    free: dict = field(default_factory=dict)
    encumbered: dict = field(default_factory=dict)
    unpaid: dict = field(default_factory=dict)  # deemed pool (issue 13): unfunded deemed claims
    funded: dict = field(default_factory=dict)  # ... and what is set aside for them
    owed: dict = field(default_factory=dict)
    paid_out: dict = field(default_factory=dict)
    push: dict = field(default_factory=dict)
    claims: dict = field(default_factory=dict)  # claimId -> ModelClaim
    credited: dict = field(default_factory=dict)  # provider -> sum of payments seen in events


class EscrowMachine:
    st_index = strategy("uint8", max_value=1)
    st_pick = strategy("uint16")
    st_amount = strategy("uint256", min_value=1, max_value=5_000 * USD)
    st_pct = strategy("uint8", max_value=100)
    st_days = strategy("uint8", min_value=1, max_value=20)

    def __init__(cls, escrow, usdc, insurers, providers, arbiter, patient, pool):
        cls.escrow, cls.usdc = escrow, usdc
        cls.insurers, cls.providers, cls.arbiter, cls.patient = insurers, providers, arbiter, patient
        cls.pool = pool  # pre-anchored records per provider

    def setup(self):
        self.m = Model()
        for insurer in self.insurers:
            self.m.free[insurer] = self.escrow.insurerAccountOf(insurer)[0]
            self.m.encumbered[insurer] = 0
            self.m.unpaid[insurer] = self.m.funded[insurer] = 0
        for provider in self.providers:
            self.m.owed[provider] = self.m.paid_out[provider] = self.m.credited[provider] = 0
            self.m.push[provider] = False
        self.serial = 0

    # ------------------------------------------------------------------ helpers

    def now(self) -> int:
        return self.escrow.escrowTime()

    def pick(self, pick: int, status: ClaimStatus):
        candidates = [cid for cid, c in self.m.claims.items() if c.status == status]
        return candidates[pick % len(candidates)] if candidates else None

    def credit(self, claim: ModelClaim, amount: int, tx) -> None:
        claim.paid += amount
        provider = claim.provider
        self.m.credited[provider] += amount
        if amount == 0:
            return
        if self.m.push[provider]:
            assert tx.events["PaymentPushed"]["amount"] == amount
            self.m.paid_out[provider] += amount
        else:
            self.m.owed[provider] += amount

    def initialize_claims(self, st_amount):
        """Every run starts with a few open claims, two per provider, one per insurer."""
        for index in range(4):
            self.rule_submit(index % 2, index // 2, st_amount // (index + 1) + 1)

    # ------------------------------------------------------------------ insurers

    def rule_deposit(self, st_index, st_amount):
        insurer = self.insurers[st_index]
        self.usdc.mint(insurer, st_amount, {"from": insurer})
        self.usdc.approve(self.escrow, st_amount, {"from": insurer})
        self.escrow.deposit(st_amount, {"from": insurer})
        set_aside = min(st_amount, self.m.unpaid[insurer] - self.m.funded[insurer])  # deemed pool first
        self.m.funded[insurer] += set_aside
        self.m.free[insurer] += st_amount - set_aside

    def rule_pay_deemed_unfunded(self, st_pick):
        """An unfunded deemed claim is paid from the insurer's deemed pool once it holds enough."""
        cid = self.pick(st_pick, ClaimStatus.DEEMED_UNFUNDED)
        if cid is None:
            return
        c = self.m.claims[cid]
        funded = self.m.funded[c.insurer]
        if c.billed > funded:
            with reverts_with(ClaimEscrow, "InsufficientEscrow", c.insurer.address, c.billed, funded):
                self.escrow.finalizeDeemed(c.provider, control(c.label), {"from": self.arbiter})
            return
        tx = self.escrow.finalizeDeemed(c.provider, control(c.label), {"from": self.arbiter})
        self.m.funded[c.insurer] -= c.billed
        self.m.unpaid[c.insurer] -= c.billed
        self.m.free[c.insurer] += c.billed  # _book takes it from free again
        self._book(c, tx, c.billed, 0)

    def rule_withdraw_free(self, st_index, st_pct):
        insurer = self.insurers[st_index]
        amount = self.m.free[insurer] * st_pct // 100
        if amount == 0:
            with reverts_with(ClaimEscrow, "ZeroAmount"):
                self.escrow.withdrawFree(0, {"from": insurer})
            return
        self.escrow.withdrawFree(amount, {"from": insurer})
        self.m.free[insurer] -= amount

    def rule_over_withdraw_free(self, st_index):
        insurer = self.insurers[st_index]
        free = self.m.free[insurer]
        expected = error_message(ClaimEscrow, "InsufficientEscrow", insurer.address, free + 1, free)
        with brownie.reverts(expected):
            self.escrow.withdrawFree(free + 1, {"from": insurer})

    # ------------------------------------------------------------------ providers

    def rule_submit(self, st_index, st_pick, st_amount):
        provider = self.providers[st_index]
        insurer = self.insurers[st_pick % 2]
        self.serial += 1
        label = f"s{self.serial}"
        record = self.pool[provider][self.serial % RECORDS]
        service = self.serial  # a fresh (record, service) pair every time
        tx = self.escrow.submitClaim(
            submission(control(label), self.patient, insurer, st_amount, [record], service=service), {"from": provider}
        )
        cid = bytes(self.escrow.claimIdOf(provider, control(label)))
        deadline = tx.events["ClaimSubmitted"]["deadline"]
        self.m.claims[cid] = ModelClaim(label, provider, insurer, st_amount, deadline=deadline)

    def rule_submit_another(self, st_index, st_pick, st_amount):
        self.rule_submit(st_index, st_pick, st_amount)

    def rule_advance(self, st_pick, st_pct, st_index):
        """Moves a random unfinished claim one step along its natural path."""
        open_states = (ClaimStatus.SUBMITTED, ClaimStatus.CONTESTABLE, ClaimStatus.DISPUTED)
        live = [cid for cid, c in self.m.claims.items() if c.status in open_states]
        if not live:
            return
        cid = live[st_pick % len(live)]
        status = self.m.claims[cid].status
        if status == ClaimStatus.SUBMITTED:
            self._adjudicate_or_deem(cid, st_pct, st_index)
        elif status == ClaimStatus.CONTESTABLE:
            self._dispute_or_release(cid)
        else:
            self._resolve(cid, st_pct)

    def rule_advance_again(self, st_pick, st_pct, st_index):
        self.rule_advance(st_pick, st_pct, st_index)

    def rule_advance_once_more(self, st_pick, st_pct, st_index):
        self.rule_advance(st_pick, st_pct, st_index)

    def rule_replace(self, st_pick, st_amount):
        cid = self.pick(st_pick, ClaimStatus.SUBMITTED)
        if cid is None:
            return
        c = self.m.claims[cid]
        self.serial += 1
        record = self.pool[c.provider][self.serial % RECORDS]
        tx = self.escrow.submitClaim(
            submission(control(c.label), self.patient, c.insurer, st_amount, [record], service=10_000 + self.serial,
                       frequency=REPLACEMENT), {"from": c.provider})
        c.billed, c.revision = st_amount, c.revision + 1
        c.deadline = tx.events["ClaimSubmitted"]["deadline"]

    def rule_void(self, st_pick):
        cid = self.pick(st_pick, ClaimStatus.SUBMITTED)
        if cid is None:
            return
        c = self.m.claims[cid]
        self.escrow.submitClaim(submission(control(c.label), self.patient, c.insurer, 1, [], frequency=VOID),
                                {"from": c.provider})
        c.status = ClaimStatus.VOIDED

    def rule_toggle_push(self, st_index):
        provider = self.providers[st_index]
        self.m.push[provider] = not self.m.push[provider]
        self.escrow.setPushPayments(self.m.push[provider], {"from": provider})

    def rule_withdraw(self, st_index, st_pct):
        provider = self.providers[st_index]
        owed = self.m.owed[provider]
        amount = owed * st_pct // 100
        if amount == 0:
            expected = error_message(ClaimEscrow, "InsufficientOwed", provider.address, owed + 1, owed)
            with brownie.reverts(expected):
                self.escrow.withdraw(owed + 1, {"from": provider})
            return
        before = self.usdc.balanceOf(provider)
        self.escrow.withdraw(amount, {"from": provider})
        assert self.usdc.balanceOf(provider) == before + amount
        self.m.owed[provider] -= amount
        self.m.paid_out[provider] += amount

    def rule_dispute(self, st_pick):
        cid = self.pick(st_pick, ClaimStatus.CONTESTABLE)
        if cid is not None and self.now() + MARGIN < self.m.claims[cid].deadline:
            self._dispute_or_release(cid)

    # ------------------------------------------------------------------ adjudication

    def rule_adjudicate(self, st_pick, st_pct, st_index):
        cid = self.pick(st_pick, ClaimStatus.SUBMITTED)
        if cid is not None and self.now() + MARGIN < self.m.claims[cid].deadline:
            self._adjudicate_or_deem(cid, st_pct, st_index)

    def rule_deem(self, st_pick):
        cid = self.pick(st_pick, ClaimStatus.SUBMITTED)
        if cid is not None and self.now() > self.m.claims[cid].deadline + MARGIN:
            self._adjudicate_or_deem(cid, 100, 0)

    def _adjudicate_or_deem(self, cid, pct: int, with_share: int) -> None:
        """Before the prompt-pay deadline the insurer adjudicates; after it anyone finalises."""
        c = self.m.claims[cid]
        now = self.now()
        free = self.m.free[c.insurer]
        if now + MARGIN < c.deadline:
            approved = c.billed * pct // 100
            deductible = (c.billed - approved) // 3 if with_share else 0
            contested = c.billed - approved  # the patient share is contested too (issue 13)
            reasons = [CARC_MAX_ALLOWABLE] if contested else []
            share = (deductible, 0, 0)
            args = (c.provider, control(c.label), c.revision, approved, share, reasons, {"from": c.insurer})
            if approved + contested > free:
                with reverts_with(ClaimEscrow, "InsufficientEscrow", c.insurer.address, approved + contested, free):
                    self.escrow.adjudicate(*args)
                return
            self._book(c, self.escrow.adjudicate(*args), approved, contested)
        elif now > c.deadline + MARGIN:
            if c.billed > free:  # deemed approved, unfunded: the free balance goes to the deemed pool
                tx = self.escrow.finalizeDeemed(c.provider, control(c.label), {"from": self.arbiter})
                assert tx.events["ClaimDeemedUnfunded"]["amount"] == c.billed
                self.m.unpaid[c.insurer] += c.billed
                self.m.funded[c.insurer] += free
                self.m.free[c.insurer] = 0
                c.status = ClaimStatus.DEEMED_UNFUNDED
                return
            self._book(c, self.escrow.finalizeDeemed(c.provider, control(c.label), {"from": self.arbiter}), c.billed, 0)

    def _dispute_or_release(self, cid) -> None:
        """Within the window the provider disputes; after it anyone releases the encumbrance."""
        c = self.m.claims[cid]
        now = self.now()
        if now + MARGIN < c.deadline:
            self.escrow.dispute(control(c.label), h("evidence"), {"from": c.provider})
            c.status = ClaimStatus.DISPUTED
        elif now > c.deadline + MARGIN:
            self.escrow.release(c.provider, control(c.label), {"from": self.arbiter})
            self.m.encumbered[c.insurer] -= c.contested
            self.m.free[c.insurer] += c.contested
            c.status, c.contested = ClaimStatus.SETTLED, 0

    def _book(self, c: ModelClaim, tx, approved: int, contested: int) -> None:
        event = tx.events["ClaimAdjudicated"]
        assert (event["approved"], event["contested"]) == (approved, contested)
        c.adjudications += 1
        self.m.free[c.insurer] -= approved + contested
        self.m.encumbered[c.insurer] += contested
        c.contested = contested
        if contested:
            c.status, c.deadline = ClaimStatus.CONTESTABLE, event["disputeDeadline"]
        else:
            c.status = ClaimStatus.SETTLED
        self.credit(c, approved, tx)

    def rule_resolve(self, st_pick, st_pct):
        cid = self.pick(st_pick, ClaimStatus.DISPUTED)
        if cid is not None:
            self._resolve(cid, st_pct)

    def _resolve(self, cid, pct: int) -> None:
        c = self.m.claims[cid]
        award = c.contested * pct // 100
        tx = self.escrow.resolveDispute(c.provider, control(c.label), award, h("decision"), {"from": self.arbiter})
        assert tx.events["DisputeResolved"]["award"] == award
        c.resolutions += 1
        self.m.encumbered[c.insurer] -= c.contested
        self.m.free[c.insurer] += c.contested - award
        c.status, c.contested = ClaimStatus.SETTLED, 0
        self.credit(c, award, tx)

    def rule_release(self, st_pick):
        cid = self.pick(st_pick, ClaimStatus.CONTESTABLE)
        if cid is not None and self.now() > self.m.claims[cid].deadline + MARGIN:
            self._dispute_or_release(cid)

    def rule_replay_settled(self, st_pick):
        """Any attempt to pay a settled claim again is refused."""
        cid = self.pick(st_pick, ClaimStatus.SETTLED)
        if cid is None:
            return
        c = self.m.claims[cid]
        with reverts_with(ClaimEscrow, "InvalidStatus", cid, int(ClaimStatus.SETTLED)):
            self.escrow.adjudicate(c.provider, control(c.label), c.revision, 1, (0, 0, 0), [], {"from": c.insurer})
        with reverts_with(ClaimEscrow, "InvalidStatus", cid, int(ClaimStatus.SETTLED)):
            self.escrow.finalizeDeemed(c.provider, control(c.label), {"from": self.arbiter})

    def rule_sleep(self, st_days):
        chain.sleep(st_days * DAY)
        chain.mine()

    # ------------------------------------------------------------------ invariants

    def invariant_solvent(self):
        free = sum(self.escrow.insurerAccountOf(i)[0] for i in self.insurers)
        encumbered = sum(self.escrow.insurerAccountOf(i)[1] for i in self.insurers)
        owed = sum(self.escrow.providerAccountOf(p)[0] for p in self.providers)
        pools = sum(self.escrow.deemedPoolOf(i)[1] for i in self.insurers)
        assert self.usdc.balanceOf(self.escrow) == free + encumbered + owed + pools
        for insurer in self.insurers:
            assert tuple(self.escrow.insurerAccountOf(insurer)) == (self.m.free[insurer], self.m.encumbered[insurer])
            assert tuple(self.escrow.deemedPoolOf(insurer)) == (self.m.unpaid[insurer], self.m.funded[insurer])

    def invariant_no_claim_paid_twice(self):
        for c in self.m.claims.values():
            assert c.adjudications <= 1 and c.resolutions <= 1
            assert c.paid <= c.billed
        for provider in self.providers:
            owed, paid_out, _ = self.escrow.providerAccountOf(provider)
            assert (owed, paid_out) == (self.m.owed[provider], self.m.paid_out[provider])
            assert owed + paid_out == self.m.credited[provider] == sum(
                c.paid for c in self.m.claims.values() if c.provider == provider
            )


def test_escrow_state_machine(state_machine, escrow, usdc, consent, records, care, admin, registrar, accounts, provider,
                              provider2, insurer, arbiter, patient):
    insurer2 = accounts[11]
    care.register(insurer2, INSURER_ROLE, h("insurer-2"), {"from": registrar})
    care.assignArbiter(insurer2, arbiter, {"from": admin})  # one arbiter may serve several insurers (issue 18)
    for payer in (insurer, insurer2):
        grant(consent, patient, payer, bit(HPAYMT), bit(BILLING, NOTES))
        escrow.setTerms(terms(prompt_pay=PROMPT_PAY, dispute=DISPUTE_WINDOW), {"from": payer})
        escrow.setCoverage(patient, h(f"policy:{payer}"), 0, 2**40 - 1, 0, 0, 0, ALL_CLASSES, {"from": payer})
    pool = {}
    for doctor in (provider, provider2):
        grant(consent, patient, doctor, bit(TREAT), ALL_CLASSES)
        desk = Desk(escrow, usdc, consent, records, care, {"provider": doctor, "insurer": insurer, "patient": patient})
        pool[doctor] = [desk.record(f"pool:{doctor.address}:{i}").ref for i in range(RECORDS)]
    for payer in (insurer, insurer2):
        usdc.mint(payer, 20_000 * USD, {"from": payer})
        usdc.approve(escrow, 20_000 * USD, {"from": payer})
        escrow.deposit(20_000 * USD, {"from": payer})
    state_machine(EscrowMachine, escrow, usdc, [insurer, insurer2], [provider, provider2], arbiter, patient, pool,
                  settings={**stateful_settings(28, 30), "database": None})
