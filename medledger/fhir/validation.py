"""Validation a receiving FHIR system would accept, reporting every error with its FHIR path.

One run makes four kinds of check (docs/FHIR.md lists what each covers and what is left out):

1. structure, cardinality, types, primitive formats, ``ele-1``, choice types and required
   value-set bindings: a JSON Schema per resource type (schema.py) compiled with ``jsonschema_rs``;
2. nested resources (``contained``, ``Bundle.entry.resource``, ...) with their own type's schema;
3. resource-level FHIRPath invariants with ``fhirpathpy`` (invariants.py);
4. references: ``#id`` resolves to a contained resource (``ref-1``), and inside a Bundle every
   ``urn:uuid:`` / ``urn:oid:`` reference and every relative ``Type/id`` reference resolves to an
   entry (a transaction or batch may also point at resources already on the server).

`check` returns a `ValidationReport` with every `Issue`; `validate_document` raises
`FhirValidationFailed` (a `FhirInvalid`) listing them all.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from medledger.errors import FhirInvalid, FhirValidationFailed
from medledger.fhir import invariants, schema
from medledger.fhir.bindings import CONCEPT_BINDINGS

_MAX_IN_MESSAGE = 50
_PATTERN_NAMES = {spec["pattern"]: name for name, spec in schema.PRIMITIVES.items() if "pattern" in spec}
_TYPE_WORDS = {"String": "string", "Markdown": "markdown", "Code": "code", "Id": "id", "Uri": "uri",
               "Url": "url", "Canonical": "canonical", "Oid": "oid", "Uuid": "uuid", "Date": "date",
               "DateTime": "dateTime", "Instant": "instant", "Time": "time", "Base64Binary": "base64Binary",
               "Xhtml": "xhtml", "Integer64": "integer64"}
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_URL_TAIL = re.compile(r"([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})$")
_RELATIVE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")


@dataclass(frozen=True)
class Issue:
    """One validation error: where (a FHIR path such as ``Bundle.entry[2].resource.status``), what, which rule."""

    path: str
    message: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class ValidationReport:
    """All issues of one document validated as one FHIR version."""

    version: str
    resource_type: str
    issues: tuple[Issue, ...]

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(i.path for i in self.issues)

    def message(self) -> str:
        n = len(self.issues)
        shown = "; ".join(str(i) for i in self.issues[:_MAX_IN_MESSAGE])
        more = f"; ... and {n - _MAX_IN_MESSAGE} more" if n > _MAX_IN_MESSAGE else ""
        return f"invalid FHIR {self.version} {self.resource_type} ({n} error{'s' if n != 1 else ''}): {shown}{more}"

    def raise_for_issues(self) -> None:
        if self.issues:
            raise FhirValidationFailed(self.message(), issues=self.issues, version=self.version)


# --------------------------------------------------------------------------- paths and messages


def join(path: str, parts: Any) -> str:
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _concept_binding(schema_path: list[Any], version: str) -> str:
    for j in range(len(schema_path) - 1, 2, -1):
        if schema_path[j] == "allOf" and schema_path[j - 2] == "properties":
            binding = CONCEPT_BINDINGS[version].get((schema_path[j - 3], schema_path[j - 1]))
            if binding:
                return f"{binding[0]} ({' | '.join(binding[1])})"
    return "the required value set"


def _issues_from_schema(error: Any, root: str, version: str, label: str) -> Iterator[Issue]:
    kind = error.kind
    name = kind.name
    path = join(root, error.instance_path)
    sp = list(error.schema_path)
    if name == "required":
        yield Issue(join(path, [kind.property]), "missing (a required element, cardinality 1..)", "cardinality")
    elif name == "additionalProperties":
        for prop in kind.unexpected:
            yield Issue(join(path, [prop]), f"unknown element for FHIR {label}", "structure")
    elif name == "enum":
        codes = " | ".join(str(o) for o in kind.options)
        yield Issue(path, f"code {_json(error.instance)} is not in the required value set ({codes})", "binding")
    elif name == "contains":
        yield Issue(path, f"no coding from the required value set {_concept_binding(sp, version)}", "binding")
    elif name == "pattern":
        word = _TYPE_WORDS.get(_PATTERN_NAMES.get(kind.pattern, ""), "value")
        if error.instance == "":
            yield Issue(path, "empty string (ele-1: an element needs a value or children)", "ele-1")
        else:
            yield Issue(path, f"{_json(error.instance)} is not a valid FHIR {word}", "type")
    elif name == "minItems":
        yield Issue(path, "empty array (ele-1: an element needs a value or children)", "ele-1")
    elif name == "minProperties":
        yield Issue(path, "empty object (ele-1: an element needs a value or children)", "ele-1")
    elif name == "not" and len(sp) >= 4 and sp[-3] == "properties":
        other = sp[-4]
        if str(sp[-2]) < str(other):  # the pair is reported from both sides; keep one
            yield Issue(path, f"only one choice of this element may be given, found {other} too", "choice")
    elif name == "anyOf" and all(isinstance(ctx, list) for ctx in getattr(kind, "context", [])):
        yield Issue(path, "missing (one of the choice type's elements is required)", "cardinality")
    elif name == "type":
        yield Issue(path, f"expected {error.message.rsplit(' of type ', 1)[-1].strip()}, got {_json(error.instance)}",
                    "type")
    elif name == "const" and error.instance_path and error.instance_path[-1] == "resourceType":
        yield Issue(path, f"{_json(error.instance)} is not allowed here", "structure")
    elif name in ("minimum", "maximum"):
        yield Issue(path, f"{_json(error.instance)} is out of range ({error.message})", "type")
    else:
        yield Issue(path, error.message, "structure")


# --------------------------------------------------------------------------- the checks


def _slots(resource: Mapping[str, Any]) -> Iterator[tuple[list[Any], Any]]:
    """Nested resources of ``resource``: (relative path, value)."""
    rtype = resource.get("resourceType")
    contained = resource.get("contained")
    if isinstance(contained, list):
        for i, r in enumerate(contained):
            yield ["contained", i], r
    if rtype == "Bundle":
        for i, entry in enumerate(resource.get("entry") or ()):
            if isinstance(entry, Mapping):
                if "resource" in entry:
                    yield ["entry", i, "resource"], entry["resource"]
                response = entry.get("response")
                if isinstance(response, Mapping) and "outcome" in response:
                    yield ["entry", i, "response", "outcome"], response["outcome"]
    elif rtype == "Parameters":
        for i, param in enumerate(resource.get("parameter") or ()):
            if isinstance(param, Mapping) and "resource" in param:
                yield ["parameter", i, "resource"], param["resource"]


def _check_resource(resource: Any, path: str, version: str, label: str, issues: list[Issue],
                    depth: int = 0) -> None:
    if not isinstance(resource, Mapping):
        issues.append(Issue(path, f"expected a JSON object (a FHIR resource), got {_json(resource)}", "structure"))
        return
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        issues.append(Issue(f"{path}.resourceType", "missing (every resource names its resourceType)", "structure"))
        return
    validator = schema.compiled(rtype, version)
    if validator is None:
        issues.append(Issue(f"{path}.resourceType", f"unknown FHIR {label} resource type {rtype!r}", "structure"))
        return
    before = len(issues)
    for error in validator.iter_errors(resource):
        issues.extend(_issues_from_schema(error, path, version, label))
    well_formed = len(issues) == before
    if depth < 8:
        for rel, nested in _slots(resource):
            _check_resource(nested, join(path, rel), version, label, issues, depth + 1)
    if well_formed:  # FHIRPath needs a well-formed resource; structure errors come first
        for inv in invariants.failing(resource, version):  # type: ignore[arg-type]
            issues.append(Issue(path, f"{inv.key}: {inv.human}", "invariant"))


def _walk_references(node: Any, parts: list[Any], out: list[tuple[tuple[Any, ...], str]]) -> None:
    """Appends (relative path parts, reference) for every Reference.reference below ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                parts.append(key)
                _walk_references(value, parts, out)
                parts.pop()
            elif key == "reference" and isinstance(value, str):
                out.append(((*parts, key), value))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, (dict, list)):
                parts.append(i)
                _walk_references(value, parts, out)
                parts.pop()


_REFERENCE_TEXT = re.compile(r'"reference":\s*"((?:[^"\\]|\\.)*)"')


def _may_fail(doc: dict[str, Any], bundle: bool, full_urls: set[str], local: set[str], server: bool,
              text: str | None) -> bool:
    """A quick screen on the JSON text (the C encoder plus one regex): False when no reference can fail,
    so the per-element walk that finds the failing paths is skipped. Exact: it applies the same rules."""
    if text is None:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    for raw in _REFERENCE_TEXT.findall(text):
        ref = json.loads(f'"{raw}"') if "\\" in raw else raw
        if ref.startswith("#") or (bundle and ref not in full_urls and (
                ref.startswith(("urn:uuid:", "urn:oid:")) or (
                    not _ABSOLUTE.match(ref) and not server and not (
                        (m := _RELATIVE.match(ref)) and f"{m['type']}/{m['id']}" in local)))):
            return True
    return False


def _check_references(doc: dict[str, Any], root: str, issues: list[Issue], text: str | None = None) -> None:
    """ref-1 (``#id`` resolves to a contained resource of the same resource, ``#`` alone to the container) and,
    in a Bundle, references between entries (see the module note). One walk per resource."""
    bundle = doc.get("resourceType") == "Bundle"
    units = [(root, doc)] if not bundle else [
        (f"{root}.entry[{i}].resource", e["resource"]) for i, e in enumerate(doc.get("entry") or ())
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    full_urls: set[str] = set()
    local: set[str] = set()
    server_refs_allowed = doc.get("type") in ("transaction", "batch", "history", "searchset")
    if bundle:
        for entry in doc.get("entry") or ():
            if not isinstance(entry, dict):
                continue
            url, resource = entry.get("fullUrl"), entry.get("resource")
            if isinstance(url, str):
                full_urls.add(url)
                if not url.startswith("urn:") and (m := _URL_TAIL.search(url)):
                    local.add(m.group(1))
            if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                local.add(f"{resource.get('resourceType')}/{resource['id']}")
    if not _may_fail(doc, bundle, full_urls, local, server_refs_allowed, text):
        return
    for base, resource in units:
        refs: list[tuple[tuple[Any, ...], str]] = []
        _walk_references(resource, [], refs)
        if not refs:
            continue
        ids = {c.get("id") for c in resource.get("contained") or () if isinstance(c, dict)}
        for parts, ref in refs:
            if ref.startswith("#"):
                if ref != "#" and ref[1:] not in ids:
                    issues.append(Issue(join(base, parts), f"{ref!r} does not resolve to a contained resource "
                                        "(ref-1)", "reference"))
                continue
            if not bundle or ref in full_urls:
                continue
            if ref.startswith(("urn:uuid:", "urn:oid:")):
                issues.append(Issue(join(base, parts), f"{ref!r} does not resolve to an entry of this Bundle",
                                    "reference"))
            elif _ABSOLUTE.match(ref):
                continue  # an absolute URL outside the Bundle points at another server
            elif m := _RELATIVE.match(ref):
                if f"{m['type']}/{m['id']}" not in local and not server_refs_allowed:
                    issues.append(Issue(join(base, parts), f"{ref!r} does not resolve to an entry of this Bundle",
                                        "reference"))
            elif not server_refs_allowed:
                issues.append(Issue(join(base, parts), f"{ref!r} is not a valid reference", "reference"))


def check(doc: Any, version: str, text: str | None = None) -> ValidationReport:
    """Validate a parsed FHIR resource or Bundle as ``version`` ("R4", "R4B" or "R5") and return every issue.

    R4 is validated with the R4B definitions (see versions.py). Never raises for invalid content.
    ``text``, when the caller has it, is ``doc`` as JSON text (e.g. its canonical form): it saves
    re-encoding the document for the reference screen.
    """
    from medledger.fhir.versions import model_version, normalize

    models = model_version(version)
    issues: list[Issue] = []
    if not isinstance(doc, Mapping):
        issues.append(Issue("document", f"expected a JSON object, got {type(doc).__name__}", "structure"))
        return ValidationReport(version, "document", tuple(issues))
    rtype = doc.get("resourceType")
    root = rtype if isinstance(rtype, str) and rtype else "document"
    if root == "document":
        issues.append(Issue("resourceType", "missing; a FHIR document is a JSON object with a resourceType",
                            "structure"))
        return ValidationReport(version, root, tuple(issues))
    _check_resource(doc, root, models, normalize(version), issues)
    _check_references(doc, root, issues, text)
    return ValidationReport(version, root, tuple(issues))


def quick_valid(doc: Any, version: str) -> bool:
    """A fast yes/no on structure only (no error objects): the root and its nested resources against
    their schemas. Used to pick a version before the full `check`."""
    from medledger.fhir.versions import model_version

    models = model_version(version)

    def ok(resource: Any, depth: int) -> bool:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return False
        validator = schema.compiled(resource["resourceType"], models)
        if validator is None or not validator.is_valid(resource):
            return False
        return depth >= 8 or all(ok(nested, depth + 1) for _, nested in _slots(resource))

    return ok(doc, 0)


def parse(doc: Any) -> Any:
    """JSON text (str/bytes) to a Python value; already-parsed values pass through. Raises FhirInvalid."""
    if isinstance(doc, (bytes, bytearray, memoryview)):
        try:
            doc = bytes(doc).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FhirInvalid(f"not UTF-8 JSON: {exc}") from exc
    if isinstance(doc, str):
        try:
            return json.loads(doc)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise FhirInvalid(f"not JSON: {exc}") from exc
    return doc
