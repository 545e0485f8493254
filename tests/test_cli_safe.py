"""Safe 1.4.1 governance through the real CLI on Ganache: a 2-of-3 Safe holds the registrar and pauser
roles and proposes to the governance timelock, which holds the governor and admin roles; a registration is
proposed by one owner, confirmed by another and executed by anyone; a proposal short of the threshold, an
altered proposal and a stranger's signature are refused; a timelocked reinstatement is scheduled through the
Safe, refused before the delay and executed after it; a compromised provider key is suspended and the provider
migrated to a new key through the Safe and the timelock (docs/OPERATIONS.md)."""
import json
from pathlib import Path

import pytest
from brownie import web3
from support.nodes import cli_env, funded_keystores, run_cli, run_json

from medledger.accounts import load_signer
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.errors import ChainError
from medledger.messages import utc
from medledger.safe import SafeGovernance, SafeProposal

KEYS = {"gov": 0, "owner1": 12, "owner2": 13, "owner3": 14, "stranger": 15, "clinic": 16, "lab": 17, "payer": 4,
        "alice": 6, "doc": 18, "doc-new": 19}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = cli_env(tmp_path_factory.mktemp("safe"), MEDLEDGER_RPC=web3.provider.endpoint_uri)
    env["addr"] = json.dumps(funded_keystores(env, KEYS))
    addr = json.loads(env["addr"])
    created = run_json(env, "--account", "gov", "safe", "create", "--owner", addr["owner1"], "--owner", addr["owner2"],
                       "--owner", addr["owner3"], "--threshold", "2")
    env["SAFE"] = created["safe"]
    # The deployer hands governance to a timelock the Safe proposes to, registrar and pauser to the Safe.
    run_json(env, "--account", "gov", "deploy", "--admin", env["SAFE"], "--registrar", env["SAFE"])
    return env


def deployed(env, name: str, artifact: str | None = None):
    contracts = json.loads(Path(env["MEDLEDGER_DEPLOYMENTS"]).read_text())[str(web3.eth.chain_id)]
    path = Path(__file__).resolve().parents[1] / f"build/contracts/{artifact or name}.json"
    return web3.eth.contract(address=contracts[name]["address"], abi=json.loads(path.read_text())["abi"])


def care(env):
    return deployed(env, "CareRegistry")


def govern(env, *args: str) -> dict:
    """`args` through the Safe: owner1 proposes, owner2 confirms, the stranger executes."""
    path = run_json(env, "--safe", env["SAFE"], "--account", "owner1", *args)["proposal"]
    run_json(env, "--account", "owner2", "safe", "confirm", path)
    return run_json(env, "--account", "stranger", "safe", "execute", path)


def test_the_safe_and_its_timelock_alone_hold_governance(env):
    registry, addr = care(env), json.loads(env["addr"])
    timelock = deployed(env, "TimelockController")
    admin, registrar = b"\x00" * 32, registry.functions.REGISTRAR_ROLE().call()
    governor = registry.functions.GOVERNOR_ROLE().call()
    for role in (admin, governor):
        assert registry.functions.hasRole(role, timelock.address).call()
        assert not registry.functions.hasRole(role, env["SAFE"]).call()
        assert not registry.functions.hasRole(role, addr["gov"]).call()
    assert registry.functions.hasRole(registrar, env["SAFE"]).call()
    # The Safe proposes and cancels; anyone executes once the delay (1 hour on a development chain) has passed.
    for role in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
        assert timelock.functions.hasRole(getattr(timelock.functions, role)().call(), env["SAFE"]).call()
    assert timelock.functions.hasRole(timelock.functions.EXECUTOR_ROLE().call(), "0x" + "00" * 20).call()
    assert timelock.functions.getMinDelay().call() == 3600
    escrow = deployed(env, "ClaimEscrow")
    assert escrow.functions.hasRole(escrow.functions.PAUSER_ROLE().call(), env["SAFE"]).call()
    assert escrow.functions.hasRole(admin, timelock.address).call()
    assert not escrow.functions.hasRole(admin, addr["gov"]).call()
    # Re-running the hand-over changes nothing (idempotent) and the deployer cannot act alone any more.
    run_json(env, "--account", "gov", "deploy", "--admin", env["SAFE"], "--registrar", env["SAFE"])
    refused = run_cli(env, "--account", "gov", "registry", "add-provider", "clinic", "--metadata", "0x" + "11" * 32,
                      check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr


def test_hand_over_after_a_plain_deploy_leaves_the_deployer_nothing(env, tmp_path):
    """The demo's order: deploy first (the deployer is admin and registrar), then hand over to the Safe by
    running deploy again with --admin and --registrar; the deployer renounces every role, its registrar
    role included, and a third run sends nothing."""
    other = dict(env, MEDLEDGER_DEPLOYMENTS=str(tmp_path / "deployments.json"))
    run_json(other, "--account", "gov", "deploy")
    steps = run_json(other, "--account", "gov", "deploy", "--admin", env["SAFE"], "--registrar", env["SAFE"],
                     "--timelock-delay", "7200")
    registry, gov = care(other), json.loads(env["addr"])["gov"]
    timelock = deployed(other, "TimelockController")
    assert {"contract": "TimelockController", "address": timelock.address} in [
        {k: s[k] for k in ("contract", "address")} for s in steps]
    assert timelock.functions.getMinDelay().call() == 7200
    holders = {b"\x00" * 32: timelock.address, registry.functions.GOVERNOR_ROLE().call(): timelock.address,
               registry.functions.REGISTRAR_ROLE().call(): env["SAFE"]}
    for role, holder in holders.items():
        assert registry.functions.hasRole(role, holder).call()
        assert not registry.functions.hasRole(role, gov).call()
    before = web3.eth.get_transaction_count(gov)
    run_json(other, "--account", "gov", "deploy", "--admin", env["SAFE"], "--registrar", env["SAFE"])
    assert web3.eth.get_transaction_count(gov) == before
    changed = run_cli(other, "--account", "gov", "deploy", "--admin", env["SAFE"], "--timelock-delay", "60",
                      check=False)
    assert changed.returncode == 1 and "has a minimum delay of 7200 s, not 60 s" in changed.stderr
    assert web3.eth.get_transaction_count(gov) == before


def test_propose_confirm_execute_registers_a_provider(env):
    addr = json.loads(env["addr"])
    proposed = run_json(env, "--safe", env["SAFE"], "--account", "owner1", "registry", "add-provider", "clinic",
                        "--metadata", "0x" + "11" * 32)
    assert proposed["signatures"] == 1 and proposed["threshold"] == 2
    path = proposed["proposal"]
    assert not care(env).functions.isActive(addr["clinic"], 1).call()  # nothing happened yet
    short = run_cli(env, "--account", "owner3", "safe", "execute", path, check=False)
    assert short.returncode == 1
    assert "has 1 valid owner signature(s)" in short.stderr and "needs 2" in short.stderr
    confirmed = run_json(env, "--account", "owner2", "safe", "confirm", path)
    assert confirmed["signatures"] == 2
    executed = run_json(env, "--account", "stranger", "safe", "execute", path)
    assert executed["tx"].startswith("0x")
    assert care(env).functions.isActive(addr["clinic"], 1).call()
    again = run_cli(env, "--account", "stranger", "safe", "execute", path, check=False)
    assert again.returncode == 1 and "already used" in again.stderr


def test_a_stranger_cannot_sign_and_an_altered_proposal_is_refused(env, tmp_path):
    addr = json.loads(env["addr"])
    proposed = run_json(env, "--safe", env["SAFE"], "--account", "owner1", "registry", "add-provider", "lab",
                        "--metadata", "0x" + "12" * 32)
    path = Path(proposed["proposal"])
    stranger = run_cli(env, "--account", "stranger", "safe", "confirm", str(path), check=False)
    assert stranger.returncode == 1 and f"{addr['stranger']} is not an owner" in stranger.stderr
    altered = json.loads(path.read_text())
    altered["to"] = addr["stranger"]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(altered))
    refused = run_cli(env, "--account", "owner2", "safe", "confirm", str(forged), check=False)
    assert refused.returncode == 1 and "altered" in refused.stderr
    assert json.loads(path.read_text())["signatures"].keys() == {addr["owner1"]}  # the file was left as it was


def test_the_safe_itself_refuses_too_few_signatures(env, monkeypatch):
    """Below the CLI's own check: execTransaction with one signature of a 2-of-3 Safe reverts on chain."""
    proposed = run_json(env, "--safe", env["SAFE"], "--account", "owner1", "registry", "add-provider", "lab",
                        "--metadata", "0x" + "13" * 32)
    proposal = SafeProposal.load(Path(proposed["proposal"]))
    chain = Chain(load_settings(rpc=web3.provider.endpoint_uri, deployments_path=env["MEDLEDGER_DEPLOYMENTS"]))
    governance = SafeGovernance(chain, env["SAFE"])
    monkeypatch.setenv("MEDLEDGER_PASSWORD", env["MEDLEDGER_PASSWORD"])
    sender = load_signer("stranger", Path(env["MEDLEDGER_KEYSTORE_DIR"]), Path(env["BROWNIE_ACCOUNTS_DIR"]))
    one = bytes.fromhex(next(iter(proposal.signatures.values())).removeprefix("0x"))
    before = web3.eth.block_number
    with pytest.raises(ChainError):
        governance.execute_with(proposal, sender, one)
    assert web3.eth.block_number == before
    assert not care(env).functions.isActive(json.loads(env["addr"])["lab"], 1).call()


def test_runbook_pause_the_escrow_through_the_safe(env):
    """docs/OPERATIONS.md, "Pausing the escrow": two owners pause; the deployer alone no longer can."""
    deployed = json.loads(Path(env["MEDLEDGER_DEPLOYMENTS"]).read_text())[str(web3.eth.chain_id)]
    abi = json.loads((Path(__file__).resolve().parents[1] / "build/contracts/ClaimEscrow.json").read_text())["abi"]
    escrow = web3.eth.contract(address=deployed["ClaimEscrow"]["address"], abi=abi)
    alone = run_cli(env, "--account", "gov", "escrow", "pause", check=False)
    assert alone.returncode == 1 and not escrow.functions.paused().call()
    path = run_json(env, "--safe", env["SAFE"], "--account", "owner2", "escrow", "pause")["proposal"]
    run_json(env, "--account", "owner3", "safe", "confirm", path)
    run_json(env, "--account", "gov", "safe", "execute", path)
    assert escrow.functions.paused().call()


def test_timelocked_reinstatement_through_the_safe(env):
    """Issue 18: one registrar suspends at once, but no registrar (not even the Safe) reinstates; the Safe
    schedules the reinstatement in the timelock, which refuses to run it before the delay and runs it after."""
    addr = json.loads(env["addr"])
    registry = care(env)
    govern(env, "registry", "add-provider", "lab", "--metadata", "0x" + "14" * 32)
    govern(env, "registry", "suspend", "lab")
    assert not registry.functions.isActive(addr["lab"], 1).call()
    direct = run_cli(env, "--safe", env["SAFE"], "--account", "owner1", "registry", "reinstate", "lab", check=False)
    assert direct.returncode == 1 and "governor role" in direct.stderr and "Traceback" not in direct.stderr
    early = run_cli(env, "--account", "stranger", "governance", "execute", "reinstate", "lab", check=False)
    assert early.returncode == 1 and "is not scheduled" in early.stderr

    scheduled = govern(env, "governance", "schedule", "reinstate", "lab")
    assert scheduled["tx"].startswith("0x")
    status = run_json(env, "governance", "status", "reinstate", "lab")
    assert status["state"] == "waiting"
    ready = web3.eth.get_block("latest")["timestamp"] + 3600
    refused = run_cli(env, "--account", "stranger", "governance", "execute", "reinstate", "lab", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (f"error: not ready: the timelock releases the reinstatement of {addr['lab']} "
                                      f"at {utc(ready)}")
    assert not registry.functions.isActive(addr["lab"], 1).call()

    web3.provider.make_request("evm_increaseTime", [3601])
    web3.provider.make_request("evm_mine", [])
    done = run_json(env, "--account", "stranger", "governance", "execute", "reinstate", "lab")
    assert done["state"] == "done" and done["tx"].startswith("0x")
    assert registry.functions.isActive(addr["lab"], 1).call()
    again = run_cli(env, "--account", "stranger", "governance", "execute", "reinstate", "lab", check=False)
    assert again.returncode == 1 and "is not scheduled" in again.stderr


def test_the_safe_cancels_a_scheduled_call(env):
    """The Safe, the timelock's canceller, cancels a scheduled appointment before it runs: nothing is left to
    execute, and the same command schedules it afresh (the operation's salt is free again)."""
    addr = json.loads(env["addr"])
    registry = care(env)
    govern(env, "governance", "schedule", "grant-registrar", "owner3")
    assert run_json(env, "governance", "status", "grant-registrar", "owner3")["state"] == "waiting"
    alone = run_cli(env, "--account", "owner1", "governance", "cancel", "grant-registrar", "owner3", check=False)
    assert alone.returncode == 1 and "Traceback" not in alone.stderr  # an owner alone is no canceller
    govern(env, "governance", "cancel", "grant-registrar", "owner3")
    assert run_json(env, "governance", "status", "grant-registrar", "owner3")["state"] == "unset"
    web3.provider.make_request("evm_increaseTime", [3601])
    web3.provider.make_request("evm_mine", [])
    refused = run_cli(env, "--account", "stranger", "governance", "execute", "grant-registrar", "owner3", check=False)
    assert refused.returncode == 1 and "is not scheduled" in refused.stderr
    assert not registry.functions.hasRole(registry.functions.REGISTRAR_ROLE().call(), addr["owner3"]).call()


def test_runbook_migrate_a_compromised_provider_through_the_safe(env):
    """docs/OPERATIONS.md, "An insurer's or a provider's key is compromised": a registrar (the Safe) suspends the
    provider at once; the Safe schedules its migration to a new key and the new key's reinstatement; after the
    delay anyone executes both. The new key withdraws what was owed, its open claim is approved and paid to it,
    and the old key is refused with a sentence."""
    addr = json.loads(env["addr"])
    registry = care(env)
    govern(env, "registry", "add-provider", "doc", "--metadata", "0x" + "21" * 32)
    govern(env, "registry", "add-insurer", "payer", "--metadata", "0x" + "22" * 32)
    run_cli(env, "--account", "gov", "dev", "mint", "payer", "1000000000")  # 1,000 tokens (6 decimals)
    run_cli(env, "--account", "payer", "escrow", "deposit", "500")
    run_cli(env, "--account", "payer", "claim", "rules", "set", "--prompt-pay-days", "15", "--dispute-days", "30")
    run_cli(env, "--account", "payer", "coverage", "enroll", "alice", "--policy-hash", "0x" + "ab" * 32)
    run_cli(env, "--account", "alice", "consent", "grant", "doc", "-p", "treat,hpaymt", "-c", "conditions")
    run_cli(env, "--account", "alice", "consent", "grant", "payer", "-p", "hpaymt", "-c", "billing,conditions")
    owed, still_open = "0x" + "31" * 32, "0x" + "32" * 32
    for control in (owed, still_open):
        run_cli(env, "--account", "doc", "claim", "submit", "--patient", "alice", "--insurer", "payer", "--amount",
                "40", "--record", _doc_record(env, addr["alice"]), "--service", "100", "--claim-hash",
                "0x" + "cd" * 32, "--control", control)
    run_cli(env, "--account", "payer", "claim", "approve", "doc", owed)

    # 1. The key is compromised: the Safe (a registrar) suspends the provider at once.
    govern(env, "registry", "suspend", "doc")
    # 2. The Safe schedules the migration and the new key's reinstatement; the timelock holds both.
    govern(env, "governance", "schedule", "migrate", "doc", "doc-new")
    govern(env, "governance", "schedule", "reinstate", "doc-new")
    assert run_json(env, "governance", "status", "migrate", "doc", "doc-new")["state"] == "waiting"
    early = run_cli(env, "--account", "stranger", "governance", "execute", "migrate", "doc", "doc-new", check=False)
    assert early.returncode == 1 and "Traceback" not in early.stderr and "not ready" in early.stderr
    assert registry.functions.partyOf(addr["doc-new"]).call()[0] == 0
    web3.provider.make_request("evm_increaseTime", [3601])
    web3.provider.make_request("evm_mine", [])
    executed = run_json(env, "--account", "stranger", "governance", "execute", "migrate", "doc", "doc-new")
    assert executed["state"] == "done"
    run_json(env, "--account", "stranger", "governance", "execute", "reinstate", "doc-new")
    assert registry.functions.isActive(addr["doc-new"], 1).call()
    assert not registry.functions.isActive(addr["doc"], 1).call()

    # 3. The party is shown under its new key; the new key withdraws what was owed.
    shown = run_json(env, "registry", "show", "doc")
    assert shown["address"] == addr["doc-new"] and shown["migrated_from"] == addr["doc"] and shown["active"]
    assert run_json(env, "--account", "doc-new", "escrow", "balance")["owed"] == 40 * 10**6
    run_cli(env, "--account", "doc-new", "claim", "withdraw")
    # The open claim is approved by the insurer, who names the provider by its new key; the new key is paid.
    run_cli(env, "--account", "payer", "claim", "approve", "doc-new", still_open)
    run_cli(env, "--account", "doc-new", "claim", "withdraw")
    token = _token(env)
    assert token.functions.balanceOf(addr["doc-new"]).call() == 80 * 10**6
    # The old key can do nothing, and is told why in one sentence.
    refused = run_cli(env, "--account", "doc", "registry", "publish-key", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "migrated to another account" in refused.stderr
    refused = run_cli(env, "--account", "doc", "claim", "submit", "--patient", "alice", "--insurer", "payer",
                      "--amount", "1", "--record", "0x" + "00" * 32 + ":0x" + "00" * 32, "--service", "100",
                      "--claim-hash", "0x" + "cd" * 32, "--control", "0x" + "33" * 32, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr


def _doc_record(env, alice: str) -> str:
    """A CONDITIONS record of alice anchored by `doc` (the SDK), as the CLI's `--record ID:HASH`."""
    import os

    from eth_account import Account
    from support.nodes import dev_key

    from medledger.accounts import LocalSigner
    from medledger.contracts import RecordRegistry
    from medledger.record_ids import new_record_id
    from medledger.scopes import DataClass

    chain = Chain(load_settings(rpc=web3.provider.endpoint_uri, deployments_path=env["MEDLEDGER_DEPLOYMENTS"]))
    records = RecordRegistry(chain, deployed(env, "RecordRegistry").address)
    rid, content = new_record_id(alice), os.urandom(32)
    records.anchor(LocalSigner(Account.from_key(dev_key(KEYS["doc"]))), rid, alice, content, DataClass.CONDITIONS)
    return f"0x{rid.hex()}:0x{content.hex()}"


def _token(env):
    escrow = deployed(env, "ClaimEscrow")
    abi = json.loads((Path(__file__).resolve().parents[1] / "build/contracts/MockStablecoin.json").read_text())["abi"]
    return web3.eth.contract(address=escrow.functions.token().call(), abi=abi)
