"""The event index on real parts: a separately launched Anvil, SQLite and a real PostgreSQL server.

Run: brownie test tests/test_index.py --network medledger-anvil-hN
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import text

from medledger import audit
from medledger.errors import IndexerError, ReorgTooDeep
from medledger.index import open_index, queries
from medledger.index.abi import Decoder
from medledger.index.api import create_index_app
from medledger.index.follower import Follower
from medledger.index.projections import reproject
from medledger.index.rpc import RetryPolicy, RpcReader
from medledger.testing.nodes import AnvilNode
from medledger.testing.postgres import PostgresServer
from tests.support.index_chain import anchor, deploy, grant, workload
from tests.support.limited_rpc import LimitedRpc
from tests.support.nodes import cli_env, medledger_exe, run_cli

BACKENDS = ["sqlite", "postgresql"]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def node():
    anvil = AnvilNode().start()
    yield anvil
    anvil.stop()


@pytest.fixture(scope="module")
def suite(node, tmp_path_factory):
    home = tmp_path_factory.mktemp("index-home")
    s = deploy(node.url, home)
    s.home = home
    s.info = workload(s)
    return s


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite'}"
    return request.getfixturevalue("pg").create_database()


def follower(suite, db, url=None, **kwargs):
    reader = RpcReader(url or suite.chain.settings.rpc_url, **kwargs.pop("reader", {}))
    return Follower(db, reader, Decoder.for_chain(suite.chain, suite.addresses), suite.addresses,
                    chain_id=suite.chain.chain_id, start_block=suite.start_block, **kwargs)


def chain_events(suite):
    return audit.fetch_events(suite.chain, suite.addresses, suite.start_block)


def _norm(value):
    if isinstance(value, Mapping):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


def key(records):
    """Events as comparable tuples (the chain scan's web3 values and the index's JSON values alike)."""
    return [(r.block, r.tx_hash, r.log_index, r.contract, r.event, json.dumps(_norm(r.args), sort_keys=True))
            for r in records]


def snapshot_tables(db, chain_id):
    """Every row of the index for `chain_id`, without surrogate ids, in a stable order."""
    out = {}
    with db.engine.connect() as conn:
        for table, order in (("events", "block_number, log_index"), ("record_versions", "block_number, log_index"),
                             ("consent_changes", "block_number, log_index"), ("claims", "claim_id")):
            rows = conn.execute(text(f"SELECT * FROM {table} WHERE chain_id = :c ORDER BY {order}"),
                                {"c": chain_id}).mappings().all()
            out[table] = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    return out


# ----------------------------------------------------------------------------- catch-up and queries
def test_catch_up_matches_chain_scan(suite, db_url):
    with open_index(db_url) as db:
        result = follower(suite, db).sync_once()
        chain_id = suite.chain.chain_id
        assert result.events == len(chain_events(suite)) > 25
        assert key(queries.events_between(db, chain_id, 0, result.to_block)) == key(chain_events(suite))
        for who in ("patient", "patient2"):
            live = audit.patient_trail(chain_events(suite), suite.address(who))
            assert key(queries.patient_trail(db, chain_id, suite.address(who))) == key(live)
        # a second run finds nothing new and duplicates nothing
        assert follower(suite, db).sync_once().events == 0

        recs = queries.records(db, chain_id, patient=suite.address("patient"))
        assert {r.record_id for r in recs} == {"0x" + r.hex() for r in suite.info["records"][:3]}
        amended = next(r for r in recs if r.record_id == "0x" + suite.info["records"][0].hex())
        assert amended.version == 2 and amended.data_class == 1
        assert len(queries.records(db, chain_id, author=suite.address("provider"))) == 4

        insurer = queries.claim_queue(db, chain_id, insurer=suite.address("insurer"))
        assert insurer.counts == {"submitted": 1, "disputed": 1, "settled": 1}
        assert [c.billed for c in insurer.open] == [500] and insurer.disputed[0].contested == 300
        provider = queries.claim_queue(db, chain_id, provider=suite.address("provider"))
        assert provider.owed == suite.escrow.balances(suite.address("provider")).owed == 600 + 300

        states = {s.grantee: s for s in queries.consent_state(db, chain_id, patient=suite.address("patient2"))}
        assert states[suite.address("provider")].granted is False
        revoked_at = states[suite.address("provider")].block
        before = {s.grantee: s for s in queries.consent_state(db, chain_id, patient=suite.address("patient2"),
                                                              as_of_block=revoked_at - 1)}
        assert before[suite.address("provider")].granted and before[suite.address("provider")].purposes == 0b101

        tables = snapshot_tables(db, chain_id)
        with db.engine.begin() as conn:
            reproject(conn, chain_id)
        assert snapshot_tables(db, chain_id) == tables


def test_bad_input_is_one_clear_error(suite, tmp_path):
    with pytest.raises(IndexerError, match="not a database URL|unsupported"):
        open_index("mysql://root@127.0.0.1/x")
    with pytest.raises(IndexerError, match="cannot open the index database"):
        open_index("postgresql://nobody@127.0.0.1:1/none")
    with open_index(f"sqlite:///{tmp_path / 'i.sqlite'}") as db:
        with pytest.raises(IndexerError, match="has not followed chain"):
            queries.require_chain(db, 31337)
        with pytest.raises(IndexerError, match="not an Ethereum address"):
            queries.patient_trail(db, 31337, "0x1234")
        follower(suite, db).sync_once()
        other = dict(suite.addresses, ClaimEscrow="0x" + "11" * 20)
        f = Follower(db, RpcReader(suite.chain.settings.rpc_url), Decoder.for_chain(suite.chain, other), other,
                     chain_id=suite.chain.chain_id, start_block=suite.start_block)
        with pytest.raises(IndexerError, match="follows another deployment"):
            f.sync_once()
        # on a development chain (the CLI's choice there) a new deployment replaces the old one's index
        f.replace_deployment = True
        f.sync_once()
        assert queries.status(db)[0].addresses["ClaimEscrow"].lower() == other["ClaimEscrow"].lower()


# ----------------------------------------------------------------------------- limited RPC
def test_limited_rpc_converges_to_the_exact_event_set(suite, tmp_path):
    # max_results=4: no block-range split can go below one block, and the suite's busiest block holds 4 logs
    # (CareRegistry's constructor: DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE granted, REGISTRAR_ROLE's admin set,
    # the first registrar granted; issue 18).
    proxy = LimitedRpc(suite.chain.settings.rpc_url, max_range=4, max_results=4, p_429=0.15, p_stall=0.04,
                       stall=0.6).start()
    try:
        with open_index(f"sqlite:///{tmp_path / 'i.sqlite'}") as db:
            f = follower(suite, db, proxy.url, chunk=64, reader={"timeout": 0.3,
                                                               "retry": RetryPolicy(attempts=30, base_delay=0.01)})
            f.sync_once()
            got = key(queries.events_between(db, suite.chain.chain_id, 0, 10**9))
    finally:
        proxy.stop()
    assert got == key(chain_events(suite))
    assert proxy.counts["range"] and proxy.counts["results"] and proxy.counts["429"] and proxy.counts["stall"]
    assert f.reader.retries >= proxy.counts["429"]


# ----------------------------------------------------------------------------- reorgs
def _wait_indexed(db, chain_id, block, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = queries.status(db, chain_id)
        if found and found[0].indexed_to >= block:
            return
        time.sleep(0.05)
    raise AssertionError(f"the follower did not reach block {block}")


def _fork_a(suite, depth):
    """`depth` blocks: consents, anchors and an adjudication of the open claim (a claim state change)."""
    suite.escrow.adjudicate(suite.signer("insurer"), suite.address("provider"), suite.info["open"], 500)
    for i in range(depth - 1):
        if i % 2:
            grant(suite, "patient2", "provider2")
        else:
            anchor(suite, "patient")


def _fork_b(suite, depth):
    for _ in range(depth):
        anchor(suite, "patient", data_class=4)


@pytest.mark.parametrize("depth,backend", [(1, "sqlite"), (7, "sqlite"), (20, "sqlite"), (7, "postgresql")])
def test_reorg_while_following_equals_a_fresh_index(suite, node, tmp_path, request, depth, backend):
    url = f"sqlite:///{tmp_path / 'follow.sqlite'}" if backend == "sqlite" else \
        request.getfixturevalue("pg").create_database()
    chain_id = suite.chain.chain_id
    snap = node.snapshot()
    try:
        with open_index(url) as db:
            f = follower(suite, db)
            stop = threading.Event()
            thread = threading.Thread(target=f.follow, kwargs={"poll": 0.05, "stop": stop}, daemon=True)
            thread.start()
            try:
                _wait_indexed(db, chain_id, node.block_number())
                _fork_a(suite, depth)
                _wait_indexed(db, chain_id, node.block_number())
                node.revert(snap)
                snap = node.snapshot()
                _fork_b(suite, depth + 1)
                _wait_indexed(db, chain_id, node.block_number())
                time.sleep(0.2)
            finally:
                stop.set()
                thread.join(30)
            f.sync_once()
            assert f.rollbacks >= 1
            followed = snapshot_tables(db, chain_id)
        with open_index(f"sqlite:///{tmp_path / 'fresh.sqlite'}") as fresh:
            follower(suite, fresh).sync_once()
            assert followed == snapshot_tables(fresh, chain_id)
        claims = {c["claim_id"]: c["status"] for c in followed["claims"]}
        assert claims[suite.escrow.claim_id(suite.address("provider"), suite.info["open"])] == "submitted"
    finally:
        node.revert(snap)


def test_reorg_beyond_the_window_is_refused_and_changes_nothing(suite, node, tmp_path):
    chain_id = suite.chain.chain_id
    snap = node.snapshot()
    try:
        with open_index(f"sqlite:///{tmp_path / 'i.sqlite'}") as db:
            f = follower(suite, db, reorg_window=3)
            f.sync_once()
            _fork_b(suite, 6)
            f.sync_once()
            before = snapshot_tables(db, chain_id)
            node.revert(snap)
            snap = node.snapshot()
            _fork_a(suite, 7)
            with pytest.raises(ReorgTooDeep, match="reorg window"):
                f.sync_once()
            assert snapshot_tables(db, chain_id) == before
    finally:
        node.revert(snap)


def test_a_chunk_read_ahead_before_a_reorg_is_never_stored(suite, node, tmp_path):
    """One-block chunks: while the first new block is written, the next is read ahead; then the chain
    replaces every block after the first. The logs read ahead belong to the replaced fork: they must be
    re-read, so the index equals a fresh index of the final chain."""
    chain_id = suite.chain.chain_id
    snap = node.snapshot()
    try:
        with open_index(f"sqlite:///{tmp_path / 'ahead.sqlite'}") as db:
            f = follower(suite, db, chunk=1, max_chunk=1)
            f.sync_once()
            anchor(suite, "patient")
            kept = node.snapshot()          # the first new block stays on the chain
            for _ in range(3):
                grant(suite, "patient2", "provider2")
            read, store = f._read, f._store
            reads: list[int] = []
            stores: list[int] = []

            def reading(start, last):
                out = read(start, last)
                reads.append(start)
                return out

            def storing(start, end, logs, head):
                if not stores:  # the first new block: wait for the read ahead, then replace the fork above it
                    deadline = time.monotonic() + 30
                    while len(reads) < 2 and time.monotonic() < deadline:
                        time.sleep(0.01)
                    assert reads[1] == start + 1 and logs
                    node.revert(kept)
                    for _ in range(4):
                        anchor(suite, "patient", data_class=4)
                stores.append(start)
                return store(start, end, logs, head)

            f._read, f._store = reading, storing
            f.sync_once()
            f.sync_once()
            assert stores.count(stores[1]) >= 2  # the block read ahead was read again
            followed = snapshot_tables(db, chain_id)
        with open_index(f"sqlite:///{tmp_path / 'fresh.sqlite'}") as fresh:
            follower(suite, fresh).sync_once()
            assert followed == snapshot_tables(fresh, chain_id)
    finally:
        node.revert(snap)


# ----------------------------------------------------------------------------- crash
def test_kill_mid_catch_up_then_restart_has_no_duplicates_and_no_gaps(suite, tmp_path):
    proxy = LimitedRpc(suite.chain.settings.rpc_url, max_range=1, latency=0.06).start()
    db_path = tmp_path / "crash.sqlite"
    env = cli_env(tmp_path, MEDLEDGER_DEPLOYMENTS=str(suite.home / "deployments.json"))
    args = [medledger_exe(), "--rpc", proxy.url, "index", "--once", "--db", f"sqlite:///{db_path}", "--chunk", "1",
            "--max-chunk", "1"]
    try:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        indexed = 0
        while time.monotonic() < deadline and indexed < suite.start_block + 5 and proc.poll() is None:
            time.sleep(0.05)
            indexed = _cursor_of(db_path)
        assert proc.poll() is None, "the indexer finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with open_index(f"sqlite:///{db_path}") as db:
            partial = queries.status(db)[0].indexed_to
        assert partial < suite.chain.w3.eth.block_number
        done = run_cli(env, "--rpc", proxy.url, "--json", "index", "--db", f"sqlite:///{db_path}", "--max-chunk", "50")
        assert json.loads(done.stdout)["indexed_to"] == suite.chain.w3.eth.block_number
    finally:
        proxy.stop()
    with open_index(f"sqlite:///{db_path}") as db:
        with db.engine.connect() as conn:
            total, distinct = conn.execute(text(
                "SELECT count(*), count(DISTINCT tx_hash || ':' || log_index) FROM events")).one()
        assert total == distinct
        assert key(queries.events_between(db, suite.chain.chain_id, 0, 10**9)) == key(chain_events(suite))


def _cursor_of(db_path):
    """The last block the index at `db_path` holds (0 before the first chunk), read with the bare driver."""
    if not db_path.exists():
        return 0
    con = sqlite3.connect(db_path, timeout=10)
    try:
        row = con.execute("SELECT next_block - 1 FROM cursors").fetchone()
    except sqlite3.OperationalError:  # the indexer has not created its tables yet
        return 0
    finally:
        con.close()
    return row[0] if row else 0


# ----------------------------------------------------------------------------- CLI and API
def _inproc(env, *args):
    """The real `medledger` root group, in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from medledger.cli import main

    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_answers_from_the_index(suite, tmp_path):
    env = cli_env(tmp_path, MEDLEDGER_DEPLOYMENTS=str(suite.home / "deployments.json"),
                  MEDLEDGER_INDEX_DB=f"sqlite:///{tmp_path / 'cli.sqlite'}")
    rpc = ("--rpc", suite.chain.settings.rpc_url)
    patient = suite.address("patient")
    missing = run_cli(env, *rpc, "audit", patient, "--no-sync", check=False)
    assert missing.returncode == 1 and "medledger index --once" in missing.stderr and "Traceback" not in missing.stderr
    from_index = json.loads(run_cli(env, *rpc, "audit", patient, "--format", "json").stdout)  # indexes first
    live = json.loads(run_cli(env, *rpc, "audit", patient, "--format", "json", "--live").stdout)
    assert from_index == live and len(live) > 10
    assert "indexed to block" in run_cli(env, *rpc, "index", "--once").stdout

    code, out, _ = _inproc(env, *rpc, "--json", "record", "list", "--patient", patient)
    assert code == 0 and len(json.loads(out)) == 3
    code, out, _ = _inproc(env, *rpc, "--json", "claim", "queue", "--insurer", suite.address("insurer"))
    queue = json.loads(out)
    assert queue["counts"]["submitted"] == 1 and len(queue["open"]) == 1
    code, out, _ = _inproc(env, *rpc, "--json", "consent", "state", "--patient", patient)
    assert {s["grantee"] for s in json.loads(out)} == {suite.address("provider"), suite.address("insurer")}
    code, out, _ = _inproc(env, *rpc, "--json", "audit", "verify", "--samples", "3", "--span", "10")
    verified = json.loads(out)
    assert code == 0 and verified["ok"] and verified["ranges"] and verified["checkpoints"]
    code, _, err = _inproc(env, *rpc, "index", "--db", "mysql://x@127.0.0.1/y")
    assert code == 1 and err.count("\n") == 1 and "unsupported index database" in err
    code, _, err = _inproc(env, *rpc, "claim", "queue")
    assert code == 2 and "exactly one of --insurer or --provider" in err
    # tamper with the index: verify notices
    with open_index(env["MEDLEDGER_INDEX_DB"]) as db, db.engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE id = (SELECT max(id) FROM events)"))
    code, _, err = _inproc(env, *rpc, "audit", "verify", "--samples", "40", "--span", "5")
    assert code == 1 and "disagrees with the chain" in err


def test_cli_follow_reproject_and_rebuild(suite, node, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'follow.sqlite'}"
    env = cli_env(tmp_path, MEDLEDGER_DEPLOYMENTS=str(suite.home / "deployments.json"), MEDLEDGER_INDEX_DB=db_url)
    rpc = ("--rpc", suite.chain.settings.rpc_url)
    proc = subprocess.Popen([medledger_exe(), *rpc, "index", "--follow", "--poll", "0.1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    snap = node.snapshot()
    try:
        with open_index(db_url) as db:
            _wait_indexed(db, suite.chain.chain_id, node.block_number(), timeout=60)
            rid = anchor(suite, "patient")
            _wait_indexed(db, suite.chain.chain_id, node.block_number(), timeout=60)
            assert "0x" + rid.hex() in {r.record_id for r in queries.records(db, suite.chain.chain_id,
                                                                              patient=suite.address("patient"))}
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)  # a loaded 2-core CI machine can take a while to unwind
        assert proc.returncode == 0 and "stopped following" in out and "Traceback" not in err
        code, out, _ = _inproc(env, *rpc, "--json", "index", "--reproject")
        assert code == 0 and json.loads(out)["events"] > 25
        code, out, _ = _inproc(env, *rpc, "--json", "index", "--rebuild")
        assert code == 0 and json.loads(out)["events"] == len(chain_events(suite))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        node.revert(snap)


def test_read_api(suite, db_url):
    from starlette.testclient import TestClient

    with open_index(db_url) as db:
        follower(suite, db).sync_once()
        chain_id = suite.chain.chain_id
        client = TestClient(create_index_app(db))
        status = client.get("/status").json()
        assert status[0]["chain_id"] == chain_id and status[0]["events"] > 25
        trail = client.get(f"/chains/{chain_id}/patients/{suite.address('patient')}/audit").json()
        assert [e["event"] for e in trail] == [r.event for r in queries.patient_trail(db, chain_id,
                                                                                      suite.address("patient"))]
        assert len(client.get(f"/chains/{chain_id}/patients/{suite.address('patient')}/audit?limit=2").json()) == 2
        assert len(client.get(f"/chains/{chain_id}/records", params={"patient": suite.address("patient")}).json()) == 3
        queue = client.get(f"/chains/{chain_id}/claims/queue", params={"insurer": suite.address("insurer")}).json()
        assert queue["counts"]["disputed"] == 1
        consents = client.get(f"/chains/{chain_id}/consents", params={"grantee": suite.address("provider")}).json()
        assert {c["patient"] for c in consents} == {suite.address("patient"), suite.address("patient2")}
        bad = client.get(f"/chains/{chain_id}/records", params={"patient": "0xnope"})
        assert bad.status_code == 400 and "not an Ethereum address" in bad.json()["error"]
        assert client.get(f"/chains/{chain_id}/claims/queue", params={"limit": "x", "insurer": "y"}).status_code == 400
        assert client.get("/chains/999/records", params={"patient": suite.address("patient")}).status_code == 404
        assert client.get("/chains/abc/records").status_code == 400


def test_migrations_are_idempotent(db_url):
    for _ in range(2):
        with open_index(db_url) as db, db.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"


def test_postgres_kit_is_loopback_only(pg):
    assert pg.url().startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert os.stat(pg.root).st_mode & 0o077 == 0
    assert Path(pg.root, "data", "PG_VERSION").exists() or Path(pg.data, "PG_VERSION").exists()
