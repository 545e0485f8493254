"""FHIR documents: validation (R5 and R4B), RFC 8785 canonical bytes and their hashes.

A record's identity off chain is its canonical JSON (RFC 8785, JSON Canonicalization Scheme):
two documents that differ only in key order, whitespace or string escapes have byte-identical
canonical forms and therefore the same keccak256 / sha256.

Validation uses `fhir.resources` (R5 is `fhir.resources`, R4B is `fhir.resources.R4B`). That
package is heavy, so it is imported lazily, on first validation; importing this module is cheap.
Validation is optional: callers with pre-validated sources pass ``validate=False``.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Union

import rfc8785
from eth_hash.auto import keccak as _keccak

from medledger.errors import FhirInvalid

FhirVersion = Literal["R5", "R4B"]
JsonDoc = Union[Mapping[str, Any], str, bytes]

FHIR_VERSIONS: tuple[str, ...] = ("R5", "R4B")
_MAX_REPORTED_ERRORS = 5


@dataclass(frozen=True)
class CanonicalDocument:
    """A FHIR document reduced to its RFC 8785 canonical bytes plus both digests of those bytes."""

    canonical: bytes
    keccak: bytes
    sha256: bytes
    resource_type: str

    def __post_init__(self) -> None:
        if len(self.keccak) != 32 or len(self.sha256) != 32:
            raise ValueError("digests must be 32 bytes")


# --------------------------------------------------------------------------- hashing


def keccak256(data: bytes) -> bytes:
    """keccak256 (Ethereum's, not NIST SHA3-256) of ``data``."""
    return _keccak(data)


def sha256(data: bytes) -> bytes:
    """SHA-256 of ``data``."""
    return hashlib.sha256(data).digest()


# --------------------------------------------------------------------------- canonical form


def _as_object(doc: JsonDoc) -> Any:
    if isinstance(doc, (bytes, bytearray, memoryview)):
        doc = bytes(doc).decode("utf-8")
    if isinstance(doc, str):
        try:
            return json.loads(doc)
        except json.JSONDecodeError as exc:
            raise FhirInvalid(f"not JSON: {exc}") from exc
    return doc


def canonicalize(doc: JsonDoc) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of ``doc`` (a parsed JSON object, or JSON text as str/bytes).

    Raises FhirInvalid when the value has no canonical form (NaN, infinities, integers beyond
    IEEE-754 double precision, non-string keys).
    """
    try:
        return rfc8785.dumps(_as_object(doc))
    except rfc8785.CanonicalizationError as exc:
        raise FhirInvalid(f"cannot canonicalize document: {exc}") from exc


def hashes(canonical: bytes) -> tuple[bytes, bytes]:
    """(keccak256, sha256) of canonical bytes."""
    return _keccak(canonical), hashlib.sha256(canonical).digest()


def canonical_document(
    doc: JsonDoc, *, validate: bool = True, version: FhirVersion = "R5"
) -> CanonicalDocument:
    """Validate (unless ``validate=False``), canonicalize and hash one FHIR resource or Bundle."""
    obj = _as_object(doc)
    if validate:
        validate_document(obj, version)
    resource_type = obj.get("resourceType") if isinstance(obj, Mapping) else None
    if not isinstance(resource_type, str) or not resource_type:
        raise FhirInvalid("resourceType: missing; a FHIR document is a JSON object with a resourceType")
    canonical = canonicalize(obj)
    k, s = hashes(canonical)
    return CanonicalDocument(canonical=canonical, keccak=k, sha256=s, resource_type=resource_type)


# --------------------------------------------------------------------------- validation


def _model_class(resource_type: str, version: FhirVersion) -> Any:
    if version == "R5":
        from fhir.resources import get_fhir_model_class
    elif version == "R4B":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        raise ValueError(f"unsupported FHIR version {version!r}; expected one of {FHIR_VERSIONS}")
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return None


def _format_loc(root: str, loc: Sequence[Any]) -> str:
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("resource_type",):
            path += ".resourceType"
        else:
            path += f".{part}"
    return path


def _clean_msg(msg: str) -> str:
    msg = " ".join(msg.split())
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def _check_resource_types(obj: Any, path: str, version: FhirVersion) -> None:
    """Unknown resource types make fhir.resources raise a bare KeyError; report them with a path."""
    if not isinstance(obj, Mapping):
        raise FhirInvalid(f"{path}: expected a JSON object, got {type(obj).__name__}")
    rtype = obj.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise FhirInvalid(f"{path}.resourceType: missing")
    if _model_class(rtype, version) is None:
        raise FhirInvalid(f"{path}.resourceType: unknown FHIR {version} resource type {rtype!r}")
    if rtype == "Bundle":
        entries = obj.get("entry")
        if isinstance(entries, list):
            for i, entry in enumerate(entries):
                if isinstance(entry, Mapping) and "resource" in entry:
                    _check_resource_types(entry["resource"], f"{path}.entry[{i}].resource", version)


def validate_document(doc: JsonDoc, version: FhirVersion = "R5") -> str:
    """Validate a FHIR resource or Bundle against the FHIR ``version`` structure definitions.

    Returns the resource type. Raises FhirInvalid whose message leads with the failing field's
    path, e.g. ``Bundle.entry[0].resource.birthDate: Date value string does not match spec regex.``
    """
    from pydantic import ValidationError

    obj = _as_object(doc)
    if not isinstance(obj, Mapping):
        raise FhirInvalid(f"document: expected a JSON object, got {type(obj).__name__}")
    rtype = obj.get("resourceType")
    root = rtype if isinstance(rtype, str) and rtype else "document"
    _check_resource_types(obj, root, version)
    cls = _model_class(root, version)
    try:
        cls.model_validate(obj)
    except ValidationError as exc:
        errors = exc.errors()
        parts = [f"{_format_loc(root, e['loc'])}: {_clean_msg(e['msg'])}" for e in errors[:_MAX_REPORTED_ERRORS]]
        more = len(errors) - _MAX_REPORTED_ERRORS
        if more > 0:
            parts.append(f"... and {more} more error(s)")
        raise FhirInvalid(f"invalid FHIR {version} {root}: " + "; ".join(parts)) from None
    except (KeyError, TypeError, ValueError) as exc:  # fhir.resources raises these on malformed shapes
        raise FhirInvalid(f"invalid FHIR {version} {root}: {exc!r}") from None
    return root


# Short alias matching the module's public vocabulary: fhir.validate(doc, version=...).
validate = validate_document


def _validate_one(args: tuple[Any, str]) -> str | None:
    doc, version = args
    try:
        validate_document(doc, version)  # type: ignore[arg-type]
    except FhirInvalid as exc:
        return str(exc)
    return None


def validate_many(
    docs: Sequence[JsonDoc],
    version: FhirVersion = "R5",
    *,
    workers: int | None = 2,
    chunksize: int | None = None,
    raise_first: bool = True,
) -> list[str | None]:
    """Validate a batch of documents on a process pool (default 2 workers: this box's 2 cores).

    Returns one entry per document: ``None`` if valid, else the FhirInvalid message. With
    ``raise_first`` (the default) the first failure is raised instead, prefixed by its index:
    ``document[3]: invalid FHIR R5 Bundle: Bundle.entry[0]...``.
    """
    if version not in FHIR_VERSIONS:
        raise ValueError(f"unsupported FHIR version {version!r}; expected one of {FHIR_VERSIONS}")
    n = len(docs)
    workers = max(1, min(workers or os.cpu_count() or 1, n or 1))
    jobs = [(d, version) for d in docs]
    if workers == 1 or n < 4:
        results = [_validate_one(j) for j in jobs]
    else:
        chunk = chunksize or max(1, n // (workers * 4))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_validate_one, jobs, chunksize=chunk))
    if raise_first:
        for i, msg in enumerate(results):
            if msg is not None:
                raise FhirInvalid(f"document[{i}]: {msg}")
    return results
