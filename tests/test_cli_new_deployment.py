"""The runbook "A new deployment, and moving parties to it" (docs/OPERATIONS.md), rehearsed through the real
`medledger` entry point on the test Ganache: a second suite on the same token, the parties registered again,
the old escrow paused with its money still withdrawable, the insurer's funds moved, and the patient's consent
signed again and relayed. The Safe's part (governing both suites) is rehearsed by test_cli_safe.py."""
from brownie import web3
from support.nodes import cli_env, funded_keystores, run_cli, run_json

ACTORS = {"gov": 0, "clinic": 12, "payer": 14, "alice": 16, "relayer": 18}


def _register(env: dict[str, str]) -> None:
    run_cli(env, "--account", "gov", "registry", "add-provider", "clinic", "--metadata", "0x" + "11" * 32)
    run_cli(env, "--account", "gov", "registry", "add-insurer", "payer", "--metadata", "0x" + "13" * 32)


def _free(env: dict[str, str]) -> int:
    return int(run_json(env, "escrow", "balance", "payer")["free"])


def test_runbook_moves_parties_funds_and_consent_to_a_new_deployment(tmp_path):
    old = cli_env(tmp_path / "home", MEDLEDGER_RPC=web3.provider.endpoint_uri,
                  MEDLEDGER_DEPLOYMENTS=str(tmp_path / "old-deployments.json"))
    funded_keystores(old, ACTORS)
    steps = run_json(old, "--account", "gov", "deploy")
    token = next(s["address"] for s in steps if s["contract"] == "Stablecoin")
    _register(old)
    run_cli(old, "--account", "gov", "dev", "mint", "payer", "5000000000")  # 5,000 tokens of 6 decimals
    run_cli(old, "--account", "payer", "escrow", "deposit", "1000")
    run_cli(old, "--account", "alice", "consent", "grant", "clinic", "-p", "treat", "-c", "conditions")
    assert _free(old) == 1_000 * 10**6

    # 1. The new suite, on the same token (a new deployments file: the old one stays usable).
    new = {**old, "MEDLEDGER_DEPLOYMENTS": str(tmp_path / "new-deployments.json")}
    moved = {s["contract"]: s["address"] for s in run_json(new, "--account", "gov", "deploy", "--token", token)}
    old_suite = {s["contract"]: s["address"] for s in steps}
    for name in ("CareRegistry", "ConsentRegistry", "RecordRegistry", "ClaimEscrow"):
        assert moved[name] != old_suite[name]
    # 2. The same parties, registered again.
    _register(new)
    assert run_json(new, "registry", "show", "clinic")["active"] is True
    # Nothing carries over by itself: the new suite knows no consent and holds no money yet.
    assert run_cli(new, "consent", "check", "alice", "clinic", "treat", "conditions", check=False).returncode == 3
    assert _free(new) == 0

    # 3. The old escrow is paused; money stays withdrawable, and the insurer moves it.
    run_cli(old, "--account", "gov", "escrow", "pause")
    refused = run_cli(old, "--account", "payer", "escrow", "deposit", "1", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    wallet_before = int(run_json(old, "escrow", "balance", "payer")["wallet"])
    run_cli(old, "--account", "payer", "escrow", "withdraw", "1000")
    run_cli(new, "--account", "payer", "escrow", "deposit", "1000")
    assert (_free(old), _free(new)) == (0, 1_000 * 10**6)
    assert int(run_json(new, "escrow", "balance", "payer")["wallet"]) == wallet_before

    # 4. The patient signs her consent again; anyone relays it into the new ConsentRegistry.
    signed = tmp_path / "grant.json"
    run_cli(new, "--account", "alice", "consent", "sign", "clinic", "-p", "treat", "-c", "conditions",
            "-o", str(signed))
    run_cli(new, "--account", "relayer", "consent", "relay", str(signed))
    assert run_cli(new, "consent", "check", "alice", "clinic", "treat", "conditions", check=False).returncode == 0
