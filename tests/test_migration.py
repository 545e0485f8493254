"""Account migration (issue 18 item 3, issue 13 finding 7): the governor moves a party to a fresh account.

Everything the party owns follows (its CareRegistry record and id, credentials commitment, encryption key,
gateway endpoint, arbiter assignments; in the other contracts its owed money, insurer pool and terms, open
claims, disputes and consents, which stay keyed by the party's home account) and the old account can do
nothing afterwards, in any contract. The Safe -> timelock path and the runbook are exercised in
tests/test_cli_safe.py; the gateway's refusal of the old key's signed reads in tests/test_gateway.py terms
(the gateway asks `partyOf`, which reports the old account inactive).
"""
from __future__ import annotations

import brownie
import pytest
from brownie import accounts
from eth_utils import keccak
from support.errors import error_message, reverts_with
from support.escrow import (
    DECISION,
    EVIDENCE,
    PROMPT_PAY,
    USD,
    control,
    h,
    not_active,
    record_id,
    sleep,
    submission,
    terms,
)
from support.vocabulary import (
    ALL_CLASSES,
    ARBITER_ROLE,
    HPAYMT,
    INSURER_ROLE,
    NOTES,
    PROVIDER_ROLE,
    TREAT,
    ClaimStatus,
    bit,
)

ZERO = "0x" + "00" * 20
AUTHOR = 0  # RecordVersion.author
KEY = "0x02" + "ab" * 32
URL = "https://records.example"


@pytest.fixture(scope="module")
def fresh():
    """Accounts the suite never registers (the development chain has 20; the actors use 0-14)."""
    return accounts[15], accounts[16], accounts[17]


def migrate(care, admin, old, new):
    return care.migrate(old, new, {"from": admin})


def care_error(care, name, *args):
    return error_message(care, name, *args)


# ------------------------------------------------------------------ the registry record


def test_the_party_record_moves_and_the_old_account_is_retired(care, admin, provider, fresh):
    new = fresh[0]
    care.publishEncryptionKey(KEY, {"from": provider})
    care.setGatewayEndpoint(URL, {"from": provider})
    role, active, registered_at, _, party_id, migrated, successor = care.partyOf(provider)
    metadata = care.metadataOf(provider)
    tx = migrate(care, admin, provider, new)
    assert tx.events["PartyMigrated"] == {"account": provider, "newAccount": new, "id": party_id, "governor": admin}
    assert care.partyOf(new) == (PROVIDER_ROLE, True, registered_at, tx.timestamp, party_id, False, True)
    assert care.partyOf(provider) == (PROVIDER_ROLE, False, registered_at, tx.timestamp, party_id, True, False)
    assert care.accountOf(party_id) == new
    assert care.metadataOf(new) == metadata and care.metadataOf(provider) == "0x" + "00" * 32
    assert care.encryptionKeyOf(new) == KEY and care.encryptionKeyOf(provider) == "0x"
    assert care.gatewayEndpointOf(new) == URL and care.gatewayEndpointOf(provider) == ""
    assert care.isActive(new, PROVIDER_ROLE) and not care.isActive(provider, PROVIDER_ROLE)
    assert care.activePartyOf(provider) == (0, party_id) and care.activePartyOf(new) == (PROVIDER_ROLE, party_id)
    # Both accounts resolve to the party as it is now; only the new one is it (current == itself).
    assert care.resolve(provider) == (PROVIDER_ROLE, party_id, provider, new)
    assert care.resolve(new) == (PROVIDER_ROLE, party_id, provider, new)


def test_a_second_migration_keeps_the_home_and_follows_in_one_hop(care, admin, provider, fresh):
    first, second = fresh[0], fresh[1]
    party_id = care.partyOf(provider)[4]
    migrate(care, admin, provider, first)
    migrate(care, admin, first, second)
    for account in (provider, first, second):
        assert care.resolve(account) == (PROVIDER_ROLE, party_id, provider, second)
    assert care.partyOf(second)[5:] == (False, True) and care.partyOf(first)[5:] == (True, True)


def test_only_the_governor_migrates(care, admin, registrar, provider, insurer, stranger, fresh):
    for caller in (registrar, provider, insurer, stranger):
        with brownie.reverts():
            care.migrate(provider, fresh[0], {"from": caller})
    assert care.partyOf(fresh[0])[0] == 0 and care.isActive(provider, PROVIDER_ROLE)


def test_migration_needs_a_registered_party_and_a_fresh_account(care, admin, registrar, provider, provider2,
                                                                 insurer, stranger, fresh):
    with reverts_with(care, "PartyNotRegistered", stranger.address):
        care.migrate(stranger, fresh[0], {"from": admin})
    # An account never registered resolves to nobody: the view echoes nothing it knows nothing about.
    assert care.resolve(stranger) == (0, 0, ZERO, ZERO)
    for taken in (provider2, insurer, registrar, admin, ZERO):
        address = taken if isinstance(taken, str) else taken.address
        with reverts_with(care, "AccountNotFresh", address):
            care.migrate(provider, taken, {"from": admin})
    migrate(care, admin, provider, fresh[0])
    # The retired account is no fresh account, and is never migrated again.
    with reverts_with(care, "AccountNotFresh", provider.address):
        care.migrate(provider2, provider, {"from": admin})
    with reverts_with(care, "AccountMigrated", provider.address):
        care.migrate(provider, fresh[1], {"from": admin})


def test_the_old_account_is_never_reinstated_re_registered_or_changed(care, admin, registrar, provider, fresh):
    migrate(care, admin, provider, fresh[0])
    with reverts_with(care, "AccountMigrated", provider.address):
        care.reinstate(provider, {"from": admin})
    with reverts_with(care, "AccountMigrated", provider.address):
        care.suspend(provider, h("reason"), {"from": registrar})
    with reverts_with(care, "AccountMigrated", provider.address):
        care.updateMetadata(provider, h("meta"), {"from": registrar})
    with reverts_with(care, "PartyAlreadyRegistered", provider.address):
        care.register(provider, PROVIDER_ROLE, h("meta"), {"from": registrar})
    with reverts_with(care, "AccountMigrated", provider.address):
        care.publishEncryptionKey(KEY, {"from": provider})
    with reverts_with(care, "AccountMigrated", provider.address):
        care.clearGatewayEndpoint({"from": provider})
    with reverts_with(care, "NotActiveCustodian", provider.address):
        care.setGatewayEndpoint(URL, {"from": provider})
    with reverts_with(care, "NotAnInsurer", provider.address):
        care.assignArbiter(provider, ZERO, {"from": admin})


def test_a_suspended_party_migrates_suspended_and_the_governor_reinstates_the_new_account(
        care, admin, registrar, provider, fresh):
    care.suspend(provider, h("key compromised"), {"from": registrar})
    migrate(care, admin, provider, fresh[0])
    assert not care.isActive(fresh[0], PROVIDER_ROLE) and care.partyOf(fresh[0])[:2] == (PROVIDER_ROLE, False)
    with reverts_with(care, "AccountMigrated", provider.address):
        care.reinstate(provider, {"from": admin})
    care.reinstate(fresh[0], {"from": admin})
    assert care.isActive(fresh[0], PROVIDER_ROLE) and not care.isActive(provider, PROVIDER_ROLE)
    # The new account is suspended and reinstated like any party.
    care.suspend(fresh[0], h("again"), {"from": registrar})
    assert not care.isActive(fresh[0], PROVIDER_ROLE)
    with reverts_with(care, "PartyAlreadySuspended", fresh[0].address):
        care.suspend(fresh[0], h("again"), {"from": registrar})


def test_arbiter_assignments_follow_the_insurer_and_the_arbiter(care, admin, insurer, arbiter, fresh):
    new_insurer, new_arbiter = fresh[0], fresh[1]
    migrate(care, admin, insurer, new_insurer)
    assert care.arbiterOf(insurer) == (arbiter, True)  # keyed by the insurer's home account
    with reverts_with(care, "AccountMigrated", insurer.address):
        care.assignArbiter(insurer, arbiter, {"from": admin})
    migrate(care, admin, arbiter, new_arbiter)
    assert care.arbiterOf(insurer) == (new_arbiter, True)
    # The governor reassigns by the insurer's current account; the assignment stays keyed by its home.
    care.assignArbiter(new_insurer, ZERO, {"from": admin})
    assert care.arbiterOf(insurer) == (ZERO, False)
    care.assignArbiter(new_insurer, new_arbiter, {"from": admin})
    assert care.arbiterOf(insurer) == (new_arbiter, True)
    with reverts_with(care, "NotAnActiveArbiter", arbiter.address):
        care.assignArbiter(new_insurer, arbiter, {"from": admin})


# ------------------------------------------------------------------ money, claims, consents


def test_owed_money_open_claims_and_consents_follow_the_provider(desk, care, escrow, usdc, consent, records,
                                                                 admin, provider, insurer, patient, fresh):
    new = fresh[0]
    desk.submit("owed", 100 * USD)
    desk.adjudicate("owed", 100 * USD)
    desk.submit("open", 50 * USD)
    desk.submit("contested", 80 * USD)
    desk.adjudicate("contested", 30 * USD, reasons=[45])
    migrate(care, admin, provider, new)

    # Consents granted to the old account are the party's: they answer for the new account.
    assert consent.hasConsent(patient, new, TREAT, NOTES)
    # The new key anchors (a TREAT writer under the old account's consent) and submits under the same id.
    record = desk.record("after", provider=new)
    # The record's author is shown under its current account.
    assert records.recordInfo(record.record_id, record.content_hash)[AUTHOR] == new
    sub = submission(control("after"), patient, insurer, 40 * USD, [record])
    escrow.submitClaim(sub, {"from": new})
    assert escrow.claimOf(escrow.claimIdOf(provider, control("after")))[2] == ClaimStatus.SUBMITTED

    # Open claims (keyed by the home account) are adjudicated, disputed and replaced from the new key.
    escrow.adjudicate(provider, control("open"), 0, 50 * USD, (0, 0, 0), [], {"from": insurer})
    escrow.dispute(control("contested"), EVIDENCE, {"from": new})
    escrow.resolveDispute(provider, control("contested"), 20 * USD, DECISION, {"from": desk.care.arbiterOf(insurer)[0]})
    assert escrow.providerAccountOf(provider)[0] == (100 + 50 + 30 + 20) * USD

    # The owed balance is withdrawn by the new key, to the new key.
    before = usdc.balanceOf(new)
    tx = escrow.withdrawAll({"from": new})
    assert usdc.balanceOf(new) - before == 200 * USD
    assert tx.events["PayoutWithdrawn"] == {"provider": provider, "recipient": new, "amount": 200 * USD}
    assert escrow.providerAccountOf(provider)[0] == 0


def test_push_payments_reach_the_new_account(desk, care, escrow, usdc, admin, provider, insurer, fresh):
    new = fresh[0]
    escrow.setPushPayments(True, {"from": provider})
    desk.submit("pushed", 70 * USD)
    migrate(care, admin, provider, new)
    before = usdc.balanceOf(new), usdc.balanceOf(provider)
    escrow.adjudicate(provider, control("pushed"), 0, 70 * USD, (0, 0, 0), [], {"from": insurer})
    assert usdc.balanceOf(new) - before[0] == 70 * USD and usdc.balanceOf(provider) == before[1]


def test_the_insurer_pool_terms_and_claims_follow_the_insurer(desk, care, escrow, usdc, admin, provider, insurer,
                                                               patient, fresh):
    new = fresh[1]
    desk.submit("pending", 60 * USD)
    free = desk.free()
    migrate(care, admin, insurer, new)
    assert escrow.insurerAccountOf(insurer)[0] == free
    # The new key adjudicates the open claim, deposits, changes terms and withdraws from the same pool.
    escrow.adjudicate(provider, control("pending"), 0, 60 * USD, (0, 0, 0), [], {"from": new})
    usdc.mint(new, 10 * USD, {"from": new})
    usdc.approve(escrow, 10 * USD, {"from": new})
    escrow.deposit(10 * USD, {"from": new})
    assert escrow.insurerAccountOf(insurer)[0] == free - 60 * USD + 10 * USD
    escrow.setTerms(terms(prompt_pay=2 * PROMPT_PAY), {"from": new})
    assert escrow.termsOf(insurer)[0] == 2 * PROMPT_PAY
    before = usdc.balanceOf(new)
    escrow.withdrawFree(5 * USD, {"from": new})
    assert usdc.balanceOf(new) - before == 5 * USD
    # The provider still bills the insurer by its home account; the patient's payment consent followed.
    desk.submit("later", 20 * USD)
    assert desk.status("later") == ClaimStatus.SUBMITTED


def test_deemed_claims_of_a_migrated_provider_finalize(desk, care, escrow, admin, provider, stranger, fresh):
    desk.submit("deemed", 25 * USD)
    migrate(care, admin, provider, fresh[0])
    sleep(PROMPT_PAY + 1)
    escrow.finalizeDeemed(provider, control("deemed"), {"from": stranger})
    assert desk.owed() == 25 * USD


# ------------------------------------------------------------------ the old key is powerless everywhere


def test_the_old_provider_key_can_do_nothing(desk, care, escrow, consent, records, admin, provider, insurer,
                                            patient, fresh):
    desk.submit("owed", 100 * USD)
    desk.adjudicate("owed", 60 * USD, reasons=[45])
    record = desk.record("mine")
    migrate(care, admin, provider, fresh[0])
    old = provider
    role = PROVIDER_ROLE
    refusals = [
        (lambda: escrow.withdrawAll({"from": old}), not_active(old, role)),
        (lambda: escrow.withdraw(1, {"from": old}), not_active(old, role)),
        (lambda: escrow.withdrawTo(old, {"from": old}), not_active(old, role)),
        (lambda: escrow.setPushPayments(True, {"from": old}), not_active(old, role)),
        (lambda: escrow.dispute(control("owed"), EVIDENCE, {"from": old}), not_active(old, role)),
        (lambda: escrow.submitClaim(submission(control("x"), patient, insurer, USD, [record]), {"from": old}),
         not_active(old, role)),
        (lambda: records.anchor(record_id("x", patient), h("c"), NOTES, {"from": old}), None),
        (lambda: records.anchorBatch(h("root"), 2, h("manifest"), {"from": old}), None),
        (lambda: consent.openBreakGlass(patient, 3600, h("emergency"), {"from": old}),
         error_message(consent, "NotActiveProvider", old.address)),
        (lambda: care.publishEncryptionKey(KEY, {"from": old}), care_error(care, "AccountMigrated", old.address)),
    ]
    for call, message in refusals:
        if message is None:
            with brownie.reverts():
                call()
        else:
            with brownie.reverts(message):
                call()
    assert desk.owed() == 60 * USD and desk.status("owed") == ClaimStatus.CONTESTABLE


def test_the_old_insurer_and_arbiter_keys_can_do_nothing(desk, care, escrow, usdc, admin, provider, insurer,
                                                         arbiter, patient, fresh):
    desk.submit("pending", 60 * USD)
    desk.submit("contested", 80 * USD)
    desk.adjudicate("contested", 30 * USD, reasons=[45])
    escrow.dispute(control("contested"), EVIDENCE, {"from": provider})
    migrate(care, admin, insurer, fresh[1])
    migrate(care, admin, arbiter, fresh[2])
    usdc.mint(insurer, USD, {"from": insurer})
    usdc.approve(escrow, USD, {"from": insurer})
    # The claim names the insurer's home account, but the old key is nobody: not the claim's insurer.
    with brownie.reverts(error_message(escrow, "NotClaimInsurer", desk.cid("pending"), insurer.address)):
        escrow.adjudicate(provider, control("pending"), 0, 60 * USD, (0, 0, 0), [], {"from": insurer})
    for call in (
        lambda: escrow.deposit(USD, {"from": insurer}),
        lambda: escrow.withdrawFree(USD, {"from": insurer}),
        lambda: escrow.setTerms(terms(), {"from": insurer}),
        lambda: escrow.setCoverage(patient, h("p"), 0, 2**40 - 1, 0, 0, 0, 0, {"from": insurer}),
        lambda: escrow.endCoverage(patient, {"from": insurer}),
    ):
        with brownie.reverts(not_active(insurer, INSURER_ROLE)):
            call()
    with brownie.reverts(error_message(escrow, "NotAssignedArbiter", arbiter.address, insurer.address)):
        escrow.resolveDispute(provider, control("contested"), 0, DECISION, {"from": arbiter})
    escrow.resolveDispute(provider, control("contested"), 10 * USD, DECISION, {"from": fresh[2]})
    assert desk.status("contested") == ClaimStatus.SETTLED
    assert care.partyOf(arbiter)[:2] == (ARBITER_ROLE, False)


def test_consents_granted_to_the_old_account_no_longer_let_it_write(care, consent, records, admin, provider,
                                                                   patient, fresh):
    consent.grant(patient, provider, bit(TREAT, HPAYMT), ALL_CLASSES, 0, 0, keccak(text="doc"), {"from": patient})
    assert consent.treatingProviderId(patient, provider, NOTES) == care.partyOf(provider)[4]
    migrate(care, admin, provider, fresh[0])
    assert consent.treatingProviderId(patient, provider, NOTES) == 0
    assert consent.treatingProviderId(patient, fresh[0], NOTES) == care.partyOf(fresh[0])[4]
