"""Issue 13, findings 1-7 (Money, ClaimEscrow) and the money claims of docs/ADVERSARIAL.md that did not
hold: one regression test (or more) per property. Each test failed on the round-1 escrow (see the
report of branch h6-escrow-review) and passes now."""

import pytest
from brownie import ZERO_ADDRESS, ClaimEscrow, chain
from support.claimcli import balances, claims_env, submit
from support.errors import reverts_with
from support.escrow import (
    CARC_BENEFIT_MAX,
    CARC_COPAY,
    CARC_MAX_ALLOWABLE,
    CARC_NOT_COVERED,
    DAY,
    DECISION,
    DEEMED,
    DISPUTE_WINDOW,
    EVIDENCE,
    PROMPT_PAY,
    USD,
    control,
    grant,
    h,
    sleep,
    terms,
)
from support.nodes import run_cli, run_json
from support.vocabulary import (
    ALL_CLASSES,
    ARBITER_ROLE,
    BILLING,
    HPAYMT,
    LABS,
    PROVIDER_ROLE,
    REPLACEMENT,
    SUBSTANCE_USE,
    TREAT,
    ClaimStatus,
    bit,
)

AUTO = dict(auto_max=1_000 * USD, service_min=0, service_max=1_000)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The CLI claims world (tests/support/claimcli.py) for the last two tests."""
    return claims_env(tmp_path_factory.mktemp("review-claims"))


def test_interface_version_is_3(escrow):
    assert escrow.version() == 3  # issue 18: party state keyed by the home account; issue 14: auto classes per coverage


# ---------------------------------------------------------------- finding 1: patient share


def test_f1_a_patient_share_needs_a_reason_code(desk):
    desk.submit("all-share", 100 * USD)
    with reverts_with(ClaimEscrow, "MissingReasonCodes"):
        desk.adjudicate("all-share", 0, share=(100 * USD, 0, 0))
    assert desk.status("all-share") == ClaimStatus.SUBMITTED


def test_f1_a_patient_share_is_disputed_like_a_denial_and_never_final_early(desk, escrow, provider, arbiter,
                                                                             stranger, insurer):
    free = desk.free()
    desk.submit("share", 100 * USD)
    tx = desk.adjudicate("share", 60 * USD, share=(0, 0, 40 * USD), reasons=[CARC_COPAY])
    assert tx.events["ClaimAdjudicated"]["contested"] == 40 * USD
    assert desk.status("share") == ClaimStatus.CONTESTABLE
    assert desk.encumbered() == 40 * USD and desk.free() == free - 100 * USD
    deadline = desk.claim("share")[3]
    with reverts_with(ClaimEscrow, "DeadlineNotReached", desk.cid("share"), deadline):
        escrow.release(provider, control("share"), {"from": stranger})
    escrow.dispute(control("share"), EVIDENCE, {"from": provider})
    escrow.resolveDispute(provider, control("share"), 40 * USD, DECISION, {"from": arbiter})
    assert desk.owed() == 100 * USD and desk.encumbered() == 0
    desk.assert_solvent([insurer], [provider])


# ---------------------------------------------------------------- finding 2: suspension


def test_f2_a_suspended_provider_keeps_its_contested_money(admin, desk, escrow, care, registrar, provider, arbiter,
                                                          stranger, insurer):
    desk.submit("susp", 100 * USD)
    desk.adjudicate("susp", 40 * USD, reasons=[CARC_MAX_ALLOWABLE])
    care.suspend(provider, h("audit"), {"from": registrar})
    escrow.dispute(control("susp"), EVIDENCE, {"from": provider})  # moves no money: open while suspended
    sleep(DISPUTE_WINDOW + 1)
    with reverts_with(ClaimEscrow, "InvalidStatus", desk.cid("susp"), ClaimStatus.DISPUTED):
        escrow.release(provider, control("susp"), {"from": stranger})
    escrow.resolveDispute(provider, control("susp"), 60 * USD, DECISION, {"from": arbiter})
    assert desk.owed() == 100 * USD
    with reverts_with(ClaimEscrow, "NotActiveParty", provider.address, PROVIDER_ROLE):
        escrow.withdrawAll({"from": provider})  # frozen, not lost
    care.reinstate(provider, {"from": admin})
    escrow.withdrawAll({"from": provider})
    assert desk.owed() == 0
    desk.assert_solvent([insurer], [provider])


# ---------------------------------------------------------------- finding 3: duplicates, velocity, period


def test_f3_another_providers_citation_never_blocks_the_author(desk, escrow, consent, provider, provider2,
                                                              patient):
    rec = desk.record("authored")
    grant(consent, patient, provider2, bit(TREAT), ALL_CLASSES)
    desk.submit("first", 1, [rec], provider=provider2)  # a dust claim citing provider's record, filed first
    assert bytes(escrow.serviceClaimOf(rec.record_id, patient, 100)) == b"\x00" * 32
    desk.submit("own", 100 * USD, [rec])
    assert bytes(escrow.serviceClaimOf(rec.record_id, patient, 100)) == desk.cid("own")
    # The author still cannot bill its record twice for one service.
    with reverts_with(ClaimEscrow, "DuplicateService", rec.record_id, 100, desk.cid("own")):
        desk.submit("own-again", 100 * USD, [rec])


def test_f3_citing_another_authors_record_is_never_auto_approved(desk, escrow, consent, insurer, provider2,
                                                                 patient):
    escrow.setTerms(terms(**AUTO), {"from": insurer})
    rec = desk.record("cited")
    grant(consent, patient, provider2, bit(TREAT), ALL_CLASSES)
    tx = desk.submit("cite", 10 * USD, [rec], provider=provider2)
    assert "ClaimAdjudicated" not in tx.events
    assert desk.status("cite", provider=provider2) == ClaimStatus.SUBMITTED
    # Its own record, same rule: approved at once.
    tx = desk.submit("self", 10 * USD, [desk.record("p2-own", provider=provider2)], provider=provider2)
    assert tx.events["ClaimAdjudicated"]["approved"] == 10 * USD


def test_f3_auto_approval_has_a_velocity_cap_per_provider_coverage_and_period(desk, escrow, consent, insurer,
                                                                              provider, provider2, patient):
    escrow.setTerms(terms(**AUTO, auto_cap=2, auto_period=DAY), {"from": insurer})
    coverage_id = escrow.enrolmentOf(insurer, patient)[0]
    for service in (1, 2):  # new service codes and fresh record ids each time
        assert desk.submit(f"v{service}", 10 * USD, service=service).events["ClaimAdjudicated"]["approved"] == 10 * USD
    tx = desk.submit("v3", 10 * USD, service=3)
    assert "ClaimAdjudicated" not in tx.events and desk.status("v3") == ClaimStatus.SUBMITTED
    assert escrow.velocityOf(provider, coverage_id)[1] == 2
    # Another provider has its own allowance.
    grant(consent, patient, provider2, bit(TREAT), ALL_CLASSES)
    assert "ClaimAdjudicated" in desk.submit("w1", 10 * USD, provider=provider2).events
    # The next window opens the cap again.
    sleep(DAY)
    assert "ClaimAdjudicated" in desk.submit("v4", 10 * USD, service=4).events
    assert escrow.velocityOf(provider, coverage_id)[1] == 1


def test_f3_auto_approval_without_a_velocity_cap_is_refused(desk, escrow, insurer):
    for bad in (terms(**AUTO, auto_cap=0), terms(**AUTO, auto_period=3_599)):
        with reverts_with(ClaimEscrow, "InvalidTerms"):
            escrow.setTerms(bad, {"from": insurer})
    escrow.setTerms(terms(auto_cap=0, auto_period=0), {"from": insurer})  # no auto-approval, no cap needed


def test_f3_a_cited_record_must_be_anchored_within_the_coverage_period(desk, escrow, insurer, patient):
    old = desk.record("before")
    sleep(10 * DAY)
    now = chain.time()
    escrow.setCoverage(patient, h("policy:new"), now - DAY, now + 365 * DAY, 0, 0, 0, ALL_CLASSES, {"from": insurer})
    anchored_at = desk.records.recordInfo(old.record_id, old.content_hash)[3]
    with reverts_with(ClaimEscrow, "RecordOutsideCoverage", old.record_id, anchored_at):
        desk.submit("old-care", 10 * USD, [old])
    desk.submit("new-care", 10 * USD, [desk.record("after")])


# ---------------------------------------------------------------- finding 4: class disclosure


def test_f4_every_cited_class_needs_the_insurers_payment_consent(desk, escrow, consent, insurer, patient):
    escrow.setTerms(terms(**AUTO), {"from": insurer})
    grant(consent, patient, insurer, bit(HPAYMT), bit(BILLING))  # billing only
    rec = desk.record("sud", data_class=SUBSTANCE_USE)
    with reverts_with(ClaimEscrow, "MissingConsent", patient.address, insurer.address, HPAYMT, SUBSTANCE_USE):
        desk.submit("sud", 10 * USD, [rec])
    # A billing record discloses nothing more than the claim itself.
    desk.submit("bill", 10 * USD, [desk.record("bill", data_class=BILLING)])
    grant(consent, patient, insurer, bit(HPAYMT), bit(BILLING, SUBSTANCE_USE))
    assert desk.submit("sud", 10 * USD, [rec]).events["ClaimAdjudicated"]["approved"] == 10 * USD


# ---------------------------------------------------------------- finding 5: terms at submission


def test_f5_a_claim_keeps_the_limits_it_was_submitted_under(desk, escrow, insurer, patient, stranger, provider):
    escrow.setCoverage(patient, h("gold"), 0, 2**40 - 1, 1_000 * USD, 0, 0, ALL_CLASSES, {"from": insurer})
    desk.submit("limits", 500 * USD)
    # cut before the deadline
    escrow.setCoverage(patient, h("bronze"), 0, 2**40 - 1, 10 * USD, 0, 0, ALL_CLASSES, {"from": insurer})
    sleep(PROMPT_PAY + 1)
    tx = escrow.finalizeDeemed(provider, control("limits"), {"from": stranger})
    event = tx.events["ClaimAdjudicated"]
    assert (event["kind"], event["approved"], event["contested"]) == (DEEMED, 500 * USD, 0)
    # A claim submitted under the new coverage gets its limit.
    desk.submit("limits-2", 500 * USD)
    sleep(PROMPT_PAY + 1)
    tx = escrow.finalizeDeemed(provider, control("limits-2"), {"from": stranger})
    assert tx.events["ClaimAdjudicated"]["approved"] == 10 * USD
    assert list(tx.events["ClaimAdjudicated"]["reasonCodes"]) == [CARC_BENEFIT_MAX]


def test_f5_a_claim_keeps_the_dispute_window_of_its_submission(desk, escrow, insurer):
    escrow.setTerms(terms(dispute=180 * DAY), {"from": insurer})
    desk.submit("window", 100 * USD)
    escrow.setTerms(terms(dispute=7 * DAY), {"from": insurer})
    tx = desk.adjudicate("window", 0, reasons=[CARC_NOT_COVERED])
    assert tx.events["ClaimAdjudicated"]["disputeDeadline"] == tx.timestamp + 180 * DAY


def test_f5_a_replacement_after_re_enrolment_moves_to_the_new_coverage(desk, escrow, insurer, patient, patient2,
                                                                      consent):
    desk.submit("rep", 100 * USD)
    escrow.setCoverage(patient, h("renewed"), 0, 2**40 - 1, 0, 0, 0, ALL_CLASSES, {"from": insurer})
    new_id = escrow.enrolmentOf(insurer, patient)[0]
    desk.submit("rep", 90 * USD, frequency=REPLACEMENT)
    assert desk.claim("rep")[0] == new_id and desk.claim("rep")[4] == 1
    # Another patient's coverage is still a mismatch.
    grant(consent, patient2, insurer, bit(HPAYMT), ALL_CLASSES)
    escrow.setCoverage(patient2, h("p2"), 0, 2**40 - 1, 0, 0, 0, ALL_CLASSES, {"from": insurer})
    grant(consent, patient2, desk.provider, bit(TREAT), ALL_CLASSES)
    rec = desk.record("p2-rec", patient=patient2)
    with reverts_with(ClaimEscrow, "ClaimMismatch", desk.cid("rep")):
        desk.submit("rep", 90 * USD, [rec], patient=patient2, frequency=REPLACEMENT)


# ---------------------------------------------------------------- finding 6: prompt pay backed


def test_f6_a_deemed_claim_the_insurer_emptied_is_paid_from_its_next_deposit(desk, escrow, insurer, provider,
                                                                             stranger):
    desk.submit("deem", 70 * USD)
    escrow.withdrawFree(desk.free(), {"from": insurer})  # just before the deadline
    sleep(PROMPT_PAY + 1)
    tx = escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    assert tx.events["ClaimDeemedUnfunded"]["amount"] == 70 * USD
    assert desk.status("deem") == ClaimStatus.DEEMED_UNFUNDED
    assert ClaimStatus.DEEMED_UNFUNDED.label == "deemed approved, unfunded"  # as the CLI shows it
    assert escrow.deemedPoolOf(insurer) == (70 * USD, 0)
    desk.fund(100 * USD)
    assert escrow.deemedPoolOf(insurer) == (70 * USD, 70 * USD) and desk.free() == 30 * USD
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, 100 * USD, 30 * USD):
        escrow.withdrawFree(100 * USD, {"from": insurer})  # the deposit went to the claim first
    tx = escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    assert tx.events["ClaimAdjudicated"]["approved"] == 70 * USD
    assert desk.status("deem") == ClaimStatus.SETTLED and desk.owed() == 70 * USD
    assert escrow.deemedPoolOf(insurer) == (0, 0)
    desk.assert_solvent([insurer], [provider])


def test_f6_partial_funding_pays_what_it_covers(desk, escrow, insurer, provider, stranger):
    desk.submit("a", 70 * USD)
    desk.submit("b", 50 * USD)
    escrow.withdrawFree(desk.free() - 20 * USD, {"from": insurer})
    sleep(PROMPT_PAY + 1)
    escrow.finalizeDeemed(provider, control("a"), {"from": stranger})  # sweeps the 20 left
    escrow.finalizeDeemed(provider, control("b"), {"from": stranger})
    assert escrow.deemedPoolOf(insurer) == (120 * USD, 20 * USD) and desk.free() == 0
    desk.fund(40 * USD)
    assert escrow.deemedPoolOf(insurer) == (120 * USD, 60 * USD) and desk.free() == 0
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, 70 * USD, 60 * USD):
        escrow.finalizeDeemed(provider, control("a"), {"from": stranger})
    escrow.finalizeDeemed(provider, control("b"), {"from": stranger})
    assert escrow.deemedPoolOf(insurer) == (70 * USD, 10 * USD) and desk.owed() == 50 * USD
    desk.assert_solvent([insurer], [provider])


# ---------------------------------------------------------------- finding 7: payouts to a new address


def test_f7_withdraw_to_another_address(desk, escrow, usdc, provider, stranger, care, registrar):
    desk.submit("pay", 100 * USD)
    desk.adjudicate("pay", 100 * USD)
    with reverts_with(ClaimEscrow, "ZeroAddress"):
        escrow.withdrawTo(ZERO_ADDRESS, {"from": provider})
    before = usdc.balanceOf(stranger)
    tx = escrow.withdrawTo(stranger, {"from": provider})
    event = tx.events["PayoutWithdrawn"]
    assert (event["provider"], event["recipient"], event["amount"]) == (provider, stranger, 100 * USD)
    assert usdc.balanceOf(stranger) == before + 100 * USD and desk.owed() == 0
    with reverts_with(ClaimEscrow, "ZeroAmount"):
        escrow.withdrawTo(stranger, {"from": provider})
    with reverts_with(ClaimEscrow, "NotActiveParty", stranger.address, PROVIDER_ROLE):
        escrow.withdrawTo(stranger, {"from": stranger})


# ---------------------------------------------------------------- ADVERSARIAL.md claims


def test_suspending_an_arbiter_freezes_its_insurers_disputes_until_the_governor_reassigns(
        desk, escrow, care, admin, registrar, arbiter, insurer, provider, accounts):
    """Issue 18 (arbiters per insurer): a suspended arbiter's disputes wait; another active arbiter cannot take
    them first come first served; the governor's reassignment releases them."""
    second = accounts[11]
    care.register(second, ARBITER_ROLE, h("arbiter-2"), {"from": admin})
    desk.submit("arb", 100 * USD)
    desk.adjudicate("arb", 0, reasons=[CARC_NOT_COVERED])
    escrow.dispute(control("arb"), EVIDENCE, {"from": provider})
    care.suspend(arbiter, h("conflict"), {"from": registrar})
    for account in (arbiter, second):
        with reverts_with(ClaimEscrow, "NotAssignedArbiter", account.address, insurer.address):
            escrow.resolveDispute(provider, control("arb"), 1, DECISION, {"from": account})
    care.assignArbiter(insurer, second, {"from": admin})
    tx = escrow.resolveDispute(provider, control("arb"), 100 * USD, DECISION, {"from": second})
    assert tx.events["DisputeResolved"]["arbiter"] == second


def test_dust_citations_block_nobody(desk, escrow, consent, provider2, patient, insurer):
    rec = desk.record("target", data_class=LABS)
    grant(consent, patient, provider2, bit(TREAT), ALL_CLASSES)
    for service in range(3):
        desk.submit(f"dust{service}", 1, [rec], service=service, provider=provider2)
        desk.adjudicate(f"dust{service}", 1, provider=provider2)
    for service in range(3):
        desk.submit(f"real{service}", 50 * USD, [rec], service=service)
    assert all(desk.status(f"real{s}") == ClaimStatus.SUBMITTED for s in range(3))
    assert [bytes(escrow.serviceClaimOf(rec.record_id, patient, s)) for s in range(3)] == [
        desk.cid(f"real{s}") for s in range(3)]


# ---------------------------------------------------------------- the same through the CLI (findings 6, 7)


def test_cli_withdraw_to_pays_another_address(env):
    submit(env, "120", 150, "CLM-TO")  # auto-approved, owed to the clinic
    owed = balances(env, "clinic")["owed"]
    assert owed == 120 * USD
    run_cli(env, "--account", "clinic", "claim", "withdraw", "--to", "alice")
    assert balances(env, "clinic")["owed"] == 0
    assert balances(env, "alice")["wallet"] == owed


def test_cli_shows_deemed_approved_unfunded_and_pays_it_after_a_deposit(env):
    # Outside the auto-approval range: waits for the insurer. Alice, no party to the provider-insurer key,
    # names the claim by its 0x control number.
    unf = submit(env, "500", 300, "CLM-UNF")["control"]
    free = balances(env, "payer")["free"]
    run_cli(env, "--account", "payer", "escrow", "withdraw", str(free // USD))
    sleep(16 * DAY)
    out = run_cli(env, "--account", "alice", "claim", "finalize-expired", "clinic", unf).stdout
    assert "deemed approved, unfunded" in out
    assert run_json(env, "claim", "status", "clinic", unf)["status"] == "deemed approved, unfunded"
    run_cli(env, "--account", "payer", "escrow", "deposit", "600")
    assert balances(env, "payer")["free"] == 100 * USD  # 500 went to the unfunded claim first
    run_cli(env, "--account", "alice", "claim", "finalize-expired", "clinic", unf)
    assert run_json(env, "claim", "status", "clinic", unf)["status"] == "settled"
    assert balances(env, "clinic")["owed"] == 500 * USD
