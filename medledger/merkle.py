"""OpenZeppelin-compatible StandardMerkleTree (same roots, proofs and dump format as
``@openzeppelin/merkle-tree`` 1.0.x), tuned for record batches.

* leaf  = keccak256(keccak256(abi.encode(values)))  (double hashing: no second-preimage confusion
  between leaves and internal nodes; matches `MerkleProof.verify` usage in Solidity)
* node  = keccak256(sort(a, b)) (commutative, so proofs carry no left/right flags)
* leaves are sorted by hash (OZ's default ``sortLeaves: true``) and laid out as in OZ's
  ``makeMerkleTree``: a complete binary tree in an array, leaf i at ``len(tree) - 1 - i``,
  node i's children at 2i+1 and 2i+2, root at index 0.

Record batch leaves use the fixed encoding `RECORD_LEAF_TYPES` =
(recordId, contentHash, patient, version, dataClass, author). Static ABI types (bytesN, address,
uintN, intN, bool) are packed by hand into 32-byte words (no eth_abi per leaf); dynamic types fall
back to eth_abi. Verified against vectors generated with the npm package
(tests/vectors/oz_merkle_vectors.json).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

try:  # pycryptodome directly: the leanest keccak call available (eth_hash wraps the same code)
    from Crypto.Hash import keccak as _keccak_mod

    def keccak(data: bytes) -> bytes:
        """keccak256 of ``data``."""
        return _keccak_mod.new(data=data, digest_bits=256).digest()
except ImportError:  # pragma: no cover - eth_hash picks another backend
    from eth_hash.auto import keccak as _eth_keccak

    def keccak(data: bytes) -> bytes:
        """keccak256 of ``data``."""
        return _eth_keccak(data)


RECORD_LEAF_TYPES: tuple[str, ...] = ("bytes32", "bytes32", "address", "uint32", "uint8", "address")
DUMP_FORMAT = "standard-v1"

Node = bytes
Proof = list[bytes]
LeafValue = Sequence[Any]
Hexish = bytes | str

_ZERO12 = bytes(12)
_INTEGER_RE = re.compile(r"(u?)int(\d*)")  # group 1: "u" when unsigned; group 2: the bits (none: 256)
_BYTES_RE = re.compile(r"bytes(\d+)")


# --------------------------------------------------------------------------- ABI packing


def _hex_bytes(value: Hexish, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        return bytes.fromhex(value[2:])
    raise ValueError(f"{what}: expected bytes or 0x-hex, got {value!r}")


def _int_value(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected an integer, got a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):  # OZ dumps carry big numbers as decimal or 0x strings
        return int(value, 16) if value[:2] in ("0x", "0X") else int(value, 10)
    raise ValueError(f"{what}: expected an integer, got {value!r}")


def _word_encoder(abi_type: str) -> Callable[[Any], bytes] | None:
    """A function packing one value of a static ABI type into its 32-byte word, or None."""
    if abi_type == "address":
        def enc_address(v: Any) -> bytes:
            raw = _hex_bytes(v, "address")
            if len(raw) != 20:
                raise ValueError(f"address: expected 20 bytes, got {len(raw)}")
            return _ZERO12 + raw
        return enc_address
    if abi_type == "bool":
        def enc_bool(v: Any) -> bytes:
            if not isinstance(v, bool):
                raise ValueError(f"bool: expected True/False, got {v!r}")
            return bytes(31) + (b"\x01" if v else b"\x00")
        return enc_bool
    match = _BYTES_RE.fullmatch(abi_type)
    if match:
        size = int(match.group(1))
        if not 1 <= size <= 32:
            return None

        def enc_bytes(v: Any) -> bytes:
            raw = _hex_bytes(v, abi_type)
            if len(raw) != size:
                raise ValueError(f"{abi_type}: expected {size} bytes, got {len(raw)}")
            return raw + bytes(32 - size)
        return enc_bytes
    match = _INTEGER_RE.fullmatch(abi_type)
    if match:
        bits = int(match.group(2) or 256)
        if bits % 8 or not 8 <= bits <= 256:
            return None
        signed = not match.group(1)
        low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)

        def enc_integer(v: Any) -> bytes:
            n = _int_value(v, abi_type)
            if not low <= n < high:
                raise ValueError(f"{abi_type}: {n} out of range")
            return n.to_bytes(32, "big", signed=signed)
        return enc_integer
    return None


def _for_eth_abi(abi_type: str, value: Any) -> Any:
    """Convert OZ-style JSON values (numeric strings, 0x-hex bytes) to what eth_abi expects."""
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        return [_for_eth_abi(inner, v) for v in value]
    if isinstance(value, str):
        if abi_type.startswith(("uint", "int")):
            return _int_value(value, abi_type)
        if abi_type.startswith("bytes"):
            return _hex_bytes(value, abi_type)
        if abi_type == "address":
            return value.lower()
    return value


_ENCODER_CACHE: dict[tuple[str, ...], Callable[[LeafValue], bytes]] = {}


def abi_encoder(types: Sequence[str]) -> Callable[[LeafValue], bytes]:
    """A function computing ``abi.encode(types..., values...)``; hand-packed when every type is
    static, eth_abi otherwise."""
    key = tuple(types)
    cached = _ENCODER_CACHE.get(key)
    if cached is not None:
        return cached
    words = [_word_encoder(t) for t in key]
    if all(w is not None for w in words):
        encoders = tuple(words)
        count = len(encoders)

        def encode(values: LeafValue) -> bytes:
            if len(values) != count:
                raise ValueError(f"expected {count} values for {list(key)}, got {len(values)}")
            return b"".join([enc(v) for enc, v in zip(encoders, values, strict=True)])  # type: ignore[misc]
    else:
        from eth_abi import encode as abi_encode

        def encode(values: LeafValue) -> bytes:
            if len(values) != len(key):
                raise ValueError(f"expected {len(key)} values for {list(key)}, got {len(values)}")
            return abi_encode(list(key), [_for_eth_abi(t, v) for t, v in zip(key, values, strict=True)])
    _ENCODER_CACHE[key] = encode
    return encode


def leaf_hash(types: Sequence[str], values: LeafValue) -> bytes:
    """OZ standard leaf: keccak256(keccak256(abi.encode(values)))."""
    return keccak(keccak(abi_encoder(types)(values)))


def node_hash(a: bytes, b: bytes) -> bytes:
    """OZ standard node: keccak256 of the two children in ascending byte order."""
    return keccak(a + b if a <= b else b + a)


def process_proof(leaf: bytes, proof: Iterable[Hexish]) -> bytes:
    """The root a proof leads to from a leaf hash."""
    node = _node(leaf)
    for sibling in proof:
        s = _node(sibling)
        node = keccak(node + s if node <= s else s + node)
    return node


def verify(root: Hexish, leaf: LeafValue | Hexish, proof: Iterable[Hexish],
           leaf_encoding: Sequence[str] = RECORD_LEAF_TYPES) -> bool:
    """Whether ``proof`` proves ``leaf`` under ``root``. ``leaf`` is either a 32-byte leaf hash
    (bytes or 0x-hex) or a leaf value (a tuple/list, or a `RecordLeaf`) hashed with ``leaf_encoding``."""
    if isinstance(leaf, RecordLeaf):
        hashed = leaf.hash
    elif isinstance(leaf, (bytes, bytearray, str)):
        hashed = _node(leaf)
    else:
        hashed = leaf_hash(leaf_encoding, leaf)
    return process_proof(hashed, proof) == _node(root)


def _node(value: Hexish) -> bytes:
    raw = _hex_bytes(value, "merkle node")
    if len(raw) != 32:
        raise ValueError(f"merkle nodes are 32 bytes, got {len(raw)}")
    return raw


def _hex(node: bytes) -> str:
    return "0x" + node.hex()


# --------------------------------------------------------------------------- record leaves


@functools.lru_cache(maxsize=65536)
def _checksum(address: str) -> str:
    # A batch repeats a handful of patients and one author thousands of times: checksum each once.
    return to_checksum_address(address)


@dataclass(frozen=True)
class RecordLeaf:
    """One anchored record version in a batch: the fixed leaf (recordId, contentHash, patient,
    version, dataClass, author) of RecordRegistry's Merkle batches."""

    record_id: bytes
    content_hash: bytes
    patient: str
    version: int
    data_class: int
    author: str

    def __post_init__(self) -> None:
        if len(self.record_id) != 32 or len(self.content_hash) != 32:
            raise ValueError("record_id and content_hash must be 32 bytes")
        if not 0 <= self.version < 2**32:
            raise ValueError(f"version {self.version} is not a uint32")
        if not 0 <= self.data_class < 2**8:
            raise ValueError(f"data class {self.data_class} is not a uint8")
        object.__setattr__(self, "patient", _checksum(self.patient))
        object.__setattr__(self, "author", _checksum(self.author))

    def values(self) -> tuple[str, str, str, int, int, str]:
        """The leaf as OZ-style values for `RECORD_LEAF_TYPES` (hex strings, ints)."""
        return (_hex(self.record_id), _hex(self.content_hash), self.patient, self.version,
                self.data_class, self.author)

    def encode(self) -> bytes:
        """abi.encode(recordId, contentHash, patient, version, dataClass, author), 192 bytes."""
        return b"".join((
            self.record_id, self.content_hash,
            _ZERO12, bytes.fromhex(self.patient[2:]),
            self.version.to_bytes(32, "big"),
            self.data_class.to_bytes(32, "big"),
            _ZERO12, bytes.fromhex(self.author[2:]),
        ))

    @property
    def hash(self) -> bytes:
        """The leaf hash: keccak256(keccak256(encode()))."""
        return keccak(keccak(self.encode()))


# --------------------------------------------------------------------------- tree


def make_merkle_tree(leaves: Sequence[bytes]) -> list[bytes]:
    """OZ ``makeMerkleTree``: the array form of the tree over ``leaves`` (already in leaf order)."""
    n = len(leaves)
    if n == 0:
        raise ValueError("Expected non-zero number of leaves")
    size = 2 * n - 1
    tree: list[bytes] = [b""] * size
    tree[n - 1:] = leaves[::-1]  # leaf i lives at size - 1 - i
    k = keccak
    for i in range(n - 2, -1, -1):
        a = tree[2 * i + 1]
        b = tree[2 * i + 2]
        tree[i] = k(a + b if a <= b else b + a)
    return tree


class StandardMerkleTree:
    """Port of ``StandardMerkleTree`` from ``@openzeppelin/merkle-tree`` (no multiproofs)."""

    def __init__(self, tree: list[bytes], values: list[tuple[Any, ...]], tree_indices: list[int],
                 leaf_encoding: Sequence[str]) -> None:
        self._tree = tree
        self._values = values
        self._tree_indices = tree_indices
        self.leaf_encoding: tuple[str, ...] = tuple(leaf_encoding)
        self._lookup: dict[bytes, int] | None = None

    @classmethod
    def _from_hashes(cls, values: list[tuple[Any, ...]], hashes: list[bytes], leaf_encoding: Sequence[str],
                     sort_leaves: bool) -> StandardMerkleTree:
        order = list(range(len(hashes)))
        if sort_leaves:
            order.sort(key=hashes.__getitem__)
        tree = make_merkle_tree([hashes[i] for i in order])
        last = len(tree) - 1
        tree_indices = [0] * len(values)
        for leaf_index, value_index in enumerate(order):
            tree_indices[value_index] = last - leaf_index
        return cls(tree, values, tree_indices, leaf_encoding)

    @classmethod
    def of(cls, values: Iterable[LeafValue], leaf_encoding: Sequence[str], *,
           sort_leaves: bool = True) -> StandardMerkleTree:
        """Build a tree over ``values`` (each a sequence matching ``leaf_encoding``)."""
        vals = [tuple(v) for v in values]
        encode = abi_encoder(leaf_encoding)
        k = keccak
        hashes = [k(k(encode(v))) for v in vals]
        return cls._from_hashes(vals, hashes, leaf_encoding, sort_leaves)

    @classmethod
    def of_records(cls, leaves: Iterable[RecordLeaf]) -> StandardMerkleTree:
        """Build a record-batch tree (leaf encoding `RECORD_LEAF_TYPES`)."""
        leaves = list(leaves)
        return cls._from_hashes([leaf.values() for leaf in leaves], [leaf.hash for leaf in leaves],
                                RECORD_LEAF_TYPES, True)

    # -- accessors -----------------------------------------------------------------

    @property
    def root(self) -> bytes:
        """The 32-byte root."""
        return self._tree[0]

    @property
    def root_hex(self) -> str:
        """The root as 0x-hex (OZ's ``tree.root``)."""
        return _hex(self._tree[0])

    def __len__(self) -> int:
        return len(self._values)

    def at(self, index: int) -> tuple[Any, ...]:
        """The value at ``index`` (input order)."""
        return self._values[index]

    def entries(self) -> Iterable[tuple[int, tuple[Any, ...]]]:
        """(index, value) in input order."""
        return enumerate(self._values)

    def leaf_hash_at(self, index: int) -> bytes:
        """The leaf hash of the value at ``index``."""
        return self._tree[self._tree_indices[index]]

    def _value_index(self, leaf: int | LeafValue | RecordLeaf) -> int:
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            if not 0 <= leaf < len(self._values):
                raise IndexError("Index out of bounds")
            return leaf
        if self._lookup is None:  # last value wins on duplicates, like OZ's Object.fromEntries
            self._lookup = {self._tree[t]: i for i, t in enumerate(self._tree_indices)}
        hashed = leaf.hash if isinstance(leaf, RecordLeaf) else leaf_hash(self.leaf_encoding, leaf)
        try:
            return self._lookup[hashed]
        except KeyError:
            raise ValueError("Leaf is not in tree") from None

    def get_proof(self, leaf: int | LeafValue | RecordLeaf) -> list[bytes]:
        """Sibling hashes from the leaf up to (excluding) the root; ``leaf`` is a value index,
        a value, or a `RecordLeaf`."""
        i = self._tree_indices[self._value_index(leaf)]
        tree = self._tree
        proof = []
        while i > 0:
            proof.append(tree[i + 1] if i % 2 else tree[i - 1])
            i = (i - 1) // 2
        return proof

    def get_proof_hex(self, leaf: int | LeafValue | RecordLeaf) -> list[str]:
        """`get_proof` as 0x-hex strings (OZ's format)."""
        return [_hex(p) for p in self.get_proof(leaf)]

    def verify(self, leaf: int | LeafValue | RecordLeaf, proof: Iterable[Hexish]) -> bool:
        """Whether ``proof`` proves ``leaf`` (index, value or RecordLeaf) under this tree's root."""
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            hashed = self.leaf_hash_at(self._value_index(leaf))
        elif isinstance(leaf, RecordLeaf):
            hashed = leaf.hash
        else:
            hashed = leaf_hash(self.leaf_encoding, leaf)
        return process_proof(hashed, proof) == self.root

    # -- OZ dump / load -----------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """OZ ``standard-v1`` JSON dump (hex strings; integers as decimal strings)."""
        def jsonable(v: Any) -> Any:
            if isinstance(v, (bytes, bytearray)):
                return "0x" + bytes(v).hex()
            if isinstance(v, int) and not isinstance(v, bool):
                return str(v)
            return v
        return {
            "format": DUMP_FORMAT,
            "leafEncoding": list(self.leaf_encoding),
            "tree": [_hex(n) for n in self._tree],
            "values": [{"value": [jsonable(x) for x in v], "treeIndex": t}
                       for v, t in zip(self._values, self._tree_indices, strict=True)],
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StandardMerkleTree:
        """Load and validate an OZ ``standard-v1`` dump (from this class or from the npm package)."""
        if data.get("format") != DUMP_FORMAT:
            raise ValueError(f"Unknown format {data.get('format')!r}")
        encoding = data.get("leafEncoding")
        if not encoding:
            raise ValueError("Expected leaf encoding")
        tree = [_node(n) for n in data["tree"]]
        values = [tuple(v["value"]) for v in data["values"]]
        indices = [int(v["treeIndex"]) for v in data["values"]]
        loaded = cls(tree, values, indices, encoding)
        loaded.validate()
        return loaded

    def validate(self) -> None:
        """Check every value hashes to its tree slot and every internal node to its children."""
        tree = self._tree
        if not tree:
            raise ValueError("Merkle tree is empty")
        encode = abi_encoder(self.leaf_encoding)
        for v, t in zip(self._values, self._tree_indices, strict=True):
            if not 0 <= t < len(tree) or 2 * t + 1 < len(tree) or tree[t] != keccak(keccak(encode(v))):
                raise ValueError("Merkle tree does not contain the expected value")
        for i, node in enumerate(tree):
            left, right = 2 * i + 1, 2 * i + 2
            if right >= len(tree):
                if left < len(tree):
                    raise ValueError("Merkle tree is invalid")
            elif node != node_hash(tree[left], tree[right]):
                raise ValueError("Merkle tree is invalid")
