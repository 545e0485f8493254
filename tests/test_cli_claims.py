"""Escrow, coverage and claims through the real `medledger` entry point on the test Ganache."""
import json

import pytest
from brownie import chain, web3
from eth_utils import keccak
from support.claimcli import ACTORS, anchored_record, balances, claims_env, submit
from support.nodes import dev_key, run_cli, run_json
from support.recordcli import one_line_error

from medledger.commitments import control_key, keyed_control_number, open_file, sidecar_path
from medledger.crypto import public_key_of


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
    out = submit(env, "500", 300, "CLM-PART")
    assert out["status"] == "submitted"
    run_cli(env, "--account", "payer", "claim", "approve", "clinic", "CLM-PART", "--amount", "300",
            "--copay", "20", "--reason", "45")
    status = run_json(env, "--account", "payer", "claim", "status", "clinic", "CLM-PART")
    # The copay is contested with the rest until the dispute window closes (issue 13, finding 1).
    assert status["status"] == "contestable" and status["amount"] == 200_000_000
    assert balances(env, "payer")["encumbered"] == 200_000_000
    # The provider names its claim by its text: its insurer is found from its own claims.
    run_cli(env, "--account", "clinic", "claim", "dispute", "CLM-PART", "--evidence-hash", "0x" + "ee" * 32)
    refused = run_cli(env, "--account", "payer", "claim", "resolve", "clinic", "CLM-PART", "--award", "100",
                      "--decision-hash", "0x" + "dd" * 32, check=False)
    assert refused.returncode == 1 and "payer (" in refused.stderr
    assert "is not the active arbiter assigned to insurer payer" in refused.stderr  # issue 18
    # The arbiter is no party to the provider-insurer key: it names the claim by its 0x control number.
    run_cli(env, "--account", "judge", "claim", "resolve", "clinic", out["control"], "--award", "100",
            "--decision-hash", "0x" + "dd" * 32)
    assert run_json(env, "claim", "status", "clinic", out["control"])["status"] == "settled"
    assert balances(env, "clinic")["owed"] == 400_000_000
    assert balances(env, "payer")["encumbered"] == 0


def test_denial_then_deemed_approval_of_another(env):
    submit(env, "250", 400, "CLM-DENY")
    run_cli(env, "--account", "payer", "claim", "deny", "clinic", "CLM-DENY", "--reason", "96")
    assert run_json(env, "--account", "clinic", "claim", "status", "clinic", "CLM-DENY")["status"] == "contestable"
    late = submit(env, "80", 700, "CLM-LATE")["control"]
    early = run_cli(env, "--account", "alice", "claim", "finalize-expired", "clinic", late, check=False)
    assert early.returncode == 1 and "cannot be closed yet: its deadline is 20" in early.stderr
    chain.sleep(16 * 86400)
    chain.mine()
    run_cli(env, "--account", "alice", "claim", "finalize-expired", "clinic", late)
    assert run_json(env, "claim", "status", "clinic", late)["status"] == "settled"
    assert balances(env, "clinic")["owed"] == 80_000_000


def test_rules_and_coverage_show(env):
    rules = run_json(env, "--account", "payer", "claim", "rules", "show")
    assert rules["prompt_pay_days"] == 15 and "auto_classes" not in rules   # the coverage's (ClaimEscrow v3)
    cov = run_json(env, "--account", "payer", "coverage", "show", "alice")
    assert cov["coverage_id"] > 0 and cov["policy_hash"] == "0x" + "ab" * 32
    assert cov["auto_data_classes"] == "conditions"


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


def keyed(own: str, other: str, text: str) -> bytes:
    """The control number `own` keys from `text` with `other`'s public key."""
    key = control_key(bytes.fromhex(dev_key(ACTORS[own]).removeprefix("0x")),
                      public_key_of(bytes.fromhex(dev_key(ACTORS[other]).removeprefix("0x"))))
    return keyed_control_number(key, text)


def test_text_control_numbers_are_keyed_by_provider_and_insurer_only(env):
    out = submit(env, "500", 300, "RIV-0002")
    control = bytes.fromhex(out["control"][2:])
    assert control == keyed("clinic", "payer", "RIV-0002") == keyed("payer", "clinic", "RIV-0002")  # both sides
    assert control != keccak(text="RIV-0002")                        # the guessable hash of the text is not it
    assert keyed("judge", "clinic", "RIV-0002") != control           # a third party's key gives another number
    run_cli(env, "--account", "payer", "claim", "approve", "clinic", "RIV-0002", "--amount", "500")  # same bytes32
    assert run_json(env, "claim", "status", "clinic", out["control"])["status"] == "settled"
    for who in ("judge", "alice"):
        line = one_line_error(run_cli(env, "--account", who, "claim", "status", "clinic", "RIV-0002", check=False))
        assert "is keyed by the claim's provider and insurer" in line and "is neither" in line, line
    line = one_line_error(run_cli(env, "claim", "status", "clinic", "RIV-0002", check=False))
    assert "pass --account of one of them, or give the claim's 0x control number" in line, line


def test_a_counterparty_without_a_published_key_needs_the_0x_form_and_nothing_changes(env):
    height = web3.eth.block_number
    line = one_line_error(run_cli(env, "--account", "clinic", "claim", "submit", "--patient", "alice", "--insurer",
                                  "judge", "--amount", "10", "--record", anchored_record(env), "--service", "150",
                                  "--claim-hash", "0x" + "cd" * 32, "--control", "RIV-9999", check=False))
    assert "published no encryption key" in line and "give the claim's 0x control number" in line, line
    assert web3.eth.block_number == height + 1  # only anchored_record's own transaction


def test_document_files_are_committed_with_salt_and_the_sidecar_opens_them(env, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"resourceType": "Coverage", "status": "active", "class": "gold"}))
    out = run_json(env, "--account", "payer", "coverage", "enroll", "alice", "--policy-file", str(policy))
    assert out["salt_file"] == str(sidecar_path(policy))
    shown = run_json(env, "--account", "payer", "coverage", "show", "alice")["policy_hash"]
    assert shown == out["commitment"] == "0x" + open_file(policy).commitment.hex()  # the sidecar opens it
    assert shown != "0x" + keccak(policy.read_bytes()).hex()           # a copy of the policy alone finds nothing
    again = run_json(env, "--account", "payer", "coverage", "enroll", "alice", "--policy-file", str(policy))
    assert again["commitment"] == out["commitment"]                   # the sidecar is reused: idempotent

    control = submit(env, "500", 300, "CLM-EVID")["control"]
    run_cli(env, "--account", "payer", "claim", "deny", "clinic", "CLM-EVID", "--reason", "96")
    evidence = tmp_path / "evidence.pdf"
    evidence.write_bytes(b"%PDF-1.4 operative note")
    sidecar_path(evidence).write_text("{corrupt")
    height = web3.eth.block_number
    line = one_line_error(run_cli(env, "--account", "clinic", "claim", "dispute", "CLM-EVID", "--evidence-file",
                                  str(evidence), check=False))
    assert "evidence.pdf.salt.json: not a MedLedger salt file" in line and "move it away" in line, line
    assert web3.eth.block_number == height and sidecar_path(evidence).read_text() == "{corrupt"
    sidecar_path(evidence).unlink()
    out = run_json(env, "--account", "clinic", "claim", "dispute", "CLM-EVID", "--evidence-file", str(evidence))
    plain = "0x" + keccak(b"%PDF-1.4 operative note").hex()
    assert out["commitment"] == "0x" + open_file(evidence).commitment.hex() != plain
    decision = tmp_path / "decision.json"
    decision.write_text('{"award": 100}')
    out = run_json(env, "--account", "judge", "claim", "resolve", "clinic", control, "--award", "100",
                   "--decision-file", str(decision))
    assert out["commitment"] == "0x" + open_file(decision).commitment.hex()
