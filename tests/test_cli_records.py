"""`medledger record ...` through the real entry point, on the test Ganache: put / get round trips with
on-chain access logs, refusals that leave nothing behind, break-glass reads, amendments that re-seal for
today's readers, tamper detection, FHIR and key errors as one line, and a Merkle batch checked by the
contract itself.

Parties (development accounts): gov deploys and registers; clinic, lab and er are providers; payer is an
insurer; alice and bob are patients (bob publishes no key at first). Module setup (through brownie, after
the CLI deploy): alice granted clinic TREAT on conditions and labs; alice, clinic, lab, er and payer
published their encryption keys.
"""
import json

import pytest
from brownie import web3
from eth_utils import keccak
from support.nodes import run_cli, run_json
from support.recordcli import as_, batch_tree, blob_path, cli_suite, flip_bit, one_line_error, public_key, write_bundles
from support.vocabulary import CONDITIONS, ETREAT, LABS, TREAT

from medledger import crypto, fhir
from medledger.scopes import DataClass
from medledger.testing.synthetic import class_bundle

ACTORS = {"gov": 0, "clinic": 12, "lab": 13, "payer": 14, "er": 15, "alice": 16, "bob": 17}
PROVIDER, INSURER = 1, 2


@pytest.fixture(scope="module")
def world(tmp_path_factory, accounts, CareRegistry, ConsentRegistry, RecordRegistry):
    home = tmp_path_factory.mktemp("records-cli")
    env, who, care, consent, records = cli_suite(home, ACTORS, web3.provider.endpoint_uri, web3.eth.chain_id,
                                                 CareRegistry, ConsentRegistry, RecordRegistry)
    gov = accounts[ACTORS["gov"]]
    for name, role in (("clinic", PROVIDER), ("lab", PROVIDER), ("er", PROVIDER), ("payer", INSURER)):
        care.register(who[name], role, keccak(text=f"credentials:{name}"), {"from": gov})
    for name in ("alice", "clinic", "lab", "er", "payer"):
        care.publishEncryptionKey(public_key(ACTORS[name]), {"from": accounts[ACTORS[name]]})
    consent.grant(who["alice"], who["clinic"], 1 << TREAT, (1 << CONDITIONS) | (1 << LABS), 0, 0, b"\x00" * 32,
                  {"from": accounts[ACTORS["alice"]]})
    docs = home / "docs"
    docs.mkdir()
    for seed in (1, 2, 3):  # the conditions of three visits: one record each
        (docs / f"visit{seed}.json").write_text(json.dumps(class_bundle(seed, who["alice"], DataClass.CONDITIONS)))
    return {"env": env, "home": home, "who": who, "records": records, "consent": consent, "care": care,
            "docs": docs, "vault": home / "vault", "accounts": accounts}


def ml(world, *args, **kw):
    return run_cli(world["env"], *args, **kw)


def mlj(world, *args):
    return run_json(world["env"], *args)


def put(world, doc="visit1.json", patient="alice", by="clinic", *extra):
    return mlj(world, *as_(by), "record", "put", str(world["docs"] / doc), "--patient", world["who"][patient], *extra)


def access_logs(world, **filters):
    event = web3.eth.contract(address=world["records"].address, abi=world["records"].abi).events.AccessLogged
    return [dict(e["args"]) for e in event.get_logs(argument_filters=filters, from_block=0)]


def canonical(world, doc):
    return fhir.canonicalize((world["docs"] / doc).read_bytes())


def nonce(world, name):
    return web3.eth.get_transaction_count(world["who"][name])


def test_put_get_round_trip_by_patient_and_consented_provider(world, tmp_path):
    who = world["who"]
    made = put(world)
    rid, digest = made["record_id"], made["content_hash"]
    assert made["version"] == 1 and set(made["readers"]) == {who["alice"], who["clinic"]}
    anchored, version, author, anchored_at, latest = world["records"].verify(rid, digest)
    assert (anchored, version, author, latest) == (True, 1, who["clinic"], True) and anchored_at > 0
    # The patient opens her own record (patients are not providers: the contract has no log entry for them).
    mine = tmp_path / "alice.json"
    got = mlj(world, *as_("alice"), "record", "get", rid, "--out", str(mine))
    assert got["access_tx"] is None and mine.read_bytes() == canonical(world, "visit1.json")
    # The consented provider reads it: the access is logged on chain first.
    theirs = tmp_path / "clinic.json"
    got = mlj(world, *as_("clinic"), "record", "get", rid, "--out", str(theirs))
    assert theirs.read_bytes() == canonical(world, "visit1.json")
    receipt = web3.eth.get_transaction_receipt(got["access_tx"])
    entries = access_logs(world, recordId=rid)
    assert [(e["patient"], e["accessor"], e["purpose"]) for e in entries] == [(who["alice"], who["clinic"], TREAT)]
    assert receipt["status"] == 1 and receipt["blockNumber"] == web3.eth.block_number
    # Without --out the document goes to stdout.
    printed = ml(world, *as_("clinic"), "record", "get", rid)
    assert printed.stdout.strip().encode() == canonical(world, "visit1.json")
    assert len(access_logs(world, recordId=rid)) == 2


def test_unconsented_provider_gets_nothing(world, tmp_path):
    rid = put(world)["record_id"]
    out = tmp_path / "stolen.json"
    before = nonce(world, "lab")
    proc = ml(world, *as_("lab"), "record", "get", rid, "--out", str(out), check=False)
    line = one_line_error(proc)
    assert "no TREAT consent" in line and rid in line and "nothing was read" in line
    assert not out.exists() and proc.stdout == ""
    assert nonce(world, "lab") == before  # nothing was sent
    assert access_logs(world, recordId=rid) == []


def test_break_glass_read(world, tmp_path):
    who = world["who"]
    ml(world, *as_("er"), "emergency", "open", who["alice"], "--hours", "2", "--reason", "unconscious")
    # Break-glass alone gives no key (no standing keys, interface 2) ...
    assert who["er"] not in put(world, "visit1.json")["readers"]
    # ... the treating provider seals a version for the ER deliberately, while its window is open.
    made = put(world, "visit2.json", "alice", "clinic", "--emergency-reader", who["er"])
    assert who["er"] in made["readers"]
    refused = ml(world, *as_("er"), "record", "get", made["record_id"], "--out", str(tmp_path / "x.json"), check=False)
    assert "no TREAT consent" in one_line_error(refused) and not (tmp_path / "x.json").exists()
    out = tmp_path / "er.json"
    got = mlj(world, *as_("er"), "record", "get", made["record_id"], "--purpose", "etreat", "--out", str(out))
    assert out.read_bytes() == canonical(world, "visit2.json") and got["purpose"] == "ETREAT"
    assert [(e["accessor"], e["purpose"]) for e in access_logs(world, recordId=made["record_id"])] == \
        [(who["er"], ETREAT)]


def test_break_glass_never_reaches_a_sensitive_class(world, tmp_path):
    """ConsentRegistry v3's break-glass covers every class bit (a pseudonym's bits are labels the chain cannot
    read), so the SDK keeps 42 CFR Part 2: no emergency reader is sealed a sensitive record, and an ER reads
    none by break-glass. Both refusals are one line and send nothing."""
    from medledger.data_classes import ACT_CODE_SYSTEM

    who, consent, accounts = world["who"], world["consent"], world["accounts"]
    consent.grant(who["alice"], who["clinic"], 1 << TREAT,
                  (1 << CONDITIONS) | (1 << LABS) | (1 << DataClass.MENTAL_HEALTH), 0, 0, b"\x00" * 32,
                  {"from": accounts[ACTORS["alice"]]})
    if consent.breakGlassOf(who["alice"], who["er"])[1] <= web3.eth.get_block("latest")["timestamp"]:
        ml(world, *as_("er"), "emergency", "open", who["alice"], "--hours", "2", "--reason", "unconscious")
    assert consent.hasConsent(who["alice"], who["er"], ETREAT, DataClass.MENTAL_HEALTH)  # the chain says yes
    doc = class_bundle(5, who["alice"], DataClass.CONDITIONS)
    for entry in doc["entry"]:
        entry["resource"]["meta"] = {"security": [{"system": ACT_CODE_SYSTEM, "code": "PSY"}]}
    (world["docs"] / "psy.json").write_text(json.dumps(doc))
    before = nonce(world, "clinic")
    sealed = ml(world, *as_("clinic"), "record", "put", str(world["docs"] / "psy.json"), "--patient", who["alice"],
                "--emergency-reader", who["er"], check=False)
    line = one_line_error(sealed)
    assert "mental-health" in line and "42 CFR Part 2" in line and "emergency reader" in line
    assert nonce(world, "clinic") == before
    made = put(world, "psy.json")
    assert made["readers"] and who["er"] not in made["readers"]
    before = nonce(world, "er")
    read = ml(world, *as_("er"), "record", "get", made["record_id"], "--purpose", "etreat", "--out",
              str(tmp_path / "psy.json"), check=False)
    line = one_line_error(read)
    assert "only through break-glass" in line and "42 CFR Part 2" in line and "nothing of record" in line
    assert nonce(world, "er") == before and not (tmp_path / "psy.json").exists()
    assert access_logs(world, recordId=made["record_id"]) == []
    consent.grant(who["alice"], who["clinic"], 1 << TREAT, (1 << CONDITIONS) | (1 << LABS), 0, 0, b"\x00" * 32,
                  {"from": accounts[ACTORS["alice"]]})   # back to the module's scope


def test_amend_reseals_for_current_readers_and_history(world, tmp_path):
    who, consent, accounts = world["who"], world["consent"], world["accounts"]
    consent.grant(who["alice"], who["lab"], 1 << TREAT, 1 << CONDITIONS, 0, 0, b"\x00" * 32,
                  {"from": accounts[ACTORS["alice"]]})
    v1 = put(world)
    rid = v1["record_id"]
    assert who["lab"] in v1["readers"]
    consent.revoke(who["alice"], who["lab"], {"from": accounts[ACTORS["alice"]]})
    v2 = mlj(world, *as_("clinic"), "record", "amend", rid, str(world["docs"] / "visit3.json"))
    assert v2["version"] == 2 and v2["previous_content_hash"] == v1["content_hash"]
    assert who["lab"] not in v2["readers"] and set(v2["readers"]) == {who["alice"], who["clinic"]}
    # The vault blobs say the same: v1 was wrapped to lab, v2 is not.
    opened = [crypto.Envelope.from_bytes(blob_path(world["vault"], v["content_hash"]).read_bytes()) for v in (v1, v2)]
    assert who["lab"] in opened[0].wrapped_keys and who["lab"] not in opened[1].wrapped_keys
    assert world["records"].verify(rid, v1["content_hash"])[4] is False  # superseded, still anchored
    assert world["records"].verify(rid, v2["content_hash"])[:2] == (True, 2)
    rows = mlj(world, "record", "history", rid)
    assert [(r["version"], r["event"], r["content_hash"], r["previous"]) for r in rows] == [
        (1, "RecordAnchored", v1["content_hash"], None),
        (2, "RecordAmended", v2["content_hash"], v1["content_hash"])]
    # The latest version reads back as the amended document; v1 is still readable by the patient.
    out = tmp_path / "v2.json"
    mlj(world, *as_("clinic"), "record", "get", rid, "--out", str(out))
    assert out.read_bytes() == canonical(world, "visit3.json")
    old = tmp_path / "v1.json"
    mlj(world, *as_("alice"), "record", "get", rid, "--version", "1", "--out", str(old))
    assert old.read_bytes() == canonical(world, "visit1.json")
    # The revoked lab is refused before anything is decrypted, whatever version it asks for.
    assert "no TREAT consent" in one_line_error(ml(world, *as_("lab"), "record", "get", rid, "--version", "1",
                                                   check=False))


def test_verify_intact_then_one_flipped_bit(world, tmp_path):
    made = put(world)
    rid, digest = made["record_id"], made["content_hash"]
    ok = mlj(world, "record", "verify", rid)
    assert (ok["status"], ok["version"], ok["latest"], ok["content_hash"]) == ("intact", 1, True, digest)
    assert ok["author"] == world["who"]["clinic"] and ok["anchored_at"] > 0
    blob = blob_path(world["vault"], digest)
    copy = tmp_path / "sealed.bin"
    copy.write_bytes(blob.read_bytes())
    assert mlj(world, "record", "verify", str(copy))["status"] == "intact"

    original = flip_bit(blob, offset=-7, bit=3)
    try:
        found = "0x" + keccak(blob.read_bytes()).hex()
        line = one_line_error(ml(world, "record", "verify", rid, check=False))
        assert "TAMPERED" in line and rid in line and digest in line and found in line
        # A reader gets nothing from a tampered blob: no access logged, no file.
        out = tmp_path / "out.json"
        line = one_line_error(ml(world, *as_("clinic"), "record", "get", rid, "--out", str(out), check=False))
        assert "tampered" in line and digest in line and found in line
        assert not out.exists() and access_logs(world, recordId=rid) == []
    finally:
        blob.write_bytes(original)
    flip_bit(copy, offset=100, bit=0)  # a bit of a wrapped key, in a copy handed over as a file
    line = one_line_error(ml(world, "record", "verify", str(copy), check=False))
    assert "TAMPERED" in line and digest in line and "0x" + keccak(copy.read_bytes()).hex() in line


def test_invalid_fhir_is_one_line_with_the_field_path(world, tmp_path):
    bad = tmp_path / "bad-patient.json"
    bad.write_text(json.dumps({"resourceType": "Patient", "gender": "female", "birthDate": "1990-13-45"}))
    before = nonce(world, "clinic")
    line = one_line_error(ml(world, *as_("clinic"), "record", "put", str(bad), "--patient", world["who"]["alice"],
                             check=False))
    # the default version is auto: valid in no version, so the message names the likely one and the flag
    assert line.startswith("error: bad-patient.json: FHIR version not detected")
    assert "looks most like R4" in line and "--fhir-version" in line
    assert 'Patient.birthDate: "1990-13-45" is not a valid FHIR date' in line
    line = one_line_error(ml(world, *as_("clinic"), "record", "put", str(bad), "--patient", world["who"]["alice"],
                             "--fhir-version", "r5", check=False))
    assert line.startswith("error: bad-patient.json: invalid FHIR R5 Patient (1 error): Patient.birthDate:")
    assert nonce(world, "clinic") == before


def test_missing_patient_key_fails_before_anything_is_sent(world):
    who, accounts = world["who"], world["accounts"]
    world["consent"].grant(who["bob"], who["clinic"], 1 << TREAT, 1 << CONDITIONS, 0, 0, b"\x00" * 32,
                           {"from": accounts[ACTORS["bob"]]})
    blobs_before = sorted((world["vault"] / "blobs").rglob("*"))
    before = nonce(world, "clinic")
    proc = ml(world, *as_("clinic"), "record", "put", str(world["docs"] / "visit1.json"), "--patient", who["bob"],
              check=False)
    line = one_line_error(proc)
    assert who["bob"] in line and "`medledger --account PATIENT registry publish-key`" in line
    assert nonce(world, "clinic") == before and sorted((world["vault"] / "blobs").rglob("*")) == blobs_before
    ml(world, *as_("bob"), "registry", "publish-key")  # what the message says to do
    made = put(world, "visit1.json", "bob")
    assert who["bob"] in made["readers"]


def test_put_batch_members_verify_in_the_contract(world, tmp_path):
    who, records = world["who"], world["records"]
    folder = tmp_path / "batch"
    files = write_bundles(folder, who["alice"], 20, seed=100)
    files[0].write_text(json.dumps(class_bundle(100, who["alice"], DataClass.LABS)))
    (folder / "manifest.json").write_text(json.dumps({files[0].name: {"class": "labs"}}))
    done = mlj(world, *as_("clinic"), "record", "put-batch", str(folder), "--patient", who["alice"])
    assert done["count"] == 20 and done["resumed_from"] is None
    entries = done["records"]
    assert [e["file"] for e in entries] == [f.name for f in files] and entries[0]["data_class"] == "labs"
    assert len({e["record_id"] for e in entries}) == 20
    leaves, tree = batch_tree(entries, who["clinic"])
    assert tree.root_hex == done["root"]
    batch_id = records.batchIdOf(who["clinic"], tree.root)
    submitter, count, _, kind = records.batchOf(batch_id)
    assert hex(batch_id) == done["batch_id"] and (submitter, count, kind) == (who["clinic"], 20, 1)
    for i in (0, 7, 19):  # the contract checks the members with proofs built here, independently of the CLI
        leaf = leaves[i]
        args = (leaf.record_id, leaf.content_hash, leaf.patient, leaf.version, leaf.data_class, leaf.author)
        assert records.verifyInBatch(*args, tree.get_proof(i), batch_id) is True
        forged = (leaf.record_id, keccak(b"forged"), *args[2:])
        assert records.verifyInBatch(*forged, tree.get_proof(i), batch_id) is False
    anchored = web3.eth.contract(address=records.address, abi=records.abi).events.BatchAnchored.get_logs(
        argument_filters={"provider": who["clinic"]}, from_block=0)
    assert [e["args"]["root"] for e in anchored] == [tree.root]
    # Re-running is a no-op; the CLI verifies a member; a provider read promotes it, then logs the access.
    again = mlj(world, *as_("clinic"), "record", "put-batch", str(folder), "--patient", who["alice"])
    assert again["resumed_from"] == "anchored" and again["tx"] == done["tx"]
    member = entries[7]["record_id"]
    shown = mlj(world, "record", "verify", member)
    assert shown["status"] == "intact" and shown["how"].startswith(f"batch {done['batch_id']}")
    out = tmp_path / "member.json"
    mlj(world, *as_("clinic"), "record", "get", member, "--out", str(out))
    assert out.read_bytes() == fhir.canonicalize(files[7].read_bytes())
    assert [r["event"] for r in mlj(world, "record", "history", member)] == ["RecordAttested"]
    assert [e["accessor"] for e in access_logs(world, recordId=member)] == [who["clinic"]]
