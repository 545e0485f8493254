"""ClaimEscrow gas targets."""

from brownie import web3
from support.escrow import USD, terms


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

    escrow.setTerms(terms(auto_max=1_000 * USD, service_max=1000), {"from": insurer})
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


def test_runtime_code_within_eip170(escrow):
    """ClaimEscrow's runtime code stays under the EIP-170 limit (24,576 bytes) with room to spare: it
    was 24,516 bytes before the issue-13 gas work packed the claim word by hand."""
    size = len(web3.eth.get_code(escrow.address))
    print(f"\nClaimEscrow runtime code: {size:,} bytes")
    assert size <= 24_576
