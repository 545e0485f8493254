"""Source verification: the standard-JSON compiler input of each deployed contract, ready for
Sourcify and Etherscan, and a local check that it rebuilds the bytecode on chain.

The input is rebuilt from the compiled artifacts (``build/contracts/*.json``: the source files each
contract was compiled from, compiler version and settings) plus the remappings of
``brownie-config.yaml``; the sources are read from the project tree, and each one's keccak256 is
checked against the metadata solc embeds, so a source edited since the deployment is caught.

A *full match* means the recompiled runtime code equals the code on chain byte for byte, metadata
hash included, once the immutable slots (filled in by the constructor) are masked on both sides: the
same test Sourcify calls a "perfect" match.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from eth_utils import keccak

from .errors import ConfigError, VerificationError

#: What solc is asked to output when verifying; the metadata hash does not depend on this selection.
OUTPUT_SELECTION = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
                    "evm.deployedBytecode.immutableReferences", "metadata"]


class MatchKind(str, Enum):
    FULL = "full"          # runtime code equal, metadata hash included
    PARTIAL = "partial"    # equal but for the metadata hash (a comment or path changed)
    NONE = "mismatch"


@dataclass(frozen=True)
class VerificationInput:
    """One contract's standard-JSON input, with the names Etherscan asks for."""

    name: str
    source_path: str
    compiler_version: str           # e.g. "v0.8.28+commit.7893614a"
    standard_json: dict[str, Any]

    @property
    def contract_fqn(self) -> str:
        return f"{self.source_path}:{self.name}"


def _remappings(project_root: Path) -> list[str]:
    config = project_root / "brownie-config.yaml"
    try:
        data = yaml.safe_load(config.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the compiler settings in {config}: {exc}") from None
    remappings = ((data.get("compiler") or {}).get("solc") or {}).get("remappings") or []
    return [remappings] if isinstance(remappings, str) else list(remappings)


def _artifact(build_dir: Path, name: str) -> dict[str, Any]:
    path = build_dir / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ConfigError(f"no compiled artifact for {name} at {path}: run `brownie compile`") from None


def standard_json_input(project_root: Path, build_dir: Path, name: str) -> VerificationInput:
    """The standard-JSON input that compiles `name` exactly as it was built."""
    art = _artifact(build_dir, name)
    sources: dict[str, dict[str, str]] = {}
    for rel in sorted(set(art["allSourcePaths"].values())):
        path = project_root / rel
        try:
            sources[rel] = {"content": path.read_text()}
        except OSError:
            raise ConfigError(f"source {rel} of {name} is missing under {project_root}") from None
    compiler = art["compiler"]
    settings = {
        "optimizer": compiler["optimizer"],
        "evmVersion": compiler["evm_version"],
        "remappings": _remappings(project_root),
        "outputSelection": {art["sourcePath"]: {name: OUTPUT_SELECTION}},
    }
    return VerificationInput(name, art["sourcePath"], "v" + compiler["version"],
                             {"language": "Solidity", "sources": sources, "settings": settings})


def find_solc(version: str) -> str:
    """A solc of `version` (e.g. "0.8.28"): py-solc-x's folder first (where setup registers one), then PATH."""
    folder = Path(os.environ.get("SOLCX_BINARY_PATH", Path.home() / ".solcx"))
    for candidate in (folder / f"solc-v{version}", shutil.which("solc")):
        if candidate and Path(candidate).exists():
            out = subprocess.run([str(candidate), "--version"], capture_output=True, text=True)
            if f"Version: {version}" in out.stdout:
                return str(candidate)
    raise VerificationError(f"no solc {version} found in {folder} or on PATH (run `make setup`)")


@dataclass(frozen=True)
class Compiled:
    runtime: bytes
    immutables: tuple[tuple[int, int], ...]   # (start, length) of each immutable slot in the runtime
    metadata: str


def compile_inputs(inputs: list[VerificationInput], project_root: Path) -> dict[str, Compiled]:
    """Compiles the inputs in one solc run (their sources and selections merged: each contract's metadata
    lists only its own sources, so the result is the same as one run each, and much faster)."""
    if not inputs:
        return {}
    versions = {vin.compiler_version for vin in inputs}
    if len(versions) != 1:
        raise VerificationError(f"the contracts were built by different compilers: {', '.join(sorted(versions))}")
    merged = {"language": "Solidity", "sources": {}, "settings": dict(inputs[0].standard_json["settings"])}
    selection: dict[str, dict[str, list[str]]] = {}
    for vin in inputs:
        if {k: v for k, v in vin.standard_json["settings"].items() if k != "outputSelection"} != \
                {k: v for k, v in merged["settings"].items() if k != "outputSelection"}:
            raise VerificationError(f"{vin.name} was built with other settings than {inputs[0].name}")
        merged["sources"].update(vin.standard_json["sources"])
        selection.setdefault(vin.source_path, {})[vin.name] = OUTPUT_SELECTION
    merged["settings"]["outputSelection"] = selection
    solc = find_solc(next(iter(versions)).removeprefix("v").split("+")[0])
    proc = subprocess.run([solc, "--standard-json", "--base-path", "."], input=json.dumps(merged),
                          capture_output=True, text=True, cwd=project_root, timeout=900)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise VerificationError(f"solc gave no JSON: {proc.stderr.strip()[:300]}") from None
    errors = [e["formattedMessage"] for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise VerificationError(f"the sources do not compile: {errors[0].strip()}")
    compiled = {}
    for vin in inputs:
        contract = out["contracts"][vin.source_path][vin.name]
        refs = contract["evm"]["deployedBytecode"].get("immutableReferences") or {}
        slots = tuple(sorted((r["start"], r["length"]) for rs in refs.values() for r in rs))
        compiled[vin.name] = Compiled(bytes.fromhex(contract["evm"]["deployedBytecode"]["object"]), slots,
                                      contract["metadata"])
    return compiled


def _masked(code: bytes, slots: tuple[tuple[int, int], ...]) -> bytes:
    buf = bytearray(code)
    for start, length in slots:
        buf[start:start + length] = bytes(length)
    return bytes(buf)


def _metadata_length(code: bytes) -> int:
    # The CBOR metadata sits at the end; its length is the last two bytes (big-endian) plus those two.
    return int.from_bytes(code[-2:], "big") + 2 if len(code) >= 2 else 0


def compare(onchain: bytes, compiled: Compiled) -> MatchKind:
    if len(onchain) != len(compiled.runtime):
        return MatchKind.NONE
    a, b = _masked(onchain, compiled.immutables), _masked(compiled.runtime, compiled.immutables)
    if a == b:
        return MatchKind.FULL
    cut = _metadata_length(b)
    return MatchKind.PARTIAL if cut and a[:-cut] == b[:-cut] else MatchKind.NONE


def check_sources(vin: VerificationInput, metadata: str) -> list[str]:
    """Sources whose keccak256 differs from the one solc recorded (empty when all agree)."""
    recorded = json.loads(metadata).get("sources", {})
    return [path for path, src in vin.standard_json["sources"].items()
            if path in recorded and "0x" + keccak(text=src["content"]).hex().removeprefix("0x")
            != recorded[path].get("keccak256")]


def write_input(vin: VerificationInput, out_dir: Path, compiled: Compiled | None = None) -> list[Path]:
    """Writes ``<Name>.standard-input.json`` (Etherscan) and, once compiled, ``<Name>.metadata.json``
    (Sourcify, with the sources beside it under ``sources/``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{vin.name}.standard-input.json"]
    written[0].write_text(json.dumps(vin.standard_json, indent=1) + "\n")
    if compiled is not None:
        meta = out_dir / f"{vin.name}.metadata.json"
        meta.write_text(compiled.metadata)
        written.append(meta)
        for rel, src in vin.standard_json["sources"].items():
            path = out_dir / "sources" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(src["content"])
    return written


#: Recorded deployment name -> artifact, where they differ (the development stablecoin).
ARTIFACT_OF = {"Stablecoin": "MockStablecoin"}


@dataclass(frozen=True)
class ContractVerification:
    name: str
    address: str
    match: MatchKind
    changed_sources: tuple[str, ...]
    files: tuple[Path, ...]


def manifest(chain_id: int, deployment: Any, inputs: dict[str, VerificationInput]) -> dict[str, Any]:
    """The deployment manifest an operator commits per chain: addresses, transactions, blocks, the compiler
    and its settings, and the keccak256 of every source file each contract was built from."""
    contracts = {}
    for name, deployed in sorted(deployment.contracts.items()):
        vin = inputs.get(name)
        entry: dict[str, Any] = {"address": deployed.address, "tx": deployed.tx, "block": deployed.block}
        if vin is not None:
            entry.update({
                "artifact": vin.name, "source": vin.source_path, "compiler": vin.compiler_version,
                "settings": {k: v for k, v in vin.standard_json["settings"].items() if k != "outputSelection"},
                "sources": {p: "0x" + keccak(text=s["content"]).hex().removeprefix("0x")
                            for p, s in vin.standard_json["sources"].items()},
            })
        else:
            entry["external"] = True   # e.g. a stablecoin the deployment did not deploy
        contracts[name] = entry
    return {"chainId": chain_id, "contracts": contracts}


def verify_deployment(chain: Any, deployment: Any, project_root: Path, build_dir: Path, out_dir: Path,
                      check: bool = True) -> list[ContractVerification]:
    """Writes the inputs (and, with `check`, metadata and the comparison with the code on chain) for every
    contract of `deployment` that has an artifact here, plus ``manifest.json``."""
    inputs = {}
    for name in sorted(deployment.contracts):
        artifact = ARTIFACT_OF.get(name, name)
        if (build_dir / f"{artifact}.json").exists():
            inputs[name] = standard_json_input(project_root, build_dir, artifact)
    compiled = compile_inputs(list(inputs.values()), project_root) if check else {}
    results = []
    for name, vin in inputs.items():
        address = deployment.contracts[name].address
        built = compiled.get(vin.name)
        match = compare(bytes(chain.w3.eth.get_code(address)), built) if built else MatchKind.NONE
        changed = tuple(check_sources(vin, built.metadata)) if built else ()
        results.append(ContractVerification(name, address, match, changed, tuple(write_input(vin, out_dir, built))))
    summary = manifest(deployment.chain_id, deployment, inputs)
    (out_dir / "manifest.json").write_text(json.dumps(summary, indent=2) + "\n")
    return results
