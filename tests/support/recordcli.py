"""Helpers for the record CLI and fault tests (not a test module itself).

Signers are given to the CLI as `env:ML_KEY_<NAME>` accounts holding development keys: the same
real entry point, without paying a ~1 s scrypt keystore decryption on every command.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from eth_account import Account
from eth_keys import keys as eth_keys
from eth_utils import keccak

from medledger.merkle import RecordLeaf, StandardMerkleTree
from medledger.scopes import DataClass
from medledger.testing.synthetic import class_bundle, patient_bundle

from .nodes import ROOT, cli_env, dev_key, medledger_exe, run_json

JOURNAL = ".medledger-batch.json"
STAGES = ("planned", "prepared", "submitted", "anchored")


def key_env(actors: dict[str, int]) -> tuple[dict[str, str], dict[str, str]]:
    """(env additions ML_KEY_<NAME>=key, name -> address) for development accounts."""
    env, addresses = {}, {}
    for name, index in actors.items():
        key = dev_key(index)
        env[f"ML_KEY_{name.upper()}"] = key
        addresses[name] = Account.from_key(key).address
    return env, addresses


def cli_suite(home: Path, actors: dict[str, int], rpc: str, chain_id: int, *containers):
    """A suite deployed by `medledger deploy` as actor "gov": (CLI env, name -> address, and the
    CareRegistry, ConsentRegistry and RecordRegistry as brownie contracts of the given containers)."""
    keys, who = key_env(actors)
    env = cli_env(home, MEDLEDGER_RPC=rpc, **keys)
    run_json(env, *as_("gov"), "deploy")
    suite = json.loads((home / "deployments.json").read_text())[str(chain_id)]
    names = ("CareRegistry", "ConsentRegistry", "RecordRegistry")
    return env, who, *(c.at(suite[n]["address"]) for c, n in zip(containers, names, strict=True))


def as_(name: str) -> tuple[str, str]:
    """The CLI arguments that make `name` the signer."""
    return ("--account", f"env:ML_KEY_{name.upper()}")


def public_key(index: int) -> bytes:
    """The compressed secp256k1 public key of development account `index` (what publish-key publishes)."""
    return eth_keys.PrivateKey(bytes.fromhex(dev_key(index).removeprefix("0x"))).public_key.to_compressed_bytes()


def write_bundles(directory: Path, patient: str, count: int, seed: int = 0,
                  data_class: DataClass | None = DataClass.CONDITIONS) -> list[Path]:
    """`count` synthetic FHIR R5 Bundles (deterministic in `seed`) written to `directory`: each visit's
    `data_class` part (one record each), or with data_class=None the whole visit (several classes)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = directory / f"visit-{i:03d}.json"
        doc = patient_bundle(seed + i, patient) if data_class is None else class_bundle(seed + i, patient, data_class)
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths


def flip_bit(path: Path, offset: int = -5, bit: int = 0) -> bytes:
    """Flips one bit of `path` in place; returns the original bytes."""
    original = path.read_bytes()
    data = bytearray(original)
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
    return original


def blob_path(vault: Path, content_hash: str) -> Path:
    return vault / "blobs" / content_hash[2:4] / content_hash[2:]


def journal_stage(directory: Path) -> str | None:
    try:
        return json.loads((directory / JOURNAL).read_text())["stage"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


def start_cli(env: dict[str, str], *args: str) -> subprocess.Popen:
    """The real entry point in a new session, so it and its sealing workers can be killed as a group."""
    return subprocess.Popen([medledger_exe(), *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_stage(proc: subprocess.Popen, directory: Path, stage: str, timeout: float = 60) -> str | None:
    """Polls the journal until it reaches `stage` (or the process exits); returns the stage seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = journal_stage(directory)
        if seen is not None and STAGES.index(seen) >= STAGES.index(stage):
            return seen
        if proc.poll() is not None:
            return journal_stage(directory)
        time.sleep(0.002)
    raise AssertionError(f"the journal in {directory} never reached {stage!r}")


def kill_group(proc: subprocess.Popen) -> int:
    """SIGKILLs the process we started and its workers (its own process group); returns its exit status."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=30)
    return proc.returncode


def batch_tree(entries: list[dict], author: str) -> tuple[list[RecordLeaf], StandardMerkleTree]:
    """The batch's leaves and tree rebuilt from put-batch's reported records (version 1 each)."""
    classes = {c.name.lower().replace("_", "-"): int(c) for c in DataClass}
    leaves = [RecordLeaf(bytes.fromhex(e["record_id"][2:]), bytes.fromhex(e["content_hash"][2:]), e["patient"], 1,
                         classes[e["data_class"]], author) for e in entries]
    return leaves, StandardMerkleTree.of_records(leaves)


def content_id(path: Path) -> str:
    return "0x" + keccak(path.read_bytes()).hex()


def one_line_error(proc: subprocess.CompletedProcess | subprocess.Popen, stderr: str | None = None) -> str:
    """The single stderr line of a failed command (asserts there is exactly one and no traceback)."""
    text = (stderr if stderr is not None else proc.stderr).strip()
    assert proc.returncode == 1, (proc.returncode, text)
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]
