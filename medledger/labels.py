"""Per-pseudonym class labels: data classes on chain that tell an observer nothing (issue #14 item 2).

A pairwise pseudonym ``P`` hides *whose* records and consents an observer reads, but a clear data-class
bit still says *what* they are about (mental health, substance use...). Here each pseudonym gets its own
label space. The patient derives a **label key** from her root secret (`medledger.pseudonyms.root_secret`):

    L_P = HKDF-SHA256(ikm = root, salt = "MedLedger labels v1", info = P's 20-byte address)

and from it a permutation ``π_P`` of the 11 class indexes. Class ``c`` of ``P`` is written on chain as
bit ``π_P(c)``: consent masks, record classes, ``AccessLogged`` and the coverage's auto-approval classes
all live in ``P``'s label space, so every contract check compares bits exactly as it did with classes.

- ``π_P`` is drawn by Fisher–Yates; the coin for position ``i`` is
  ``HMAC-SHA256(L_P, "class permutation" ‖ i ‖ counter)`` read as a 256-bit integer, reject-sampled below
  the largest multiple of ``i + 1`` so that every one of the 11! permutations is equally likely.
- Without ``L_P`` the label bits of a pseudonym are a uniformly random relabelling of its classes: an
  observer learns how many classes a consent or a visit holds, not which. Two pseudonyms of one patient
  have independent keys (HKDF is a PRF), so comparing their labels reveals nothing either.
- **Round-1 addresses** (a patient acting from her own wallet, not ``--pairwise``) keep the identity
  mapping (`Labels.identity`): round-1 mode already publishes who she is, and it publishes her classes
  too. docs/PRIVACY.md says so.

Who holds ``L_P``: the patient (derived, never stored) and the counterparties of ``P``'s relationship,
who receive it sealed to their CareRegistry encryption key inside the signed consent file
(`SealedLabelKey`, written by ``consent sign``). docs/PRIVACY.md, section 2, says why delivery and not ECDH.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ecies
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak
from eth_utils import is_address, to_canonical_address, to_checksum_address

from .accounts import Signer
from .crypto import normalize_public_key
from .errors import DecryptionFailed, LabelKeyError
from .scopes import DataClass
from .vault import atomic_write

LABEL_SALT = b"MedLedger labels v1"
PERMUTATION_TAG = b"class permutation"
LABEL_KEY_SIZE = 32
#: How many label bits a pseudonym has: one per data class.
CLASS_COUNT = len(DataClass)
#: Every label bit (the same bits as every class: a label mask is checked like a class mask on chain).
ALL_LABELS = (1 << CLASS_COUNT) - 1
_SEALED_MAGIC = b"MLLBL\x01"


def _address(value: str, what: str) -> str:
    if not is_address(value):
        raise LabelKeyError(f"{what} {value!r} is not an address")
    return to_checksum_address(value)


def _uniform_below(key: bytes, bound: int, position: int) -> int:
    """An integer uniform in 0..bound-1 from HMAC-SHA256(key, tag ‖ position ‖ counter): a 256-bit draw is
    rejected when it falls in the incomplete last block of ``bound`` values (odds below 2^-250 for
    ``bound`` <= 11), so no value is more likely than another."""
    limit = (1 << 256) - (1 << 256) % bound
    counter = 0
    while True:
        message = PERMUTATION_TAG + position.to_bytes(1, "big") + counter.to_bytes(4, "big")
        draw = int.from_bytes(hmac.new(key, message, hashlib.sha256).digest(), "big")
        if draw < limit:
            return draw % bound
        counter += 1


def permutation(key: bytes, size: int = CLASS_COUNT) -> tuple[int, ...]:
    """π as a tuple: ``π[c]`` is the label of class index ``c``. Fisher–Yates (Durstenfeld) from the
    highest position down, each swap partner drawn by `_uniform_below`."""
    if len(key) != LABEL_KEY_SIZE:
        raise LabelKeyError(f"a label key has {LABEL_KEY_SIZE} bytes, not {len(key)}")
    if not 1 <= size <= 255:
        raise LabelKeyError(f"a class permutation has 1..255 positions, not {size}")
    perm = list(range(size))
    for i in range(size - 1, 0, -1):
        j = _uniform_below(key, i + 1, i)
        perm[i], perm[j] = perm[j], perm[i]
    return tuple(perm)


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    inverse = [0] * len(perm)
    for c, label in enumerate(perm):
        inverse[label] = c
    return tuple(inverse)


def _remap(bits: int, table: tuple[int, ...], what: str) -> int:
    if not 0 <= bits <= ALL_LABELS:
        raise LabelKeyError(f"{what} {bits:#x} has bits outside the {CLASS_COUNT} data classes")
    return sum(1 << table[i] for i in range(CLASS_COUNT) if bits >> i & 1)


@dataclass(frozen=True)
class Labels:
    """One pseudonym's label space: ``to_label[c]`` is the on-chain bit of class ``c``, ``to_class`` its
    inverse. Built by `Labels.of` (a label key) or `Labels.identity` (round-1 addresses)."""

    pseudonym: str
    to_label: tuple[int, ...]
    to_class: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if sorted(self.to_label) != list(range(CLASS_COUNT)):
            raise LabelKeyError(f"a label table must be a permutation of 0..{CLASS_COUNT - 1}")
        object.__setattr__(self, "to_class", _inverse(self.to_label))

    @classmethod
    def of(cls, key: LabelKey) -> Labels:
        return cls(key.pseudonym, permutation(key.key))

    @classmethod
    def identity(cls, address: str) -> Labels:
        """The labels of a round-1 address: every class is its own bit (nothing hidden)."""
        return cls(_address(address, "address"), tuple(range(CLASS_COUNT)))

    @property
    def is_identity(self) -> bool:
        return self.to_label == tuple(range(CLASS_COUNT))

    def label(self, data_class: DataClass | int) -> int:
        """The on-chain bit index of ``data_class``."""
        return self.to_label[DataClass(data_class)]

    def data_class(self, label: int) -> DataClass:
        """The data class that on-chain bit ``label`` stands for."""
        if not 0 <= label < CLASS_COUNT:
            raise LabelKeyError(f"label {label} is outside 0..{CLASS_COUNT - 1}")
        return DataClass(self.to_class[label])

    def mask(self, class_mask: int) -> int:
        """A data-class mask as the on-chain label mask of this pseudonym."""
        return _remap(class_mask, self.to_label, "data-class mask")

    def unmask(self, label_mask: int) -> int:
        """An on-chain label mask of this pseudonym as the data-class mask it stands for."""
        return _remap(label_mask, self.to_class, "label mask")

    def labels_of(self, classes: Iterable[DataClass]) -> int:
        """The label mask of a set of classes."""
        return sum(1 << self.label(c) for c in set(classes))


@dataclass(frozen=True)
class LabelKey:
    """``L_P`` for one pseudonym address. Its `repr` hides the key."""

    pseudonym: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pseudonym", _address(self.pseudonym, "pseudonym"))
        if len(self.key) != LABEL_KEY_SIZE:
            raise LabelKeyError(f"a label key has {LABEL_KEY_SIZE} bytes, not {len(self.key)}")

    @property
    def labels(self) -> Labels:
        return Labels.of(self)

    def seal(self, signer: Signer, recipient: str, recipient_public_key: bytes | str) -> SealedLabelKey:
        """This key wrapped (ECIES/secp256k1) for ``recipient``, the holder of ``recipient_public_key`` (its
        CareRegistry encryption key), and signed by the pseudonym itself (``signer``), so that nobody who
        handles the file on its way (a relayer) can swap in a key of its own. The plaintext names the
        pseudonym, so a key moved under another pseudonym is refused when opened."""
        if to_checksum_address(signer.address) != self.pseudonym:
            raise LabelKeyError(f"the label key of {self.pseudonym} is sealed by that pseudonym, "
                                f"not by {signer.address}")
        public = normalize_public_key(recipient_public_key)
        recipient = _address(recipient, "recipient")
        ciphertext = ecies.encrypt(public, _SEALED_MAGIC + to_canonical_address(self.pseudonym) + self.key)
        signature = signer.sign_message(None, _sealed_message(self.pseudonym, recipient, ciphertext))
        return SealedLabelKey(self.pseudonym, recipient, ciphertext, bytes(signature))


def label_key(root: bytes, pseudonym: str) -> LabelKey:
    """``L_P`` of pseudonym address ``pseudonym`` from the patient's root secret (module docstring)."""
    if len(root) < 32:
        raise LabelKeyError("a label-key root secret must have at least 32 bytes")
    address = _address(pseudonym, "pseudonym")
    okm = HKDF(algorithm=hashes.SHA256(), length=LABEL_KEY_SIZE, salt=LABEL_SALT,
               info=to_canonical_address(address)).derive(root)
    return LabelKey(address, okm)


def _sealed_message(pseudonym: str, recipient: str, ciphertext: bytes) -> bytes:
    """What the pseudonym signs (EIP-191) over a sealed label key: the tag, both addresses and the
    ciphertext's keccak256."""
    return (b"MedLedger label key v1\n" + to_canonical_address(pseudonym) + to_canonical_address(recipient)
            + keccak(ciphertext))


@dataclass(frozen=True)
class SealedLabelKey:
    """A label key sealed to one recipient and signed by its pseudonym: what a signed consent file carries
    (``labelKey``) and what `LabelKeyStore` keeps."""

    pseudonym: str
    recipient: str
    ciphertext: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    def to_json(self) -> dict[str, str]:
        return {"pseudonym": self.pseudonym, "recipient": self.recipient, "sealed": "0x" + self.ciphertext.hex(),
                "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, data: object) -> SealedLabelKey:
        fields = ("pseudonym", "recipient", "sealed", "signature")
        if not (isinstance(data, dict) and all(isinstance(data.get(f), str) for f in fields)):
            raise LabelKeyError("a sealed label key is an object with 'pseudonym', 'recipient', 'sealed' (hex) "
                                "and 'signature' (hex)")
        try:
            ciphertext, signature = (bytes.fromhex(data[f].removeprefix("0x")) for f in ("sealed", "signature"))
        except ValueError:
            raise LabelKeyError("the sealed label key or its signature is not hex") from None
        return cls(_address(data["pseudonym"], "pseudonym"), _address(data["recipient"], "recipient"),
                   ciphertext, signature)

    def verify(self) -> None:
        """LabelKeyError unless the pseudonym itself signed this sealed key for this recipient."""
        message = encode_defunct(primitive=_sealed_message(self.pseudonym, self.recipient, self.ciphertext))
        try:
            signer = Account.recover_message(message, signature=self.signature)
        except Exception:  # eth_account raises ValueError or BadSignature for malformed bytes
            signer = None
        if signer != self.pseudonym:
            raise LabelKeyError(f"the sealed label key of {self.pseudonym} for {self.recipient} is not signed by "
                                f"{self.pseudonym}: it was altered or swapped on its way")

    def open(self, private_key: bytes) -> LabelKey:
        """The label key, opened with the recipient's encryption private key after `verify`.
        DecryptionFailed if it was sealed to another key; LabelKeyError if it is not the pseudonym's own."""
        self.verify()
        try:
            plain = ecies.decrypt(private_key, self.ciphertext)
        except Exception:  # eciespy raises ValueError or cryptography's InvalidTag
            raise DecryptionFailed(f"the label key of {self.pseudonym} was not sealed to this key "
                                   f"(it is {self.recipient}'s)") from None
        if len(plain) != len(_SEALED_MAGIC) + 20 + LABEL_KEY_SIZE or not plain.startswith(_SEALED_MAGIC):
            raise LabelKeyError(f"the sealed label key of {self.pseudonym} is not a MedLedger label key")
        named = to_checksum_address(plain[len(_SEALED_MAGIC):len(_SEALED_MAGIC) + 20])
        if named != self.pseudonym:
            raise LabelKeyError(f"the sealed label key is {named}'s, not {self.pseudonym}'s")
        return LabelKey(named, plain[-LABEL_KEY_SIZE:])


def label_keys_dir(vault_dir: Path) -> Path:
    """Where the sealed label keys sit in a vault directory."""
    return Path(vault_dir) / "label-keys"


class LabelKeyStore:
    """The sealed label keys a party holds, one file per (pseudonym, recipient) under ``root``
    (``VAULT/label-keys/PSEUDONYM/RECIPIENT.json``). Every file is sealed to its recipient and signed by its
    pseudonym, so the store may sit in the shared vault: only the recipient opens it. ``consent relay``
    files the key a signed consent carries; the CLI and the gateway open it with the recipient's key."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, pseudonym: str, recipient: str) -> Path:
        return self.root / _address(pseudonym, "pseudonym") / f"{_address(recipient, 'recipient')}.json"

    def put(self, sealed: SealedLabelKey) -> Path:
        """Files ``sealed`` after `SealedLabelKey.verify` (a newer one for the same pair replaces it)."""
        sealed.verify()
        path = self.path(sealed.pseudonym, sealed.recipient)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(sealed.to_json(), indent=2).encode())
        return path

    def get(self, pseudonym: str, recipient: str) -> SealedLabelKey | None:
        path = self.path(pseudonym, recipient)
        try:
            return SealedLabelKey.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LabelKeyError(f"{path} is not a sealed label key ({exc})") from None

    def open(self, pseudonym: str, recipient: str, private_key: bytes) -> LabelKey | None:
        """``pseudonym``'s label key as ``recipient`` holds it, or None if it was never delivered."""
        sealed = self.get(pseudonym, recipient)
        return sealed.open(private_key) if sealed is not None else None


def seal_for_grantee(root: bytes, pseudonym: Signer, grantee: str, grantee_public_key: bytes | str) -> SealedLabelKey:
    """What ``consent sign`` puts in a pseudonym's signed grant: ``L_P`` of the signing pseudonym, derived
    from the patient's ``root``, sealed to the grantee's CareRegistry encryption key and signed by ``P``."""
    return label_key(root, pseudonym.address).seal(pseudonym, grantee, grantee_public_key)
