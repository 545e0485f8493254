"""The record gateway end to end: a real `medledger gateway serve` on a free loopback port, the test chain,
real keys, real encryption, real SQLite and PostgreSQL.

Parties (development accounts): gov deploys and registers; the clinic is the custodian (runs the gateway);
doc and er are providers; payer is an insurer; alice is the patient; nobody is an unregistered account.
alice consented: the clinic TREAT on everything non-sensitive; doc TREAT on demographics, conditions and labs;
payer HPAYMT on demographics and billing.

The chain is shared by the whole module (no per-test snapshots: the gateway's database and the chain move
together), so the tests run in file order and each leaves the state the next expects. The storage tests run
twice: with the gateway's database on SQLite, then on a real PostgreSQL (`ON_POSTGRES`).
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import httpx
import pytest
from brownie import MockERC1271Wallet, accounts, web3
from eth_utils import keccak
from sqlalchemy import select
from support.gateway import ACTORS, ContractWalletSigner, gateway_world, mask, signer
from support.nodes import ROOT

from medledger.contracts import BatchKind, batch_id_of
from medledger.data_classes import class_label, contents
from medledger.gateway import store as T
from medledger.gateway.auth import signed_request_header, siwe_message
from medledger.gateway.client import GatewayClient, GatewayClientError, check_proof
from medledger.gateway.consent import LiveConsentView
from medledger.gateway.service import FAULT_ENV
from medledger.gateway.store import Store
from medledger.records import find_batch_member
from medledger.scopes import DataClass, Purpose, Role
from medledger.testing.accounts import ACCOUNT_COUNT, dev_account
from medledger.testing.postgres import PostgresServer
from medledger.testing.synthetic import patient_bundle

D = DataClass
_mask = mask


@pytest.fixture(autouse=True)
def isolation():
    """Overrides conftest's per-test snapshot: the gateway's database follows the chain across tests."""


#: The tests that also run with the gateway's database on a real PostgreSQL (started from a temp dir): those
#: whose outcome depends on storage. Create, read, search totals, the write-ahead audit and its proofs, the
#: anchoring batches, the nonce and session tables, refused writes, kill -9 and restart, the journaled create
#: and amendments. The others (consent, SIWE message checks, ERC-1271, schemathesis) read and write the
#: database the same way and run on SQLite only, to keep the run short.
ON_POSTGRES = {
    "test_create_anchors_a_sealed_record", "test_consented_read_is_minimum_necessary_and_audited",
    "test_single_resource_and_search_totals_never_count_hidden", "test_sessions_are_revocable_and_bound_to_origin",
    "test_eip712_signed_requests", "test_oversized_malformed_and_invalid_bodies_change_nothing",
    "test_kill_under_load_then_every_answered_read_is_audited_on_chain",
    "test_reads_a_crash_left_in_no_batch_reach_the_chain_without_another_read",
    "test_a_create_killed_after_its_anchor_is_listed_after_restart",
    "test_a_create_killed_before_its_anchor_leaves_nothing",
    "test_amendments_by_the_author_only_with_versions_and_vread",
    "test_an_amendment_killed_after_its_anchor_is_listed_after_restart",
}


def pytest_generate_tests(metafunc):
    """`world` runs on SQLite for every test, and on PostgreSQL too for the tests in `ON_POSTGRES`: pytest
    groups the tests by backend, each group in file order, each with its own deployment and gateway."""
    if "world" in metafunc.fixturenames:
        backends = ["sqlite", "postgresql"] if metafunc.function.__name__ in ON_POSTGRES else ["sqlite"]
        metafunc.parametrize("world", backends, indirect=True, scope="module")


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(request, tmp_path_factory):
    backend = request.param
    home = tmp_path_factory.mktemp(f"gateway-{backend}")
    db_url = None if backend == "sqlite" else request.getfixturevalue("pg").create_database()
    w = gateway_world(home, web3.provider.endpoint_uri,
                      "--head-ttl", "0", "--batch-size", "4", "--batch-seconds", "0.5",
                      "--allow-origin", "https://app.medledger.example", db_url=db_url)
    yield w
    w["gateway"].stop()


def client(world, name: str, login: bool = True) -> GatewayClient:
    c = GatewayClient(world["gateway"].url, signer(ACTORS[name]), world["chain_id"])
    if login:
        c.login()
    return c


def wait_anchored(c: GatewayClient, seq: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proof = c.audit_proof(seq)
        if proof["anchored"]:
            return proof
        time.sleep(0.2)
    raise AssertionError(f"audit entry {seq} was not anchored within {timeout} s")


def wait_idle(world, timeout: float = 90) -> None:
    """Until the gateway has anchored everything (so it mines no block of its own for a while)."""
    world["gateway"].wait_idle(timeout)


@pytest.fixture(scope="module")
def record(world):
    """One visit of alice's, created through the gateway by the custodian."""
    clinic = client(world, "clinic")
    created = clinic.put_record(patient_bundle(1, world["who"]["alice"]), world["who"]["alice"])
    return created


def types_of(bundle: dict) -> set[str]:
    return {e["resource"]["resourceType"] for e in bundle.get("entry", [])}


# --------------------------------------------------------------------------- create and read


def test_openapi_and_no_body_without_sign_in(world, record):
    url = world["gateway"].url
    spec = httpx.get(f"{url}/openapi.json").json()
    assert "/fhir/{rtype}/{rid}" in spec["paths"] and "/auth/siwe" in spec["paths"]
    for path in (f"/fhir/Bundle/{record['id']}", "/fhir/Bundle?patient=" + world["who"]["alice"], "/audit/1/proof"):
        r = httpx.get(url + path)
        assert r.status_code == 401 and r.content == b"", path
        assert "sign in" in r.headers["www-authenticate"].lower()


def test_create_anchors_a_sealed_record(world, record):
    assert record["classes"] == ["billing", "conditions", "demographics", "labs", "medications"]
    found = contents(patient_bundle(1, world["who"]["alice"])).classes  # the CLI's derivation
    assert record["classes"] == sorted(class_label(c) for c in found)
    version = world["records"].verify(bytes.fromhex(record["id"]), bytes.fromhex(record["contentHash"][2:]))
    assert version.anchored and version.author == world["who"]["clinic"]
    blob = (world["home"] / "gw" / "vault" / "blobs" / record["contentHash"][2:4] / record["contentHash"][2:])
    raw = blob.read_bytes()
    assert b"Patient" not in raw and keccak(raw).hex() == record["contentHash"][2:]
    from medledger import crypto
    envelope = crypto.Envelope.from_bytes(raw)
    assert world["who"]["alice"] in envelope.recipients and world["who"]["doc"] not in envelope.recipients
    assert len(envelope.recipients) == 2  # the patient and the gateway key: no reader holds a standing key


def test_consented_read_is_minimum_necessary_and_audited(world, record):
    doc = client(world, "doc")
    bundle = doc.get_record(record["id"])
    assert types_of(bundle) == {"Patient", "Practitioner", "Organization", "Encounter", "Condition", "Observation"}
    r = doc.get(f"/fhir/Bundle/{record['id']}")
    seq = int(r.headers["x-medledger-audit"])
    proof = wait_anchored(doc, seq)
    assert check_proof(proof, world["records"])
    event = proof["event"]
    assert event["agent"][0]["who"]["identifier"]["value"].endswith(world["who"]["doc"])
    assert "consent/" in event["agent"][0]["policy"][0] and "&tx=0x" in event["agent"][0]["policy"][0]
    assert event["entity"][0]["what"]["reference"] == f"Bundle/{record['id']}/_history/1"
    # the patient sees the read in her audit list and can fetch the same proof; another party cannot
    alice = client(world, "alice")
    assert seq in [e["seq"] for e in alice.audit(world["who"]["alice"])]
    assert alice.audit_proof(seq)["root"] == proof["root"]
    with pytest.raises(GatewayClientError) as refused:
        client(world, "payer").audit_proof(seq)
    assert refused.value.status == 404


def test_single_resource_and_search_totals_never_count_hidden(world, record):
    alice = world["who"]["alice"]
    payer, doc = client(world, "payer"), client(world, "doc")
    found = payer.search("Bundle", alice, purpose="HPAYMT")
    assert found["total"] == 1 == len(found["entry"])
    assert types_of(found["entry"][0]["resource"]) == {"Patient", "Practitioner", "Organization", "Coverage", "Claim"}
    assert payer.search("Observation", alice, purpose="HPAYMT") == {
        "resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    observations = doc.search("Observation", alice)
    assert observations["total"] == len(observations["entry"]) == 5
    one = observations["entry"][0]["resource"]
    r = doc.get(f"/fhir/Observation/{one['id']}")
    assert r.status_code == 200 and r.json()["id"] == one["id"]
    claim_id = found["entry"][0]["resource"]["entry"][-1]["resource"]["id"]
    assert doc.get(f"/fhir/Claim/{claim_id}").status_code == 403  # doc knows alice, not her billing
    assert doc.search("Bundle", alice, last_updated="lt2000-01-01")["total"] == 0
    assert doc.search("Bundle", alice, last_updated="ge2000-01-01")["total"] == 1


def test_refusals_say_why_but_never_leak_existence(world, record):
    doc = client(world, "doc")
    r = doc.get(f"/fhir/Bundle/{record['id']}", purpose="HPAYMT")
    assert r.status_code == 403 and "no consent for purpose HPAYMT" in r.text
    missing = world["who"]["alice"][2:].lower() + "00" * 12
    assert doc.get(f"/fhir/Bundle/{missing}").status_code == 404
    er = client(world, "er")  # registered, no relationship with alice: same empty 404 as a missing record
    hidden = er.get(f"/fhir/Bundle/{record['id']}")
    absent = er.get(f"/fhir/Bundle/{missing}")
    assert hidden.status_code == absent.status_code == 404 and hidden.content == absent.content == b""
    nobody = client(world, "nobody")
    assert nobody.get(f"/fhir/Bundle/{record['id']}").status_code == 404
    assert er.search("Bundle", world["who"]["alice"])["total"] == 0


def test_path_traversal_ids_reach_nothing(world, record):
    doc = client(world, "doc")
    for path in ("/fhir/Bundle/..%2F..%2Fgateway.db", "/fhir/Bundle/%2e%2e", "/fhir/Bundle/..",
                 "/fhir/..%2Fkeys/gateway-key-1.json", "/fhir/Bundle/" + "a" * 65, "/fhir/Bundle/0x" + "g" * 64):
        r = doc.get(path)
        # "/fhir/Bundle/.." is sent as "/fhir" (the client resolves the dot segment): the batch endpoint, POST only
        allowed = (400, 404, 405) if httpx.URL(world["gateway"].url + path).path == "/fhir" else (400, 404)
        assert r.status_code in allowed, (path, r.status_code)
        assert b"crypto" not in r.content and b"SQLite" not in r.content


# --------------------------------------------------------------------------- authentication


def _siwe(world, name: str, **changes) -> tuple[str, str]:
    s = signer(ACTORS[name])
    url = world["gateway"].url
    nonce = httpx.get(f"{url}/auth/nonce").json()["nonce"]
    message = siwe_message(s.address, changes.get("origin", url), changes.get("chain_id", world["chain_id"]),
                           changes.get("nonce", nonce), changes.get("ttl", 600))
    return message, "0x" + s.sign_message(None, message.encode()).hex()


def _login(world, message: str, signature: str) -> httpx.Response:
    return httpx.post(f"{world['gateway'].url}/auth/siwe", json={"message": message, "signature": signature})


def test_siwe_replay_expiry_wrong_chain_wrong_origin(world):
    message, sig = _siwe(world, "doc")
    assert _login(world, message, sig).status_code == 200
    replay = _login(world, message, sig)
    assert replay.status_code == 401 and "nonce" in replay.headers["www-authenticate"]
    for changes, why in (({"ttl": -5}, "expired"), ({"chain_id": 1}, "chain 1"),
                         ({"origin": "https://evil.example"}, "domain"), ({"nonce": "a" * 16}, "nonce")):
        r = _login(world, *_siwe(world, "doc", **changes))
        assert r.status_code == 401 and r.content == b"" and why in r.headers["www-authenticate"], changes
    message, sig = _siwe(world, "doc")
    forged = _login(world, message.replace(world["who"]["doc"], world["who"]["er"]), sig)
    assert forged.status_code == 401


def test_sessions_are_revocable_and_bound_to_origin(world, record):
    doc = client(world, "doc")
    path = f"/fhir/Bundle/{record['id']}"
    assert doc.get(path).status_code == 200
    other = httpx.get(world["gateway"].url + path, headers={"Authorization": f"Bearer {doc.token}",
                                                            "Origin": "https://evil.example"})
    assert other.status_code == 401 and other.content == b""
    app = httpx.get(world["gateway"].url + path, headers={"Authorization": f"Bearer {doc.token}",
                                                          "Origin": "https://app.medledger.example"})
    assert app.status_code == 200  # the web app named with --allow-origin
    token = doc.token
    doc.logout()
    r = httpx.get(world["gateway"].url + path, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_eip712_signed_requests(world, record):
    s = signer(ACTORS["doc"])
    url, path = world["gateway"].url, f"/fhir/Bundle/{record['id']}"

    def sign_hash(digest: bytes) -> bytes:
        from eth_account import Account
        return bytes(Account.unsafe_sign_hash(digest, s.private_key).signature)

    header = signed_request_header(sign_hash, s.address, world["chain_id"], url, "GET", path)
    assert httpx.get(url + path, headers={"Authorization": header}).status_code == 200
    replay = httpx.get(url + path, headers={"Authorization": header})
    assert replay.status_code == 401 and "replay" in replay.headers["www-authenticate"]
    cases = [(signed_request_header(sign_hash, s.address, world["chain_id"], url, "GET", path, ttl=-1), "expired"),
             (signed_request_header(sign_hash, s.address, 5, url, "GET", path), "chain"),
             (signed_request_header(sign_hash, s.address, world["chain_id"], "https://evil.example", "GET", path),
              "origin"),
             (signed_request_header(sign_hash, s.address, world["chain_id"], url, "GET", "/audit"), "path"),
             (signed_request_header(sign_hash, world["who"]["er"], world["chain_id"], url, "GET", path),
              "signature")]
    for value, why in cases:
        r = httpx.get(url + path, headers={"Authorization": value})
        assert r.status_code == 401 and why in r.headers["www-authenticate"], why


def test_erc1271_contract_wallet_signs_in(world, record):
    owner = dev_account(ACTORS["owner"])
    wallet = MockERC1271Wallet.deploy(owner.address, False, {"from": accounts[0]})
    world["care"].register(world["gov"], wallet.address, Role.PROVIDER, keccak(text="credentials:wallet"))
    alice = signer(ACTORS["alice"])
    world["consent"].grant(alice, alice.address, wallet.address, 1 << Purpose.TREAT, _mask(D.DEMOGRAPHICS))
    c = GatewayClient(world["gateway"].url, ContractWalletSigner(wallet.address, bytes(owner.key)), world["chain_id"])
    c.login()
    assert types_of(c.get_record(record["id"])) == {"Patient", "Practitioner", "Organization"}
    bad = MockERC1271Wallet.deploy(owner.address, True, {"from": accounts[0]})  # wrong magic value
    with pytest.raises(GatewayClientError) as refused:
        GatewayClient(world["gateway"].url, ContractWalletSigner(bad.address, bytes(owner.key)),
                      world["chain_id"]).login()
    assert refused.value.status == 401


# --------------------------------------------------------------------------- bad input


def _rows(world, query) -> list:
    """The rows of `query` in the gateway's database (SQLite or PostgreSQL), read beside the running server."""
    store = Store(world["db_url"])
    try:
        with store.read() as conn:
            return list(conn.execute(query))
    finally:
        store.close()


def _count_records(world) -> int:
    return len(_rows(world, select(T.records.c.record_id)))


def test_oversized_malformed_and_invalid_bodies_change_nothing(world, record):
    clinic = client(world, "clinic")
    alice = world["who"]["alice"]
    before = _count_records(world)
    big = httpx.post(f"{world['gateway'].url}/fhir/Bundle?patient={alice}", content=b"{" + b" " * (5 << 20) + b"}",
                     headers={"Authorization": f"Bearer {clinic.token}"})
    assert big.status_code == 413
    bad = patient_bundle(2, alice)
    bad["entry"][0]["resource"]["birthDate"] = "not-a-date"
    with pytest.raises(GatewayClientError) as invalid:
        clinic.put_record(bad, alice)
    assert invalid.value.status == 422 and "birthDate" in str(invalid.value)
    r = clinic.request("POST", f"/fhir/Bundle?patient={alice}", body=b"{not json")
    assert r.status_code == 400 and "not JSON" in r.text
    with pytest.raises(GatewayClientError) as refused:  # doc is not consented for every class of it
        client(world, "doc").put_record(patient_bundle(3, alice), alice)
    assert refused.value.status == 403 and "medications" in str(refused.value)
    with pytest.raises(GatewayClientError) as empty:  # the CLI's derivation (data_classes.contents): nothing to seal
        clinic.put_record({"resourceType": "Bundle", "type": "collection", "entry": []}, alice)
    assert empty.value.status == 400 and "this Bundle holds no resources: there is nothing to seal" in str(empty.value)
    assert _count_records(world) == before


# --------------------------------------------------------------------------- consent changes


#: A development account no test actor and no gateway uses (the last of ACCOUNT_COUNT).
IDLE = ACCOUNT_COUNT - 1


def test_freshness_bound_in_blocks(world):
    """A cached answer is used while the head is at most `freshness_blocks` past it, never after.

    The gateway's anchorer may mine blocks meanwhile, so the check is the invariant itself at each head."""
    view = LiveConsentView(world["chain"], world["care"], world["consent"], freshness_blocks=2, head_ttl=3600)
    alice, payer = world["who"]["alice"], world["who"]["payer"]

    def observe():
        view._head_at = float("-inf")  # poll the head now
        state = view.state(alice, payer)
        return state, view._head

    wait_idle(world)
    first, _ = observe()
    assert first.purposes
    world["consent"].revoke(signer(ACTORS["alice"]), alice, payer)
    try:
        seen_within = False
        for _ in range(4):
            state, head = observe()
            if head - first.block <= 2:
                assert state is first  # within the bound: the cached answer
                seen_within = True
            else:
                assert state.purposes == 0  # beyond it: the chain's answer
            # A new block by a real transaction from an idle account: Ganache's evm_mine can race the
            # gateway anchorer's own transactions ("Cannot read properties of undefined").
            accounts[IDLE].transfer(accounts[IDLE], 0)
        assert seen_within
        state, head = observe()
        assert head - first.block > 2 and state.purposes == 0
    finally:
        world["consent"].grant(signer(ACTORS["alice"]), alice, payer, 1 << Purpose.HPAYMT,
                               _mask(D.DEMOGRAPHICS, D.BILLING))


def test_head_poller_answers_a_new_block_from_memory_within_the_bound(world):
    """`LiveConsentView.start`: while a pair is being read, the poller fetches it at each new head before it
    publishes that head, so reads (`cached`, memory only, as `FastReads` uses it) get the new block's answer
    without calling the chain; and a revocation is in that answer within the freshness bound."""
    ttl = 0.5
    view = LiveConsentView(world["chain"], world["care"], world["consent"], head_ttl=ttl)
    alice, payer = world["who"]["alice"], world["who"]["payer"]
    assert view.state(alice, payer).purposes  # a first read through the chain
    view.start()
    try:
        revoked = world["consent"].revoke(signer(ACTORS["alice"]), alice, payer)
        mined = time.monotonic()
        seen = None
        while seen is None and time.monotonic() < mined + 30:  # generous: a busy 2-core machine
            known = view.cached(alice, payer)  # never calls the chain
            if known is not None:
                state, _origin = known
                assert time.monotonic() - view._head_at < ttl  # the bound: a head polled within head_ttl
                if state.block >= revoked.block_number:
                    seen = state
            time.sleep(0.02)
        assert seen is not None, "the poller never published the revocation's block"
        assert seen.purposes == 0  # the revocation, answered from memory
        assert view._head >= revoked.block_number
    finally:
        view.stop()
        world["consent"].grant(signer(ACTORS["alice"]), alice, payer, 1 << Purpose.HPAYMT,
                               _mask(D.DEMOGRAPHICS, D.BILLING))
    assert view._poller is None


def test_head_poller_is_off_when_every_read_polls(world):
    view = LiveConsentView(world["chain"], world["care"], world["consent"], head_ttl=0)
    view.start()
    assert view._poller is None
    view.stop()


def test_revoked_reader_is_refused_at_the_next_block(world, record):
    doc = client(world, "doc")
    path = f"/fhir/Bundle/{record['id']}"
    assert doc.get(path).status_code == 200
    alice = signer(ACTORS["alice"])
    world["consent"].revoke(alice, alice.address, world["who"]["doc"])
    r = doc.get(path)
    assert r.status_code == 404 and r.content == b""  # the gateway runs with freshness 0
    world["consent"].grant(alice, alice.address, world["who"]["doc"], 1 << Purpose.TREAT,
                           _mask(D.DEMOGRAPHICS, D.CONDITIONS, D.LABS), 0, int(time.time()) + 3)
    assert doc.get(path).status_code == 200
    time.sleep(4)
    expired = doc.get(path)
    assert expired.status_code == 403 and "expired at" in expired.text
    world["consent"].grant(alice, alice.address, world["who"]["doc"], 1 << Purpose.TREAT,
                           _mask(D.DEMOGRAPHICS, D.CONDITIONS, D.LABS))


def test_break_glass_read_is_served_and_audited(world, record):
    er_signer = signer(ACTORS["er"])
    world["consent"].open_break_glass(er_signer, world["who"]["alice"], 3600, keccak(text="ER"))
    er = client(world, "er")
    assert er.get(f"/fhir/Bundle/{record['id']}").status_code == 403  # break-glass covers ETREAT only
    r = er.get(f"/fhir/Bundle/{record['id']}", purpose="ETREAT")
    assert r.status_code == 200
    assert "MedicationRequest" in types_of(r.json())  # existing record, no re-sealing by its author
    proof = wait_anchored(er, int(r.headers["x-medledger-audit"]))
    assert check_proof(proof, world["records"])
    assert "break-glass" in proof["event"]["agent"][0]["policy"][0]
    explained = client(world, "alice").explain(record["id"], purpose="ETREAT")
    by = {x["reader"]: x for x in explained["readers"]}
    assert by[world["who"]["er"]]["basis"] == "break-glass"


def test_explain_access(world, record):
    explained = client(world, "alice").explain(record["id"])
    by = {x["reader"]: x for x in explained["readers"]}
    assert by[world["who"]["alice"]]["basis"] == "patient"
    assert by[world["who"]["clinic"]]["basis"] == "consent"
    assert by[world["who"]["payer"]]["classes"] == [] and by[world["who"]["payer"]]["reasons"]
    own = client(world, "payer").explain(record["id"], purpose="HPAYMT")
    assert [x["reader"] for x in own["readers"]] == [world["who"]["payer"]]
    assert own["readers"][0]["classes"] == ["billing", "demographics"]
    with pytest.raises(GatewayClientError):
        client(world, "nobody").explain(record["id"])


def test_suspended_reader_is_refused(world, record):
    world["care"].suspend(world["gov"], world["who"]["payer"])
    payer = client(world, "payer")
    r = payer.get(f"/fhir/Bundle/{record['id']}", purpose="HPAYMT")
    assert r.status_code == 403 and "suspended" in r.text
    world["care"].reinstate(world["gov"], world["who"]["payer"])
    assert payer.get(f"/fhir/Bundle/{record['id']}", purpose="HPAYMT").status_code == 200


# --------------------------------------------------------------------------- CLI


def test_cli_lists_gets_and_proves_through_the_gateway(world, record):
    gw, alice = world["gateway"], world["who"]["alice"]
    listed = gw.cli("--json", "gateway", "list", "--gateway", gw.url, "--patient", alice)
    assert listed.returncode == 0, listed.stderr
    assert "0x" + record["id"] in [r["record_id"] for r in json.loads(listed.stdout)]
    out = world["home"] / "got.json"
    got = gw.cli("gateway", "get", record["id"], "--gateway", gw.url, "--out", str(out))
    assert got.returncode == 0, got.stderr
    assert json.loads(out.read_text())["resourceType"] == "Bundle"
    seq = client(world, "clinic").audit()[0]["seq"]
    wait_anchored(client(world, "clinic"), seq)
    proved = gw.cli("--json", "gateway", "proof", str(seq), "--gateway", gw.url)
    assert proved.returncode == 0, proved.stderr
    assert json.loads(proved.stdout)["verifiedOnChain"] is True
    refused = gw.cli("gateway", "get", "ab" * 32, "--gateway", gw.url)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr and "not found" in refused.stderr


# --------------------------------------------------------------------------- crash and key rotation


def test_kill_under_load_then_every_answered_read_is_audited_on_chain(world, record):
    gw = world["gateway"]
    doc = client(world, "doc")
    path = f"/fhir/Bundle/{record['id']}"
    answered: list[int] = []
    failed: list[int] = []
    created: list[str] = []
    stop = threading.Event()
    clinic = client(world, "clinic")

    def writes() -> None:  # records created during the crash: each answered create must survive whole
        i = 100
        while not stop.is_set():
            i += 1
            try:
                created.append(clinic.put_record(patient_bundle(i, world["who"]["alice"]), world["who"]["alice"])["id"])
            except (httpx.HTTPError, GatewayClientError):
                continue

    def load() -> None:
        with httpx.Client(base_url=gw.url, timeout=5) as http:
            while not stop.is_set():
                try:
                    r = http.get(path, headers={"Authorization": f"Bearer {doc.token}"})
                except httpx.HTTPError:
                    continue
                if r.status_code == 200:
                    answered.append(int(r.headers["x-medledger-audit"]))
                else:
                    failed.append(r.status_code)

    workers = [threading.Thread(target=load) for _ in range(4)] + [threading.Thread(target=writes)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + 60
    while len(answered) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    gw.kill()  # SIGKILL mid-load
    stop.set()
    for t in workers:
        t.join()
    assert len(answered) > 10 and not failed, (len(answered), failed[:5], gw.logged()[-3000:])
    # rotate the gateway key while it is down: records stay readable, the old key file is gone
    rotated = gw.cli("--json", "gateway", "rotate-key", "--data", str(gw.data))
    assert rotated.returncode == 0, rotated.stderr
    assert not (gw.data / "keys" / "gateway-key-1.json").exists()
    gw.start()
    # /healthz counts an entry as pending until its batch's logAccessBatch receipt, built batches included
    # (those the kill left behind): idle means every answered read is anchored on chain.
    gw.wait_idle()
    rows = {r.seq: r for r in _rows(world, select(T.audit_entries.c.seq, T.audit_batches.c.status,
                                                  T.audit_batches.c.root)
                                           .join(T.audit_batches, isouter=True)
                                           .where(T.audit_entries.c.seq.in_(answered)))}
    assert set(rows) == set(answered), "an answered read has no audit entry"
    assert all(r.status == "anchored" for r in rows.values())
    for root in {r.root for r in rows.values()}:
        info = world["records"].batch_of(world["records"].batch_id_of(world["who"]["clinic"],
                                                                      bytes.fromhex(root[2:])))
        assert int(info.kind) == 2 and info.count > 0  # an AccessLog batch on chain
    assert client(world, "doc").get(path).status_code == 200  # readable under the new key
    from medledger.vault import LocalVault
    vault = LocalVault(gw.data / "vault")
    assert vault.audit() == [] and vault.temp_files() == []  # no blob lost or half-written
    reader = client(world, "doc")
    for rid in created:
        assert reader.get(f"/fhir/Bundle/{rid}").status_code == 200


def test_reads_a_crash_left_in_no_batch_reach_the_chain_without_another_read(world, record):
    """The anchorer counts the entries a crash left in no batch at start-up: they do not wait for a new read."""
    gw = world["gateway"]
    normal = gw.extra
    gw.stop()
    gw.extra = (*normal, "--batch-size", "1000", "--batch-seconds", "3600")  # later options win: no batch now
    gw.start()
    try:
        doc = client(world, "doc")
        seqs = [int(doc.get(f"/fhir/Bundle/{record['id']}").headers["x-medledger-audit"]) for _ in range(3)]
        assert gw.health()["auditPending"] == 3
        gw.kill()
    finally:
        gw.extra = normal
    gw.start()
    gw.wait_idle()  # no read since the restart
    for seq in seqs:
        assert check_proof(client(world, "alice").audit_proof(seq), world["records"])


# --------------------------------------------------------------------------- journaled writes


def _intents(world) -> list:
    return _rows(world, select(T.intents))


def _listed(world, record_id: str) -> bool:
    return bool(_rows(world, select(T.records).where(T.records.c.record_id == record_id)))


def _killed_at(world, point: str, write):
    """Restarts the gateway with the fault point `point` set (`MEDLEDGER_GATEWAY_FAULT`, a documented test
    hook), sends `write(custodian's client)`, and SIGKILLs the server once it has reached the point; returns the
    journaled intent."""
    gw = world["gateway"]
    gw.stop()
    gw.env[FAULT_ENV] = point
    logged_before = len(gw.logged())
    gw.start()
    clinic = client(world, "clinic")
    outcome: list = []

    def create() -> None:
        try:
            outcome.append(write(clinic))
        except (httpx.HTTPError, GatewayClientError) as exc:
            outcome.append(exc)

    writer = threading.Thread(target=create)
    writer.start()
    marker = f"fault point '{point}' reached"
    deadline = time.monotonic() + 60
    while marker not in gw.logged()[logged_before:] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker in gw.logged()[logged_before:], gw.logged()[-3000:]
    gw.kill()  # kill -9 at the dangerous point
    writer.join(timeout=60)
    del gw.env[FAULT_ENV]
    assert len(outcome) == 1 and not isinstance(outcome[0], dict)  # the client got no answer
    (intent,) = _intents(world)
    return intent


def _vault_is_whole(world) -> None:
    from medledger.vault import LocalVault
    vault = LocalVault(world["gateway"].data / "vault")
    assert vault.audit() == [] and vault.temp_files() == []  # no blob half-written


def test_a_create_killed_after_its_anchor_is_listed_after_restart(world, record):
    alice = world["who"]["alice"]
    intent = _killed_at(world, "anchored", lambda c: c.put_record(patient_bundle(900, alice), alice))
    rid, cid = intent.record_id, intent.content_id
    assert world["records"].verify(bytes.fromhex(rid[2:]), bytes.fromhex(cid[2:])).anchored
    assert not _listed(world, rid)  # anchored on chain, not in the catalogue: the state the journal repairs
    world["gateway"].start()
    assert _intents(world) == [] and _listed(world, rid)
    assert world["gateway"].health()["journalPending"] == 0
    listed = client(world, "clinic").search("Bundle", alice)
    assert rid[2:] in [e["fullUrl"].rsplit("/", 1)[-1] for e in listed["entry"]]
    assert types_of(client(world, "doc").get_record(rid)) >= {"Patient", "Condition", "Observation"}
    anchored = world["records"].contract.events.RecordAnchored.get_logs(
        argument_filters={"recordId": bytes.fromhex(rid[2:])}, from_block=0)
    (row,) = _rows(world, select(T.records).where(T.records.c.record_id == rid))
    assert (row.anchor_tx, row.anchor_block, row.author) == (
        "0x" + bytes(anchored[0]["transactionHash"]).hex(), anchored[0]["blockNumber"], world["who"]["clinic"])
    _vault_is_whole(world)


def test_a_create_killed_before_its_anchor_leaves_nothing(world, record):
    alice = world["who"]["alice"]
    intent = _killed_at(world, "blob", lambda c: c.put_record(patient_bundle(901, alice), alice))
    rid, cid = intent.record_id, intent.content_id
    blob = world["gateway"].data / "vault" / "blobs" / cid[2:4] / cid[2:]
    assert blob.exists()  # the intent, then the whole blob, were durable before any transaction
    world["gateway"].start()
    assert _intents(world) == [] and not blob.exists() and not _listed(world, rid)
    assert not world["records"].verify(bytes.fromhex(rid[2:]), bytes.fromhex(cid[2:])).anchored
    _vault_is_whole(world)
    created = client(world, "clinic").put_record(patient_bundle(901, alice), alice)
    assert _listed(world, created["recordId"])  # the client's retry is a new record, listed at once


def test_a_key_rotation_while_a_write_is_pending_keeps_that_record_readable(world, record):
    """A crash left a create anchored but not catalogued; the key is rotated before the next start (the old key
    file is deleted). The rotation re-wraps the pending write's blob too, so the record recovery lists is readable."""
    alice = world["who"]["alice"]
    gw = world["gateway"]
    intent = _killed_at(world, "anchored", lambda c: c.put_record(patient_bundle(902, alice), alice))
    rotated = gw.cli("--json", "gateway", "rotate-key", "--data", str(gw.data))
    assert rotated.returncode == 0, rotated.stderr
    gw.start()
    assert _intents(world) == [] and _listed(world, intent.record_id)
    assert types_of(client(world, "doc").get_record(intent.record_id)) >= {"Patient", "Condition", "Observation"}
    assert client(world, "clinic").search("Bundle", alice)["total"] >= 1  # every listed record opens again


def _anchors(world) -> int:
    return len(world["records"].contract.events.RecordAnchored.get_logs(from_block=0))


def test_a_create_retried_after_a_timeout_and_a_restart_answers_the_first_record(world, record):
    """The client got no answer (the gateway was killed after anchoring); it sends the same request again with
    the same Idempotency-Key after the restart: the record the first request made, 200, no second anchor."""
    alice = world["who"]["alice"]
    visit = patient_bundle(905, alice)
    key = f"visit-905-{time.time_ns()}"
    intent = _killed_at(world, "anchored", lambda c: c.put_record(visit, alice, idempotency_key=key, retries=0))
    world["gateway"].start()
    records, anchors = _count_records(world), _anchors(world)
    clinic = client(world, "clinic")
    replay = clinic.put_record(visit, alice, idempotency_key=key)
    assert (replay["recordId"], replay["contentHash"], replay["version"], replay["replayed"]) == (
        intent.record_id, intent.content_id, 1, True)
    (row,) = _rows(world, select(T.records).where(T.records.c.record_id == intent.record_id))
    assert (replay["tx"], replay["block"]) == (row.anchor_tx, row.anchor_block)
    raw = clinic.request("POST", f"/fhir/Bundle?patient={alice}", body=json.dumps(visit).encode(),
                         headers={"Idempotency-Key": key})
    assert raw.status_code == 200 and raw.headers["location"] == f"/fhir/Bundle/{intent.record_id[2:]}"
    assert (_count_records(world), _anchors(world)) == (records, anchors)
    # the same key for another request is refused in one sentence, and nothing changes
    with pytest.raises(GatewayClientError) as reused:
        clinic.put_record(patient_bundle(906, alice), alice, idempotency_key=key)
    assert reused.value.status == 422 and f"Idempotency-Key '{key}' was used for a different request" in str(
        reused.value)
    bad = clinic.request("POST", f"/fhir/Bundle?patient={alice}", body=json.dumps(visit).encode(),
                         headers={"Idempotency-Key": "no spaces allowed"})
    assert bad.status_code == 400 and "Idempotency-Key" in bad.text
    assert (_count_records(world), _anchors(world)) == (records, anchors)


def test_conditional_create_on_the_bundle_identifier_never_makes_a_second_record(world, record):
    alice = world["who"]["alice"]
    clinic = client(world, "clinic")
    visit = {**patient_bundle(907, alice), "identifier": {"system": "https://riverside.example/visit",
                                                          "value": f"v-{time.time_ns()}"}}
    first = clinic.put_record(visit, alice, conditional=True)
    records, anchors = _count_records(world), _anchors(world)
    again = clinic.put_record(visit, alice, conditional=True)  # a new Idempotency-Key: the identifier matches
    assert first["replayed"] is False and again["replayed"] is True and again["recordId"] == first["recordId"]
    assert (_count_records(world), _anchors(world)) == (records, anchors)
    for header in ("identifier", "name=x", "identifier=" + "x" * 300):
        r = clinic.request("POST", f"/fhir/Bundle?patient={alice}", body=json.dumps(visit).encode(),
                           headers={"If-None-Exist": header})
        assert r.status_code in (400, 422) and "If-None-Exist" in r.text, (header, r.text)
    assert (_count_records(world), _anchors(world)) == (records, anchors)


def _blobs(world) -> set[str]:
    return {p.name for p in (world["gateway"].data / "vault" / "blobs").rglob("*") if p.is_file()}


def _batches(world) -> int:
    return len(world["records"].contract.events.BatchAnchored.get_logs(from_block=0))


def _batch(entries: list) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}).encode()


def _entry(doc: dict, patient: str) -> dict:
    return {"request": {"method": "POST", "url": f"Bundle?patient={patient}"}, "resource": doc}


def test_a_batch_is_one_merkle_anchor_and_bad_input_changes_nothing(world, record):
    alice = world["who"]["alice"]
    clinic, doc = client(world, "clinic"), client(world, "doc")
    visits = [patient_bundle(980 + i, alice) for i in range(3)]
    batches = _batches(world)
    made = clinic.put_batch([(v, alice) for v in visits])
    rids = made["recordIds"]
    assert len(set(rids)) == 3 and _batches(world) == batches + 1  # ONE anchoring transaction for the three
    batch_id = int(made["batchId"], 16)
    info = world["records"].batch_of(batch_id)
    assert (info.count, info.submitter, info.kind) == (3, world["who"]["clinic"], BatchKind.RECORDS)
    (event,) = world["records"].batch_anchored_events(batch_id)
    assert (event["tx"], event["block"], "0x" + bytes(event["manifestHash"]).hex()) == (
        made["tx"], made["block"], made["manifestHash"])
    for rid in rids:
        # each record is a leaf of the anchored root (the manifest in the gateway's vault, checked on chain) ...
        member = find_batch_member(world["gateway"].data / "vault", world["chain_id"], world["records"].address,
                                   bytes.fromhex(rid[2:]))
        assert member is not None and member.batch_id == batch_id
        assert (member.leaf.patient, member.leaf.author, member.leaf.version) == (alice, world["who"]["clinic"], 1)
        assert world["records"].verify_in_batch(member.leaf, member.proof, batch_id)
        # ... listed, and read per class like any record
        (row,) = _rows(world, select(T.records).where(T.records.c.record_id == rid))
        assert (row.anchor_tx, row.content_id) == (made["tx"], "0x" + member.leaf.content_hash.hex())
        assert types_of(doc.get_record(rid)) == {"Patient", "Practitioner", "Organization", "Encounter", "Condition",
                                                 "Observation"}
    answer = clinic.request("POST", "/fhir", body=_batch([_entry(patient_bundle(984, alice), alice)]))
    assert answer.status_code == 200 and answer.json()["type"] == "batch-response"
    (one,) = answer.json()["entry"]
    assert one["response"]["status"] == "201 Created" and one["response"]["location"].endswith("/_history/1")

    # bad input anywhere refuses the whole batch, naming the entry; no blob, no intent, no record, no anchor
    invalid = patient_bundle(985, alice)
    invalid["entry"][0]["resource"]["birthDate"] = "not-a-date"
    stranger = dev_account(ACCOUNT_COUNT - 1).address  # no published key: nothing can be sealed for it
    state = (_blobs(world), _count_records(world), _batches(world))
    cases = [
        (clinic, _batch([_entry(visits[0], alice), _entry(invalid, alice)]), 422,
         ("Bundle.entry[1]: ", "Bundle.entry[0].resource.birthDate")),
        (clinic, _batch([_entry(visits[0], alice), _entry(patient_bundle(986, stranger), stranger)]), 422,
         "Bundle.entry[1]: "),
        (clinic, _batch([{**_entry(visits[0], alice), "request": {"method": "PUT", "url": "Bundle/x"}}]), 400,
         "Bundle.entry[0]: request.method must be POST"),
        (clinic, _batch([{**_entry(visits[0], alice), "request": {"method": "POST", "url": "Bundle"}}]), 400,
         "Bundle.entry[0]: create needs ?patient="),
        (clinic, _batch([]), 400, "at least one entry"),
        (clinic, json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": []}).encode(), 400,
         "Bundle of type batch"),
        (clinic, b"[1, 2", 400, "not JSON"),
        (doc, _batch([_entry(visits[0], alice)]), 403, "Bundle.entry[0]: "),  # consented for some classes only
    ]
    for who, body, status, says in cases:
        r = who.request("POST", "/fhir", body=body, headers={"Content-Type": "application/fhir+json"})
        parts = (says,) if isinstance(says, str) else says
        assert r.status_code == status and all(p in r.text for p in parts), (says, r.status_code, r.text[:300])
        if parts[0].startswith("Bundle.entry["):  # an entry's refusal says the whole batch was refused
            assert "nothing was stored or anchored" in r.text
        assert (_blobs(world), _count_records(world), _batches(world)) == state
        assert _intents(world) == []


def test_a_batch_killed_after_its_anchor_is_listed_after_restart_and_one_killed_before_leaves_nothing(world, record):
    alice = world["who"]["alice"]
    key, visit = f"batch-990-{time.time_ns()}", [(patient_bundle(990, alice), alice)]
    intent = _killed_at(world, "anchored", lambda c: c.put_batch(visit, idempotency_key=key, retries=0))
    batch_id = batch_id_of(world["who"]["clinic"], intent.batch_root)
    assert world["records"].batch_of(batch_id).count == 1 and not _listed(world, intent.record_id)
    world["gateway"].start()
    assert _intents(world) == [] and _listed(world, intent.record_id)
    (row,) = _rows(world, select(T.records).where(T.records.c.record_id == intent.record_id))
    (event,) = world["records"].batch_anchored_events(batch_id)
    assert (row.anchor_tx, row.anchor_block) == (event["tx"], event["block"])
    assert types_of(client(world, "doc").get_record(intent.record_id)) >= {"Patient", "Condition", "Observation"}
    batches = _batches(world)
    # the client retries the batch with its Idempotency-Key: the batch the first request made, no second anchor
    clinic, records = client(world, "clinic"), _count_records(world)
    replay = clinic.put_batch(visit, idempotency_key=key)
    assert (replay["recordIds"], replay["batchId"], replay["tx"]) == ([intent.record_id], hex(batch_id), event["tx"])
    assert (_batches(world), _count_records(world)) == (batches, records)
    with pytest.raises(GatewayClientError) as reused:
        clinic.put_batch([(patient_bundle(992, alice), alice)], idempotency_key=key)
    assert reused.value.status == 422 and "was used for a different request" in str(reused.value)
    assert _batches(world) == batches
    lost = _killed_at(world, "blob", lambda c: c.put_batch([(patient_bundle(991, alice), alice)]))
    blob = world["gateway"].data / "vault" / "blobs" / lost.content_id[2:4] / lost.content_id[2:]
    assert blob.exists() and lost.batch_root is not None
    world["gateway"].start()
    assert _intents(world) == [] and not blob.exists() and not _listed(world, lost.record_id)
    assert not (world["gateway"].data / "vault" / "batches" / f"{lost.batch_root}.json").exists()
    assert _batches(world) == batches
    _vault_is_whole(world)


# --------------------------------------------------------------------------- amendments


def test_amendments_by_the_author_only_with_versions_and_vread(world, record):
    alice = world["who"]["alice"]
    clinic, doc = client(world, "clinic"), client(world, "doc")
    created = clinic.put_record(patient_bundle(950, alice), alice)
    rid = created["id"]
    amended_doc = patient_bundle(951, alice)

    def refused(c: GatewayClient, **kwargs) -> GatewayClientError:
        with pytest.raises(GatewayClientError) as info:
            c.update_record(rid, amended_doc, **kwargs)
        return info.value

    by_reader = refused(doc)  # consented for some of alice's classes, but not the author
    assert by_reader.status == 403 and f"only the record's author {world['who']['clinic']} may amend it" in str(
        by_reader)
    assert refused(client(world, "nobody")).status == 404  # no relationship with alice: the same 404 as missing
    assert refused(client(world, "alice")).status == 403  # the patient reads everything, but did not author it
    stale = refused(clinic, if_match=2)
    assert stale.status == 412 and "the latest version of the record is 1" in str(stale)
    bad = patient_bundle(952, alice)
    bad["entry"][0]["resource"]["birthDate"] = "not-a-date"
    with pytest.raises(GatewayClientError) as invalid:
        clinic.update_record(rid, bad, if_match=1)
    assert invalid.value.status == 422 and "birthDate" in str(invalid.value)
    assert doc.get_record(rid)["meta"]["versionId"] == "1"  # nothing changed

    amended = clinic.update_record(rid, amended_doc, if_match=1)
    assert (amended["id"], amended["version"]) == (rid, 2)
    registry = world["records"]
    v2 = registry.verify(bytes.fromhex(rid), bytes.fromhex(amended["contentHash"][2:]))
    v1 = registry.verify(bytes.fromhex(rid), bytes.fromhex(created["contentHash"][2:]))
    assert (v2.anchored, v2.version, v2.latest, v1.version, v1.latest) == (True, 2, True, 1, False)
    # the latest is served; each version can be read on its own, and each read is audited with its version
    latest = doc.get_record(rid)
    assert latest["meta"]["versionId"] == "2"
    names = {r["resource"].get("name", [{}])[0].get("family") for r in latest["entry"]
             if r["resource"]["resourceType"] == "Patient"}
    assert names == {amended_doc["entry"][0]["resource"]["name"][0]["family"]}
    first = doc.get(f"/fhir/Bundle/{rid}/_history/1")
    assert first.status_code == 200 and first.json()["meta"]["versionId"] == "1"
    event = doc.audit_proof(int(first.headers["x-medledger-audit"]))["event"]
    assert event["entity"][0]["what"]["reference"] == f"Bundle/{rid}/_history/1"
    assert doc.get(f"/fhir/Bundle/{rid}/_history/3").status_code == 404
    assert client(world, "nobody").get(f"/fhir/Bundle/{rid}/_history/1").status_code == 404  # no relationship
    found = [e for e in doc.search("Bundle", alice)["entry"] if e["fullUrl"].endswith(rid)]
    assert [e["resource"]["meta"]["versionId"] for e in found] == ["2"]  # one entry per record: the latest
    again = refused(clinic, if_match=1)  # version 1 is superseded now
    assert again.status == 412
    assert clinic.update_record(rid, patient_bundle(953, alice))["version"] == 3  # no If-Match: the latest


def test_history_lists_the_versions_each_reader_may_see_each_one_audited(world, record):
    alice = world["who"]["alice"]
    clinic, doc, payer = client(world, "clinic"), client(world, "doc"), client(world, "payer")
    rid = clinic.put_record(patient_bundle(970, alice), alice)["id"]
    clinic.update_record(rid, patient_bundle(971, alice), if_match=1)
    released = doc.history(rid)
    bundle = released.document
    assert (bundle["resourceType"], bundle["type"], bundle["total"]) == ("Bundle", "history", 2)
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["2", "1"]  # newest first
    assert [e["response"]["etag"] for e in bundle["entry"]] == ['W/"2"', 'W/"1"']
    assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT", "POST"]
    assert all(e["response"]["location"].endswith(f"/fhir/Bundle/{rid}/_history/{n}")
               for e, n in zip(bundle["entry"], (2, 1), strict=True))
    for e in bundle["entry"]:  # minimum necessary per version, as a read
        assert types_of(e["resource"]) == {"Patient", "Practitioner", "Organization", "Encounter", "Condition",
                                           "Observation"}
    # every version returned is a read with its own committed audit entry, naming that version
    assert len(released.audit_seqs) == 2
    events = [doc.audit_proof(seq)["event"] for seq in released.audit_seqs]
    assert [ev["entity"][0]["what"]["reference"] for ev in events] == [f"Bundle/{rid}/_history/2",
                                                                       f"Bundle/{rid}/_history/1"]
    assert {ev["code"]["coding"][0]["code"] for ev in events} == {"history-instance"}
    assert set(released.audit_seqs) <= {e["seq"] for e in client(world, "alice").audit(alice)}
    # the payer sees its classes only; the total counts what it is given
    paid = payer.history(rid, purpose="HPAYMT").document
    assert paid["total"] == len(paid["entry"]) == 2
    assert all(types_of(e["resource"]) == {"Patient", "Practitioner", "Organization", "Coverage", "Claim"}
               for e in paid["entry"])
    # refusals as for a read: why, to a party related to alice; the same empty 404 as a missing record to others
    with pytest.raises(GatewayClientError) as why:
        doc.history(rid, purpose="HPAYMT")
    assert why.value.status == 403 and "no consent for purpose HPAYMT" in str(why.value)
    missing = alice[2:].lower() + "00" * 12
    nobody = client(world, "nobody")
    hidden = nobody.get(f"/fhir/Bundle/{rid}/_history")
    absent = nobody.get(f"/fhir/Bundle/{missing}/_history")
    assert hidden.status_code == absent.status_code == 404 and hidden.content == absent.content == b""
    for name in ("er", "payer", "nobody"):  # whatever a read of the record answers, history answers the same
        who = client(world, name)
        read, listed = who.get(f"/fhir/Bundle/{rid}"), who.get(f"/fhir/Bundle/{rid}/_history")
        assert read.status_code == listed.status_code, name
        if read.status_code >= 400:
            assert read.content == listed.content, name
    assert doc.get(f"/fhir/Bundle/{missing}/_history").status_code == 404
    assert doc.get("/fhir/Bundle/..%2F..%2Fetc/_history").status_code == 404


def test_an_amendment_killed_after_its_anchor_is_listed_after_restart(world, record):
    alice = world["who"]["alice"]
    created = client(world, "clinic").put_record(patient_bundle(960, alice), alice)
    rid = created["id"]
    intent = _killed_at(world, "anchored", lambda c: c.update_record(rid, patient_bundle(961, alice), if_match=1))
    assert (intent.version, intent.previous_content_id) == (2, created["contentHash"])
    assert world["records"].verify(bytes.fromhex(rid), bytes.fromhex(intent.content_id[2:])).version == 2
    world["gateway"].start()
    assert _intents(world) == []
    assert client(world, "doc").get_record(rid)["meta"]["versionId"] == "2"
    amended = world["records"].contract.events.RecordAmended.get_logs(
        argument_filters={"recordId": bytes.fromhex(rid)}, from_block=0)
    (row,) = _rows(world, select(T.records).where(T.records.c.record_id == "0x" + rid, T.records.c.version == 2))
    assert (row.content_id, row.anchor_tx) == (intent.content_id, "0x" + bytes(amended[0]["transactionHash"]).hex())
    _vault_is_whole(world)


# --------------------------------------------------------------------------- fuzzing


def test_schemathesis_no_5xx_and_no_body_for_unauthenticated_callers(world, record):
    """schemathesis (its own venv: it needs a newer hypothesis than brownie pins) against /openapi.json."""
    exe = ROOT / ".venv-fuzz" / "bin" / "schemathesis"
    assert exe.exists(), "schemathesis is missing: run tools/setup.sh (it creates .venv-fuzz)"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(ROOT / "tests" / "support" / "fuzz_hooks.py")}
    run = subprocess.run(
        [str(exe), "run", f"{world['gateway'].url}/openapi.json",
         "--checks", "not_a_server_error,no_body_without_sign_in",
         "--max-examples", "12", "--workers", "1", "--phases", "examples,coverage,fuzzing", "--max-time", "60",
         "--request-timeout", "10", "--generation-deterministic"],
        env=env, capture_output=True, text=True, timeout=240, cwd=world["home"])  # its cache lands in tmp
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # signed in (a consented reader's session): still never a 5xx
    token = client(world, "doc").token
    run = subprocess.run(
        [str(exe), "run", f"{world['gateway'].url}/openapi.json", "--checks", "not_a_server_error",
         "-H", f"Authorization: Bearer {token}", "--exclude-path", "/auth/logout",
         "--max-examples", "12", "--workers", "1", "--phases", "examples,coverage,fuzzing", "--max-time", "45",
         "--request-timeout", "10", "--generation-deterministic"],
        capture_output=True, text=True, timeout=240, cwd=world["home"])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_a_migrated_readers_old_key_is_refused_and_its_new_key_reads(world, record):
    """Issue 18 item 3: after the governor moves doc to a fresh key, an EIP-712 signed request (or a session)
    of doc's old key is refused, and the new key reads under the consent alice gave the old one. Last in the
    file: doc keeps its new key for good."""
    url, path = world["gateway"].url, f"/fhir/Bundle/{record['id']}"
    old, new = signer(ACTORS["doc"]), signer(19)  # development account 19: never registered in this world
    world["care"].migrate(world["gov"], old.address, new.address)

    def header(s) -> str:
        from eth_account import Account
        return signed_request_header(lambda digest: bytes(Account.unsafe_sign_hash(digest, s.private_key).signature),
                                     s.address, world["chain_id"], url, "GET", path)

    refused = httpx.get(url + path, headers={"Authorization": header(old)})
    assert refused.status_code == 403 and "migrated to another account" in refused.text
    assert httpx.get(url + path, headers={"Authorization": header(new)}).status_code == 200
