"""Privacy building blocks (issue #14): pairwise pseudonyms and salted commitments."""
import re

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import keccak

from medledger.accounts import LocalSigner
from medledger.commitments import (
    commit,
    control_key,
    keyed_control_number,
    open_file,
    random_control_number,
    salted_file,
    sidecar_path,
    verify,
)
from medledger.crypto import public_key_of
from medledger.errors import AccountError, CommitmentMismatch
from medledger.pseudonyms import ROOT_MESSAGE, Relationship, derive, pseudonyms_of, root_secret
from medledger.testing import dev_account

CLINIC, LAB, PAYER = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20


def test_pseudonyms_are_per_relationship_deterministic_and_recoverable():
    root = root_secret(LocalSigner(dev_account(6)))
    clinic = derive(root, 1337, Relationship.PROVIDER, CLINIC)
    assert clinic.address == derive(root, 1337, Relationship.PROVIDER, CLINIC).address   # recoverable
    others = [derive(root, 1337, Relationship.PROVIDER, LAB), derive(root, 1337, Relationship.INSURER, PAYER),
              derive(root, 1337, Relationship.INSURER, CLINIC), derive(root, 11155111, Relationship.PROVIDER, CLINIC),
              derive(root, 1337, Relationship.PROVIDER, CLINIC, index=1)]
    addresses = {p.address for p in [clinic, *others]} | {dev_account(6).address}
    assert len(addresses) == 7   # kind, counterparty, chain and index each give another key
    assert derive(root_secret(LocalSigner(dev_account(7))), 1337, Relationship.PROVIDER, CLINIC).address \
        != clinic.address
    listed = pseudonyms_of(root, 1337, [(Relationship.PROVIDER, CLINIC), (Relationship.INSURER, PAYER)], indexes=2)
    assert [p.address for p in listed][0] == clinic.address and len(listed) == 4


def test_a_wallet_that_cannot_export_its_key_derives_from_a_deterministic_signature():
    class Wallet:  # signs like a hardware wallet would: no key leaves it
        def __init__(self, account):
            self._account, self.address = account, account.address

        def sign_typed_data(self, w3, typed_data):
            return bytes(self._account.sign_message(encode_typed_data(full_message=typed_data)).signature)

    wallet = Wallet(dev_account(6))
    assert root_secret(wallet) == root_secret(wallet)  # RFC 6979: same wallet, same pseudonyms
    assert derive(root_secret(wallet), 1, Relationship.PROVIDER, CLINIC).address \
        != derive(root_secret(LocalSigner(dev_account(6))), 1, Relationship.PROVIDER, CLINIC).address
    assert ROOT_MESSAGE["primaryType"] == "PseudonymRoot"
    with pytest.raises(AccountError):
        derive(b"short", 1, Relationship.PROVIDER, CLINIC)


def test_pseudonym_keys_sign_for_their_own_address():
    p = derive(bytes(32) + b"\x01", 1337, Relationship.PROVIDER, CLINIC)
    message = encode_defunct(text="consent")
    assert Account.recover_message(message, signature=p.account.sign_message(message).signature) == p.address


def test_salted_commitments_cannot_be_matched_without_the_salt():
    claim = {"resourceType": "Claim", "total": {"value": 1240.5, "currency": "USD"}, "status": "active"}
    opening = commit(claim)
    assert len(opening.salt) == 32 and opening.commitment == keccak(opening.salt + opening.canonical)
    assert opening.commitment != keccak(opening.canonical)            # a copy of the Claim alone finds nothing
    assert commit(claim).commitment != opening.commitment              # fresh salt each time
    assert commit({"status": "active", "total": {"currency": "USD", "value": 1240.5}, "resourceType": "Claim"},
                  opening.salt).commitment == opening.commitment       # canonical: key order does not matter
    verify(opening.commitment, opening)
    tampered = commit({**claim, "status": "cancelled"}, opening.salt)
    with pytest.raises(CommitmentMismatch):
        verify(opening.commitment, tampered)
    with pytest.raises(CommitmentMismatch):
        commit(claim, b"\x00" * 16)


def test_control_numbers_are_random_or_keyed():
    assert random_control_number() != random_control_number()
    key = b"\x07" * 32
    assert keyed_control_number(key, "RIV-0001") == keyed_control_number(key, "RIV-0001")
    assert keyed_control_number(key, "RIV-0001") != keccak(text="RIV-0001")
    assert keyed_control_number(b"\x08" * 32, "RIV-0001") != keyed_control_number(key, "RIV-0001")


def test_the_control_number_key_is_shared_by_provider_and_insurer_only():
    provider, insurer, third = (dev_account(i) for i in (12, 14, 11))
    pub = {a.address: public_key_of(bytes(a.key)) for a in (provider, insurer, third)}
    shared = control_key(bytes(provider.key), pub[insurer.address])
    assert shared == control_key(bytes(insurer.key), pub[provider.address])          # ECDH: both sides agree
    assert control_key(bytes(third.key), pub[provider.address]) != shared             # a third party does not
    assert control_key(bytes(third.key), pub[insurer.address]) != shared
    with pytest.raises(AccountError, match="malformed public key"):
        control_key(bytes(provider.key), b"\x02" + b"\x00" * 32)                      # not a curve point


def test_a_file_commitment_is_salted_and_its_sidecar_makes_it_idempotent(tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text('{"plan": "gold",  "deductible": 500}')
    first, second = salted_file(policy), salted_file(policy)
    assert first.commitment != second.commitment                      # no sidecar yet: fresh salt each time
    assert first.commitment != keccak(policy.read_bytes())              # the old plain hash, of the raw bytes
    assert first.commitment != keccak(b'{"deductible":500,"plan":"gold"}')  # nor of the canonical bytes
    assert first.commitment == keccak(first.opening.salt + b'{"deductible":500,"plan":"gold"}')
    assert not sidecar_path(policy).exists()                            # nothing written before `save`
    assert first.save(tx="0x01") == sidecar_path(policy) == tmp_path / "policy.json.salt.json"
    policy.write_text('{"deductible": 500, "plan": "gold"}')            # reformatted: same canonical document
    again = salted_file(policy)
    assert again.commitment == first.commitment                        # the sidecar is reused: idempotent
    verify(first.commitment, open_file(policy).opening)                # file + sidecar open the value

    letter = tmp_path / "decision.pdf"                                  # not JSON: the raw bytes, salted
    letter.write_bytes(b"%PDF-1.4 \xff\x00 award 250")
    committed = salted_file(letter)
    assert committed.commitment == keccak(committed.opening.salt + letter.read_bytes())


@pytest.mark.parametrize("sidecar,needle", [
    ("not json", "not a MedLedger salt file"),
    ('{"salt": "0x1234", "resourceKeccak": "0x00"}', "not a MedLedger salt file (a 2-byte salt)"),
    ('{"salt": "0x' + "11" * 32 + '", "resourceKeccak": "0x' + "22" * 32 + '"}', "holds the salt of a different"),
])
def test_a_bad_sidecar_is_one_clear_refusal_and_is_left_alone(tmp_path, sidecar, needle):
    doc = tmp_path / "evidence.json"
    doc.write_text('{"note": "x-ray"}')
    sidecar_path(doc).write_text(sidecar)
    with pytest.raises(CommitmentMismatch, match=re.escape(needle)):
        salted_file(doc)
    assert sidecar_path(doc).read_text() == sidecar


def test_opening_a_file_needs_its_sidecar(tmp_path):
    doc = tmp_path / "claim.json"
    doc.write_text("{}")
    with pytest.raises(CommitmentMismatch, match="no salt file claim.json.salt.json beside it"):
        open_file(doc)
