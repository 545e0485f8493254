"""`medledger record put/get/list` through a record gateway, and `medledger audit verify` of its log against the
chain: the real `medledger` entry point, a real `medledger gateway serve`, the test chain, real SQLite.

The parties and consents are the gateway tests' (`support.gateway.gateway_world`). This gateway anchors its
audit log only when it stops (a batch of 1,000 or an hour), so the tests can see entries pending; a restart
anchors them. The chain and the gateway's database move together, so the tests run in file order.
"""
from __future__ import annotations

import json
import sqlite3
import stat
from types import SimpleNamespace

import pytest
from brownie import web3
from support.gateway import ACTORS, gateway_world, mask, signer
from support.nodes import cli_env, run_cli
from support.recordcli import as_, key_env, one_line_error

from medledger.gateway.auditlog import LEAF_TYPES, leaf_values
from medledger.merkle import StandardMerkleTree
from medledger.scopes import DataClass, Purpose
from medledger.testing.ports import free_port
from medledger.testing.synthetic import patient_bundle

BATCH_SECONDS = 3600  # nothing is anchored while the gateway runs; stopping it anchors everything


@pytest.fixture(autouse=True)
def isolation():
    """Overrides conftest's per-test snapshot: the gateway's database follows the chain across tests."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = gateway_world(tmp_path_factory.mktemp("cli-gateway"), web3.provider.endpoint_uri,
                      "--head-ttl", "0", "--batch-size", "1000", "--batch-seconds", str(BATCH_SECONDS))
    keys, _ = key_env(ACTORS)
    w["env"] = cli_env(w["home"] / "cli", MEDLEDGER_RPC=w["settings"].rpc_url,
                       MEDLEDGER_DEPLOYMENTS=str(w["home"] / "deployments.json"),
                       MEDLEDGER_GATEWAY=w["gateway"].url, **keys)
    yield w
    w["gateway"].stop()


def ml(world, who: str, *args: str, check: bool = True, gateway: str | None = None):
    env = world["env"] if gateway is None else {**world["env"], "MEDLEDGER_GATEWAY": gateway}
    return run_cli(env, *as_(who), *args, check=check)


def ml_json(world, who: str, *args: str):
    return json.loads(ml(world, who, "--json", *args).stdout)


def types_of(bundle: dict) -> set[str]:
    return {e["resource"]["resourceType"] for e in bundle.get("entry", [])}


@pytest.fixture(scope="module")
def record(world):
    """One visit of alice's, put through the gateway by the clinic with `medledger record put`."""
    path = world["home"] / "visit.json"
    path.write_text(json.dumps(patient_bundle(1, world["who"]["alice"])))
    return ml_json(world, "clinic", "record", "put", str(path), "--patient", world["who"]["alice"])


def audit_db(world) -> sqlite3.Connection:
    return sqlite3.connect(world["home"] / "gw" / "gateway.db", timeout=30)


def rebuilt_tree(db: sqlite3.Connection, batch_seq: int) -> StandardMerkleTree:
    """The Merkle tree of a batch's entries as the database holds them now (as the gateway's anchorer builds it)."""
    db.row_factory = sqlite3.Row
    rows = db.execute("SELECT * FROM gw_audit_entries WHERE batch_seq = ? ORDER BY batch_index", (batch_seq,))
    values = [leaf_values(SimpleNamespace(**dict(r))) for r in rows]
    db.row_factory = None
    return StandardMerkleTree.of(values, LEAF_TYPES)


def verify(world, who: str, *args: str, check: bool = False, pairwise: bool = False):
    proc = ml(world, who, "--json", *(("--pairwise",) if pairwise else ()), "audit", "verify", *args, check=check)
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc, report


# --------------------------------------------------------------------------- put, get, list


def test_put_anchors_through_the_gateway(world, record):
    assert record["ok"] and record["gateway"] == world["gateway"].url
    assert record["classes"] == ["billing", "conditions", "demographics", "labs", "medications"]
    rid = bytes.fromhex(record["record_id"][2:])
    version = world["records"].verify(rid, bytes.fromhex(record["content_hash"][2:]))
    assert version.anchored and version.author == world["who"]["clinic"]  # the gateway anchored what it stored
    assert not (world["home"] / "cli" / "vault").exists()  # nothing went to a local vault


def test_get_writes_only_what_the_reader_may_see(world, record, tmp_path):
    out = tmp_path / "doc-read.json"
    got = ml_json(world, "doc", "record", "get", record["record_id"], "--out", str(out))
    assert got["reader"] == world["who"]["doc"] and got["purpose"] == "TREAT" and got["audit"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert types_of(json.loads(out.read_text())) == {"Patient", "Practitioner", "Organization", "Encounter",
                                                     "Condition", "Observation"}
    # the patient reads all of it, printed on stdout as the local mode does
    printed = ml(world, "alice", "record", "get", record["record_id"])
    assert "MedicationRequest" in types_of(json.loads(printed.stdout)) and "from http" in printed.stderr
    # the insurer, for payment: billing and demographics only
    paid = ml_json(world, "payer", "record", "get", record["record_id"], "--purpose", "hpaymt")
    assert types_of(paid["document"]) == {"Patient", "Practitioner", "Organization", "Coverage", "Claim"}


def test_list_uses_the_gateway_search(world, record):
    alice = world["who"]["alice"]
    listed = ml_json(world, "doc", "record", "list", alice)
    assert [r["record_id"] for r in listed] == [record["record_id"]]
    assert ml_json(world, "er", "record", "list", alice) == []  # no relationship: an empty search, not a refusal
    by_option = ml_json(world, "doc", "record", "list", "--patient", alice)
    assert [r["record_id"] for r in by_option] == [record["record_id"]]
    # without a gateway, `record list` and `audit verify` are the index's: the gateway's options are refused there
    index_mode = ml(world, "doc", "audit", "verify", "--patient", alice, check=False, gateway="")
    assert index_mode.returncode == 2 and "pass --gateway URL" in index_mode.stderr


def test_refusals_are_the_gateway_sentence_and_write_nothing(world, record, tmp_path):
    out = tmp_path / "refused.json"
    wrong = ml(world, "payer", "record", "get", record["record_id"], "--out", str(out), check=False)
    assert one_line_error(wrong) == "error: no consent for purpose TREAT" and not out.exists()
    alice = signer(ACTORS["alice"])
    world["consent"].revoke(alice, alice.address, world["who"]["doc"])
    try:
        revoked = ml(world, "doc", "record", "get", record["record_id"], "--out", str(out), check=False)
        line = one_line_error(revoked)
        assert "not found" in line and "not yours to know" in line, line  # no consent left: existence not disclosed
        assert not out.exists()
    finally:
        world["consent"].grant(alice, alice.address, world["who"]["doc"], 1 << Purpose.TREAT,
                               mask(DataClass.DEMOGRAPHICS, DataClass.CONDITIONS, DataClass.LABS))
    world["care"].suspend(world["gov"], world["who"]["payer"])
    try:
        suspended = ml(world, "payer", "record", "get", record["record_id"], "--purpose", "hpaymt", check=False)
        assert "suspended" in one_line_error(suspended)
    finally:
        world["care"].reinstate(world["gov"], world["who"]["payer"])


def test_an_unreachable_gateway_is_one_line_naming_it(world, record, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "never.json"
    proc = ml(world, "doc", "record", "get", record["record_id"], "--out", str(out), check=False, gateway=url)
    assert one_line_error(proc) == f"error: no gateway answers at {url} (connection refused or host unknown)"
    assert not out.exists()
    listed = ml(world, "doc", "record", "list", world["who"]["alice"], check=False, gateway=url)
    assert url in one_line_error(listed)


def test_put_batch_through_the_gateway_is_one_merkle_anchor(world, record, tmp_path):
    alice = world["who"]["alice"]
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(3):
        (folder / f"visit-{i}.json").write_text(json.dumps(patient_bundle(40 + i, alice)))
    anchored = world["records"].contract.events.BatchAnchored
    before = len(anchored.get_logs(from_block=0))
    out = ml_json(world, "clinic", "record", "put-batch", str(folder), "--patient", alice)
    assert out["ok"] and out["count"] == 3 and out["gateway"] == world["gateway"].url
    assert [r["file"] for r in out["records"]] == ["visit-0.json", "visit-1.json", "visit-2.json"]
    assert len(anchored.get_logs(from_block=0)) == before + 1
    info = world["records"].batch_of(int(out["batch_id"], 16))
    assert info.count == 3 and info.submitter == world["who"]["clinic"]
    assert not (folder / ".medledger-batch.json").exists()  # the gateway journals it, not the folder
    read = ml_json(world, "doc", "record", "get", out["records"][1]["record_id"])
    assert types_of(read["document"]) >= {"Patient", "Condition", "Observation"}
    # a declared class that does not cover a file: refused here, one line, nothing sent
    (folder / "manifest.json").write_text(json.dumps({"visit-1.json": {"class": "labs"}}))
    refused = ml(world, "clinic", "record", "put-batch", str(folder), "--patient", alice, check=False)
    assert refused.returncode != 0 and "visit-1.json" in one_line_error(refused)
    assert len(anchored.get_logs(from_block=0)) == before + 1


# --------------------------------------------------------------------------- audit verify


def test_audit_verify_reports_pending_entries_with_their_age(world, record):
    proc, report = verify(world, "alice")
    assert proc.returncode == 0, proc.stderr
    entries = report["entries"]
    assert entries and {e["status"] for e in entries} == {"pending"}
    assert {e["reader"] for e in entries} >= {world["who"]["doc"], world["who"]["payer"], world["who"]["alice"]}
    assert report["max_pending"] == 5 * BATCH_SECONDS  # the default: 5 of the gateway's batch intervals
    assert all(e["block"] is None and 0 <= e["age"] < 600 and not e["overdue"] for e in entries)
    late, report = verify(world, "alice", "--max-pending", "0")
    assert late.returncode == 1 and "pending longer than 0 s" in late.stderr and "Traceback" not in late.stderr
    assert not report["ok"] and all(e["overdue"] for e in report["entries"])
    # a reader sees its own reads only
    _, own = verify(world, "doc")
    assert own["entries"] and {e["reader"] for e in own["entries"]} == {world["who"]["doc"]}


def test_audit_verify_passes_once_the_batch_is_on_chain(world, record):
    gw = world["gateway"]
    gw.stop()  # a clean stop anchors every pending entry
    gw.start()
    gw.wait_idle()
    proc, report = verify(world, "alice", check=True)
    entries = report["entries"]
    assert report["ok"] and entries and {e["status"] for e in entries} == {"anchored"}
    batches = world["records"].access_log_batches(world["who"]["clinic"])
    assert {(e["block"], e["tx"]) for e in entries} <= {(b["block"], b["tx"]) for b in batches.values()}
    assert sum(b["count"] for b in batches.values()) >= len(entries)
    table = ml(world, "alice", "audit", "verify")
    assert "anchored" in table.stdout and f"{len(entries)} entries checked" in table.stdout


@pytest.mark.parametrize("tamper", ["purpose", "event", "root"])
def test_audit_verify_fails_on_a_tampered_log(world, record, tamper):
    """The gateway's database is edited under it: the entry's purpose (its leaf no longer leads to the root),
    its AuditEvent (no longer the leaf's event hash), or its purpose with the batch's tree rebuilt to match (a
    root the chain never saw)."""
    _, before = verify(world, "alice", check=True)
    seq = before["entries"][0]["seq"]
    with audit_db(world) as db:
        entry = db.execute("SELECT purpose, event, batch_seq FROM gw_audit_entries WHERE seq = ?", (seq,)).fetchone()
        batch = db.execute("SELECT root, tree FROM gw_audit_batches WHERE seq = ?", (entry[2],)).fetchone()
        if tamper == "purpose":
            db.execute("UPDATE gw_audit_entries SET purpose = ? WHERE seq = ?", (int(Purpose.HRESCH), seq))
        elif tamper == "event":
            edited = entry[1].replace('"code":"TREAT"', '"code":"HRESCH"').replace('"code":"HPAYMT"', '"code":"HRESCH"')
            assert edited != entry[1]
            db.execute("UPDATE gw_audit_entries SET event = ? WHERE seq = ?", (edited, seq))
        else:  # the purpose edited and the batch's tree rebuilt to match: a consistent forgery the chain never saw
            db.execute("UPDATE gw_audit_entries SET purpose = ? WHERE seq = ?", (int(Purpose.HRESCH), seq))
            tree = rebuilt_tree(db, entry[2])
            db.execute("UPDATE gw_audit_batches SET root = ?, tree = ? WHERE seq = ?",
                       (tree.root_hex, json.dumps(tree.dump()), entry[2]))
    try:
        proc, report = verify(world, "alice")
        assert proc.returncode == 1, proc.stdout
        line = one_line_error(proc)
        assert "MISMATCH" in line and str(seq) in line, line
        bad = [e for e in report["entries"] if e["status"] == "MISMATCH"]
        assert seq in [e["seq"] for e in bad]
        reason = next(e["detail"] for e in bad if e["seq"] == seq)
        expected = {"purpose": "Merkle proof does not lead", "event": "does not hash to the event hash",
                    "root": "not an access-log batch"}[tamper]
        assert expected in reason, reason
    finally:
        with audit_db(world) as db:
            db.execute("UPDATE gw_audit_entries SET purpose = ?, event = ? WHERE seq = ?", (entry[0], entry[1], seq))
            db.execute("UPDATE gw_audit_batches SET root = ?, tree = ? WHERE seq = ?", (batch[0], batch[1], entry[2]))
    proc, _ = verify(world, "alice")
    assert proc.returncode == 0, proc.stderr  # restored: it checks again


# --------------------------------------------------------------------------- pairwise pseudonyms


def test_a_pairwise_patient_acts_as_her_pseudonym(world, tmp_path):
    """Alice shares with the clinic under her pseudonym for it: a consent signed by the pseudonym and relayed by
    the clinic. Her pairwise commands sign in to the gateway as that pseudonym: every read is the pseudonym's."""
    clinic = world["who"]["clinic"]
    pseudonym = ml_json(world, "alice", "--pairwise", "patient", "pseudonym", clinic)["pseudonym"]
    signed = tmp_path / "consent.json"
    ml(world, "alice", "--pairwise", "consent", "sign", clinic, "-p", "treat", "-c", "all", "-o", str(signed))
    ml(world, "clinic", "consent", "relay", str(signed))
    visit = tmp_path / "visit.json"
    visit.write_text(json.dumps(patient_bundle(2, pseudonym)))
    created = ml_json(world, "clinic", "record", "put", str(visit), "--patient", pseudonym)
    assert created["patient"] == pseudonym and created["record_id"].lower().startswith(pseudonym.lower())
    listed = ml_json(world, "alice", "--pairwise", "record", "list")  # no PATIENT: her pseudonym for the custodian
    assert [r["record_id"] for r in listed] == [created["record_id"]]
    got = ml_json(world, "alice", "--pairwise", "record", "get", created["record_id"])
    assert got["reader"] == pseudonym and "MedicationRequest" in types_of(got["document"])
    proc, report = verify(world, "alice", pairwise=True)
    assert proc.returncode == 0, proc.stderr
    readers = {e["reader"] for e in report["entries"]}
    assert report["entries"] and readers == {pseudonym} and world["who"]["alice"] not in readers
    assert {e["patient"] for e in report["entries"]} == {pseudonym}


# --------------------------------------------------------------------------- amendments


def test_amend_through_the_gateway_by_its_author_only(world, record, tmp_path):
    """`record amend --gateway` is a FHIR versioned update: the author's next version is anchored by the gateway;
    anyone else, a stale --if-version, and a file of other classes are refused in one line, and nothing changes."""
    rid = record["record_id"]
    amended = tmp_path / "visit-v2.json"
    bundle = patient_bundle(1, world["who"]["alice"])
    bundle["entry"] = bundle["entry"][:-1]  # the visit, corrected: one entry fewer
    amended.write_text(json.dumps(bundle))
    by_doc = ml(world, "doc", "record", "amend", rid, str(amended), check=False)
    assert by_doc.returncode == 1 and "author" in one_line_error(by_doc)
    stale = ml(world, "clinic", "record", "amend", rid, str(amended), "--if-version", "2", check=False)
    assert stale.returncode == 1 and "version" in one_line_error(stale)
    assert world["records"].latest_of(bytes.fromhex(rid[2:])).info.version == 1  # the refusals changed nothing
    made = ml_json(world, "clinic", "record", "amend", rid, str(amended), "--if-version", "1")
    assert made["version"] == 2 and made["gateway"] == world["gateway"].url
    version = world["records"].verify(bytes.fromhex(rid[2:]), bytes.fromhex(made["content_hash"][2:]))
    assert version.anchored and version.version == 2 and version.author == world["who"]["clinic"]
    local = ml(world, "clinic", "record", "amend", rid, str(amended), "--if-version", "2", check=False, gateway="")
    assert local.returncode == 2 and "--if-version applies with --gateway" in local.stderr
