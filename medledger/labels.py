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
from collections.abc import Iterable
from dataclasses import dataclass, field

import ecies
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_utils import is_address, to_canonical_address, to_checksum_address

from .crypto import normalize_public_key
from .errors import DecryptionFailed, LabelKeyError
from .scopes import DataClass

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

    def seal(self, recipient_public_key: bytes | str) -> SealedLabelKey:
        """This key wrapped (ECIES/secp256k1) for the holder of ``recipient_public_key``, e.g. a grantee's
        CareRegistry encryption key. The plaintext names the pseudonym, so a key moved to another
        pseudonym's consent is refused when opened."""
        public = normalize_public_key(recipient_public_key)
        plain = _SEALED_MAGIC + to_canonical_address(self.pseudonym) + self.key
        return SealedLabelKey(self.pseudonym, ecies.encrypt(public, plain))


def label_key(root: bytes, pseudonym: str) -> LabelKey:
    """``L_P`` of pseudonym address ``pseudonym`` from the patient's root secret (module docstring)."""
    if len(root) < 32:
        raise LabelKeyError("a label-key root secret must have at least 32 bytes")
    address = _address(pseudonym, "pseudonym")
    okm = HKDF(algorithm=hashes.SHA256(), length=LABEL_KEY_SIZE, salt=LABEL_SALT,
               info=to_canonical_address(address)).derive(root)
    return LabelKey(address, okm)


@dataclass(frozen=True)
class SealedLabelKey:
    """A label key sealed to one recipient: what a signed consent file carries (``label_key`` entry)."""

    pseudonym: str
    ciphertext: bytes = field(repr=False)

    def to_json(self) -> dict[str, str]:
        return {"pseudonym": self.pseudonym, "sealed": "0x" + self.ciphertext.hex()}

    @classmethod
    def from_json(cls, data: object) -> SealedLabelKey:
        if not (isinstance(data, dict) and isinstance(data.get("pseudonym"), str)
                and isinstance(data.get("sealed"), str)):
            raise LabelKeyError("a sealed label key is an object with 'pseudonym' and 'sealed' (hex)")
        try:
            ciphertext = bytes.fromhex(data["sealed"].removeprefix("0x"))
        except ValueError:
            raise LabelKeyError("the sealed label key is not hex") from None
        return cls(_address(data["pseudonym"], "pseudonym"), ciphertext)

    def open(self, private_key: bytes) -> LabelKey:
        """The label key, opened with the recipient's encryption private key. DecryptionFailed if it was
        sealed to another key or altered; LabelKeyError if it names another pseudonym than it is filed under."""
        try:
            plain = ecies.decrypt(private_key, self.ciphertext)
        except Exception:  # eciespy raises ValueError or cryptography's InvalidTag
            raise DecryptionFailed(f"the label key of {self.pseudonym} was not sealed to this key, "
                                   "or it was altered") from None
        if len(plain) != len(_SEALED_MAGIC) + 20 + LABEL_KEY_SIZE or not plain.startswith(_SEALED_MAGIC):
            raise LabelKeyError(f"the sealed label key of {self.pseudonym} is not a MedLedger label key")
        named = to_checksum_address(plain[len(_SEALED_MAGIC):len(_SEALED_MAGIC) + 20])
        if named != self.pseudonym:
            raise LabelKeyError(f"the sealed label key is {named}'s, not {self.pseudonym}'s")
        return LabelKey(named, plain[-LABEL_KEY_SIZE:])
