"""Pairwise pseudonyms through the real `medledger` entry point (issue #14, docs/PRIVACY.md): a patient's
wallet derives one address per provider and insurer, the pseudonym signs and someone else relays, records
are sealed to the key its signature discloses, and the patient's own commands (list, audit, reading her
record) find all her pseudonyms again from the wallet alone. Her wallet never sends a transaction."""
import json
from pathlib import Path

import pytest
from brownie import web3
from support.nodes import deployed_env, run_cli, run_json

from medledger.pseudonyms import PatientIdentity, Relationship
from medledger.scopes import DataClass
from medledger.testing import synthetic
from medledger.testing.accounts import dev_signer

ACTORS = {"gov": 0, "clinic": 12, "lab": 13, "payer": 14, "alice": 16, "relayer": 18}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = deployed_env(tmp_path_factory.mktemp("pairwise"), web3.provider.endpoint_uri, ACTORS,
                       providers=("clinic", "lab"), insurers=("payer",))
    for who in ("clinic", "lab", "payer"):
        run_cli(env, "--account", who, "registry", "publish-key")
    return env


def who(env, name):
    return json.loads(env["ADDRESSES"])[name]


def alice(env, *args, pairwise=True):
    return run_json(env, *(("--pairwise",) if pairwise else ()), "--account", "alice", *args)


def sign_and_relay(env, tmp_path, grantee, *scope, relayer=None, billed_to=None):
    out = tmp_path / f"signed-{grantee}-{billed_to}-{len(list(tmp_path.iterdir()))}.json"
    extra = ("--billed-to", billed_to) if billed_to else ()
    signed = alice(env, "consent", "sign", grantee, *scope, *extra, "-o", str(out))
    run_cli(env, "--account", relayer or grantee, "consent", "relay", str(out))
    return signed["patient"]


def test_one_pseudonym_per_relationship_derived_from_the_wallet(env):
    clinic = alice(env, "patient", "pseudonym", "clinic")
    assert clinic == alice(env, "patient", "pseudonym", "clinic")  # deterministic: nothing to back up
    assert clinic["relationship"] == "provider" and clinic["counterparty"] == who(env, "clinic")
    payer = alice(env, "patient", "pseudonym", "payer")
    assert payer["relationship"] == "insurer"
    addresses = {clinic["pseudonym"], payer["pseudonym"], alice(env, "patient", "pseudonym", "lab")["pseudonym"]}
    assert len(addresses) == 3 and who(env, "alice") not in addresses
    # the SDK derivation the CLI uses, from the same key
    identity = PatientIdentity.of(dev_signer(ACTORS["alice"]), web3.eth.chain_id)
    assert identity.pseudonym(Relationship.PROVIDER, who(env, "clinic")).address == clinic["pseudonym"]


def test_a_relationship_needs_a_registered_provider_or_insurer(env):
    bad = run_cli(env, "--account", "alice", "patient", "pseudonym", "relayer", check=False)
    assert bad.returncode != 0 and "not a registered provider or insurer" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_the_pseudonym_signs_a_relayed_consent_and_the_wallet_sends_nothing(env, tmp_path):
    sends = web3.eth.get_transaction_count(who(env, "alice"))
    pseudonym = sign_and_relay(env, tmp_path, "clinic", "-p", "treat", "-c", "labs,conditions")
    assert pseudonym == alice(env, "patient", "pseudonym", "clinic")["pseudonym"]
    assert run_cli(env, "consent", "check", pseudonym, "clinic", "treat", "labs", check=False).returncode == 0
    assert run_cli(env, "consent", "check", who(env, "alice"), "clinic", "treat", "labs",
                   check=False).returncode == 3  # nothing names the wallet
    assert web3.eth.get_transaction_count(who(env, "alice")) == sends == 0
    assert web3.eth.get_transaction_count(pseudonym) == 0  # the pseudonym never sends either, and holds no gas
    assert web3.eth.get_balance(pseudonym) == 0


def test_a_direct_grant_is_refused_and_changes_nothing(env):
    block = web3.eth.block_number
    refused = run_cli(env, "--pairwise", "--account", "alice", "consent", "grant", "lab", "-p", "treat", "-c", "labs",
                      check=False)
    assert refused.returncode != 0 and "never sends a transaction" in refused.stderr
    assert "consent sign" in refused.stderr and "Traceback" not in refused.stderr
    assert web3.eth.block_number == block


def test_billed_to_signs_as_the_insurer_pseudonym(env, tmp_path):
    member = sign_and_relay(env, tmp_path, "clinic", "-p", "treat,hpaymt", "-c", "billing,conditions",
                            billed_to="payer")
    assert member == alice(env, "patient", "pseudonym", "payer")["pseudonym"]
    assert run_cli(env, "consent", "check", member, "clinic", "hpaymt", "billing", check=False).returncode == 0
    # the provider that bills the insurer holds the member pseudonym's label key (docs/PRIVACY.md, section 2)
    from medledger.labels import LabelKeyStore, label_key, label_keys_dir
    identity = PatientIdentity.of(dev_signer(ACTORS["alice"]), web3.eth.chain_id)
    store = LabelKeyStore(label_keys_dir(Path(env["MEDLEDGER_VAULT"])))
    assert store.open(member, who(env, "clinic"), dev_signer(ACTORS["clinic"]).private_key) == \
        label_key(identity.root, member)
    misuse = run_cli(env, "--account", "alice", "consent", "sign", "clinic", "-p", "treat", "-c", "labs",
                     "--billed-to", "payer", "-o", str(tmp_path / "x.json"), check=False)
    assert misuse.returncode != 0 and "--pairwise" in misuse.stderr and not (tmp_path / "x.json").exists()


def test_records_are_sealed_to_the_key_the_pseudonyms_signature_discloses(env, tmp_path):
    pseudonym = alice(env, "patient", "pseudonym", "clinic")["pseudonym"]
    if run_cli(env, "consent", "check", pseudonym, "clinic", "treat", "labs", check=False).returncode:
        sign_and_relay(env, tmp_path, "clinic", "-p", "treat", "-c", "labs,conditions")
    doc = tmp_path / "visit.json"
    doc.write_text(json.dumps(synthetic.class_bundle(7, pseudonym, DataClass.LABS)))
    put = run_json(env, "--account", "clinic", "record", "put", str(doc), "--patient", pseudonym, "--class", "labs")
    assert run_json(env, "registry", "show", pseudonym)["encryption_key"] == "0x"  # it never published one
    # the patient reads her own record with her wallet: the CLI finds the pseudonym and its key
    sends = web3.eth.get_transaction_count(who(env, "alice"))
    read = alice(env, "record", "get", put["record_id"], "--out", str(tmp_path / "mine.json"))
    assert read["reader"] == pseudonym and read["access_tx"] is None
    assert json.loads((tmp_path / "mine.json").read_text()) == json.loads(doc.read_text())
    assert web3.eth.get_transaction_count(who(env, "alice")) == sends


def test_the_patient_lists_and_audits_across_her_pseudonyms(env, tmp_path):
    at_clinic = alice(env, "patient", "pseudonym", "clinic")["pseudonym"]
    member = alice(env, "patient", "pseudonym", "payer")["pseudonym"]
    for grantee, scope, billed in (("clinic", "labs,conditions", None), ("clinic", "billing,conditions", "payer")):
        if run_cli(env, "consent", "check", member if billed else at_clinic, "clinic", "treat",
                   scope.split(",")[0], check=False).returncode:
            sign_and_relay(env, tmp_path, grantee, "-p", "treat,hpaymt", "-c", scope, billed_to=billed)
    listed = alice(env, "patient", "pseudonyms")
    assert {row["pseudonym"] for row in listed} == {at_clinic, member}
    assert all(row["granted to"] == [who(env, "clinic")] for row in listed)
    rows = alice(env, "consent", "list")
    assert {row["patient"] for row in rows} == {at_clinic, member}
    trail = alice(env, "audit", "--live", "--format", "json")
    assert {e["args"]["patient"] for e in trail if "patient" in e["args"]} == {at_clinic, member}
    assert [e["block"] for e in trail] == sorted(e["block"] for e in trail)
    assert alice(env, "audit", "--format", "json") == trail  # the index answers the same


def test_a_pseudonym_appoints_a_guardian_by_signature_only(env, tmp_path):
    pseudonym = alice(env, "patient", "pseudonym", "lab")["pseudonym"]
    block = web3.eth.block_number
    unnamed = run_cli(env, "--pairwise", "--account", "alice", "consent", "guardian", "add", "relayer", check=False)
    assert unnamed.returncode != 0 and "--patient PSEUDONYM" in unnamed.stderr
    sent = run_cli(env, "--pairwise", "--account", "alice", "consent", "guardian", "add", "relayer",
                   "--patient", pseudonym, check=False)
    assert sent.returncode != 0 and "never sends a transaction" in sent.stderr and "--sign" in sent.stderr
    assert web3.eth.block_number == block
    signed = tmp_path / "appoint.json"
    alice(env, "consent", "guardian", "add", "relayer", "--patient", pseudonym, "--sign", "-o", str(signed))
    run_cli(env, "--account", "relayer", "consent", "relay", str(signed))
    registry = web3.eth.contract(address=json.loads(signed.read_text())["verifyingContract"],
                                 abi=[{"type": "function", "name": "isGuardian", "stateMutability": "view",
                                       "inputs": [{"name": "p", "type": "address"}, {"name": "g", "type": "address"}],
                                       "outputs": [{"name": "", "type": "bool"}]}])
    assert registry.functions.isGuardian(pseudonym, who(env, "relayer")).call()
    assert not registry.functions.isGuardian(who(env, "alice"), who(env, "relayer")).call()


def test_a_break_glass_reason_is_a_salted_commitment(env, tmp_path):
    """An observer who guesses UNCONSCIOUS cannot match the on-chain reason; the opening proves it."""
    from eth_utils import keccak

    from medledger.commitments import Opening, verify

    pseudonym = alice(env, "patient", "pseudonym", "lab")["pseudonym"]
    opening = tmp_path / "reason.json"
    opened = run_json(env, "--account", "lab", "emergency", "open", pseudonym, "--hours", "1",
                      "--reason", "unconscious", "--opening", str(opening))
    code = bytes.fromhex(opened["reason_commitment"].removeprefix("0x"))
    assert code != keccak(text="UNCONSCIOUS")
    data = json.loads(opening.read_text())
    assert data["document"]["reason"] == "UNCONSCIOUS" and oct(opening.stat().st_mode)[-3:] == "600"
    verify(code, Opening(bytes.fromhex(data["salt"][2:]), json.dumps(data["document"], separators=(",", ":"),
                                                                     sort_keys=True).encode()))
    again = run_cli(env, "--account", "lab", "emergency", "open", pseudonym, "--reason", "x", "--opening",
                    str(opening), check=False)
    assert again.returncode != 0 and "exists already" in again.stderr


def test_a_pseudonyms_grant_delivers_its_label_key_to_the_grantee(env, tmp_path):
    """`consent sign` seals the pseudonym's label key L_P to the grantee's published key and signs it; the relay
    files it in the vault, where only the grantee opens it, and it is the key the patient derives from her
    wallet. A relayer who swaps in a key of its own is refused in one line and nothing is sent."""
    from medledger.labels import LabelKeyStore, label_key, label_keys_dir

    pseudonym = alice(env, "patient", "pseudonym", "lab")["pseudonym"]
    out = tmp_path / "lab.json"
    signed = alice(env, "consent", "sign", "lab", "-p", "treat", "-c", "labs", "-o", str(out))
    assert signed["label_key"] is True and "label key is sealed" in signed["message"]
    data = json.loads(out.read_text())
    assert (data["labelKey"]["pseudonym"], data["labelKey"]["recipient"]) == (pseudonym, who(env, "lab"))
    identity = PatientIdentity.of(dev_signer(ACTORS["alice"]), web3.eth.chain_id)
    expected = label_key(identity.root, pseudonym)
    assert expected.key.hex() not in out.read_text()

    forged = dict(data, labelKey={**data["labelKey"], "recipient": who(env, "relayer")})
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    block = web3.eth.block_number
    refused = run_cli(env, "--account", "relayer", "consent", "relay", str(tmp_path / "forged.json"), check=False)
    assert refused.returncode != 0 and "not of the signer for the grantee" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert web3.eth.block_number == block

    relayed = run_json(env, "--account", "relayer", "consent", "relay", str(out))
    assert f"label key filed for {who(env, 'lab')}" in relayed["message"]
    store = LabelKeyStore(label_keys_dir(Path(env["MEDLEDGER_VAULT"])))
    assert store.open(pseudonym, who(env, "lab"), dev_signer(ACTORS["lab"]).private_key) == expected

    revoke = alice(env, "consent", "sign", "lab", "--revoke", "-o", str(tmp_path / "revoke.json"))
    assert revoke["label_key"] is False and "labelKey" not in json.loads((tmp_path / "revoke.json").read_text())
