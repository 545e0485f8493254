"""StandardMerkleTree: byte-for-byte agreement with @openzeppelin/merkle-tree and proof properties."""
import json
import os
import random
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st
from hypothesis.core import given  # pure Python: no chain to isolate (brownie wraps hypothesis.given)

from medledger import merkle
from medledger.merkle import RECORD_LEAF_TYPES, RecordLeaf, StandardMerkleTree

VECTORS = json.loads((Path(__file__).parent / "vectors" / "oz_merkle_vectors.json").read_text())["vectors"]
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sort(vector):
    return vector["options"].get("sortLeaves", True)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_matches_openzeppelin_vectors(vector):
    tree = StandardMerkleTree.of(vector["values"], vector["leafEncoding"], sort_leaves=_sort(vector))
    assert tree.root_hex == vector["root"]
    for i, value in enumerate(vector["values"]):
        assert tree.get_proof_hex(i) == vector["proofs"][i]
        assert "0x" + merkle.leaf_hash(vector["leafEncoding"], value).hex() == vector["leafHashes"][i]
        assert tree.verify(i, vector["proofs"][i])
        assert merkle.verify(vector["root"], value, vector["proofs"][i], vector["leafEncoding"])
    dump = tree.dump()
    assert dump["format"] == vector["dump"]["format"]
    assert dump["leafEncoding"] == vector["dump"]["leafEncoding"]
    assert dump["tree"] == vector["dump"]["tree"]
    assert [v["treeIndex"] for v in dump["values"]] == [v["treeIndex"] for v in vector["dump"]["values"]]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_loads_openzeppelin_dumps(vector):
    loaded = StandardMerkleTree.load(vector["dump"])
    assert loaded.root_hex == vector["root"]
    assert [loaded.get_proof_hex(i) for i in range(len(loaded))] == vector["proofs"]
    assert StandardMerkleTree.load(loaded.dump()).root == loaded.root
    broken = json.loads(json.dumps(vector["dump"]))
    broken["tree"][0] = "0x" + "00" * 32
    with pytest.raises(ValueError):
        StandardMerkleTree.load(broken)


def test_readme_example_root_is_the_published_one():
    values = [["0x1111111111111111111111111111111111111111", "5000000000000000000"],
              ["0x2222222222222222222222222222222222222222", "2500000000000000000"]]
    tree = StandardMerkleTree.of(values, ["address", "uint256"])
    assert tree.root_hex == "0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77"


def test_record_vectors_via_record_leaf():
    for vector in VECTORS:
        if vector["leafEncoding"] != list(RECORD_LEAF_TYPES) or not _sort(vector):
            continue
        leaves = [RecordLeaf(bytes.fromhex(v[0][2:]), bytes.fromhex(v[1][2:]), v[2], int(v[3]), int(v[4]),
                             v[5]) for v in vector["values"]]
        tree = StandardMerkleTree.of_records(leaves)
        assert tree.root_hex == vector["root"]
        for i, leaf in enumerate(leaves):
            assert tree.get_proof_hex(i) == vector["proofs"][i]
            assert merkle.verify(vector["root"], leaf, vector["proofs"][i])
            assert merkle.verify(tree.root, leaf, tree.get_proof(leaf))  # lookup by value


def _random_leaf(rng):
    """A random record leaf whose id starts with its patient's address, as RecordRegistry ids do."""
    patient = rng.randbytes(20)
    return RecordLeaf(patient + rng.randbytes(12), rng.randbytes(32), to_checksum_address(patient),
                      rng.randrange(2**32), rng.randrange(11), "0x" + rng.randbytes(20).hex())


@given(leaf=st.builds(RecordLeaf, st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32),
                      st.binary(min_size=20, max_size=20).map(to_checksum_address), st.integers(0, 2**32 - 1),
                      st.integers(0, 255), st.binary(min_size=20, max_size=20).map(to_checksum_address)))
@settings(max_examples=50, deadline=None)
def test_hand_packed_leaf_equals_solidity_formula(leaf):
    """Solidity: keccak256(bytes.concat(keccak256(abi.encode(
    recordId, contentHash, patient, version, dataClass, author))))"""
    encoded = abi_encode(list(RECORD_LEAF_TYPES), [leaf.record_id, leaf.content_hash, leaf.patient,
                                                   leaf.version, leaf.data_class, leaf.author])
    assert leaf.encode() == encoded
    assert merkle.abi_encoder(RECORD_LEAF_TYPES)(leaf.values()) == encoded
    assert leaf.hash == keccak(keccak(encoded)) == merkle.leaf_hash(RECORD_LEAF_TYPES, leaf.values())


@given(values=st.tuples(st.booleans(), st.integers(-(2**255), 2**255 - 1), st.binary(min_size=4, max_size=4),
                        st.integers(0, 2**64 - 1), st.binary(min_size=20, max_size=20)))
@settings(max_examples=50, deadline=None)
def test_generic_static_packing_equals_eth_abi(values):
    types = ["bool", "int256", "bytes4", "uint64", "address"]
    assert merkle.abi_encoder(types)(values) == abi_encode(types, list(values))


@SETTINGS
@given(n=st.one_of(st.integers(1, 40), st.integers(41, 10_000)), seed=st.integers(0, 2**32))
@example(n=10_000, seed=1)
@example(n=1, seed=2)
def test_proofs_hold_for_random_trees(n, seed):
    rng = random.Random(seed)
    leaves = [_random_leaf(rng) for _ in range(n)]
    tree = StandardMerkleTree.of_records(leaves)
    assert len(tree) == n
    for i in rng.sample(range(n), min(n, 8)):
        proof = tree.get_proof(i)
        assert len(proof) <= n.bit_length()
        assert merkle.verify(tree.root, leaves[i], proof)
        assert merkle.process_proof(leaves[i].hash, proof) == tree.root
        assert tree.get_proof(leaves[i]) == proof
        if proof:
            forged = list(proof)
            forged[rng.randrange(len(forged))] = rng.randbytes(32)
            assert not merkle.verify(tree.root, leaves[i], forged)
        other = _random_leaf(rng)
        assert not merkle.verify(tree.root, other, proof)


def test_generic_and_record_builders_agree_on_10000_leaves():
    rng = random.Random(7)
    leaves = [_random_leaf(rng) for _ in range(10_000)]
    fast = StandardMerkleTree.of_records(leaves)
    generic = StandardMerkleTree.of([leaf.values() for leaf in leaves], RECORD_LEAF_TYPES)
    assert fast.root == generic.root
    assert fast.get_proof(9_999) == generic.get_proof(9_999)


def test_errors_and_edge_cases():
    with pytest.raises(ValueError, match="non-zero"):
        StandardMerkleTree.of([], RECORD_LEAF_TYPES)
    rng = random.Random(1)
    leaves = [_random_leaf(rng) for _ in range(3)]
    tree = StandardMerkleTree.of_records(leaves)
    with pytest.raises(ValueError, match="not in tree"):
        tree.get_proof(_random_leaf(rng))
    with pytest.raises(IndexError):
        tree.get_proof(3)
    with pytest.raises(ValueError):
        merkle.leaf_hash(["uint8"], [256])
    with pytest.raises(ValueError):
        merkle.leaf_hash(["address"], ["0x1234"])
    with pytest.raises(ValueError):
        merkle.leaf_hash(["bytes32"], [os.urandom(31)])
    single = StandardMerkleTree.of_records(leaves[:1])
    assert single.root == leaves[0].hash and single.get_proof(0) == []
    assert merkle.node_hash(b"\x01" * 32, b"\x02" * 32) == merkle.node_hash(b"\x02" * 32, b"\x01" * 32)
