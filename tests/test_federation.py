"""Federation (issue 17): custodians publish their gateway endpoints in the CareRegistry, and a patient's history
across custodians is one command, `medledger record history`. Two real gateway servers (Riverside and Northside,
each `medledger gateway serve --publish`) on the test chain, real keystores, the real CLI.

Parties (development accounts): gov deploys and registers; riverside and northside run gateways; westside is a
provider that publishes no endpoint; doc is a provider alice consented for research only (not treatment);
alice is the patient; nobody is unregistered. The chain and both gateways are shared by the module: the tests
run in file order.
"""
from __future__ import annotations

import json
import socket
import stat
import time

import pytest
from brownie import web3
from eth_utils import keccak
from sqlalchemy import select
from support.gateway import GatewayProcess, signer
from support.nodes import deployed_env, run_cli
from support.recordcli import public_key

from medledger import federation
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.contracts import CareRegistry, ConsentRegistry, RecordRegistry
from medledger.gateway.client import GatewayClient
from medledger.index.db import open_index
from medledger.index.models import Event
from medledger.record_ids import new_record_id
from medledger.scopes import DataClass, Purpose, Role
from medledger.testing.accounts import dev_account
from medledger.testing.synthetic import patient_bundle

ACTORS = {"gov": 0, "riverside": 12, "northside": 13, "westside": 14, "doc": 15, "alice": 16, "nobody": 17}
D = DataClass
EVERYDAY = sum(1 << int(c) for c in DataClass if c not in (D.GENOMICS, D.MENTAL_HEALTH, D.SUBSTANCE_USE))


@pytest.fixture(autouse=True)
def isolation():
    """Overrides conftest's per-test snapshot: the gateways' databases follow the chain across tests."""


def _key(name: str) -> str:
    return "0x" + dev_account(ACTORS[name]).key.hex().removeprefix("0x")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("federation")
    env = deployed_env(home, web3.provider.endpoint_uri, ACTORS, providers=("riverside", "northside", "westside",
                                                                             "doc"))
    who = json.loads(env["ADDRESSES"])
    settings = load_settings(rpc=web3.provider.endpoint_uri, deployments_path=home / "deployments.json")
    chain = Chain(settings)
    suite = json.loads((home / "deployments.json").read_text())[str(chain.chain_id)]
    care = CareRegistry(chain, suite["CareRegistry"]["address"])
    consent = ConsentRegistry(chain, suite["ConsentRegistry"]["address"])
    records = RecordRegistry(chain, suite["RecordRegistry"]["address"])
    alice = signer(ACTORS["alice"])
    care.publish_encryption_key(alice, public_key(ACTORS["alice"]))
    for custodian in ("riverside", "northside", "westside"):
        consent.grant(alice, who["alice"], who[custodian], 1 << Purpose.TREAT, EVERYDAY)
    consent.grant(alice, who["alice"], who["doc"], 1 << Purpose.HRESCH, EVERYDAY)  # research only: no TREAT
    gateways = {name: GatewayProcess(settings.rpc_url, home / "deployments.json", home / f"gw-{name}", _key(name),
                                     "--head-ttl", "0", "--batch-seconds", "0.5", "--publish")
                for name in ("riverside", "northside")}
    for gw in gateways.values():
        gw.start()
    w = {"home": home, "env": env, "who": who, "chain": chain, "care": care, "consent": consent, "records": records,
         "gateways": gateways, "created": []}
    yield w
    for gw in gateways.values():
        gw.stop()


def put(world, custodian: str, seed: int) -> str:
    """A visit of alice's created at `custodian`'s gateway by the custodian; returns its record id (0x…)."""
    gw = world["gateways"][custodian]
    client = GatewayClient(gw.url, signer(ACTORS[custodian]), world["chain"].chain_id)
    client.login()
    created = client.put_record(patient_bundle(seed, world["who"]["alice"]), world["who"]["alice"])
    rid = "0x" + created["id"]
    world["created"].append((custodian, rid))
    return rid


def history(world, account: str, *args: str):
    """`medledger --json --account ACCOUNT record history ARGS`: (exit code, parsed JSON, stderr)."""
    proc = run_cli(world["env"], "--json", "--account", account, "record", "history", *args, check=False)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def sends(world, name: str) -> int:
    return web3.eth.get_transaction_count(world["who"][name])


# --------------------------------------------------------------------------- publishing


def test_each_gateway_published_its_origin_and_republishing_sends_nothing(world):
    for name, gw in world["gateways"].items():
        assert world["care"].gateway_endpoint(world["who"][name]) == gw.url
        shown = run_cli(world["env"], "registry", "endpoint", "show", name).stdout.strip()
        assert shown == gw.url
        assert "published (tx" in gw.logged()
    riverside = world["gateways"]["riverside"]
    before = sends(world, "riverside")
    # the same URL again, through the SDK and the CLI: no transaction
    assert world["care"].set_gateway_endpoint(signer(ACTORS["riverside"]), riverside.url + "/") is None
    out = json.loads(run_cli(world["env"], "--json", "--account", "riverside", "registry", "endpoint", "set",
                             riverside.url).stdout)
    assert out["tx"] is None and "nothing sent" in out["message"]
    # a gateway restarted with --publish finds its endpoint published and sends nothing either
    riverside.stop()
    riverside.start()
    assert riverside.logged().count("was published already (nothing sent)") == 1
    assert sends(world, "riverside") == before
    assert json.loads(run_cli(world["env"], "--json", "registry", "endpoint", "show", "westside").stdout) == {
        "party": world["who"]["westside"], "url": None}


# --------------------------------------------------------------------------- the merged timeline


def test_history_merges_records_from_both_custodians_in_order(world, tmp_path):
    first = put(world, "riverside", 1)
    second = put(world, "northside", 2)
    third = put(world, "riverside", 3)
    code, out, err = history(world, "alice", "-o", str(tmp_path / "fhir"))
    assert code == 0, err
    assert out["complete"] is True and out["patients"] == [world["who"]["alice"]]
    assert [e["record_id"] for e in out["entries"]] == [first, second, third]
    custodians = [e["custodian"] for e in out["entries"]]
    assert custodians == [world["who"]["riverside"], world["who"]["northside"], world["who"]["riverside"]]
    assert {e["endpoint"] for e in out["entries"]} == {gw.url for gw in world["gateways"].values()}
    assert all(e["status"] == "fetched" and "Patient" in e["resource_types"] for e in out["entries"])
    assert [e["anchored_block"] for e in out["entries"]] == sorted(e["anchored_block"] for e in out["entries"])
    assert {(c["name"], c["status"], c["records"], c["fetched"]) for c in out["custodians"]} == {
        ("riverside", "ok", 2, 2), ("northside", "ok", 1, 1)}
    for e in out["entries"]:
        path = tmp_path / "fhir" / f"{e['record_id'][2:]}.json"
        assert e["file"] == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        bundle = json.loads(path.read_text())
        assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == e["resources"]
    # the chain scan resolves the same records as the index
    code, live, _ = history(world, "alice", "--live")
    assert code == 0 and [e["record_id"] for e in live["entries"]] == [first, second, third]
    # the index (synced by the command) holds the endpoint events: party = the publisher, args.url = the origin
    with open_index(f"sqlite:///{world['home'] / 'index.sqlite'}") as db, db.engine.connect() as conn:
        rows = conn.execute(select(Event.party, Event.args).where(Event.event == "GatewayEndpointSet")).all()
    assert {(party, json.loads(args)["url"]) for party, args in rows} == {
        (world["who"][name], gw.url) for name, gw in world["gateways"].items()}
    # the text table names both custodians, and no custodian line is printed when all is well
    proc = run_cli(world["env"], "--account", "alice", "record", "history")
    assert "riverside" in proc.stdout and "northside" in proc.stdout and "3 of 3 record(s)" in proc.stdout
    assert proc.stderr.strip() == ""


def test_a_party_without_the_consent_gets_the_refusal_per_record_and_nothing_else(world, tmp_path):
    code, out, err = history(world, "doc", world["who"]["alice"], "-o", str(tmp_path / "doc"))
    assert code == 1
    assert out["complete"] is False and len(out["entries"]) == 3
    for e in out["entries"]:
        assert e["status"] == "refused" and "no consent for purpose TREAT" in e["reason"]
        assert e["resources"] == 0 and e["resource_types"] == [] and e["file"] is None and e["last_updated"] is None
    assert list((tmp_path / "doc").iterdir()) == []
    assert {c["status"] for c in out["custodians"]} == {"refused"}
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all("refused, 0 of" in line for line in lines)
    # a stranger (no relationship at all) learns not even that the records exist at the gateways
    code, out, _ = history(world, "nobody", world["who"]["alice"])
    assert code == 1 and {e["status"] for e in out["entries"]} == {"not found"}


def test_a_custodian_without_an_endpoint_is_reported_and_the_others_still_print(world):
    rid = new_record_id(world["who"]["alice"])
    world["records"].anchor(signer(ACTORS["westside"]), rid, world["who"]["alice"], keccak(b"westside visit"),
                            D.LABS)
    code, out, err = history(world, "alice")
    assert code == 1 and out["complete"] is False
    by_status = {e["record_id"]: e["status"] for e in out["entries"]}
    assert by_status.pop("0x" + rid.hex()) == "unavailable"
    assert set(by_status.values()) == {"fetched"} and len(by_status) == 3
    (west,) = [c for c in out["custodians"] if c["name"] == "westside"]
    assert west["status"] == "no endpoint" and west["endpoint"] is None
    (line,) = err.strip().splitlines()
    assert line.startswith(f"westside ({world['who']['westside']}): no endpoint, 0 of 1")


def test_a_stopped_gateway_is_reported_and_the_other_custodians_records_still_print(world):
    northside = world["gateways"]["northside"]
    northside.stop()
    try:
        code, out, err = history(world, "alice")
    finally:
        northside.start()
    assert code == 1
    status = {c["name"]: c["status"] for c in out["custodians"]}
    assert status == {"riverside": "ok", "northside": "unreachable", "westside": "no endpoint"}
    fetched = [e["record_id"] for e in out["entries"] if e["status"] == "fetched"]
    assert fetched == [rid for who, rid in world["created"] if who == "riverside"]
    lines = err.strip().splitlines()
    assert len(lines) == 2
    (north,) = [line for line in lines if line.startswith("northside")]
    assert f"at {northside.url}: unreachable, 0 of 1" in north and "no gateway answers" in north
    # and once it is back, its record prints again
    code, out, _ = history(world, "alice")
    assert {c["name"]: c["status"] for c in out["custodians"]}["northside"] == "ok"


def test_pairwise_history_fetches_each_pseudonyms_records_signed_by_that_pseudonym(world, tmp_path):
    """Alice's Riverside and Northside pseudonyms each consent (signed, relayed by the custodian); each custodian
    files a visit under its pseudonym; `--pairwise record history` finds both, each fetched as its pseudonym."""
    env, pseudonyms = world["env"], {}
    for seed, custodian in enumerate(("riverside", "northside"), start=10):
        signed = tmp_path / f"consent-{custodian}.json"
        out = json.loads(run_cli(env, "--json", "--pairwise", "--account", "alice", "consent", "sign", custodian,
                                 "-p", "treat", "-c", "demographics,conditions,medications,labs,billing",
                                 "--days", "30", "-o", str(signed)).stdout)
        run_cli(env, "--account", custodian, "consent", "relay", str(signed))
        pseudonyms[custodian] = out["patient"]
        gw = world["gateways"][custodian]
        client = GatewayClient(gw.url, signer(ACTORS[custodian]), world["chain"].chain_id)
        client.login()
        client.put_record(patient_bundle(seed, out["patient"]), out["patient"])
    assert pseudonyms["riverside"] != pseudonyms["northside"] != world["who"]["alice"]
    proc = run_cli(env, "--json", "--pairwise", "--account", "alice", "record", "history", check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["complete"] is True and sorted(out["patients"]) == sorted(pseudonyms.values())
    assert [(e["patient"], e["custodian"], e["status"]) for e in out["entries"]] == [
        (pseudonyms[name], world["who"][name], "fetched") for name in ("riverside", "northside")]
    # without --pairwise, alice's own address is not the patient of these records: her main history is unchanged
    code, own, _ = history(world, "alice")
    assert not {e["patient"] for e in own["entries"]} & set(pseudonyms.values())


def test_a_published_url_that_is_not_an_https_origin_is_never_contacted(world):
    """The contract checks only the length: a URL published around the SDK is untrusted input."""
    westside = signer(ACTORS["westside"])
    care = world["care"]
    care.chain.transact(westside, care.fn.setGatewayEndpoint("http://records.westside.example/fhir?key=1"))
    try:
        code, out, err = history(world, "alice")
    finally:
        care.clear_gateway_endpoint(westside)
    assert code == 1
    (west,) = [c for c in out["custodians"] if c["name"] == "westside"]
    assert west["status"] == "bad endpoint" and west["fetched"] == 0 and "not contacted" in west["reason"]
    assert [e["status"] for e in out["entries"] if e["custodian"] == world["who"]["westside"]] == ["unavailable"]
    assert {c["status"] for c in out["custodians"] if c["name"] != "westside"} == {"ok"}
    assert any(line.startswith("westside") and "bad endpoint" in line for line in err.splitlines())


def test_custodians_are_asked_concurrently_and_a_silent_one_costs_only_its_own_timeout(world):
    """Westside and doc publish an origin whose socket accepts and never answers: each costs the whole timeout.
    Asked one after the other that is at least 2 x timeout; asked concurrently, about one timeout. The answer
    is the same whichever custodian answers first."""
    timeout = 4.0
    eastside = signer(18)  # a provider of its own, consented for TREAT, so that it may anchor alice's records
    world["care"].register(signer(ACTORS["gov"]), eastside.address, Role.PROVIDER, keccak(text="credentials:east"))
    alice = signer(ACTORS["alice"])
    world["consent"].grant(alice, alice.address, eastside.address, 1 << Purpose.TREAT, EVERYDAY)
    silent = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]  # listens; nothing ever reads or answers
    published = []
    try:
        for party, server in zip((signer(ACTORS["westside"]), eastside), silent, strict=True):
            world["care"].set_gateway_endpoint(party, f"http://127.0.0.1:{server.getsockname()[1]}")
            world["records"].anchor(party, new_record_id(world["who"]["alice"]), world["who"]["alice"],
                                    keccak(f"{party.address} visit".encode()), D.LABS)
            published.append(party)
        versions = world["records"].patient_versions([world["who"]["alice"]], 0)
        records = federation.custody(versions)
        started = time.monotonic()
        found = federation.fetch_history(records, world["care"], lambda _patient: alice, timeout=timeout)
        elapsed = time.monotonic() - started
        again = federation.fetch_history(records, world["care"], lambda _patient: alice, timeout=timeout)
    finally:
        for party in published:
            world["care"].clear_gateway_endpoint(party)
        for server in silent:
            server.close()
    assert timeout <= elapsed < 1.75 * timeout, elapsed
    status = {c.custodian: c.status for c in found.custodians}
    assert status[world["who"]["westside"]] == status[eastside.address] == federation.CustodianStatus.UNREACHABLE
    assert status[world["who"]["riverside"]] == status[world["who"]["northside"]] == federation.CustodianStatus.OK
    (west,) = [c for c in found.custodians if c.custodian == world["who"]["westside"]]
    assert "timed out" in west.line("westside")
    # deterministic: custodians by their first record, entries in anchoring order, on every run
    assert [c.custodian for c in found.custodians] == list(dict.fromkeys(r.custodian for r in records))
    assert [(e.record.record_id, e.status) for e in found.entries] == [(e.record.record_id, e.status)
                                                                       for e in again.entries]
    assert [c.custodian for c in again.custodians] == [c.custodian for c in found.custodians]


# --------------------------------------------------------------------------- bad input, nothing sent


@pytest.mark.parametrize("account,url,expected", [
    ("riverside", "http://records.riverside.example", "must be https"),
    ("riverside", "https://records.riverside.example/?token=s3cret", "has a query"),
    ("riverside", "https://admin:pw@records.riverside.example", "holds credentials"),
    ("riverside", "https://" + "r" * 250 + ".example", "takes at most 256"),
    ("nobody", "https://records.nobody.example", "is not an active provider or insurer"),
    ("westside", "ftp://records.westside.example", "is not an https URL"),
])
def test_endpoint_set_refuses_bad_input_in_one_line_and_sends_nothing(world, account, url, expected):
    for gw in world["gateways"].values():  # the custodians' own audit batches (logAccessBatch) are sent by now
        gw.wait_idle()
    before = sends(world, account)
    published = world["care"].gateway_endpoint(world["who"][account])
    proc = run_cli(world["env"], "--account", account, "registry", "endpoint", "set", url, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert sends(world, account) == before
    assert world["care"].gateway_endpoint(world["who"][account]) == published


def test_serve_publish_refuses_a_public_http_origin_before_starting(world, tmp_path):
    before = sends(world, "westside")
    gw = GatewayProcess(web3.provider.endpoint_uri, world["home"] / "deployments.json", tmp_path / "gw",
                        _key("westside"), "--publish", "--origin", "http://records.westside.example")
    with pytest.raises(RuntimeError, match="must be https"):
        gw.start(timeout=60)
    assert sends(world, "westside") == before and world["care"].gateway_endpoint(world["who"]["westside"]) is None
