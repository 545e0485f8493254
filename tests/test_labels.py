"""Per-pseudonym class labels (issue #14 item 2): the label key, the class permutation, masks both ways,
and the sealed delivery of a label key to a counterparty. Pure SDK: no chain."""
import itertools
import math
from collections import Counter

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from medledger.accounts import LocalSigner
from medledger.crypto import public_key_of
from medledger.errors import DecryptionFailed, LabelKeyError
from medledger.labels import (
    ALL_LABELS,
    CLASS_COUNT,
    LabelKey,
    LabelKeyStore,
    Labels,
    SealedLabelKey,
    _uniform_below,
    label_key,
    permutation,
)
from medledger.pseudonyms import Relationship, derive, root_secret
from medledger.scopes import SENSITIVE, DataClass
from medledger.testing import dev_account

CLINIC, PAYER = "0x" + "aa" * 20, "0x" + "cc" * 20
ROOT = root_secret(LocalSigner(dev_account(6)))
keys32 = st.binary(min_size=32, max_size=32)
masks = st.integers(min_value=0, max_value=ALL_LABELS)


@settings(max_examples=300, deadline=None)
@given(keys32)
def test_the_permutation_is_a_deterministic_bijection_of_the_class_indexes(key):
    perm = permutation(key)
    assert sorted(perm) == list(range(CLASS_COUNT)) == sorted(range(len(DataClass)))
    assert permutation(key) == perm


@settings(max_examples=300, deadline=None)
@given(keys32, masks)
def test_mask_and_unmask_are_inverse_and_keep_the_number_of_classes(key, class_mask):
    labels = LabelKey(CLINIC, key).labels
    label_mask = labels.mask(class_mask)
    assert labels.unmask(label_mask) == class_mask
    assert labels.mask(labels.unmask(class_mask)) == class_mask
    assert bin(label_mask).count("1") == bin(class_mask).count("1")   # the count is all an observer learns
    for c in DataClass:
        assert labels.data_class(labels.label(c)) is c
        assert labels.mask(1 << c) == 1 << labels.label(c)
    assert labels.labels_of(c for c in DataClass if class_mask >> c & 1) == label_mask


def test_each_pseudonym_has_its_own_key_and_the_patient_recovers_it():
    clinic = derive(ROOT, 1337, Relationship.PROVIDER, CLINIC)
    payer = derive(ROOT, 1337, Relationship.INSURER, PAYER)
    other_patient = derive(root_secret(LocalSigner(dev_account(7))), 1337, Relationship.PROVIDER, CLINIC)
    k_clinic, k_payer = label_key(ROOT, clinic.address), label_key(ROOT, payer.address)
    assert label_key(ROOT, clinic.address) == k_clinic                      # recoverable from the root alone
    assert k_clinic.key != k_payer.key                                       # per pseudonym
    assert label_key(root_secret(LocalSigner(dev_account(7))), other_patient.address).key != k_clinic.key
    assert label_key(ROOT, clinic.address.lower()) == k_clinic               # the address, not its spelling
    assert k_clinic.key != clinic.account.key and k_clinic.key.hex() not in repr(k_clinic)


def test_a_thousand_pseudonyms_spread_every_class_over_every_label():
    """Over many pseudonyms each class lands on each label about equally often (an observer's prior is
    uniform); a chi-square bound at p < 1e-6 fails a skewed coin or a broken shuffle, not chance."""
    root = ROOT
    n = 1100
    tables = [label_key(root, derive(root, 1337, Relationship.PROVIDER, CLINIC, i).address).labels.to_label
              for i in range(n)]
    assert len(set(tables)) == n   # 11! permutations: no two pseudonyms share one here
    for c in (DataClass.MENTAL_HEALTH, DataClass.DEMOGRAPHICS):
        counts = Counter(t[c] for t in tables)
        expected = n / CLASS_COUNT
        chi2 = sum((counts[label] - expected) ** 2 / expected for label in range(CLASS_COUNT))
        assert chi2 < 51.2, (c.name, counts)   # chi-square, 10 degrees of freedom, p = 1e-6


def test_the_coin_is_unbiased_by_rejection_sampling():
    """`_uniform_below` rejects the top partial block: with a bound that does not divide 2^256 every draw
    it returns is below the bound, and a draw in the rejected block moves on to the next counter."""
    for bound in range(1, CLASS_COUNT + 1):
        assert all(0 <= _uniform_below(bytes([k]) * 32, bound, 0) < bound for k in range(64))
    # all 3! orders of 3 positions occur (Fisher–Yates reaches every permutation)
    seen = {permutation(bytes([k, j]) * 16, 3) for k, j in itertools.product(range(16), range(4))}
    assert len(seen) == math.factorial(3)


def test_round_one_addresses_keep_the_identity_mapping():
    labels = Labels.identity(CLINIC)
    assert labels.is_identity and all(labels.label(c) == c for c in DataClass)
    assert labels.mask(0b1010_0000_101) == 0b1010_0000_101
    assert not label_key(ROOT, CLINIC).labels.is_identity   # this key's table moves classes (1 in 11! would not)


def test_bad_masks_keys_and_labels_are_refused_in_one_line():
    labels = label_key(ROOT, CLINIC).labels
    with pytest.raises(LabelKeyError, match="bits outside the 11 data classes"):
        labels.mask(1 << CLASS_COUNT)
    with pytest.raises(LabelKeyError, match="label 11 is outside"):
        labels.data_class(11)
    with pytest.raises(LabelKeyError, match="32 bytes, not 31"):
        LabelKey(CLINIC, b"\x00" * 31)
    with pytest.raises(LabelKeyError, match="is not an address"):
        label_key(ROOT, "0x1234")
    with pytest.raises(LabelKeyError, match="at least 32 bytes"):
        label_key(b"short", CLINIC)
    with pytest.raises(LabelKeyError, match="permutation of 0..10"):
        Labels(CLINIC, (0,) * CLASS_COUNT)


def test_a_sealed_label_key_opens_only_for_its_recipient_and_its_pseudonym():
    grantee, stranger = dev_account(3), dev_account(4)
    pseudonym = derive(ROOT, 1337, Relationship.PROVIDER, CLINIC)
    key = label_key(ROOT, pseudonym.address)
    sealed = key.seal(pseudonym.signer, grantee.address, public_key_of(grantee.key))
    assert key.key not in sealed.ciphertext and key.key.hex() not in str(sealed.to_json())
    again = SealedLabelKey.from_json(sealed.to_json())
    assert again == sealed and again.open(bytes(grantee.key)) == key
    with pytest.raises(DecryptionFailed, match="not sealed to this key"):
        again.open(bytes(stranger.key))
    with pytest.raises(LabelKeyError, match="sealed by that pseudonym, not by"):   # only P seals L_P
        key.seal(LocalSigner(stranger), grantee.address, public_key_of(grantee.key))
    for bad in ({"pseudonym": CLINIC}, {**sealed.to_json(), "sealed": "0xzz"}, [],
                {**sealed.to_json(), "pseudonym": "x"}):
        with pytest.raises(LabelKeyError):
            SealedLabelKey.from_json(bad)


def test_a_relayer_cannot_swap_or_move_a_sealed_label_key():
    """The relayer of a signed consent file sees the sealed key on its way. A key of its own choosing,
    sealed to the grantee's public key, is refused: only the pseudonym signs its label key."""
    grantee, relayer = dev_account(3), dev_account(4)
    pseudonym = derive(ROOT, 1337, Relationship.PROVIDER, CLINIC)
    sealed = label_key(ROOT, pseudonym.address).seal(pseudonym.signer, grantee.address, public_key_of(grantee.key))
    forged_key = LabelKey(pseudonym.address, b"\x01" * 32)
    forged = SealedLabelKey(pseudonym.address, grantee.address,
                            forged_key.seal(LocalSigner(Account.from_key(pseudonym.account.key)), grantee.address,
                                            public_key_of(grantee.key)).ciphertext, sealed.signature)
    for tampered in (forged,                                                                # swapped key
                     SealedLabelKey(pseudonym.address, relayer.address, sealed.ciphertext, sealed.signature),
                     SealedLabelKey(CLINIC, grantee.address, sealed.ciphertext, sealed.signature),
                     SealedLabelKey(pseudonym.address, grantee.address, sealed.ciphertext, b"\x00" * 65)):
        with pytest.raises(LabelKeyError, match="not signed by"):
            tampered.open(bytes(grantee.key))


def test_the_store_files_sealed_keys_per_pseudonym_and_recipient(tmp_path):
    grantee = dev_account(3)
    store = LabelKeyStore(tmp_path / "label-keys")
    pseudonym = derive(ROOT, 1337, Relationship.INSURER, PAYER)
    key = label_key(ROOT, pseudonym.address)
    assert store.open(pseudonym.address, grantee.address, bytes(grantee.key)) is None   # never delivered
    path = store.put(key.seal(pseudonym.signer, grantee.address, public_key_of(grantee.key)))
    assert key.key.hex() not in path.read_text()                                         # sealed at rest
    assert store.open(pseudonym.address, grantee.address, bytes(grantee.key)) == key
    path.write_text("{not json")
    with pytest.raises(LabelKeyError, match="is not a sealed label key"):
        store.get(pseudonym.address, grantee.address)


def test_sensitive_classes_are_not_distinguishable_by_their_labels():
    """The sensitive classes (bits 8-10 in the clear) land on every label, including the low ones."""
    root = ROOT
    landed = {label_key(root, derive(root, 1, Relationship.INSURER, PAYER, i).address).labels.label(c)
              for i in range(200) for c in SENSITIVE}
    assert landed == set(range(CLASS_COUNT))
