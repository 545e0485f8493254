"""Minimum necessary (issue #14, item 4) through the real entry point on the test Ganache: a record's data
classes are what it contains. A Bundle of several classes is split into one record per class, each sealed
only for its class's readers; a --class that does not cover the contents is refused with the list of what
was found, and nothing is sealed, written or sent; `put-batch` applies the same rule per file.

Parties (development accounts): gov deploys and registers; clinic, lab are providers; alice is the patient
(published key); bob is a patient who never publishes a key (his signed consent discloses it). Module
setup: alice granted clinic TREAT on every class her visit holds, and lab TREAT on conditions only.
"""
import json

import pytest
from brownie import web3
from eth_utils import keccak
from support.nodes import run_cli, run_json
from support.recordcli import as_, batch_tree, blob_path, cli_suite, one_line_error, public_key, write_bundles

from medledger import crypto, fhir
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.contracts import CareRegistry, ConsentRegistry
from medledger.data_classes import class_of, contents, mask_of, resources_of, split
from medledger.records import PatientKeys
from medledger.scopes import DataClass, Purpose
from medledger.testing.accounts import dev_signer
from medledger.testing.synthetic import class_bundle, patient_bundle, phi_fields

ACTORS = {"gov": 0, "clinic": 12, "lab": 13, "alice": 16, "bob": 17}
PROVIDER = 1
TREAT = int(Purpose.TREAT)
D = DataClass
SEED = 3  # a visit with every class the synthetic generator makes (medications included)


@pytest.fixture(scope="module")
def world(tmp_path_factory, accounts, CareRegistry, ConsentRegistry, RecordRegistry):  # noqa: N803
    home = tmp_path_factory.mktemp("min-necessary")
    env, who, care, consent, records = cli_suite(home, ACTORS, web3.provider.endpoint_uri, web3.eth.chain_id,
                                                 CareRegistry, ConsentRegistry, RecordRegistry)
    gov = accounts[ACTORS["gov"]]
    for name in ("clinic", "lab"):
        care.register(who[name], PROVIDER, keccak(text=f"credentials:{name}"), {"from": gov})
    for name in ("alice", "clinic", "lab"):
        care.publishEncryptionKey(public_key(ACTORS[name]), {"from": accounts[ACTORS[name]]})
    visit = patient_bundle(SEED, who["alice"])
    classes = contents(visit).classes
    assert {D.DEMOGRAPHICS, D.CONDITIONS, D.MEDICATIONS, D.LABS, D.BILLING} <= classes
    alice = accounts[ACTORS["alice"]]
    consent.grant(who["alice"], who["clinic"], 1 << TREAT, mask_of(classes), 0, 0, b"\x00" * 32, {"from": alice})
    consent.grant(who["alice"], who["lab"], 1 << TREAT, 1 << D.CONDITIONS, 0, 0, b"\x00" * 32, {"from": alice})
    docs = home / "docs"
    docs.mkdir()
    (docs / "visit.json").write_text(json.dumps(visit))
    (docs / "conditions.json").write_text(json.dumps(class_bundle(SEED, who["alice"], D.CONDITIONS)))
    return {"env": env, "home": home, "who": who, "records": records, "care": care, "consent": consent,
            "docs": docs, "vault": home / "vault", "accounts": accounts, "visit": visit,
            "deployments": home / "deployments.json"}


def ml(world, *args, **kw):
    return run_cli(world["env"], *args, **kw)


def mlj(world, *args):
    return run_json(world["env"], *args)


def nonce(world, name):
    return web3.eth.get_transaction_count(world["who"][name])


def anchored_events(world):
    event = web3.eth.contract(address=world["records"].address, abi=world["records"].abi).events.RecordAnchored
    return event.get_logs(from_block=0)


def vault_state(world):
    """Every file of the vault (blobs, index, manifests) with its bytes: what 'nothing was written' compares."""
    root = world["vault"]
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


def linked(node):
    """``node`` with every reference, literal or logical by URI, replaced by the URI it points at."""
    if isinstance(node, list):
        return [linked(v) for v in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("reference"), str):
        return node["reference"]
    ident = node.get("identifier")
    if "type" in node and isinstance(ident, dict) and ident.get("system") == "urn:ietf:rfc:3986":
        return ident["value"]
    return {k: linked(v) for k, v in node.items()}


def parts_by_class(doc):
    return {p.data_class: p.document for p in split(doc)}


def test_a_mixed_bundle_becomes_one_record_per_class_each_readable_only_by_its_readers(world, tmp_path):
    who, records = world["who"], world["records"]
    made = mlj(world, *as_("clinic"), "record", "put", str(world["docs"] / "visit.json"), "--patient", who["alice"])
    expected = parts_by_class(world["visit"])
    assert made["split"] is True and made["count"] == len(expected) == len(made["records"])
    by_class = {r["data_class"]: r for r in made["records"]}
    assert set(by_class) == {c.name.lower() for c in expected}
    for cls in expected:
        entry = by_class[cls.name.lower()]
        # anchored on chain under its own class, and sealed for exactly that class's readers
        anchored, version, author, _, latest = records.verify(entry["record_id"], entry["content_hash"])
        assert (anchored, version, author, latest) == (True, 1, who["clinic"], True)
        assert records.latestOf(entry["record_id"])[1][2] == int(cls)
        envelope = crypto.Envelope.from_bytes(blob_path(world["vault"], entry["content_hash"]).read_bytes())
        readers = {who["alice"], who["clinic"]} | ({who["lab"]} if cls == D.CONDITIONS else set())
        assert set(envelope.wrapped_keys) == readers == set(entry["readers"])
    assert len({r["record_id"] for r in made["records"]}) == len(expected)

    # The lab, consented for conditions only, reads the conditions record: exactly that part, nothing else.
    conditions = tmp_path / "conditions.json"
    mlj(world, *as_("lab"), "record", "get", by_class["conditions"]["record_id"], "--out", str(conditions))
    got = json.loads(conditions.read_bytes())
    assert conditions.read_bytes() == fhir.canonicalize(expected[D.CONDITIONS])
    assert {class_of(r) for r in resources_of(got)} == {D.CONDITIONS}
    original = {e["fullUrl"]: e["resource"] for e in world["visit"]["entry"]}
    for entry in got["entry"]:
        resource, source = entry["resource"], original[entry["fullUrl"]]
        assert linked(resource) == linked(source)  # the same resource, pointing at the same targets
        # the subject is the Patient of the demographics record: a logical reference by its fullUrl, no name
        subject = resource["subject"]
        assert "reference" not in subject and "display" not in subject
        assert subject["identifier"]["value"] == source["subject"]["reference"] and subject["type"] == "Patient"
    names = phi_fields(world["visit"]).names
    assert names and not any(name.encode() in conditions.read_bytes() for name in names)
    fhir.validate_document(got, "R5")  # each part is valid FHIR on its own

    # ... and is refused the demographics record (the real consent registry says no), with nothing read.
    out = tmp_path / "demographics.json"
    before = nonce(world, "lab")
    line = one_line_error(ml(world, *as_("lab"), "record", "get", by_class["demographics"]["record_id"],
                             "--out", str(out), check=False))
    assert "no TREAT consent" in line and "demographics" in line and "nothing was read" in line
    assert not out.exists() and nonce(world, "lab") == before

    # The patient opens every part; together they hold every resource of the visit, each exactly once.
    seen = []
    for cls, entry in by_class.items():
        mine = tmp_path / f"alice-{cls}.json"
        mlj(world, *as_("alice"), "record", "get", entry["record_id"], "--out", str(mine))
        part = json.loads(mine.read_bytes())
        assert mine.read_bytes() == fhir.canonicalize(expected[D[cls.upper()]])
        assert part["type"] == world["visit"]["type"] and part["timestamp"] == world["visit"]["timestamp"]
        seen += [e["fullUrl"] for e in part["entry"]]
    assert sorted(seen) == sorted(original)


def test_a_covering_class_is_accepted(world, tmp_path):
    who = world["who"]
    made = mlj(world, *as_("clinic"), "record", "put", str(world["docs"] / "conditions.json"),
               "--patient", who["alice"], "--class", "conditions")
    assert made["split"] is False and made["data_class"] == "conditions" and len(made["records"]) == 1
    assert world["records"].latestOf(made["record_id"])[1][2] == int(D.CONDITIONS)
    # a single resource is its own class
    observation = next(e["resource"] for e in world["visit"]["entry"] if e["resource"]["resourceType"] == "Observation")
    single = tmp_path / "observation.json"
    single.write_text(json.dumps(observation))
    made = mlj(world, *as_("clinic"), "record", "put", str(single), "--patient", who["alice"], "--class", "labs")
    assert made["data_class"] == "labs" and made["split"] is False
    out = tmp_path / "back.json"
    mlj(world, *as_("alice"), "record", "get", made["record_id"], "--out", str(out))
    assert out.read_bytes() == fhir.canonicalize(single.read_bytes())


def test_a_class_that_does_not_cover_the_contents_is_refused_and_nothing_changes(world):
    who = world["who"]
    visit = world["docs"] / "visit.json"
    file_before, vault_before = visit.read_bytes(), vault_state(world)
    events_before, nonce_before = len(anchored_events(world)), nonce(world, "clinic")
    proc = ml(world, *as_("clinic"), "record", "put", str(visit), "--patient", who["alice"], "--class", "conditions",
              check=False)
    line = one_line_error(proc)
    found = contents(world["visit"]).describe()
    assert line == f"error: visit.json: --class conditions does not cover this Bundle: it holds {found}"
    assert found.startswith("demographics (Patient, Practitioner, Organization ×2), conditions (")
    assert proc.stdout == ""
    assert visit.read_bytes() == file_before and vault_state(world) == vault_before
    assert len(anchored_events(world)) == events_before and nonce(world, "clinic") == nonce_before


def test_amend_keeps_the_record_to_its_class(world):
    who = world["who"]
    made = mlj(world, *as_("clinic"), "record", "put", str(world["docs"] / "conditions.json"),
               "--patient", who["alice"])
    vault_before, nonce_before = vault_state(world), nonce(world, "clinic")
    line = one_line_error(ml(world, *as_("clinic"), "record", "amend", made["record_id"],
                             str(world["docs"] / "visit.json"), check=False))
    assert line.startswith(f"error: visit.json: record {made['record_id']} v1's class conditions does not cover "
                           f"this Bundle: it holds demographics (")
    assert vault_state(world) == vault_before and nonce(world, "clinic") == nonce_before


def test_put_batch_splits_a_mixed_file(world, tmp_path):
    who, records = world["who"], world["records"]
    folder = tmp_path / "batch"
    files = write_bundles(folder, who["alice"], 2, seed=40)  # conditions only: one record each
    mixed = folder / "visit-mixed.json"
    mixed.write_text(json.dumps(world["visit"]))
    done = mlj(world, *as_("clinic"), "record", "put-batch", str(folder), "--patient", who["alice"])
    expected = parts_by_class(world["visit"])
    assert done["files"] == 3 and done["count"] == 2 + len(expected)
    rows = done["records"]
    assert [(r["file"], r["data_class"], r["split"]) for r in rows] == \
        [(f.name, "conditions", False) for f in files] + \
        [(mixed.name, c.name.lower(), True) for c in sorted(expected)]
    leaves, tree = batch_tree(rows, who["clinic"])  # the contract proves each part, independently of the CLI
    batch_id = int(done["batch_id"], 16)
    assert tree.root_hex == done["root"] and records.batchOf(batch_id)[1] == done["count"]
    for i in range(2, len(rows)):
        leaf = leaves[i]
        assert leaf.data_class == int(D[rows[i]["data_class"].upper()])
        assert records.verifyInBatch(leaf.record_id, leaf.content_hash, leaf.patient, leaf.version, leaf.data_class,
                                     leaf.author, tree.get_proof(i), batch_id) is True
    # every split part is its own record of its own class, sealed for that class's readers only
    for row in rows[2:]:
        envelope = crypto.Envelope.from_bytes(blob_path(world["vault"], row["content_hash"]).read_bytes())
        readers = {who["alice"], who["clinic"]} | ({who["lab"]} if row["data_class"] == "conditions" else set())
        assert set(envelope.wrapped_keys) == readers
    # a split part round-trips: the patient decrypts the labs part and finds the visit's lab resources
    labs = next(r for r in rows if r["file"] == mixed.name and r["data_class"] == "labs")
    out = tmp_path / "labs.json"
    mlj(world, *as_("alice"), "record", "get", labs["record_id"], "--out", str(out))
    assert out.read_bytes() == fhir.canonicalize(expected[D.LABS])
    assert [e["fullUrl"] for e in json.loads(out.read_bytes())["entry"]] == \
        [e["fullUrl"] for e in world["visit"]["entry"] if class_of(e["resource"]) == D.LABS]


def test_put_batch_refuses_a_class_that_does_not_cover_a_file_before_anything(world, tmp_path):
    who = world["who"]
    folder = tmp_path / "batch"
    files = write_bundles(folder, who["alice"], 3, seed=60)
    (folder / "visit-mixed.json").write_text(json.dumps(world["visit"]))
    (folder / "manifest.json").write_text(json.dumps({files[1].name: {"class": "labs"}}))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    vault_before, nonce_before, events_before = vault_state(world), nonce(world, "clinic"), len(anchored_events(world))
    line = one_line_error(ml(world, *as_("clinic"), "record", "put-batch", str(folder), "--patient", who["alice"],
                             "--class", "conditions", "--no-validate", check=False))  # classes read inline
    labs_file = contents(json.loads(files[1].read_text())).describe()
    assert labs_file.startswith("conditions (Encounter, Condition")
    assert line == (f"error: 2 of 4 files refused, nothing was sealed or anchored: {files[1].name}: the class labs "
                    f"of manifest.json does not cover this Bundle: it holds {labs_file}; visit-mixed.json: --class "
                    f"conditions does not cover this Bundle: it holds {contents(world['visit']).describe()}")
    assert files[1].name in line and "visit-mixed.json" in line and files[0].name + ":" not in line
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ".medledger-batch.lock"} == before
    assert vault_state(world) == vault_before and nonce(world, "clinic") == nonce_before
    assert len(anchored_events(world)) == events_before


def test_patient_keys_cache_the_disclosed_key_and_reread_the_published_one(world):
    """The gateway's cache (records.PatientKeys), on the real registries: a key bob's signed consent disclosed is
    scanned for once; a published key is read on every call, so a republished or withdrawn key takes effect."""
    who, accounts = world["who"], world["accounts"]
    chain = Chain(load_settings(rpc=web3.provider.endpoint_uri, deployments_path=world["deployments"]))
    care = CareRegistry(chain, world["care"].address)

    class Counting(ConsentRegistry):
        scans = 0

        def signed_public_key(self, patient, from_block=0):
            Counting.scans += 1
            return super().signed_public_key(patient, from_block)

    consent = Counting(chain, world["consent"].address)
    signed = consent.sign_grant(dev_signer(ACTORS["bob"]), who["bob"], who["clinic"], 1 << TREAT,
                                1 << D.CONDITIONS)
    consent.relay(dev_signer(ACTORS["clinic"]), signed)
    keys = PatientKeys(care, consent)
    bob_key = crypto.public_key_of(dev_signer(ACTORS["bob"]).private_key)
    assert not keys.cached(who["bob"])
    assert keys(who["bob"]) == keys(who["bob"]) == keys(who["bob"].lower()) == crypto.normalize_public_key(bob_key)
    assert Counting.scans == 1 and keys.cached(who["bob"])
    # bob publishes a key after all: it wins from the next call, and withdrawing it falls back to the disclosed one
    bob = accounts[ACTORS["bob"]]
    world["care"].publishEncryptionKey(public_key(ACTORS["lab"]), {"from": bob})
    assert keys(who["bob"]) == crypto.normalize_public_key(public_key(ACTORS["lab"]))
    world["care"].publishEncryptionKey(b"", {"from": bob})
    assert keys(who["bob"]) == crypto.normalize_public_key(bob_key) and Counting.scans == 1
    # a round-1 published key is never cached: alice republishes and the next call sees it
    assert keys(who["alice"]) == crypto.normalize_public_key(public_key(ACTORS["alice"]))
    world["care"].publishEncryptionKey(public_key(ACTORS["bob"]), {"from": accounts[ACTORS["alice"]]})
    assert keys(who["alice"]) == crypto.normalize_public_key(public_key(ACTORS["bob"]))
    assert Counting.scans == 1 and not keys.cached(who["alice"])
