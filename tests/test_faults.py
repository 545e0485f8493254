"""Faults around `medledger record put-batch`, through the real entry point:

(a) the CLI process is SIGKILLed mid-batch (while sealing, then right after the batch is prepared) and
    re-run: the same record ids, exactly one BatchAnchored for the root, every record present;
(b) a Ganache that keeps its state on disk is stopped in the middle of a batch and restarted: the
    interrupted run ends in one clear line, the re-run finishes with no duplicate and no loss;
(c) an RPC endpoint that accepts connections and never answers: retried with backoff, then one clear
    line, within a bounded time.
"""
import json
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from brownie import web3
from eth_account import Account
from eth_utils import keccak
from support.nodes import GanacheNode, cli_env, dev_key, run_cli, run_json
from support.recordcli import (
    as_,
    batch_tree,
    blob_path,
    journal_stage,
    key_env,
    kill_group,
    one_line_error,
    public_key,
    start_cli,
    wait_for_stage,
    write_bundles,
)

from medledger.accounts import LocalSigner
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.contracts import CareRegistry, ConsentRegistry, RecordRegistry
from medledger.scopes import DataClass, Purpose, Role
from medledger.vault import LocalVault

ACTORS = {"gov": 0, "clinic": 12, "alice": 16}
BATCH = 40  # large enough that sealing takes a while on two cores


def _setup_parties(env, rpc_url, who):
    """Deploy with the CLI, then register the clinic, publish keys and grant consent with the SDK."""
    run_json(env, *as_("gov"), "deploy")
    settings = load_settings(rpc=rpc_url, deployments_path=Path(env["MEDLEDGER_DEPLOYMENTS"]))
    chain = Chain(settings)
    suite = json.loads(open(env["MEDLEDGER_DEPLOYMENTS"]).read())[str(chain.chain_id)]
    care = CareRegistry(chain, suite["CareRegistry"]["address"])
    consent = ConsentRegistry(chain, suite["ConsentRegistry"]["address"])
    signer = {n: LocalSigner(Account.from_key(dev_key(i))) for n, i in ACTORS.items()}
    care.register(signer["gov"], who["clinic"], Role.PROVIDER, keccak(text="credentials:clinic"))
    for name in ("clinic", "alice"):
        care.publish_encryption_key(signer[name], public_key(ACTORS[name]))
    consent.grant(signer["alice"], who["alice"], who["clinic"], 1 << Purpose.TREAT, 1 << DataClass.CONDITIONS)
    return chain, RecordRegistry(chain, suite["RecordRegistry"]["address"])


def _assert_complete(records, vault, folder, final, author):
    """Exactly one BatchAnchored by `author` (for this root), and every file's record present and proven."""
    anchored = records.contract.events.BatchAnchored.get_logs(argument_filters={"provider": author}, from_block=0)
    assert [e["args"]["root"] for e in anchored] == [bytes.fromhex(final["root"][2:])]
    entries = final["records"]
    assert sorted(e["file"] for e in entries) == sorted(p.name for p in folder.glob("visit-*.json"))
    assert len({e["record_id"] for e in entries}) == len(entries) == final["count"] == BATCH
    leaves, tree = batch_tree(entries, author)
    assert tree.root_hex == final["root"]
    batch_id = int(final["batch_id"], 16)
    for i, (entry, leaf) in enumerate(zip(entries, leaves, strict=True)):
        assert "0x" + keccak(blob_path(vault.directory, entry["content_hash"]).read_bytes()).hex() == \
            entry["content_hash"]
        assert vault.index.lookup(entry["record_id"], 1) == entry["content_hash"]
        assert records.verify_in_batch(leaf, tree.get_proof(i), batch_id)


@pytest.fixture(scope="module")
def ganache_world(tmp_path_factory):
    home = tmp_path_factory.mktemp("faults-a")
    keys, who = key_env(ACTORS)
    env = cli_env(home, MEDLEDGER_RPC=web3.provider.endpoint_uri, **keys)
    _, records = _setup_parties(env, web3.provider.endpoint_uri, who)
    return env, who, records, LocalVault(home / "vault")


def test_killed_put_batch_resumes_exactly_once(ganache_world, tmp_path):
    env, who, records, vault = ganache_world
    folder = tmp_path / "batch"
    write_bundles(folder, who["alice"], BATCH, seed=500)
    args = (*as_("clinic"), "record", "put-batch", str(folder), "--patient", who["alice"])

    # 1st run: SIGKILL while it seals (the journal is planned and blobs are landing in the vault).
    blobs_before = len(vault)
    proc = start_cli(env, "--json", *args)
    assert wait_for_stage(proc, folder, "planned") == "planned"
    deadline = time.monotonic() + 60
    while len(vault) == blobs_before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert kill_group(proc) == -signal.SIGKILL  # killed mid-flight, not finished
    assert journal_stage(folder) == "planned"
    planned_ids = [e["record_id"] for e in json.loads((folder / ".medledger-batch.json").read_text())["entries"]]

    # 2nd run: SIGKILL as soon as the batch is prepared (around the anchoring transaction).
    proc = start_cli(env, "--json", *args)
    wait_for_stage(proc, folder, "prepared")
    kill_group(proc)
    interrupted_at = journal_stage(folder)
    assert interrupted_at in ("prepared", "submitted", "anchored")

    final = run_json(env, *args)
    assert final["resumed_from"] == interrupted_at
    assert [e["record_id"] for e in final["records"]] == planned_ids  # record ids were drawn once
    _assert_complete(records, vault, folder, final, who["clinic"])
    again = run_json(env, *args)  # and a further run changes nothing
    assert again["resumed_from"] == "anchored" and again["tx"] == final["tx"]
    _assert_complete(records, vault, folder, again, who["clinic"])


def test_node_restart_mid_batch(tmp_path):
    keys, who = key_env(ACTORS)
    node = GanacheNode(8631, 1337, db_path=tmp_path / "chaindb").start()
    try:
        env = cli_env(tmp_path / "home", MEDLEDGER_RPC=node.url, **keys)
        chain, records = _setup_parties(env, node.url, who)
        folder = tmp_path / "batch"
        write_bundles(folder, who["alice"], BATCH, seed=900)
        args = (*as_("clinic"), "record", "put-batch", str(folder), "--patient", who["alice"])
        proc = start_cli(env, "--json", *args)
        assert wait_for_stage(proc, folder, "planned") == "planned"
        node.stop()  # the node goes down mid-batch; its state stays on disk
        _, stderr = proc.communicate(timeout=120)
        line = one_line_error(proc, stderr)
        assert f"RPC {node.url}" in line
        stage = journal_stage(folder)
        assert stage in ("planned", "prepared")
        node.start()  # same database: the deployment and consents are still there
        final = run_json(env, *args)
        assert final["resumed_from"] == stage
        _assert_complete(records, LocalVault(tmp_path / "home" / "vault"), folder, final, who["clinic"])
    finally:
        node.stop()


class SilentServer:
    """Accepts TCP connections and never answers; remembers when each connection came."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.accepted: list[float] = []
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self._conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


def test_rpc_timeout_is_retried_with_backoff_then_one_line(tmp_path):
    folder = tmp_path / "batch"
    write_bundles(folder, "0x" + "11" * 20, 1)
    server = SilentServer(0)  # any free port
    url = f"http://127.0.0.1:{server.port}"
    try:
        env = cli_env(tmp_path / "home", MEDLEDGER_RPC=url, MEDLEDGER_RPC_TIMEOUT="1",
                      MEDLEDGER_RPC_RETRIES="3", ML_KEY_CLINIC=dev_key(12))
        started = time.monotonic()
        proc = run_cli(env, *as_("clinic"), "record", "put-batch", str(folder), "--patient", "0x" + "11" * 20,
                       check=False, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    line = one_line_error(proc)
    assert line == (f"error: RPC {url} did not answer within 1 s (3 attempts with backoff); "
                    "is the node overloaded or the URL wrong?")
    assert len(server.accepted) == 3
    gaps = [b - a for a, b in zip(server.accepted, server.accepted[1:], strict=False)]
    # 1 s timeout + 0.25 s backoff, then 1 s + 0.5 s: lower bounds, which load can only lengthen (comparing
    # the two gaps with each other failed on a loaded machine, where the first one stretched).
    assert gaps[0] >= 1.2 and gaps[1] >= 1.45
    assert elapsed < 10
    assert journal_stage(folder) is None  # nothing was journaled
