"""ClaimEscrow: funding, coverage, submission, adjudication, payouts, automation, pause and gas."""

import brownie
import pytest
from brownie import ZERO_ADDRESS, chain, web3
from conftest import custom_error
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from support.escrow import (
    ARBITER_ROLE,
    AUTOMATIC,
    BILLING,
    CARC_BENEFIT_MAX,
    CARC_MAX_ALLOWABLE,
    CARC_NOT_COVERED,
    DAY,
    DEEMED,
    DISPUTE_WINDOW,
    GENOMICS,
    HPAYMT,
    IMAGING,
    INSURER_ROLE,
    LABS,
    MANUAL,
    NOTES,
    PROMPT_PAY,
    PROVIDER_ROLE,
    REPLACEMENT,
    TREAT,
    UINT96_MAX,
    USD,
    VOID,
    Desk,
    Status,
    bit,
    control,
    grant,
    h,
    private_key,
    record_id,
    submission,
    terms,
)

SUSPENDED = h("suspended")


@pytest.fixture(scope="module")
def desk(escrow, usdc, consent, records, care, provider, insurer, patient):
    parties = {"provider": provider, "insurer": insurer, "patient": patient}
    return Desk(escrow, usdc, consent, records, care, parties).setup()


def err(signature: str, *args) -> str:
    return custom_error(signature, *args)


def not_active(account, role: int) -> str:
    return err("NotActiveParty(address,uint8)", account.address, role)


def invalid_status(claim_id: bytes, status: Status) -> str:
    return err("InvalidStatus(bytes32,uint8)", claim_id, int(status))


def missing_consent(patient, grantee, purpose: int, data_class: int) -> str:
    signature = "MissingConsent(address,address,uint8,uint8)"
    return err(signature, patient.address, grantee.address, purpose, data_class)


def over_limit(insurer, patient, requested: int, remaining: int) -> str:
    signature = "CoverageLimitExceeded(address,address,uint256,uint256)"
    return err(signature, insurer.address, patient.address, requested, remaining)


# ---------------------------------------------------------------- deployment


def test_deployment(escrow, care, consent, records, usdc, admin):
    assert escrow.registry() == care
    assert escrow.consent() == consent
    assert escrow.records() == records
    assert escrow.token() == usdc
    assert escrow.hasRole(escrow.DEFAULT_ADMIN_ROLE(), admin)
    assert escrow.hasRole(escrow.PAUSER_ROLE(), admin)
    assert not escrow.paused()
    assert abs(escrow.escrowTime() - chain[-1].timestamp) <= 5  # never paused: escrow time is block time
    assert usdc.decimals() == 6


def test_constructor_validates(ClaimEscrow, care, consent, records, usdc, admin):
    good = [care, consent, records, usdc, admin]
    for index in range(5):
        args = list(good)
        args[index] = ZERO_ADDRESS
        with brownie.reverts(err("InvalidConfiguration()")):
            ClaimEscrow.deploy(*args, {"from": admin})
    with brownie.reverts(err("InvalidConfiguration()")):  # a token must be a contract
        ClaimEscrow.deploy(care, consent, records, admin, admin, {"from": admin})


# ---------------------------------------------------------------- insurer funds


def test_deposit_credits_received_amount(desk, escrow, usdc, insurer):
    before = desk.free()
    usdc.mint(insurer, 500 * USD, {"from": insurer})
    usdc.approve(escrow, 500 * USD, {"from": insurer})
    tx = escrow.deposit(500 * USD, {"from": insurer})
    assert desk.free() == before + 500 * USD
    assert tx.events["Deposited"]["insurer"] == insurer
    assert tx.events["Deposited"]["amount"] == 500 * USD
    desk.assert_solvent([insurer], [desk.provider])


def test_deposit_rejects_zero_missing_allowance_and_non_insurers(desk, escrow, usdc, insurer, provider, stranger):
    with brownie.reverts(err("ZeroAmount()")):
        escrow.deposit(0, {"from": insurer})
    usdc.mint(insurer, 10, {"from": insurer})
    with brownie.reverts(err("ERC20InsufficientAllowance(address,uint256,uint256)", escrow.address, 0, 10)):
        escrow.deposit(10, {"from": insurer})
    for account, role in ((provider, INSURER_ROLE), (stranger, INSURER_ROLE)):
        with brownie.reverts(not_active(account, role)):
            escrow.deposit(1, {"from": account})


def test_withdraw_free_only_unencumbered(desk, escrow, usdc, insurer, provider):
    free = desk.free()
    desk.submit("deny", 300 * USD)
    desk.adjudicate("deny", 0, reasons=[CARC_NOT_COVERED])  # 300 encumbered
    assert desk.free() == free - 300 * USD
    assert desk.encumbered() == 300 * USD
    with brownie.reverts(err("InsufficientEscrow(address,uint256,uint256)", insurer.address, free, free - 300 * USD)):
        escrow.withdrawFree(free, {"from": insurer})
    balance = usdc.balanceOf(insurer)
    tx = escrow.withdrawFree(free - 300 * USD, {"from": insurer})
    assert tx.events["FundsWithdrawn"]["amount"] == free - 300 * USD
    assert usdc.balanceOf(insurer) == balance + free - 300 * USD
    assert desk.free() == 0 and desk.encumbered() == 300 * USD
    with brownie.reverts(err("InsufficientEscrow(address,uint256,uint256)", insurer.address, 1, 0)):
        escrow.withdrawFree(1, {"from": insurer})
    with brownie.reverts(err("ZeroAmount()")):
        escrow.withdrawFree(0, {"from": insurer})
    with brownie.reverts(not_active(provider, INSURER_ROLE)):
        escrow.withdrawFree(1, {"from": provider})
    desk.assert_solvent([insurer], [provider])


def _permit_signature(token, owner, spender, value, deadline):
    data = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {"name": token.name(), "version": "1", "chainId": chain.id, "verifyingContract": token.address},
        "message": {"owner": owner.address, "spender": spender.address, "value": value,
                    "nonce": token.nonces(owner), "deadline": deadline},
    }
    signed = Account.sign_message(encode_typed_data(full_message=data), private_key(owner))
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def test_deposit_with_permit(desk, escrow, usdc, insurer):
    before = desk.free()
    usdc.mint(insurer, 700 * USD, {"from": insurer})
    deadline = chain.time() + 3600
    v, r, s = _permit_signature(usdc, insurer, escrow, 700 * USD, deadline)
    tx = escrow.depositWithPermit(700 * USD, deadline, v, r, s, {"from": insurer})
    assert desk.free() == before + 700 * USD
    assert usdc.allowance(insurer, escrow) == 0
    assert tx.events["Deposited"]["amount"] == 700 * USD


def test_deposit_with_front_run_permit(desk, escrow, usdc, insurer, stranger):
    """Someone submits the insurer's permit first: the deposit still goes through on the allowance."""
    before = desk.free()
    usdc.mint(insurer, 700 * USD, {"from": insurer})
    deadline = chain.time() + 3600
    v, r, s = _permit_signature(usdc, insurer, escrow, 700 * USD, deadline)
    usdc.permit(insurer, escrow, 700 * USD, deadline, v, r, s, {"from": stranger})
    escrow.depositWithPermit(700 * USD, deadline, v, r, s, {"from": insurer})
    assert desk.free() == before + 700 * USD


def test_deposit_with_bad_permit_fails_cleanly(desk, escrow, usdc, insurer, stranger):
    usdc.mint(insurer, 700 * USD, {"from": insurer})
    deadline = chain.time() + 3600
    v, r, s = _permit_signature(usdc, stranger, escrow, 700 * USD, deadline)  # signed by the wrong key
    with brownie.reverts(err("PermitFailed(address,uint256)", insurer.address, 700 * USD)):
        escrow.depositWithPermit(700 * USD, deadline, v, r, s, {"from": insurer})
    v, r, s = _permit_signature(usdc, insurer, escrow, 700 * USD, chain.time() - 1)  # expired
    with brownie.reverts(err("PermitFailed(address,uint256)", insurer.address, 700 * USD)):
        escrow.depositWithPermit(700 * USD, chain.time() - 1, v, r, s, {"from": insurer})


# ---------------------------------------------------------------- terms and coverage


def test_terms_validation(desk, escrow, insurer, provider):
    bad = [
        terms(prompt_pay=DAY - 1),
        terms(prompt_pay=90 * DAY + 1),
        terms(dispute=7 * DAY - 1),
        terms(dispute=180 * DAY + 1),
        terms(auto_max=1, auto_classes=1 << 11),
        terms(auto_max=1, service_min=5, service_max=4),
    ]
    for value in bad:
        with brownie.reverts(err("InvalidTerms()")):
            escrow.setTerms(value, {"from": insurer})
    with brownie.reverts(not_active(provider, INSURER_ROLE)):
        escrow.setTerms(terms(), {"from": provider})
    good = terms(prompt_pay=DAY, dispute=180 * DAY, auto_max=5, auto_classes=0x7FF, service_min=1, service_max=9,
                 auto_cap=3, auto_period=3600)
    tx = escrow.setTerms(good, {"from": insurer})
    assert escrow.termsOf(insurer) == good
    assert tx.events["InsurerTermsSet"]["insurer"] == insurer


def test_coverage_validation(desk, escrow, insurer, patient2, care, registrar, accounts):
    now = chain.time()
    policy = h("policy")
    with brownie.reverts(err("ZeroAddress()")):
        escrow.setCoverage(ZERO_ADDRESS, policy, 0, now + DAY, 0, 0, 0, {"from": insurer})
    with brownie.reverts(err("EmptyHash()")):
        escrow.setCoverage(patient2, b"\x00" * 32, 0, now + DAY, 0, 0, 0, {"from": insurer})
    for args in [
        (now + DAY, now + DAY),  # empty validity
        (0, now - 10),  # already over
    ]:
        with brownie.reverts(err("InvalidCoverage()")):
            escrow.setCoverage(patient2, policy, args[0], args[1], 0, 0, 0, {"from": insurer})
    for per_period, length in ((100, 0), (0, 3600), (100, 3599)):
        with brownie.reverts(err("InvalidCoverage()")):
            escrow.setCoverage(patient2, policy, 0, now + DAY, 0, per_period, length, {"from": insurer})
    # An insurer without terms cannot enrol anyone.
    newcomer = accounts[11]
    care.register(newcomer, INSURER_ROLE, h("newcomer"), {"from": registrar})
    with brownie.reverts(err("TermsNotSet(address)", newcomer.address)):
        escrow.setCoverage(patient2, policy, 0, now + DAY, 0, 0, 0, {"from": newcomer})


def test_enrolment_ids_are_stable_and_views_report(desk, escrow, insurer, patient, patient2):
    first = escrow.enrolmentOf(insurer, patient)
    now = chain.time()
    tx = escrow.setCoverage(patient2, h("p2"), now, now + 365 * DAY, 50 * USD, 200 * USD, 30 * DAY, {"from": insurer})
    new_id = tx.return_value if tx.return_value is not None else tx.events["CoverageSet"]["coverageId"]
    assert new_id == first[0] + 1
    event = tx.events["CoverageSet"]
    assert (event["coverageId"], event["insurer"], event["patient"]) == (new_id, insurer, patient2)
    assert escrow.enrolmentOf(insurer, patient2) == (new_id, now, now + 365 * DAY)
    coverage = escrow.coverageOf(new_id)
    assert coverage[0] == insurer and coverage[4] == patient2
    assert coverage[1] and coverage[2]  # claim- and period-limited
    assert (coverage[5], coverage[6], coverage[9]) == (50 * USD, 200 * USD, 30 * DAY)
    assert coverage[10].hex() == h("p2").hex()
    # Re-enrolment takes a new id; the old coverage keeps its terms for the claims submitted under it.
    escrow.setCoverage(patient2, h("p2b"), now, now + 10 * DAY, 0, 0, 0, {"from": insurer})
    assert escrow.enrolmentOf(insurer, patient2)[0] == new_id + 1
    assert not escrow.coverageOf(new_id + 1)[1]
    assert escrow.coverageOf(new_id)[1]


def test_end_coverage(desk, escrow, insurer, patient):
    desk.submit("before-end", 10 * USD)
    tx = escrow.endCoverage(patient, {"from": insurer})
    assert tx.events["CoverageEnded"]["endedAt"] == tx.timestamp
    with brownie.reverts(err("CoverageInactive(address,address)", insurer.address, patient.address)):
        desk.submit("after-end", 10 * USD)
    with brownie.reverts(err("CoverageInactive(address,address)", insurer.address, patient.address)):
        escrow.endCoverage(patient, {"from": insurer})
    # The open claim stays payable.
    desk.adjudicate("before-end", 10 * USD)
    assert desk.status("before-end") == Status.SETTLED


def test_coverage_not_yet_valid(desk, escrow, insurer, patient):
    now = chain.time()
    escrow.setCoverage(patient, h("later"), now + 10 * DAY, now + 20 * DAY, 0, 0, 0, {"from": insurer})
    with brownie.reverts(err("CoverageInactive(address,address)", insurer.address, patient.address)):
        desk.submit("early", 10 * USD)
    chain.sleep(10 * DAY + 1)
    chain.mine()
    desk.submit("early", 10 * USD)
    assert desk.status("early") == Status.SUBMITTED


# ---------------------------------------------------------------- submission


def test_submit_stores_and_emits(desk, escrow, provider, insurer, patient):
    rec = desk.record("visit")
    tx = desk.submit("c1", 120 * USD, [rec], service=321)
    cid = desk.cid("c1")
    coverage_id = escrow.enrolmentOf(insurer, patient)[0]
    deadline = tx.timestamp + PROMPT_PAY
    assert escrow.claimOf(cid) == (coverage_id, 120 * USD, Status.SUBMITTED, deadline, 0, DISPUTE_WINDOW)
    event = tx.events["ClaimSubmitted"]
    assert bytes(event["claimId"]) == cid
    assert (event["insurer"], event["patient"], event["provider"]) == (insurer, patient, provider)
    assert (event["billed"], event["serviceCode"]) == (120 * USD, 321)
    assert (event["revision"], event["deadline"]) == (0, deadline)
    assert bytes(event["controlNumber"]) == control("c1")
    assert bytes(escrow.serviceClaimOf(rec.record_id, patient, 321)) == cid
    # Nothing is reserved at submission.
    assert desk.encumbered() == 0
    assert "ClaimAdjudicated" not in tx.events


def test_submit_validation(desk, escrow, provider, insurer, patient):
    rec = desk.record("v")
    with brownie.reverts(err("ZeroAmount()")):
        desk.submit("zero", 0, [rec])
    with brownie.reverts(err("EmptyHash()")):
        desk.submit("nohash", 10, [rec], claim_hash=b"\x00" * 32)
    with brownie.reverts(err("NoRecords()")):
        desk.submit("norec", 10, [])
    ghost = (record_id("ghost", patient), h("ghost-content"))
    with brownie.reverts(err("RecordNotAnchored(bytes32,bytes32)", ghost[0], ghost[1])):
        desk.submit("ghost", 10, [ghost])
    wrong_version = (rec.record_id, h("other-content"))
    with brownie.reverts(err("RecordNotAnchored(bytes32,bytes32)", *wrong_version)):
        desk.submit("wrongver", 10, [wrong_version])
    with brownie.reverts(err("InvalidFrequency(uint8)", 2)):
        desk.submit("freq", 10, [rec], frequency=2)


def test_submit_refuses_a_record_of_another_patient(desk, escrow, consent, provider, insurer, patient, patient2):
    """A record id starts with its patient's address: a claim may cite only its own patient's records.
    patient2's record is anchored and provider may treat and bill both patients, yet a claim for
    `patient` citing it reverts RecordNotOfPatient - checked before anything else about the record
    (an unanchored id of another patient gets the same error, not RecordNotAnchored) - and takes no
    (record, service) key."""
    grant(consent, patient2, provider, bit(TREAT) | bit(HPAYMT), 0x7FF)
    own, foreign = desk.record("mine"), desk.record("theirs", patient=patient2)
    assert desk.records.patientOf(foreign.record_id) == patient2 and desk.records.patientOf(own.record_id) == patient
    refused = err("RecordNotOfPatient(bytes32,address)", foreign.record_id, patient.address)
    with brownie.reverts(refused):
        desk.submit("cross", 10 * USD, [foreign])
    with brownie.reverts(refused):
        desk.submit("cross", 10 * USD, [own, foreign])  # one foreign record among own ones is enough
    ghost = (record_id("ghost", patient2), h("ghost-content"))
    with brownie.reverts(err("RecordNotOfPatient(bytes32,address)", ghost[0], patient.address)):
        desk.submit("cross", 10 * USD, [ghost])
    assert escrow.claimOf(desk.cid("cross"))[2] == Status.NONE
    assert bytes(escrow.serviceClaimOf(own.record_id, patient, 100)) == b"\x00" * 32
    assert bytes(escrow.serviceClaimOf(foreign.record_id, patient, 100)) == b"\x00" * 32
    # The same records under their own patients go through.
    desk.submit("cross", 10 * USD, [own])
    grant(consent, patient2, insurer, bit(HPAYMT), bit(BILLING) | bit(NOTES))
    escrow.setCoverage(patient2, h("policy:p2"), 0, 2**40 - 1, 0, 0, 0, {"from": insurer})
    desk.submit("cross-2", 10 * USD, [foreign], patient=patient2)
    assert bytes(escrow.serviceClaimOf(foreign.record_id, patient2, 100)) == desk.cid("cross-2")


def test_submit_needs_payer_consent(desk, escrow, consent, provider, insurer, patient):
    rec = desk.record("pc")
    consent.revoke(patient, insurer, {"from": patient})
    with brownie.reverts(missing_consent(patient, insurer, HPAYMT, BILLING)):
        desk.submit("pc", 10, [rec])
    # HPAYMT on another class is not enough: it must cover BILLING.
    grant(consent, patient, insurer, bit(HPAYMT), bit(NOTES))
    with brownie.reverts(missing_consent(patient, insurer, HPAYMT, BILLING)):
        desk.submit("pc", 10, [rec])
    grant(consent, patient, insurer, bit(HPAYMT), bit(BILLING) | bit(NOTES))
    desk.submit("pc", 10, [rec])


def test_submit_needs_provider_consent_for_the_record_class(desk, consent, provider2, patient):
    rec = desk.record("by-p1", data_class=LABS)
    # provider2 has no consent at all.
    with brownie.reverts(missing_consent(patient, provider2, TREAT, LABS)):
        desk.submit("p2", 10, [rec], provider=provider2)
    # TREAT on LABS lets provider2 bill with provider's record.
    grant(consent, patient, provider2, bit(TREAT), bit(LABS))
    desk.submit("p2", 10, [rec], provider=provider2, service=7)
    # HPAYMT alone is enough only for the author's own records.
    grant(consent, patient, provider2, bit(HPAYMT), 0x7FF)
    with brownie.reverts(missing_consent(patient, provider2, TREAT, LABS)):
        desk.submit("p2b", 10, [rec], provider=provider2, service=8)


def test_author_may_bill_under_payment_grant_only(desk, escrow, consent, provider, patient):
    rec = desk.record("own", data_class=IMAGING)
    grant(consent, patient, provider, bit(HPAYMT), bit(IMAGING))  # TREAT withdrawn, HPAYMT kept
    desk.submit("own", 10, [rec])
    assert desk.status("own") == Status.SUBMITTED
    consent.revoke(patient, provider, {"from": patient})
    with brownie.reverts(missing_consent(patient, provider, TREAT, IMAGING)):
        desk.submit("own2", 10, [rec])


def test_sensitive_record_needs_explicit_consent(desk, consent, provider, patient):
    rec = desk.record("genome", data_class=GENOMICS)
    grant(consent, patient, provider, bit(TREAT) | bit(HPAYMT), 0xFF)  # every non-sensitive class
    with brownie.reverts(missing_consent(patient, provider, TREAT, GENOMICS)):
        desk.submit("genome", 10, [rec])


def test_duplicates(desk, escrow, consent, provider, provider2, patient):
    rec = desk.record("dup")
    desk.submit("a", 10, [rec], service=1)
    with brownie.reverts(err("DuplicateClaim(bytes32)", desk.cid("a"))):
        desk.submit("a", 10, [desk.record("dup-other")], service=2)
    with brownie.reverts(err("DuplicateService(bytes32,uint16,bytes32)", rec.record_id, 1, desk.cid("a"))):
        desk.submit("b", 10, [rec], service=1)
    # Same record, another service: fine. Another provider citing the record takes no key (issue 13).
    desk.submit("c", 10, [rec], service=2)
    grant(consent, patient, provider2, bit(TREAT), 0x7FF)
    desk.submit("x", 10, [rec], service=1, provider=provider2)
    assert bytes(escrow.serviceClaimOf(rec.record_id, patient, 1)) == desk.cid("a")
    # The same control number is free for another provider (ids are per provider).
    desk.submit("a", 10, [desk.record("p2own", provider=provider)], service=9, provider=provider2)
    # A duplicate inside one claim is harmless (the claim holds the key already).
    rec2 = desk.record("twice")
    desk.submit("twice", 10, [rec2, rec2], service=1)
    # A settled claim keeps its keys: a record+service can never be billed twice.
    desk.adjudicate("a", 10)
    with brownie.reverts(err("DuplicateService(bytes32,uint16,bytes32)", rec.record_id, 1, desk.cid("a"))):
        desk.submit("again", 10, [rec], service=1)


def test_replacement(desk, escrow, provider, patient, insurer, patient2):
    rec = desk.record("orig")
    desk.submit("r", 100 * USD, [rec])
    chain.sleep(DAY)
    rec2 = desk.record("orig-2")
    tx = desk.submit("r", 80 * USD, [rec, rec2], frequency=REPLACEMENT)
    claim = desk.claim("r")
    assert (claim[1], claim[2], claim[4]) == (80 * USD, Status.SUBMITTED, 1)
    assert claim[3] == tx.timestamp + PROMPT_PAY  # prompt-pay clock restarts
    assert tx.events["ClaimSubmitted"]["revision"] == 1
    # The insurer must adjudicate the current revision.
    with brownie.reverts(err("StaleRevision(bytes32,uint16,uint16)", desk.cid("r"), 0, 1)):
        desk.adjudicate("r", 80 * USD, revision=0)
    desk.adjudicate("r", 80 * USD, revision=1)
    assert desk.owed() == 80 * USD
    # An adjudicated claim can no longer be replaced or voided.
    for frequency in (REPLACEMENT, VOID):
        with brownie.reverts(invalid_status(desk.cid("r"), Status.SETTLED)):
            desk.submit("r", 90 * USD, [rec], frequency=frequency)


def test_replacement_rules(desk, escrow, provider, insurer, patient, patient2, consent):
    with brownie.reverts(invalid_status(desk.cid("nothing"), Status.NONE)):
        desk.submit("nothing", 10, frequency=REPLACEMENT)
    desk.submit("m", 10)
    grant(consent, patient2, insurer, bit(HPAYMT), bit(BILLING))
    escrow.setCoverage(patient2, h("p2"), 0, 2**40 - 1, 0, 0, 0, {"from": insurer})
    with brownie.reverts(err("ClaimMismatch(bytes32)", desk.cid("m"))):
        desk.submit("m", 10, [desk.record("m2", patient=patient)], patient=patient2, frequency=REPLACEMENT)


def test_void(desk, escrow, provider, patient):
    rec = desk.record("void")
    desk.submit("v", 50 * USD, [rec], service=4)
    tx = desk.submit("v", 50 * USD, [], frequency=VOID, claim_hash=h("void-claim"))
    assert tx.events["ClaimVoided"]["provider"] == provider
    assert desk.claim("v")[1:4] == (0, Status.VOIDED, 0)
    for attempt in (lambda: desk.adjudicate("v", 1), lambda: desk.submit("v", 1, [rec], frequency=VOID)):
        with brownie.reverts(invalid_status(desk.cid("v"), Status.VOIDED)):
            attempt()
    with brownie.reverts(err("DuplicateClaim(bytes32)", desk.cid("v"))):
        desk.submit("v", 50 * USD, [rec], service=4)
    # Its record+service key is free again for a new control number.
    desk.submit("v2", 50 * USD, [rec], service=4)
    assert bytes(escrow.serviceClaimOf(rec.record_id, patient, 4)) == desk.cid("v2")


# ---------------------------------------------------------------- adjudication


def test_full_lifecycle(desk, escrow, usdc, provider, insurer, patient):
    free = desk.free()
    desk.submit("life", 250 * USD)
    tx = desk.adjudicate("life", 250 * USD)
    event = tx.events["ClaimAdjudicated"]
    assert (event["kind"], event["approved"], event["contested"], event["disputeDeadline"]) == (MANUAL, 250 * USD, 0, 0)
    assert list(event["reasonCodes"]) == []
    assert "PatientResponsibility" not in tx.events
    assert desk.free() == free - 250 * USD and desk.encumbered() == 0
    assert desk.owed() == 250 * USD
    assert desk.claim("life")[1:4] == (0, Status.SETTLED, 0)
    balance = usdc.balanceOf(provider)
    tx = escrow.withdraw(100 * USD, {"from": provider})
    assert tx.events["PayoutWithdrawn"]["amount"] == 100 * USD
    tx = escrow.withdrawAll({"from": provider})
    assert tx.events["PayoutWithdrawn"]["amount"] == 150 * USD
    assert usdc.balanceOf(provider) == balance + 250 * USD
    assert desk.owed() == 0 and desk.paid_out() == 250 * USD
    desk.assert_solvent([insurer], [provider])


def test_partial_approval_with_patient_share(desk, escrow, provider, insurer, patient):
    free = desk.free()
    desk.submit("part", 100 * USD)
    tx = desk.adjudicate("part", 60 * USD, share=(10 * USD, 5 * USD, 5 * USD), reasons=[CARC_MAX_ALLOWABLE])
    event = tx.events["ClaimAdjudicated"]
    assert (event["approved"], event["contested"]) == (60 * USD, 40 * USD)  # the share is contested too
    assert list(event["reasonCodes"]) == [CARC_MAX_ALLOWABLE]
    assert event["disputeDeadline"] == tx.timestamp + DISPUTE_WINDOW
    share = tx.events["PatientResponsibility"]
    assert (share["deductible"], share["coinsurance"], share["copay"]) == (10 * USD, 5 * USD, 5 * USD)
    assert desk.owed() == 60 * USD
    assert desk.encumbered() == 40 * USD and desk.free() == free - 100 * USD
    assert desk.claim("part")[1:4] == (40 * USD, Status.CONTESTABLE, tx.timestamp + DISPUTE_WINDOW)


def test_patient_share_only_is_contestable(desk, escrow, provider):
    # Issue 13, finding 1: a patient share needs a reason code and stays disputable like a denial.
    free = desk.free()
    desk.submit("deductible", 40 * USD)
    tx = desk.adjudicate("deductible", 0, share=(40 * USD, 0, 0), reasons=[1])
    assert desk.status("deductible") == Status.CONTESTABLE
    assert tx.events["ClaimAdjudicated"]["contested"] == 40 * USD
    assert desk.free() == free - 40 * USD and desk.owed() == 0


def test_denial_encumbers_until_released(desk, escrow, stranger, insurer):
    free = desk.free()
    desk.submit("deny", 100 * USD)
    desk.adjudicate("deny", 0, reasons=[CARC_NOT_COVERED, 16])
    assert desk.encumbered() == 100 * USD and desk.free() == free - 100 * USD
    deadline = desk.claim("deny")[3]
    with brownie.reverts(err("DeadlineNotReached(bytes32,uint40)", desk.cid("deny"), deadline)):
        escrow.release(desk.provider, control("deny"), {"from": stranger})
    chain.sleep(DISPUTE_WINDOW + 1)
    chain.mine()
    tx = escrow.release(desk.provider, control("deny"), {"from": stranger})
    assert tx.events["EncumbranceReleased"]["amount"] == 100 * USD
    assert desk.encumbered() == 0 and desk.free() == free
    assert desk.status("deny") == Status.SETTLED
    with brownie.reverts(invalid_status(desk.cid("deny"), Status.SETTLED)):
        escrow.release(desk.provider, control("deny"), {"from": stranger})


def test_adjudication_errors(desk, escrow, provider, insurer, stranger, accounts, care, registrar, patient):
    desk.submit("e", 100 * USD)
    cid = desk.cid("e")
    with brownie.reverts(err("NotClaimInsurer(bytes32,address)", cid, stranger.address)):
        desk.adjudicate("e", 1, sender=stranger)
    other = accounts[12]
    care.register(other, INSURER_ROLE, h("other-insurer"), {"from": registrar})
    with brownie.reverts(err("NotClaimInsurer(bytes32,address)", cid, other.address)):
        desk.adjudicate("e", 1, sender=other)
    with brownie.reverts(err("StaleRevision(bytes32,uint16,uint16)", cid, 3, 0)):
        desk.adjudicate("e", 1, revision=3)
    with brownie.reverts(err("InvalidAdjudication(uint256,uint256,uint256)", 100 * USD, 100 * USD + 1, 0)):
        desk.adjudicate("e", 100 * USD + 1)
    with brownie.reverts(err("InvalidAdjudication(uint256,uint256,uint256)", 100 * USD, 90 * USD, 11 * USD)):
        desk.adjudicate("e", 90 * USD, share=(5 * USD, 5 * USD, 1 * USD))
    with brownie.reverts(err("MissingReasonCodes()")):
        desk.adjudicate("e", 90 * USD)
    unknown = desk.cid("unknown")
    with brownie.reverts(invalid_status(unknown, Status.NONE)):
        desk.adjudicate("unknown", 1)
    desk.adjudicate("e", 100 * USD)
    with brownie.reverts(invalid_status(cid, Status.SETTLED)):
        desk.adjudicate("e", 100 * USD)


def test_insufficient_escrow(desk, escrow, insurer, provider):
    free = desk.free()
    escrow.withdrawFree(free - 50 * USD, {"from": insurer})
    desk.submit("big", 80 * USD)
    with brownie.reverts(err("InsufficientEscrow(address,uint256,uint256)", insurer.address, 80 * USD, 50 * USD)):
        desk.adjudicate("big", 80 * USD)
    # A denial must be able to encumber the contested amount too.
    with brownie.reverts(err("InsufficientEscrow(address,uint256,uint256)", insurer.address, 80 * USD, 50 * USD)):
        desk.adjudicate("big", 0, reasons=[CARC_NOT_COVERED])
    # The patient share is contested until the dispute window closes, so it is encumbered too: every
    # adjudication needs the whole billed amount (issue 13, finding 1).
    with brownie.reverts(err("InsufficientEscrow(address,uint256,uint256)", insurer.address, 80 * USD, 50 * USD)):
        desk.adjudicate("big", 30 * USD, share=(50 * USD, 0, 0), reasons=[1])
    desk.fund(30 * USD)
    desk.adjudicate("big", 30 * USD, share=(50 * USD, 0, 0), reasons=[1])
    assert desk.free() == 0 and desk.owed() == 30 * USD and desk.encumbered() == 50 * USD


def test_adjudication_after_prompt_pay_deadline_is_too_late(desk, escrow):
    desk.submit("late", 10 * USD)
    deadline = desk.claim("late")[3]
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    with brownie.reverts(err("DeadlinePassed(bytes32,uint40)", desk.cid("late"), deadline)):
        desk.adjudicate("late", 0, reasons=[CARC_NOT_COVERED])


# ---------------------------------------------------------------- deemed approval


def test_deemed_approval(desk, escrow, stranger, provider, insurer):
    desk.submit("deem", 70 * USD)
    deadline = desk.claim("deem")[3]
    with brownie.reverts(err("DeadlineNotReached(bytes32,uint40)", desk.cid("deem"), deadline)):
        escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    tx = escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    event = tx.events["ClaimAdjudicated"]
    assert (event["kind"], event["approved"], event["contested"]) == (DEEMED, 70 * USD, 0)
    assert desk.owed() == 70 * USD and desk.status("deem") == Status.SETTLED
    with brownie.reverts(invalid_status(desk.cid("deem"), Status.SETTLED)):
        escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})


def test_deemed_approval_requires_funds(desk, escrow, stranger, provider, insurer):
    desk.submit("deem", 70 * USD)
    escrow.withdrawFree(desk.free() - 10 * USD, {"from": insurer})
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    # Issue 13, finding 6: deemed approved, unfunded; the free balance is set aside for it.
    escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    assert desk.status("deem") == Status.DEEMED_UNFUNDED and desk.free() == 0
    assert escrow.deemedPoolOf(insurer) == (70 * USD, 10 * USD)
    with brownie.reverts(err("InsufficientEscrow(address,uint256,uint256)", insurer.address, 70 * USD, 10 * USD)):
        escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    desk.fund(60 * USD)
    escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    assert desk.owed() == 70 * USD and desk.free() == 0 and escrow.deemedPoolOf(insurer) == (0, 0)


# ---------------------------------------------------------------- coverage limits


def test_per_claim_limit(desk, escrow, insurer, patient, stranger):
    escrow.setCoverage(patient, h("capped"), 0, 2**40 - 1, 100 * USD, 0, 0, {"from": insurer})
    desk.submit("cap", 150 * USD)
    with brownie.reverts(over_limit(insurer, patient, 101 * USD, 100 * USD)):
        desk.adjudicate("cap", 101 * USD, reasons=[CARC_BENEFIT_MAX])
    desk.adjudicate("cap", 100 * USD, reasons=[CARC_BENEFIT_MAX])
    assert desk.owed() == 100 * USD and desk.encumbered() == 50 * USD
    # Deemed approval is capped too; the excess is contested with CARC 119.
    desk.submit("cap2", 130 * USD)
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    tx = escrow.finalizeDeemed(desk.provider, control("cap2"), {"from": stranger})
    event = tx.events["ClaimAdjudicated"]
    assert (event["approved"], event["contested"]) == (100 * USD, 30 * USD)
    assert list(event["reasonCodes"]) == [CARC_BENEFIT_MAX]
    assert desk.status("cap2") == Status.CONTESTABLE


def test_per_period_limit(desk, escrow, insurer, patient):
    start = chain.time()
    escrow.setCoverage(patient, h("annual"), start, start + 400 * DAY, 0, 100 * USD, 30 * DAY, {"from": insurer})
    for label in ("p1", "p2", "p3"):
        desk.submit(label, 40 * USD)
    desk.adjudicate("p1", 40 * USD)
    desk.adjudicate("p2", 40 * USD)
    with brownie.reverts(over_limit(insurer, patient, 40 * USD, 20 * USD)):
        desk.adjudicate("p3", 40 * USD)
    desk.adjudicate("p3", 20 * USD, reasons=[CARC_BENEFIT_MAX])
    coverage = escrow.coverageOf(escrow.enrolmentOf(insurer, patient)[0])
    assert (coverage[7], coverage[8]) == (100 * USD, 0)  # used, period index
    # The next period starts fresh.
    chain.sleep(30 * DAY)
    chain.mine()
    desk.submit("p4", 90 * USD)
    desk.adjudicate("p4", 90 * USD)
    coverage = escrow.coverageOf(escrow.enrolmentOf(insurer, patient)[0])
    assert (coverage[7], coverage[8]) == (90 * USD, 1)


# ---------------------------------------------------------------- automatic approval and push


def test_auto_approval_rules(desk, escrow, usdc, insurer, provider, provider2, consent, patient):
    escrow.setTerms(terms(auto_max=100 * USD, auto_classes=bit(NOTES) | bit(LABS), service_min=10, service_max=20),
                    {"from": insurer})
    free = desk.free()
    tx = desk.submit("auto", 100 * USD, [desk.record("a1")], service=10)
    assert tx.events["ClaimAdjudicated"]["kind"] == AUTOMATIC
    assert desk.status("auto") == Status.SETTLED and desk.owed() == 100 * USD
    assert desk.free() == free - 100 * USD
    # Each rule keeps a claim out of automation.
    misses = {
        "too-much": dict(billed=100 * USD + 1, service=10, data_class=NOTES),
        "service-low": dict(billed=1, service=9, data_class=NOTES),
        "service-high": dict(billed=1, service=21, data_class=NOTES),
        "class": dict(billed=1, service=15, data_class=IMAGING),
    }
    for label, case in misses.items():
        rec = desk.record(label, data_class=case["data_class"])
        tx = desk.submit(label, case["billed"], [rec], service=case["service"])
        assert "ClaimAdjudicated" not in tx.events
        assert desk.status(label) == Status.SUBMITTED
    # Not authored by the submitting provider.
    grant(consent, patient, provider2, bit(TREAT), 0x7FF)
    tx = desk.submit("foreign", 5 * USD, [desk.record("foreign-rec")], service=12, provider=provider2)
    assert "ClaimAdjudicated" not in tx.events


def test_auto_approval_respects_funds_and_limits(desk, escrow, insurer, patient):
    escrow.setTerms(terms(auto_max=100 * USD, auto_classes=0x7FF, service_max=1000), {"from": insurer})
    escrow.setCoverage(patient, h("lim"), 0, 2**40 - 1, 50 * USD, 0, 0, {"from": insurer})
    tx = desk.submit("over-limit", 60 * USD)
    assert "ClaimAdjudicated" not in tx.events
    escrow.withdrawFree(desk.free() - 20 * USD, {"from": insurer})
    tx = desk.submit("underfunded", 30 * USD)
    assert "ClaimAdjudicated" not in tx.events and desk.status("underfunded") == Status.SUBMITTED
    tx = desk.submit("fits", 20 * USD)
    assert tx.events["ClaimAdjudicated"]["approved"] == 20 * USD and desk.free() == 0


def test_auto_approval_of_a_replacement(desk, escrow, insurer):
    desk.submit("rep", 500 * USD)
    escrow.setTerms(terms(auto_max=100 * USD, auto_classes=0x7FF, service_max=1000), {"from": insurer})
    tx = desk.submit("rep", 90 * USD, frequency=REPLACEMENT)
    assert tx.events["ClaimAdjudicated"]["approved"] == 90 * USD
    assert desk.claim("rep")[1:] == (0, Status.SETTLED, 0, 1, 0)


def test_push_payment(desk, escrow, usdc, provider, insurer):
    tx = escrow.setPushPayments(True, {"from": provider})
    assert tx.events["PushPaymentsSet"]["enabled"]
    balance = usdc.balanceOf(provider)
    desk.submit("push", 40 * USD)
    tx = desk.adjudicate("push", 40 * USD)
    assert tx.events["PaymentPushed"]["amount"] == 40 * USD
    assert usdc.balanceOf(provider) == balance + 40 * USD
    assert desk.owed() == 0 and desk.paid_out() == 40 * USD
    escrow.setPushPayments(False, {"from": provider})
    desk.submit("pull", 40 * USD)
    tx = desk.adjudicate("pull", 40 * USD)
    assert "PaymentPushed" not in tx.events and desk.owed() == 40 * USD
    desk.assert_solvent([insurer], [provider])


def test_auto_approval_pays_in_the_submit_transaction(desk, escrow, usdc, provider, insurer):
    escrow.setTerms(terms(auto_max=100 * USD, auto_classes=0x7FF, service_max=1000), {"from": insurer})
    escrow.setPushPayments(True, {"from": provider})
    balance = usdc.balanceOf(provider)
    tx = desk.submit("instant", 75 * USD)
    assert tx.events["PaymentPushed"]["amount"] == 75 * USD
    assert usdc.balanceOf(provider) == balance + 75 * USD
    assert desk.owed() == 0
    desk.assert_solvent([insurer], [provider])


# ---------------------------------------------------------------- withdrawals


def test_over_withdrawal_and_double_payout(desk, escrow, usdc, provider, provider2, insurer):
    desk.submit("w", 100 * USD)
    desk.adjudicate("w", 100 * USD)
    with brownie.reverts(err("InsufficientOwed(address,uint256,uint256)", provider.address, 100 * USD + 1, 100 * USD)):
        escrow.withdraw(100 * USD + 1, {"from": provider})
    with brownie.reverts(err("ZeroAmount()")):
        escrow.withdraw(0, {"from": provider})
    escrow.withdraw(100 * USD, {"from": provider})
    with brownie.reverts(err("InsufficientOwed(address,uint256,uint256)", provider.address, 1, 0)):
        escrow.withdraw(1, {"from": provider})
    with brownie.reverts(err("ZeroAmount()")):
        escrow.withdrawAll({"from": provider})
    # Nobody else can take it: another provider is owed nothing, non-providers are refused.
    with brownie.reverts(err("ZeroAmount()")):
        escrow.withdrawAll({"from": provider2})
    with brownie.reverts(not_active(insurer, PROVIDER_ROLE)):
        escrow.withdraw(1, {"from": insurer})
    # The settled claim cannot be paid again by any path.
    with brownie.reverts(invalid_status(desk.cid("w"), Status.SETTLED)):
        desk.adjudicate("w", 100 * USD)
    with brownie.reverts(invalid_status(desk.cid("w"), Status.SETTLED)):
        escrow.finalizeDeemed(provider, control("w"), {"from": provider})
    with brownie.reverts(invalid_status(desk.cid("w"), Status.SETTLED)):
        escrow.dispute(control("w"), h("e"), {"from": provider})
    desk.assert_solvent([insurer], [provider, provider2])


# ---------------------------------------------------------------- amounts


def test_amount_edges(desk, escrow, usdc, provider, insurer):
    desk.submit("one", 1)
    desk.adjudicate("one", 1)
    assert desk.owed() == 1
    escrow.withdraw(1, {"from": provider})
    desk.fund(UINT96_MAX)
    desk.submit("max", UINT96_MAX)
    desk.adjudicate("max", UINT96_MAX)
    assert desk.owed() == UINT96_MAX
    escrow.withdrawAll({"from": provider})
    assert desk.owed() == 0
    desk.assert_solvent([insurer], [provider])


def test_amount_above_uint96_is_rejected_by_the_abi_decoder(desk, escrow, provider, insurer, patient):
    rec = desk.record("huge")
    base = submission(control("huge"), patient, insurer, 1, [rec])
    shape = ["(bytes32,address,address,uint256,uint16,uint8,bytes32,(bytes32,bytes32)[])"]

    def call_with(billed: int):
        fields = (base[0], base[1].address, base[2].address, billed, base[4], base[5], base[6], base[7])
        data = escrow.submitClaim.signature + encode(shape, [fields]).hex()
        return web3.eth.call({"from": provider.address, "to": escrow.address, "data": data})

    with pytest.raises(ValueError):
        call_with(2**96)
    call_with(2**96 - 1)  # the largest billable amount decodes and would be accepted


def test_deposit_overflow_guard(desk, escrow, usdc, insurer):
    usdc.mint(insurer, 2**128, {"from": insurer})
    usdc.approve(escrow, 2**128, {"from": insurer})
    with brownie.reverts(err("AmountTooLarge(uint256)", 2**128)):
        escrow.deposit(2**128, {"from": insurer})


# ---------------------------------------------------------------- roles and suspension


def test_role_boundaries(desk, escrow, insurer, provider, arbiter, stranger, admin, patient):
    desk.submit("rb", 10 * USD)
    rec = desk.record("rb2")
    for account in (insurer, arbiter, stranger):
        with brownie.reverts(not_active(account, PROVIDER_ROLE)):
            desk.submit("rb2", 10, [rec], provider=account)
        with brownie.reverts(invalid_status(bytes(escrow.claimIdOf(account, control("rb"))), Status.NONE)):
            escrow.dispute(control("rb"), h("e"), {"from": account})
        with brownie.reverts(not_active(account, PROVIDER_ROLE)):
            escrow.setPushPayments(True, {"from": account})
    for account in (provider, arbiter, stranger):
        with brownie.reverts(not_active(account, INSURER_ROLE)):
            escrow.setCoverage(patient, h("x"), 0, 2**40 - 1, 0, 0, 0, {"from": account})
        with brownie.reverts(not_active(account, INSURER_ROLE)):
            escrow.endCoverage(patient, {"from": account})
    for account in (provider, insurer, stranger):
        with brownie.reverts(not_active(account, ARBITER_ROLE)):
            escrow.resolveDispute(provider, control("rb"), 0, h("d"), {"from": account})
    role = escrow.PAUSER_ROLE()
    for account in (provider, insurer, arbiter, stranger):
        with brownie.reverts(err("AccessControlUnauthorizedAccount(address,bytes32)", account.address, role)):
            escrow.pause({"from": account})
    escrow.pause({"from": admin})
    for account in (provider, insurer, arbiter, stranger):
        with brownie.reverts(err("AccessControlUnauthorizedAccount(address,bytes32)", account.address, role)):
            escrow.unpause({"from": account})


def test_suspended_provider_loses_rights(desk, escrow, care, registrar, provider, stranger, insurer):
    desk.submit("s1", 10 * USD)
    desk.adjudicate("s1", 10 * USD)
    desk.submit("s2", 10 * USD)
    rec = desk.record("s3")
    care.suspend(provider, SUSPENDED, {"from": registrar})
    with brownie.reverts(not_active(provider, PROVIDER_ROLE)):
        desk.submit("s3", 10, [rec])
    with brownie.reverts(not_active(provider, PROVIDER_ROLE)):
        escrow.withdrawAll({"from": provider})
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    with brownie.reverts(not_active(provider, PROVIDER_ROLE)):
        escrow.finalizeDeemed(provider, control("s2"), {"from": stranger})
    care.reinstate(provider, {"from": registrar})
    escrow.withdrawAll({"from": provider})
    escrow.finalizeDeemed(provider, control("s2"), {"from": stranger})


def test_suspended_insurer_loses_rights(desk, escrow, care, registrar, insurer, usdc, patient):
    desk.submit("si", 10 * USD)
    care.suspend(insurer, SUSPENDED, {"from": registrar})
    with brownie.reverts(not_active(insurer, INSURER_ROLE)):
        desk.adjudicate("si", 10 * USD)
    with brownie.reverts(not_active(insurer, INSURER_ROLE)):
        escrow.withdrawFree(1, {"from": insurer})
    with brownie.reverts(not_active(insurer, INSURER_ROLE)):
        escrow.deposit(1, {"from": insurer})
    with brownie.reverts(not_active(insurer, INSURER_ROLE)):
        escrow.setTerms(terms(), {"from": insurer})
    # A suspended insurer holds no live consent, so no claim can be filed against it.
    with brownie.reverts(missing_consent(patient, insurer, HPAYMT, BILLING)):
        desk.submit("si2", 10 * USD)
    care.reinstate(insurer, {"from": registrar})
    desk.adjudicate("si", 10 * USD)


# ---------------------------------------------------------------- pause


def test_pause_blocks_processing_but_not_withdrawals(desk, escrow, admin, provider, insurer, arbiter, usdc, stranger):
    desk.submit("owed", 30 * USD)
    desk.adjudicate("owed", 30 * USD)
    desk.submit("open", 30 * USD)
    rec = desk.record("paused")
    tx = escrow.pause({"from": admin})
    assert tx.events["EscrowPaused"]["account"] == admin and escrow.paused()
    paused = err("EnforcedPause()")
    blocked = [
        lambda: escrow.deposit(1, {"from": insurer}),
        lambda: escrow.depositWithPermit(1, 0, 0, h("r"), h("s"), {"from": insurer}),
        lambda: desk.submit("p", 10, [rec]),
        lambda: desk.adjudicate("open", 30 * USD),
        lambda: escrow.finalizeDeemed(provider, control("open"), {"from": stranger}),
        lambda: escrow.dispute(control("open"), h("e"), {"from": provider}),
        lambda: escrow.resolveDispute(provider, control("open"), 0, h("d"), {"from": arbiter}),
        lambda: escrow.release(provider, control("open"), {"from": stranger}),
        lambda: escrow.setTerms(terms(), {"from": insurer}),
        lambda: escrow.setCoverage(desk.patient, h("x"), 0, 2**40 - 1, 0, 0, 0, {"from": insurer}),
        lambda: escrow.endCoverage(desk.patient, {"from": insurer}),
        lambda: escrow.setPushPayments(True, {"from": provider}),
    ]
    for call in blocked:
        with brownie.reverts(paused):
            call()
    with brownie.reverts(paused):
        escrow.pause({"from": admin})
    # Money already owed or free stays withdrawable.
    escrow.withdrawAll({"from": provider})
    escrow.withdrawFree(10 * USD, {"from": insurer})
    escrow.unpause({"from": admin})
    with brownie.reverts(err("ExpectedPause()")):
        escrow.unpause({"from": admin})
    desk.adjudicate("open", 30 * USD)


def test_pause_stops_the_escrow_clock(desk, escrow, admin, stranger, provider):
    desk.submit("clock", 10 * USD)
    deadline = desk.claim("clock")[3]
    chain.sleep(PROMPT_PAY - DAY)
    escrow.pause({"from": admin})
    frozen = escrow.escrowTime()
    chain.sleep(10 * DAY)
    chain.mine()
    assert escrow.escrowTime() == frozen
    tx = escrow.unpause({"from": admin})
    assert tx.events["EscrowUnpaused"]["duration"] >= 10 * DAY
    # Without the pause the deadline would have passed by now; in escrow time it has not.
    assert chain.time() > deadline
    assert escrow.escrowTime() <= deadline
    with brownie.reverts(err("DeadlineNotReached(bytes32,uint40)", desk.cid("clock"), deadline)):
        escrow.finalizeDeemed(provider, control("clock"), {"from": stranger})
    desk.adjudicate("clock", 10 * USD)  # the insurer still has its full window


# ---------------------------------------------------------------- gas


def test_gas_targets(desk, escrow, usdc, provider, insurer):
    """The issue's gas budget, from receipts, for a one-record claim with an established provider."""
    # Warm-up: the provider's first credit and first token receipt create storage (one-off costs).
    desk.submit("warm", 10 * USD)
    first_approve = desk.adjudicate("warm", 10 * USD).gas_used
    first_withdraw = escrow.withdraw(5 * USD, {"from": provider}).gas_used

    submit = desk.submit("g", 100 * USD).gas_used
    approve = desk.adjudicate("g", 100 * USD).gas_used
    withdraw = escrow.withdraw(50 * USD, {"from": provider}).gas_used
    withdraw_all = escrow.withdrawAll({"from": provider}).gas_used

    escrow.setTerms(terms(auto_max=1_000 * USD, auto_classes=0x7FF, service_max=1000), {"from": insurer})
    escrow.setPushPayments(True, {"from": provider})
    first_auto = desk.submit("auto-warm", 100 * USD).gas_used  # creates the pair's velocity slot (issue 13)
    auto_push = desk.submit("auto", 100 * USD)
    assert "PaymentPushed" in auto_push.events
    print(f"\nGAS submit={submit} approve={approve} withdraw={withdraw} withdrawAll={withdraw_all} "
          f"autoSubmitPush={auto_push.gas_used} | first credit approve={first_approve} first withdraw={first_withdraw} "
          f"first autoSubmitPush of a (provider, coverage)={first_auto}")
    # Issue 13 added the insurer's payment consent for the cited record's class (a second consent
    # read) and the coverage-period check to every submission: 120k -> 125k.
    assert submit <= 125_000
    assert approve <= 60_000
    assert withdraw <= 60_000 and withdraw_all <= 60_000
    # Issue 13: the auto-approval also updates the (provider, coverage) velocity-cap slot: 160k -> 165k.
    assert auto_push.gas_used <= 165_000
