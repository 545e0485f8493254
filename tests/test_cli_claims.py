"""Escrow, coverage and claims through the real `medledger` entry point on the test Ganache."""
import pytest
from brownie import chain
from support.claimcli import anchored_record, balances, claims_env, submit
from support.nodes import run_cli, run_json


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The CLI claims world (tests/support/claimcli.py)."""
    return claims_env(tmp_path_factory.mktemp("claims"))


def test_auto_approved_claim_is_paid_at_submission_and_withdrawn(env):
    out = submit(env, "120", 150, "CLM-AUTO")
    assert out["status"] == "settled"
    assert balances(env, "clinic")["owed"] == 120_000_000
    assert balances(env, "payer")["free"] == 10_000_000_000 - 120_000_000
    run_cli(env, "--account", "clinic", "claim", "withdraw")
    after = balances(env, "clinic")
    assert after["owed"] == 0 and after["wallet"] == 120_000_000


def test_partial_approval_dispute_and_resolution(env):
    assert submit(env, "500", 300, "CLM-PART")["status"] == "submitted"
    run_cli(env, "--account", "payer", "claim", "approve", "clinic", "CLM-PART", "--amount", "300",
            "--copay", "20", "--reason", "45")
    status = run_json(env, "claim", "status", "clinic", "CLM-PART")
    # The copay is contested with the rest until the dispute window closes (issue 13, finding 1).
    assert status["status"] == "contestable" and status["amount"] == 200_000_000
    assert balances(env, "payer")["encumbered"] == 200_000_000
    run_cli(env, "--account", "clinic", "claim", "dispute", "CLM-PART", "--evidence-hash", "0x" + "ee" * 32)
    refused = run_cli(env, "--account", "payer", "claim", "resolve", "clinic", "CLM-PART", "--award", "100",
                      "--decision-hash", "0x" + "dd" * 32, check=False)
    assert refused.returncode == 1 and "payer (" in refused.stderr and "is not an active arbiter" in refused.stderr
    run_cli(env, "--account", "judge", "claim", "resolve", "clinic", "CLM-PART", "--award", "100",
            "--decision-hash", "0x" + "dd" * 32)
    assert run_json(env, "claim", "status", "clinic", "CLM-PART")["status"] == "settled"
    assert balances(env, "clinic")["owed"] == 400_000_000
    assert balances(env, "payer")["encumbered"] == 0


def test_denial_then_deemed_approval_of_another(env):
    submit(env, "250", 400, "CLM-DENY")
    run_cli(env, "--account", "payer", "claim", "deny", "clinic", "CLM-DENY", "--reason", "96")
    assert run_json(env, "claim", "status", "clinic", "CLM-DENY")["status"] == "contestable"
    submit(env, "80", 700, "CLM-LATE")
    early = run_cli(env, "--account", "alice", "claim", "finalize-expired", "clinic", "CLM-LATE", check=False)
    assert early.returncode == 1 and "cannot be closed yet: its deadline is 20" in early.stderr
    chain.sleep(16 * 86400)
    chain.mine()
    run_cli(env, "--account", "alice", "claim", "finalize-expired", "clinic", "CLM-LATE")
    assert run_json(env, "claim", "status", "clinic", "CLM-LATE")["status"] == "settled"
    assert balances(env, "clinic")["owed"] == 80_000_000


def test_rules_and_coverage_show(env):
    rules = run_json(env, "--account", "payer", "claim", "rules", "show")
    assert rules["prompt_pay_days"] == 15 and rules["auto_classes"] == "conditions"
    cov = run_json(env, "--account", "payer", "coverage", "show", "alice")
    assert cov["coverage_id"] > 0 and cov["policy_hash"] == "0x" + "ab" * 32


@pytest.mark.parametrize("args,needle", [
    (("--account", "payer", "claim", "approve", "clinic", "CLM-BIG"), "but 50,000.00 mUSDC is needed"),
    (("--account", "payer", "escrow", "withdraw", "20000"), "but 20,000.00 mUSDC is needed"),
    (("--account", "clinic", "escrow", "deposit", "5"), "cannot deposit"),
    (("--account", "clinic", "claim", "withdraw"), "owed nothing"),
    (("--account", "payer", "escrow", "deposit", "1.0000001"), "at most 6 decimals"),
])
def test_money_mistakes_are_one_clear_line(env, args, needle):
    submit(env, "50000", 900, "CLM-BIG")
    proc = run_cli(env, *args, check=False)
    assert proc.returncode == 1, proc.stdout
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_duplicate_claim_rejected(env):
    submit(env, "40", 800, "CLM-DUP")
    proc = run_cli(env, "--account", "clinic", "claim", "submit", "--patient", "alice", "--insurer", "payer",
                   "--amount", "40", "--record", anchored_record(env), "--service", "800",
                   "--claim-hash", "0x" + "cd" * 32, "--control", "CLM-DUP", check=False)
    assert proc.returncode == 1 and "exists already (same provider and control number)" in proc.stderr
