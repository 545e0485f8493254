"""Envelope encryption for record versions: AES-256-GCM data keys wrapped with ECIES/secp256k1.

Every record version is sealed under its own random 256-bit data key. The ciphertext is bound to
the record's identity through AES-GCM associated data (see `associated_data`): moving a ciphertext
to another record id, version or patient makes it undecryptable. The data key is wrapped with
ECIES (eciespy, secp256k1, HKDF-SHA256 + AES-256-GCM) once per recipient: always the patient, plus
every grantee the patient has authorised for this record's data class.

The sealed `Envelope` serialises to deterministic bytes (`Envelope.to_bytes`); those bytes are
the vault blob and their keccak256 is the record version's on-chain ``contentHash``.

Consent revocation is forward-only: revoking a grantee means the *next* version is sealed without
a wrapped key for them (see `rewrap`). Versions they could already open stay openable by them:
a data key once disclosed cannot be taken back, and the on-chain anchor of an old version is
immutable. Never reuse a data key across versions; `seal` and `rewrap` always draw a fresh one.

Public keys come from two places: the raw 33/65-byte key an account published in the
CareRegistry (may be a dedicated encryption key, not the account's signing key), or the
account's own signing key recovered from its signature over `encryption_key_message`
(`verified_public_key` checks that it recovers to the claimed address).
"""
from __future__ import annotations

import functools
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import coincurve
import ecies
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak
from eth_keys import keys as eth_keys
from eth_utils import is_address, to_canonical_address, to_checksum_address

from medledger.errors import AccountError, DecryptionFailed

BytesLike = bytes | bytearray | str

AAD_DOMAIN = b"medledger/v1"
ENVELOPE_MAGIC = b"MLENV\x01"
NONCE_SIZE = 12
DATA_KEY_SIZE = 32
MAX_VERSION = 2**32 - 1
ENCRYPTION_KEY_MESSAGE = "MedLedger encryption key for {address}"

_HEAD = struct.Struct(">32sI20s12sH")  # record id, version, patient, nonce, recipient count
_KEY_HEAD = struct.Struct(">20sH")  # recipient address, wrapped-key length
_LEN = struct.Struct(">I")


# --------------------------------------------------------------------------- small helpers


def _to_bytes(value: BytesLike, what: str) -> bytes:
    if isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            return bytes.fromhex(text)
        except ValueError as exc:
            raise ValueError(f"{what}: not hex") from exc
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what}: expected bytes or hex str, got {type(value).__name__}")


@functools.lru_cache(maxsize=8192)
def _checksum(value: str | bytes) -> str | None:
    if isinstance(value, bytes):
        return to_checksum_address(value) if len(value) == 20 else None
    return to_checksum_address(value) if is_address(value) else None


def _address(value: str | bytes, what: str = "address") -> str:
    """Checksummed address (memoised: the same few addresses recur in every envelope)."""
    if isinstance(value, bytearray):
        value = bytes(value)
    checked = _checksum(value) if isinstance(value, (str, bytes)) else None
    if checked is None:
        raise ValueError(f"{what}: not an Ethereum address: {value!r}")
    return checked


@functools.lru_cache(maxsize=8192)
def _canonical(address: str) -> bytes:
    return to_canonical_address(address)


def _record_id(value: BytesLike) -> bytes:
    rid = _to_bytes(value, "record id")
    if len(rid) != 32:
        raise ValueError(f"record id must be 32 bytes, got {len(rid)}")
    return rid


def _version(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VERSION:
        raise ValueError(f"version must be a uint32, got {value!r}")
    return value


def associated_data(record_id: BytesLike, version: int, patient: str | bytes) -> bytes:
    """Canonical AES-GCM associated data of a record version (68 bytes):

    ``b"medledger/v1" || recordId (32) || version (uint32 big-endian) || patient address (20)``.
    """
    return (AAD_DOMAIN + _record_id(record_id) + _version(version).to_bytes(4, "big")
            + _canonical(_address(patient, "patient")))


# --------------------------------------------------------------------------- public keys


def normalize_public_key(key: BytesLike) -> bytes:
    """A secp256k1 public key as 65 uncompressed bytes (0x04 || X || Y).

    Accepts 33-byte compressed or 65-byte uncompressed keys (the CareRegistry formats) and the
    64-byte X || Y form eth_keys uses. Raises AccountError if the bytes are not a curve point.
    """
    try:
        raw = _to_bytes(key, "public key")
    except (TypeError, ValueError) as exc:
        raise AccountError(f"malformed public key: {exc}") from None
    if len(raw) == 64:
        raw = b"\x04" + raw
    if len(raw) not in (33, 65):
        raise AccountError(f"malformed public key: {len(raw)} bytes; expected 33, 64 or 65")
    try:
        return coincurve.PublicKey(raw).format(compressed=False)
    except ValueError as exc:
        raise AccountError(f"malformed public key: not a secp256k1 point ({exc})") from None


def compress_public_key(key: BytesLike) -> bytes:
    """The 33-byte compressed form of a secp256k1 public key (what to publish in the CareRegistry)."""
    return coincurve.PublicKey(normalize_public_key(key)).format(compressed=True)


def address_of_public_key(key: BytesLike) -> str:
    """The checksummed Ethereum address controlled by a secp256k1 public key."""
    return to_checksum_address(keccak(normalize_public_key(key)[1:])[-20:])


def public_key_of(private_key: BytesLike) -> bytes:
    """The 65-byte uncompressed public key of a 32-byte secp256k1 private key."""
    return coincurve.PrivateKey(_private_key_bytes(private_key)).public_key.format(compressed=False)


def encryption_key_message(address: str) -> str:
    """The fixed text an account signs (EIP-191 personal_sign) to disclose its public key."""
    return ENCRYPTION_KEY_MESSAGE.format(address=_address(address))


def sign_encryption_key_message(private_key: BytesLike) -> bytes:
    """The 65-byte EIP-191 signature of `encryption_key_message` by ``private_key``'s account."""
    account = Account.from_key(_private_key_bytes(private_key))
    signed = account.sign_message(encode_defunct(text=encryption_key_message(account.address)))
    return bytes(signed.signature)


def public_key_from_signature(message: str | bytes, signature: BytesLike) -> bytes:
    """Recover the signer's 65-byte uncompressed public key from an EIP-191 ``personal_sign``
    signature (r || s || v, v in {0, 1, 27, 28}) over ``message``."""
    sig = _to_bytes(signature, "signature")
    if len(sig) != 65:
        raise AccountError(f"malformed signature: {len(sig)} bytes; expected 65")
    v = sig[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise AccountError(f"malformed signature: v={sig[64]}")
    signable = encode_defunct(text=message) if isinstance(message, str) else encode_defunct(primitive=message)
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)  # EIP-191
    try:
        public = eth_keys.Signature(sig[:64] + bytes([v])).recover_public_key_from_msg_hash(digest)
    except Exception as exc:  # eth_keys raises BadSignature / ValidationError subclasses
        raise AccountError(f"cannot recover a public key from the signature: {exc}") from None
    return b"\x04" + public.to_bytes()


def verified_public_key(address: str, signature: BytesLike, message: str | None = None) -> bytes:
    """The public key of ``address`` recovered from its signature over ``message`` (default
    `encryption_key_message(address)`); raises AccountError unless it recovers to ``address``."""
    claimed = _address(address)
    public = public_key_from_signature(message if message is not None else encryption_key_message(claimed),
                                       signature)
    signer = address_of_public_key(public)
    if signer != claimed:
        raise AccountError(f"signature recovers to {signer}, not to the claimed account {claimed}")
    return public


def _private_key_bytes(private_key: BytesLike) -> bytes:
    try:
        raw = _to_bytes(private_key, "private key")
    except (TypeError, ValueError) as exc:
        raise AccountError(f"malformed private key: {exc}") from None
    if len(raw) != 32:
        raise AccountError(f"malformed private key: {len(raw)} bytes; expected 32")
    return raw


# --------------------------------------------------------------------------- envelope


@dataclass(frozen=True)
class Envelope:
    """One sealed record version: AES-256-GCM ciphertext plus the data key wrapped per recipient.

    ``wrapped_keys`` maps checksummed addresses to ECIES ciphertexts of the data key; it is
    stored read-only and sorted by address so that `to_bytes` is deterministic.

    Byte layout of `to_bytes` (all integers big-endian)::

        "MLENV" 0x01 | recordId 32 | version u32 | patient 20 | nonce 12 | n u16
        | n x (address 20 | len u16 | wrapped key)   (ascending by address)
        | len u32 | ciphertext (includes the 16-byte GCM tag)
    """

    record_id: bytes
    version: int
    patient: str
    nonce: bytes
    ciphertext: bytes
    wrapped_keys: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "record_id", _record_id(self.record_id))
        object.__setattr__(self, "version", _version(self.version))
        object.__setattr__(self, "patient", _address(self.patient, "patient"))
        if len(self.nonce) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
        if len(self.ciphertext) < 16:
            raise ValueError("ciphertext is shorter than the GCM tag")
        keys = {_address(a, "recipient"): bytes(w) for a, w in self.wrapped_keys.items()}
        if len(keys) > 0xFFFF or any(len(w) > 0xFFFF for w in keys.values()):
            raise ValueError("too many recipients or wrapped key too long")
        ordered = dict(sorted(keys.items(), key=lambda kv: _canonical(kv[0])))
        object.__setattr__(self, "wrapped_keys", MappingProxyType(ordered))

    @property
    def aad(self) -> bytes:
        """The associated data this envelope's ciphertext is bound to."""
        return associated_data(self.record_id, self.version, self.patient)

    @property
    def recipients(self) -> tuple[str, ...]:
        """Addresses that can open this version, ascending."""
        return tuple(self.wrapped_keys)

    def to_bytes(self) -> bytes:
        """Deterministic serialisation (the vault blob)."""
        parts = [ENVELOPE_MAGIC, _HEAD.pack(self.record_id, self.version, _canonical(self.patient),
                                            self.nonce, len(self.wrapped_keys))]
        for address, wrapped in self.wrapped_keys.items():
            parts.append(_KEY_HEAD.pack(_canonical(address), len(wrapped)))
            parts.append(wrapped)
        parts.append(_LEN.pack(len(self.ciphertext)))
        parts.append(self.ciphertext)
        return b"".join(parts)

    @property
    def content_hash(self) -> bytes:
        """keccak256 of `to_bytes`: the record version's on-chain contentHash."""
        return keccak(self.to_bytes())

    @classmethod
    def from_bytes(cls, blob: bytes) -> Envelope:
        """Parse `to_bytes` output; raises DecryptionFailed on anything malformed."""
        try:
            view = memoryview(blob)
            if bytes(view[:len(ENVELOPE_MAGIC)]) != ENVELOPE_MAGIC:
                raise ValueError("bad magic")
            pos = len(ENVELOPE_MAGIC)
            record_id, version, patient, nonce, count = _HEAD.unpack_from(view, pos)
            pos += _HEAD.size
            keys: dict[str, bytes] = {}
            previous = b""
            for _ in range(count):
                address, length = _KEY_HEAD.unpack_from(view, pos)
                pos += _KEY_HEAD.size
                if address <= previous:
                    raise ValueError("recipients not strictly ascending")
                previous = address
                wrapped = bytes(view[pos:pos + length])
                if len(wrapped) != length:
                    raise ValueError("truncated wrapped key")
                keys[_address(address)] = wrapped
                pos += length
            (length,) = _LEN.unpack_from(view, pos)
            pos += _LEN.size
            ciphertext = bytes(view[pos:pos + length])
            if len(ciphertext) != length or pos + length != len(view):
                raise ValueError("ciphertext length mismatch")
            return cls(record_id=record_id, version=version, patient=_address(patient),
                       nonce=nonce, ciphertext=ciphertext, wrapped_keys=keys)
        except (ValueError, struct.error) as exc:
            raise DecryptionFailed(f"malformed envelope: {exc}") from None


def seal(
    plaintext: bytes,
    record_id: BytesLike,
    version: int,
    patient: str,
    recipients: Mapping[str, BytesLike],
) -> Envelope:
    """Encrypt ``plaintext`` under a fresh data key bound to (record_id, version, patient) and
    wrap that key to every recipient. ``recipients`` maps address -> public key (33/64/65 bytes
    or hex) and must include the patient: a patient can always open their own records."""
    patient = _address(patient, "patient")
    keys = {_address(a, "recipient"): normalize_public_key(k) for a, k in recipients.items()}
    if patient not in keys:
        raise AccountError(
            f"no encryption key for the patient {patient}: every version is wrapped to its patient")
    aad = associated_data(record_id, version, patient)
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_SIZE)
    ciphertext = AESGCM(data_key).encrypt(nonce, bytes(plaintext), aad)
    wrapped = {address: ecies.encrypt(public, data_key) for address, public in keys.items()}
    return Envelope(record_id=_record_id(record_id), version=version, patient=patient, nonce=nonce,
                    ciphertext=ciphertext, wrapped_keys=wrapped)


def unwrap_data_key(envelope: Envelope, address: str, private_key: BytesLike) -> bytes:
    """The envelope's data key, unwrapped with ``address``'s private (encryption) key."""
    who = _address(address, "address")
    wrapped = envelope.wrapped_keys.get(who)
    if wrapped is None:
        raise DecryptionFailed(
            f"record 0x{envelope.record_id.hex()} v{envelope.version} is not wrapped to {who}")
    try:
        data_key = ecies.decrypt(_private_key_bytes(private_key), wrapped)
    except AccountError:
        raise
    except Exception:  # wrong key: ECIES's inner AES-GCM tag fails (InvalidTag / ValueError)
        raise DecryptionFailed(
            f"cannot unwrap the data key of record 0x{envelope.record_id.hex()} v{envelope.version} "
            f"for {who}: wrong private key or altered wrapped key") from None
    if len(data_key) != DATA_KEY_SIZE:
        raise DecryptionFailed("unwrapped data key has the wrong length")
    return data_key


def open_envelope(envelope: Envelope, address: str, private_key: BytesLike) -> bytes:
    """Decrypt ``envelope`` as ``address``. Raises DecryptionFailed if the address has no wrapped
    key, the private key is wrong, or the ciphertext / its bound record id, version or patient
    were altered."""
    data_key = unwrap_data_key(envelope, address, private_key)
    try:
        return AESGCM(data_key).decrypt(envelope.nonce, envelope.ciphertext, envelope.aad)
    except InvalidTag:
        raise DecryptionFailed(
            f"record 0x{envelope.record_id.hex()} v{envelope.version}: ciphertext or its associated data "
            "(record id, version, patient) was altered") from None


def rewrap(
    envelope: Envelope,
    address: str,
    private_key: BytesLike,
    version: int,
    recipients: Mapping[str, BytesLike],
) -> Envelope:
    """Re-seal an envelope's plaintext as a new ``version`` for a new recipient set.

    The opener (normally the patient, or an author who holds a wrapped key) decrypts the current
    version; the plaintext is sealed again under a *fresh* data key with the new version in the
    associated data. This is how consent changes reach the data:

    * granting: add the grantee to ``recipients`` of the new version;
    * revoking: leave the grantee out. They keep whatever earlier versions they could already open
      (a disclosed key cannot be recalled) but cannot open this or any later version.

    The new version's bytes differ, so it is anchored on chain as a new version of the same record.
    """
    new_version = _version(version)
    if new_version <= envelope.version:
        raise ValueError(f"new version {new_version} must be greater than {envelope.version}")
    plaintext = open_envelope(envelope, address, private_key)
    return seal(plaintext, envelope.record_id, new_version, envelope.patient, recipients)
