"""LocalVault: content addressing, atomic writes under simulated crashes, tamper detection."""
import json
import os
import pickle
import stat

import pytest
from eth_utils import keccak

from medledger import vault as vault_mod
from medledger.errors import RecordNotFound, RecordTampered, VaultError
from medledger.vault import LocalVault, RecordIndex, content_id

RID = "0x" + keccak(text="record-7").hex()


class PowerCut(BaseException):
    """Stands in for the process dying: not an Exception, so no `except Exception` handles it."""


@pytest.fixture
def vault(tmp_path):
    return LocalVault(tmp_path / "vault")


def _names(v):
    """Every file name under the blob tree (including temp files)."""
    return sorted(p.name for p in v.blob_root.rglob("*") if p.is_file())


def test_put_get_has_iter(vault):
    blobs = [os.urandom(100 + i) for i in range(5)]
    ids = [vault.put(b) for b in blobs]
    assert ids == ["0x" + keccak(b).hex() for b in blobs] == [content_id(b) for b in blobs]
    assert all(vault.has(i) and i in vault for i in ids)
    assert [vault.get(i) for i in ids] == blobs
    assert vault.get(bytes.fromhex(ids[0][2:])) == blobs[0]  # bytes32 ids work too
    assert sorted(vault) == sorted(ids) and len(vault) == 5
    assert vault.put(blobs[0]) == ids[0]  # idempotent
    assert len(vault) == 5
    assert vault.path_of(ids[0]).parent.name == ids[0][2:4]  # sharded by the first byte
    assert vault.temp_files() == []


def test_missing_blob(vault):
    with pytest.raises(RecordNotFound, match="not in the vault"):
        vault.get("0x" + "00" * 32)
    assert not vault.has("0x" + "00" * 32)
    with pytest.raises(ValueError):
        vault.get("0x1234")


def test_crash_at_rename_leaves_no_blob_under_a_valid_name(vault, monkeypatch):
    blob = os.urandom(5000)

    def crash(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(vault_mod.os, "replace", crash)
    with pytest.raises(VaultError, match="simulated crash"):
        vault.put(blob)
    monkeypatch.undo()
    cid = content_id(blob)
    assert not vault.has(cid) and list(vault) == []
    assert not vault.path_of(cid).exists()
    assert _names(vault) == []  # the temp file was removed too
    assert vault.put(blob) == cid and vault.get(cid) == blob  # a retry succeeds


def test_crash_mid_write_leaves_only_a_temp_file(vault, monkeypatch):
    """A process killed half-way through writing (simulated: the write stops after a partial
    chunk and cleanup never runs) leaves a partial *temp* file, never a partial blob."""
    blob = os.urandom(64 * 1024)
    real_write = os.write

    def partial_write(fd, data):
        real_write(fd, bytes(data[:1000]))
        raise PowerCut()

    monkeypatch.setattr(vault_mod.os, "write", partial_write)
    monkeypatch.setattr(vault_mod.os, "unlink", lambda path: None)  # the crash skips cleanup
    with pytest.raises(PowerCut):
        vault.put(blob)
    monkeypatch.undo()
    cid = content_id(blob)
    assert not vault.has(cid) and list(vault) == []
    leftovers = vault.temp_files()
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".tmp") and leftovers[0].stat().st_size == 1000
    with pytest.raises(RecordNotFound):
        vault.get(cid)
    assert vault.clean_temp() == 1 and _names(vault) == []


def test_fsync_happens_before_the_rename(vault, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(vault_mod.os, "fsync", fsync)
    monkeypatch.setattr(vault_mod.os, "replace", replace)
    vault.put(b"durable")
    # new shard directory made durable, then: file data, rename, directory entry
    assert calls == ["fsync dir", "fsync file", "replace", "fsync dir"]
    calls.clear()
    vault.put(b"durable")  # already stored: nothing is written
    assert calls == []


def test_put_many_group_commit_and_crash(vault, monkeypatch):
    blobs = [os.urandom(300) for _ in range(6)]
    if vault_mod._SYNCFS is None:
        pytest.skip("no syncfs on this platform: put_many falls back to put")  # pragma: no cover
    syncs = []
    real_sync = vault_mod.sync_filesystem
    monkeypatch.setattr(vault_mod, "sync_filesystem", lambda p: (syncs.append(p), real_sync(p))[1])
    real_replace = os.replace
    done = []

    def replace_then_crash(src, dst):
        if len(done) == 3:
            raise OSError("simulated crash during renames")
        real_replace(src, dst)
        done.append(dst)

    monkeypatch.setattr(vault_mod.os, "replace", replace_then_crash)
    with pytest.raises(VaultError, match="simulated crash"):
        vault.put_many(blobs)
    monkeypatch.undo()
    assert len(syncs) == 1  # data flushed once before any rename
    stored = list(vault)
    assert len(stored) == 3 and all(vault.get(c) for c in stored)  # complete blobs only
    assert vault.temp_files() == []
    ids = vault.put_many(blobs + blobs[:1])
    assert ids == [content_id(b) for b in blobs + blobs[:1]]
    assert sorted(vault) == sorted(set(ids))


def test_flipped_bit_names_record_and_both_hashes(vault):
    blob = os.urandom(2000)
    cid = vault.put_record(RID, 3, blob)
    path = vault.path_of(cid)
    raw = bytearray(path.read_bytes())
    raw[1234] ^= 0x10
    path.write_bytes(bytes(raw))
    found = "0x" + keccak(bytes(raw)).hex()
    with pytest.raises(RecordTampered) as err:
        vault.get(cid)
    message = str(err.value)
    assert f"record {RID} v3" in message and "tampered" in message
    assert f"expected keccak256 {cid}" in message and f"found {found}" in message
    with pytest.raises(RecordTampered, match=RID):
        vault.get_record(RID, 3)
    assert vault.audit() == [cid]
    assert vault.put(blob) == cid and vault.get(cid) == blob  # putting the true bytes repairs it
    assert vault.audit() == []


def test_tampered_blob_without_index_entry_is_named_by_id(vault):
    cid = vault.put(b"unindexed")
    vault.path_of(cid).write_bytes(b"unindexes")
    with pytest.raises(RecordTampered, match=f"blob {cid} was tampered with"):
        vault.get(cid)


def test_index_lookup_versions_and_conflicts(vault):
    a, b = vault.put_record(RID, 1, b"v1"), vault.put_record(RID, 2, b"v2")
    assert vault.index.lookup(RID) == b and vault.index.lookup(RID, 1) == a
    assert vault.get_record(RID) == b"v2" and vault.get_record(RID, 1) == b"v1"
    assert vault.index.versions(RID) == {1: a, 2: b}
    assert vault.index.record_of(a) == (RID, 1)
    vault.index.add(RID, 2, b)  # same entry again is fine
    with pytest.raises(VaultError, match="already indexed"):
        vault.index.add(RID, 2, a)
    with pytest.raises(RecordNotFound, match="no version 9"):
        vault.index.lookup(RID, 9)
    with pytest.raises(RecordNotFound):
        vault.get_record("0x" + "11" * 32)
    doc = json.loads(vault.index.path.read_text())
    assert doc["format"] == "medledger.vault-index/v1" and doc["records"][RID] == {"1": a, "2": b}
    assert RecordIndex(vault.index.path).lookup(RID) == b  # persisted


def test_index_write_is_atomic(vault, monkeypatch):
    vault.put_record(RID, 1, b"v1")
    before = vault.index.path.read_bytes()
    monkeypatch.setattr(vault_mod.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        vault.index.add(RID, 2, content_id(b"v2"))
    monkeypatch.undo()
    assert vault.index.path.read_bytes() == before
    assert [p.name for p in vault.directory.iterdir() if p.name.endswith(".tmp")] == []


def test_vault_pickles_for_worker_processes(tmp_path):
    v = LocalVault(tmp_path / "v", durable=False)
    clone = pickle.loads(pickle.dumps(v))
    assert clone.directory == v.directory and clone.durable is False
    cid = clone.put(b"from a worker")
    assert v.get(cid) == b"from a worker"
