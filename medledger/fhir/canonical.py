"""FHIR documents: RFC 8785 canonical bytes and their hashes.

A record's identity off chain is its canonical JSON (RFC 8785, JSON Canonicalization Scheme):
two documents that differ only in key order, whitespace or string escapes have byte-identical
canonical forms and therefore the same keccak256 / sha256. JCS treats numbers as IEEE-754
doubles, so ``7.20`` and ``7.2`` (or ``128.0`` and ``128``) canonicalise alike: FHIR's
trailing-zero precision of decimals is not part of a record's hash identity.

`canonical_document` validates first (validation.py, via versions.resolve) unless the caller passes
``validate=False`` for pre-validated sources.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import rfc8785
from eth_hash.auto import keccak as _keccak

from medledger.errors import FhirInvalid

FhirVersion = Literal["R4", "R4B", "R5", "auto"]
JsonDoc = Mapping[str, Any] | str | bytes


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
#
# RFC 8785 reference: `rfc8785.dumps`. It is a pure-Python tree walk (about 0.8 ms for a 15 KB
# Bundle), which alone would cap the pipeline near 1,200 records/s per core. `canonicalize` gets
# the same bytes about four times faster by letting the C JSON encoder do the writing, after a
# cheap pre-pass that maps every value to a form on which `json.dumps(sort_keys=True,
# separators=(",", ":"), ensure_ascii=False)` and JCS provably agree:
#   * keys: JCS sorts by UTF-16 code units, Python by code points; they agree for ASCII keys
#     (FHIR keys are ASCII). Any non-ASCII or non-str key -> fall back to rfc8785.
#   * strings: both escape exactly '"', '\\' and U+0000..U+001F (\b \t \n \f \r, else \u00xx
#     lowercase) and write everything else as raw UTF-8 (lone surrogates fail in both).
#   * integers: identical digits; outside +-(2**53 - 1) -> fall back (rfc8785 rejects them).
#   * floats: JCS writes integral values without ".0" -> converted to int when |x| < 2**53;
#     non-integral values in [1e-4, 1e16) have no exponent in Python's repr, and repr's digits
#     are the shortest round-trip digits JCS uses (rfc8785 itself formats from str(float)).
#     Anything else (tiny, huge, NaN, infinities) -> fall back.
#   * other types (tuples excepted, which both treat as arrays) -> fall back.
# JSON text skips the pre-pass: json.loads's parse_float / parse_int / parse_constant hooks apply
# the number rules while parsing, and pure-ASCII text cannot hold a non-ASCII key.
# The equivalence is property-tested against rfc8785.dumps (tests/test_fhir.py).

_SAFE_INT = 2**53 - 1
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


class _NeedsReference(Exception):
    """Internal: the value is outside the fast path's proven domain; use rfc8785.dumps."""


def _jcs_float(value: float) -> float | int:
    if value.is_integer():
        if -_SAFE_INT <= value <= _SAFE_INT:
            return int(value)
        raise _NeedsReference
    if 1e-4 <= abs(value) < 1e16:
        return value
    raise _NeedsReference


def _jcs_prepare(node: Any) -> Any:
    """Return ``node`` (or a copy with floats adjusted) ready for the C encoder, or raise."""
    kind = type(node)
    if kind is dict:
        for key in node:
            if type(key) is not str or not key.isascii():
                raise _NeedsReference
        return _jcs_children(node, node.items(), dict)
    if kind is list or kind is tuple:
        return _jcs_children(node, enumerate(node), list)
    if kind is str or kind is bool or node is None:
        return node
    if kind is int and -_SAFE_INT <= node <= _SAFE_INT:
        return node
    if kind is float:
        return _jcs_float(node)
    raise _NeedsReference


def _jcs_children(node: Any, entries: Iterable[tuple[Any, Any]], copy: Callable[[Any], Any]) -> Any:
    """Prepare a container's children; copy the container (with ``copy``) only if one changes.

    The scalar checks are inlined rather than delegated to :func:`_jcs_prepare` because this loop
    runs once per value of every document: a call per leaf would cost the fast path its speed.
    """
    out = None
    for slot, value in entries:
        vkind = type(value)
        if vkind is str or vkind is bool or value is None:
            continue
        if vkind is int:
            if -_SAFE_INT <= value <= _SAFE_INT:
                continue
            raise _NeedsReference
        new = _jcs_float(value) if vkind is float else _jcs_prepare(value)
        if new is not value:
            if out is None:
                out = copy(node)
            out[slot] = new
    return node if out is None else out


def _text(doc: bytes | bytearray | memoryview | str) -> str:
    if isinstance(doc, str):
        return doc
    try:
        return bytes(doc).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FhirInvalid(f"not UTF-8 JSON: {exc}") from exc


def _as_object(doc: JsonDoc) -> Any:
    if isinstance(doc, (bytes, bytearray, memoryview, str)):
        try:
            return json.loads(_text(doc))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise FhirInvalid(f"not JSON: {exc}") from exc
    return doc


def _parse_float(token: str) -> float | int:
    return _jcs_float(float(token))


def _parse_int(token: str) -> int:
    value = int(token)
    if -_SAFE_INT <= value <= _SAFE_INT:
        return value
    raise _NeedsReference


def _parse_constant(token: str) -> Any:
    raise _NeedsReference  # NaN, Infinity, -Infinity


def _load_for_jcs(text: str) -> Any:
    """json.loads with numbers mapped straight into the fast path's domain (see above)."""
    return json.loads(text, parse_float=_parse_float, parse_int=_parse_int, parse_constant=_parse_constant)


def canonicalize_reference(doc: JsonDoc) -> bytes:
    """RFC 8785 canonical bytes computed by the reference implementation, `rfc8785.dumps`."""
    try:
        return rfc8785.dumps(_as_object(doc))
    except rfc8785.CanonicalizationError as exc:
        raise FhirInvalid(f"cannot canonicalize document: {exc}") from exc


def canonicalize(doc: JsonDoc) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of ``doc`` (a parsed JSON value, or JSON text as str/bytes).

    Byte-identical to `rfc8785.dumps` (see the note above; values outside the fast path's
    proven domain are handed to rfc8785.dumps itself). Raises FhirInvalid when the value has no
    canonical form (NaN, infinities, integers beyond +-(2**53 - 1), non-string keys, lone
    surrogates, non-JSON types).
    """
    return _canonicalize(doc)[1]


def _canonicalize(doc: JsonDoc) -> tuple[Any, bytes]:
    """(parsed object, canonical bytes). JSON text takes the quickest route: numbers are fixed up
    by the parser hooks, and pure-ASCII text cannot contain non-ASCII keys, so no tree walk."""
    try:
        if isinstance(doc, (bytes, bytearray, memoryview, str)):
            text = _text(doc)
            try:
                obj = _load_for_jcs(text)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise FhirInvalid(f"not JSON: {exc}") from exc
            prepared = obj if text.isascii() else _jcs_prepare(obj)
        else:
            obj = doc
            prepared = _jcs_prepare(obj)
    except _NeedsReference:
        obj = _as_object(doc)
        return obj, canonicalize_reference(obj)
    try:
        return obj, _JSON_ENCODER.encode(prepared).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FhirInvalid(
            f"cannot canonicalize document: input contains non-UTF-8 code points ({exc.reason})") from exc
    except RecursionError as exc:
        raise FhirInvalid("cannot canonicalize document: nested too deeply") from exc


def hashes(canonical: bytes) -> tuple[bytes, bytes]:
    """(keccak256, sha256) of canonical bytes."""
    return _keccak(canonical), hashlib.sha256(canonical).digest()


def canonical_document(
    doc: JsonDoc, *, validate: bool = True, version: FhirVersion = "auto"
) -> CanonicalDocument:
    """Validate (unless ``validate=False``), canonicalize and hash one FHIR resource or Bundle.

    ``version`` is "R4", "R4B", "R5" or "auto" (detected from the content, see versions.resolve).
    """
    obj, canonical = _canonicalize(doc)
    resource_type = obj.get("resourceType") if isinstance(obj, Mapping) else None
    if not isinstance(resource_type, str) or not resource_type:
        raise FhirInvalid("resourceType: missing; a FHIR document is a JSON object with a resourceType")
    if validate:
        from medledger.fhir.versions import resolve

        resolve(obj, version, canonical.decode("utf-8"))
    k, s = hashes(canonical)
    return CanonicalDocument(canonical=canonical, keccak=k, sha256=s, resource_type=resource_type)
