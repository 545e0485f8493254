"""Envelope encryption: AES-256-GCM per version, ECIES/secp256k1 key wrapping (pure Python)."""
import dataclasses
import os

import ecies
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.core import given  # pure Python: no chain to isolate (brownie wraps hypothesis.given)

from medledger import crypto
from medledger.errors import AccountError, DecryptionFailed

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _party(label):
    key = keccak(text=f"medledger test key {label}")
    account = Account.from_key(key)
    return account.address, key


PATIENT, PATIENT_KEY = _party("patient")
DOCTOR, DOCTOR_KEY = _party("doctor")
INSURER, INSURER_KEY = _party("insurer")
STRANGER, STRANGER_KEY = _party("stranger")
RID = keccak(text="record-1")
PLAINTEXT = b'{"resourceType":"Patient","name":[{"family":"Garcia"}]}'


def _recipients(*parties):
    return {address: crypto.compress_public_key(crypto.public_key_of(key)) for address, key in parties}


@pytest.fixture(scope="module")
def envelope():
    return crypto.seal(PLAINTEXT, RID, 1, PATIENT, _recipients((PATIENT, PATIENT_KEY), (DOCTOR, DOCTOR_KEY)))


def test_round_trip_for_patient_and_grantee(envelope):
    assert crypto.open_envelope(envelope, PATIENT, PATIENT_KEY) == PLAINTEXT
    assert crypto.open_envelope(envelope, DOCTOR, "0x" + DOCTOR_KEY.hex()) == PLAINTEXT
    assert envelope.recipients == tuple(sorted([PATIENT, DOCTOR], key=lambda a: bytes.fromhex(a[2:])))
    assert PLAINTEXT not in envelope.to_bytes()


def test_every_seal_uses_a_fresh_data_key_and_nonce():
    recipients = _recipients((PATIENT, PATIENT_KEY))
    a = crypto.seal(PLAINTEXT, RID, 1, PATIENT, recipients)
    b = crypto.seal(PLAINTEXT, RID, 1, PATIENT, recipients)
    assert a.nonce != b.nonce and a.ciphertext != b.ciphertext
    key_a = crypto.unwrap_data_key(a, PATIENT, PATIENT_KEY)
    key_b = crypto.unwrap_data_key(b, PATIENT, PATIENT_KEY)
    assert len(key_a) == 32 and key_a != key_b


def test_wrong_private_key_fails(envelope):
    with pytest.raises(DecryptionFailed, match="wrong private key"):
        crypto.open_envelope(envelope, DOCTOR, PATIENT_KEY)
    with pytest.raises(DecryptionFailed, match=f"not wrapped to {STRANGER}"):
        crypto.open_envelope(envelope, STRANGER, STRANGER_KEY)


@pytest.mark.parametrize("change", [
    {"record_id": keccak(text="record-2")},
    {"version": 2},
    {"patient": STRANGER},
])
def test_wrong_associated_data_fails(envelope, change):
    moved = dataclasses.replace(envelope, **change)
    with pytest.raises(DecryptionFailed, match="associated data"):
        crypto.open_envelope(moved, PATIENT, PATIENT_KEY)


@SETTINGS
@given(data=st.data())
def test_any_flipped_ciphertext_or_nonce_bit_fails(envelope, data):
    field = data.draw(st.sampled_from(["ciphertext", "nonce"]))
    raw = bytearray(getattr(envelope, field))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DecryptionFailed):
        crypto.open_envelope(dataclasses.replace(envelope, **{field: bytes(raw)}), PATIENT, PATIENT_KEY)


def test_altered_wrapped_key_fails(envelope):
    wrapped = dict(envelope.wrapped_keys)
    raw = bytearray(wrapped[DOCTOR])
    raw[-1] ^= 0x01
    wrapped[DOCTOR] = bytes(raw)
    with pytest.raises(DecryptionFailed):
        crypto.open_envelope(dataclasses.replace(envelope, wrapped_keys=wrapped), DOCTOR, DOCTOR_KEY)


@SETTINGS
@given(plaintext=st.binary(max_size=4096), version=st.integers(0, 2**32 - 1),
       record_id=st.binary(min_size=32, max_size=32))
def test_round_trip_property(plaintext, version, record_id):
    env = crypto.seal(plaintext, record_id, version, PATIENT, _recipients((PATIENT, PATIENT_KEY)))
    parsed = crypto.Envelope.from_bytes(env.to_bytes())
    assert parsed == env and parsed.to_bytes() == env.to_bytes()
    assert crypto.open_envelope(parsed, PATIENT, PATIENT_KEY) == plaintext


def test_associated_data_encoding():
    aad = crypto.associated_data(RID, 0x01020304, PATIENT)
    assert aad == b"medledger/v1" + RID + bytes([1, 2, 3, 4]) + bytes.fromhex(PATIENT[2:])
    assert len(aad) == 12 + 32 + 4 + 20
    with pytest.raises(ValueError):
        crypto.associated_data(RID[:31], 1, PATIENT)
    with pytest.raises(ValueError):
        crypto.associated_data(RID, 2**32, PATIENT)


def test_format_is_plain_eciespy_and_aes_gcm(envelope):
    """Anyone with eciespy + AES-GCM can open a blob: no MedLedger-specific crypto inside."""
    data_key = ecies.decrypt(DOCTOR_KEY, envelope.wrapped_keys[DOCTOR])
    aad = b"medledger/v1" + RID + (1).to_bytes(4, "big") + bytes.fromhex(PATIENT[2:])
    assert AESGCM(data_key).decrypt(envelope.nonce, envelope.ciphertext, aad) == PLAINTEXT


def test_serialisation_is_deterministic_and_strict(envelope):
    blob = envelope.to_bytes()
    assert blob.startswith(crypto.ENVELOPE_MAGIC)
    reversed_keys = dict(reversed(list(envelope.wrapped_keys.items())))
    reordered = dataclasses.replace(envelope, wrapped_keys=reversed_keys)
    assert reordered.to_bytes() == blob
    assert envelope.content_hash == keccak(blob)
    for bad in (blob[:-1], blob + b"\x00", b"XXXXXX" + blob[6:], blob[:40]):
        with pytest.raises(DecryptionFailed, match="malformed envelope"):
            crypto.Envelope.from_bytes(bad)


# --------------------------------------------------------------------------- public keys


def test_public_key_forms():
    uncompressed = crypto.public_key_of(DOCTOR_KEY)
    compressed = crypto.compress_public_key(uncompressed)
    assert len(uncompressed) == 65 and uncompressed[0] == 4 and len(compressed) == 33
    for form in (uncompressed, compressed, uncompressed[1:], "0x" + compressed.hex()):
        assert crypto.normalize_public_key(form) == uncompressed
        assert crypto.address_of_public_key(form) == DOCTOR
    with pytest.raises(AccountError, match="33, 64 or 65"):
        crypto.normalize_public_key(b"\x02" + bytes(31))
    with pytest.raises(AccountError, match="secp256k1 point"):
        crypto.normalize_public_key(b"\x02" + b"\xff" * 32)
    with pytest.raises(AccountError):
        crypto.seal(PLAINTEXT, RID, 1, PATIENT, {PATIENT: b"\x04" + bytes(64)})


def test_public_key_from_signature_and_account_check():
    signature = crypto.sign_encryption_key_message(INSURER_KEY)
    message = crypto.encryption_key_message(INSURER.lower())
    assert message == f"MedLedger encryption key for {INSURER}"
    # the same signature eth_account / wallets produce for personal_sign
    expected = Account.sign_message(encode_defunct(text=message), INSURER_KEY).signature
    assert signature == bytes(expected)
    public = crypto.public_key_from_signature(message, signature)
    assert public == crypto.public_key_of(INSURER_KEY)
    assert crypto.verified_public_key(INSURER, signature) == public
    with pytest.raises(AccountError, match=f"not to the claimed account {DOCTOR}"):
        crypto.verified_public_key(DOCTOR, signature)
    # a wallet's v in {0, 1} works as well as {27, 28}
    assert crypto.public_key_from_signature(message, signature[:64] + bytes([signature[64] - 27])) == public
    with pytest.raises(AccountError, match="65"):
        crypto.public_key_from_signature(message, signature[:64])


def test_seal_to_a_key_recovered_from_a_signature():
    public = crypto.verified_public_key(INSURER, crypto.sign_encryption_key_message(INSURER_KEY))
    recipients = {PATIENT: crypto.public_key_of(PATIENT_KEY), INSURER: public}
    env = crypto.seal(PLAINTEXT, RID, 3, PATIENT, recipients)
    assert crypto.open_envelope(env, INSURER, INSURER_KEY) == PLAINTEXT


def test_dedicated_encryption_key_need_not_be_the_signing_key():
    """CareRegistry lets an account publish any secp256k1 key; wrapping does not assume it is
    the account's signing key."""
    enc_key = os.urandom(32)
    env = crypto.seal(PLAINTEXT, RID, 1, PATIENT,
                      {PATIENT: crypto.public_key_of(PATIENT_KEY), DOCTOR: crypto.public_key_of(enc_key)})
    assert crypto.open_envelope(env, DOCTOR, enc_key) == PLAINTEXT
    with pytest.raises(DecryptionFailed):
        crypto.open_envelope(env, DOCTOR, DOCTOR_KEY)


def test_patient_must_be_a_recipient():
    with pytest.raises(AccountError, match="patient"):
        crypto.seal(PLAINTEXT, RID, 1, PATIENT, _recipients((DOCTOR, DOCTOR_KEY)))


# --------------------------------------------------------------------------- rewrap / revocation


def test_rewrap_new_version_drops_revoked_grantee(envelope):
    new_recipients = _recipients((PATIENT, PATIENT_KEY), (INSURER, INSURER_KEY))
    v2 = crypto.rewrap(envelope, PATIENT, PATIENT_KEY, 2, new_recipients)
    assert v2.version == 2 and v2.record_id == envelope.record_id
    old_key = crypto.unwrap_data_key(envelope, PATIENT, PATIENT_KEY)
    assert crypto.unwrap_data_key(v2, PATIENT, PATIENT_KEY) != old_key  # fresh data key
    assert crypto.open_envelope(v2, INSURER, INSURER_KEY) == PLAINTEXT
    with pytest.raises(DecryptionFailed, match="not wrapped"):
        crypto.open_envelope(v2, DOCTOR, DOCTOR_KEY)  # revoked: no key in later versions
    assert crypto.open_envelope(envelope, DOCTOR, DOCTOR_KEY) == PLAINTEXT  # earlier version unchanged
    assert v2.content_hash != envelope.content_hash
    with pytest.raises(ValueError, match="greater"):
        crypto.rewrap(v2, PATIENT, PATIENT_KEY, 2, _recipients((PATIENT, PATIENT_KEY)))
    with pytest.raises(DecryptionFailed):
        crypto.rewrap(v2, DOCTOR, DOCTOR_KEY, 3, _recipients((PATIENT, PATIENT_KEY)))
