"""JSON Schemas for FHIR R4B and R5 resources, derived from the ``fhir.resources`` models.

``fhir.resources`` is generated from HL7's StructureDefinitions. Its pydantic models carry, per
element, the JSON name, the type, the cardinality (list or not, required or not) and the choice
groups (``value[x]``), but validating a document through them costs about 10 ms per 15 KB Bundle.
This module turns the same models into a JSON Schema (draft 2020-12) per resource type, adds the
required value-set bindings of `bindings.py` and FHIR's primitive regexes, and compiles it with
``jsonschema_rs`` (a Rust validator that reports every error with its instance path, about 30x
faster). The schema expresses:

* cardinality: ``required`` for 1..1 / 1..* elements, arrays for 0..* (with ``minItems: 1``);
* types: objects with ``additionalProperties: false``, FHIR primitive regexes, integer ranges;
* ``ele-1`` (every element has a value or children): empty objects, arrays and strings are refused;
* choice types: at most one ``value[x]`` (and one required where the element is 1..1);
* required bindings on ``code`` and ``CodeableConcept`` elements;
* ``resourceType`` of the root. Nested resources (``contained``, ``Bundle.entry.resource``,
  ``Bundle.entry.response.outcome``, ``Parameters.parameter.resource``) are validated by
  `validation.py` with their own type's schema.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import types
import typing
import uuid
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from medledger.fhir.bindings import CODE_BINDINGS, CONCEPT_BINDINGS

# FHIR's regexes for primitive types (the "regex" extension on each primitive's value element in the
# specification, R4 = R4B = R5 for these), anchored. The key is the fhir_core metadata class name.
_DATE = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TZ = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?"
PRIMITIVES: Final[dict[str, dict[str, Any]]] = {
    "String": {"type": "string", "pattern": r"^[ \r\n\t\S]+$"},
    "Markdown": {"type": "string", "pattern": r"^[ \r\n\t\S]+$"},
    "Code": {"type": "string", "pattern": r"^[^\s]+( [^\s]+)*$"},
    "Id": {"type": "string", "pattern": r"^[A-Za-z0-9\-\.]{1,64}$"},
    "Uri": {"type": "string", "pattern": r"^\S+$"},
    "Url": {"type": "string", "pattern": r"^\S+$"},
    "Canonical": {"type": "string", "pattern": r"^\S+$"},
    "Oid": {"type": "string", "pattern": r"^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$"},
    "Uuid": {"type": "string", "pattern": r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
    "Base64Binary": {"type": "string", "pattern": r"^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$"},
    "Xhtml": {"type": "string", "pattern": r"^\s*<div[\s>]"},
    "Date": {"type": "string", "pattern": rf"^{_DATE}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$"},
    "DateTime": {"type": "string", "pattern": (rf"^{_DATE}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
                                               rf"(T{_TIME}{_TZ})?)?)?$")},
    "Instant": {"type": "string", "pattern": (rf"^{_DATE}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
                                              rf"T{_TIME}{_TZ}$")},
    "Time": {"type": "string", "pattern": rf"^{_TIME}$"},
    "Decimal": {"type": "number"},
    "Integer": {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
    "UnsignedInt": {"type": "integer", "minimum": 0, "maximum": 2147483647},
    "PositiveInt": {"type": "integer", "minimum": 1, "maximum": 2147483647},
    "Integer64": {"type": "string", "pattern": r"^-?([0]|([1-9][0-9]*))$"},  # a JSON string in R5
    "Boolean": {"type": "boolean"},
}
_RESOURCE_SLOT: Final = {"type": "object", "required": ["resourceType"],
                         "properties": {"resourceType": {"type": "string"}}}
#: A marker the validator uses to find nested resources: a ``Resource``-typed element.
RESOURCE_SLOT_KEY: Final = "x-resource-slot"
#: Marker on a CodeableConcept binding, read back by the validator to word the error.
BINDING_KEY: Final = "x-required-binding"


def model_module(version: str) -> Any:
    """The ``get_fhir_model_class`` of a version's model package (R4 uses R4B, see versions.py)."""
    if version == "R5":
        from fhir.resources import get_fhir_model_class
    elif version == "R4B":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        raise ValueError(f"no models for FHIR version {version!r}")
    return get_fhir_model_class


def resource_class(resource_type: str, version: str) -> Any | None:
    """The model class of ``resource_type`` in ``version``, or None when the version has no such resource."""
    get = model_module(version)
    try:
        cls = get(resource_type)
    except (ValueError, KeyError, AttributeError, ImportError):
        return None
    return cls if getattr(cls, "has_resource_base", lambda: False)() else None


class _Builder:
    def __init__(self, version: str) -> None:
        self.version = version
        self.defs: dict[str, Any] = {}
        self.code_bindings = CODE_BINDINGS[version]
        self.concept_bindings = CONCEPT_BINDINGS[version]

    def ref(self, model: Any) -> dict[str, Any]:
        name = model.__name__
        if name == "Resource" and model.__module__.endswith(".resource"):
            return {**_RESOURCE_SLOT, RESOURCE_SLOT_KEY: True}
        if name not in self.defs:
            self.defs[name] = {}  # placeholder against recursion (Extension, Identifier, ...)
            self.defs[name] = self.model_schema(model)
        return {"$ref": f"#/$defs/{name}"}

    def type_schema(self, annotation: Any) -> tuple[dict[str, Any], bool]:
        """(schema of one value, is_array) for a field annotation."""
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                raise TypeError(f"unexpected union {annotation!r}")
            return self.type_schema(args[0])
        if origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
            item, _ = self.type_schema(typing.get_args(annotation)[0])
            return item, True
        if origin is typing.Annotated:
            for meta in typing.get_args(annotation)[1:]:
                name = type(meta).__name__
                if name in PRIMITIVES:
                    return dict(PRIMITIVES[name]), False
            base = typing.get_args(annotation)[0]
            if base is uuid.UUID:
                return dict(PRIMITIVES["Uuid"]), False
            raise TypeError(f"unknown primitive {annotation!r}")
        if annotation is bool:
            return dict(PRIMITIVES["Boolean"]), False
        get_model = getattr(annotation, "get_model_klass", None)
        if get_model is not None:
            return self.ref(get_model()), False
        raise TypeError(f"unsupported annotation {annotation!r}")

    def model_schema(self, model: Any) -> dict[str, Any]:
        name = model.__name__
        props: dict[str, Any] = {}
        required: list[str] = []
        choices: dict[str, tuple[list[str], bool]] = {}
        is_resource = bool(getattr(model, "has_resource_base", lambda: False)()) and name not in (
            "Resource", "DomainResource")
        if is_resource:
            props["resourceType"] = {"const": name}
            required.append("resourceType")
        for field in model.model_fields.values():
            alias = field.alias
            if not alias or alias == "fhir_comments":
                continue
            value, is_array = self.type_schema(field.annotation)
            primitive = "$ref" not in value and RESOURCE_SLOT_KEY not in value
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            codes = self.code_bindings.get((name, alias))
            if codes is not None:
                value["enum"] = list(codes)
            concept = self.concept_bindings.get((name, alias))
            if concept is not None:
                system, ccodes = concept
                value = {"allOf": [value, {
                    "required": ["coding"], BINDING_KEY: f"{system} ({' | '.join(ccodes)})",
                    "properties": {"coding": {"contains": {
                        "required": ["system", "code"],
                        "properties": {"system": {"const": system}, "code": {"enum": list(ccodes)}}}}}}]}
            if is_array:
                if primitive and not alias.startswith("_"):
                    value = {**value, "type": [value["type"], "null"]} if "type" in value else value
                elif alias.startswith("_"):
                    value = {"anyOf": [value, {"type": "null"}]}
                value = {"type": "array", "minItems": 1, "items": value}
            props[alias] = value
            if field.is_required() or (primitive and extra.get("element_required")):
                required.append(alias)
            group = extra.get("one_of_many")
            if group:
                members, req = choices.setdefault(group, ([], False))
                members.append(alias)
                choices[group] = (members, req or bool(extra.get("one_of_many_required")))
        schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False,
                                  "minProperties": 1}
        if required:
            schema["required"] = required
        if choices:
            dependent: dict[str, Any] = {}
            any_of: list[Any] = []
            for group, (members, req) in choices.items():
                for m in members:
                    others = [o for o in members if o != m]
                    dependent[m] = {"properties": {o: {"x-choice": group} | {"not": {}} for o in others}}
                if req:
                    any_of.append({"anyOf": [{"required": [m]} for m in members], "x-choice-required": group})
            schema["dependentSchemas"] = dependent
            if any_of:
                schema["allOf"] = any_of
        return schema


#: Environment variable naming the directory of MedLedger's caches (else ``$XDG_CACHE_HOME/medledger``,
#: else ``~/.cache/medledger``).
CACHE_ENV: Final = "MEDLEDGER_CACHE_DIR"
_SOURCES: Final = ("schema.py", "bindings.py")
_DISTRIBUTIONS: Final = ("fhir.resources", "fhir-core", "pydantic")


@cache
def schema_cache_dir() -> Path:
    """Where built schemas are kept between processes: one folder per build key, so a new release of
    the models or a change of this module or of the bindings never reads an older schema."""
    base = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medledger"
    key = hashlib.sha256()
    for name in _DISTRIBUTIONS:
        try:
            key.update(f"{name}={metadata.version(name)};".encode())
        except metadata.PackageNotFoundError:
            key.update(f"{name}=?;".encode())
    here = Path(__file__).resolve().parent
    for source in _SOURCES:
        key.update((here / source).read_bytes())
    return Path(base) / "fhir-schemas" / key.hexdigest()[:24]


def _cached(resource_type: str, version: str) -> dict[str, Any] | None:
    try:
        schema = json.loads((schema_cache_dir() / version / f"{resource_type}.json").read_bytes())
    except (OSError, ValueError):
        return None
    return schema if isinstance(schema, dict) and isinstance(schema.get("$defs"), dict) else None


def _keep(resource_type: str, version: str, schema: dict[str, Any]) -> None:
    """Writes a built schema to the cache (atomically; a cache that cannot be written is skipped)."""
    folder = schema_cache_dir() / version
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{resource_type}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(schema, out, separators=(",", ":"))
            os.replace(tmp, folder / f"{resource_type}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


@cache
def resource_schema(resource_type: str, version: str) -> dict[str, Any] | None:
    """The JSON Schema (draft 2020-12) of one resource type in ``version``, or None if unknown.

    Building one means importing the type's pydantic models (about 2 s for a Bundle's resources in a
    fresh process), so each built schema is also written to :func:`schema_cache_dir` and later
    processes read it from there (a few ms)."""
    if not resource_type.isidentifier():  # never a path outside the cache
        return None
    cached = _cached(resource_type, version)
    if cached is not None:
        return cached
    cls = resource_class(resource_type, version)
    if cls is None:
        return None
    builder = _Builder(version)
    root = builder.ref(cls)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **root, "$defs": builder.defs}
    _keep(resource_type, version, schema)
    return schema


@cache
def compiled(resource_type: str, version: str) -> Any | None:
    """A compiled ``jsonschema_rs`` validator for one resource type, built once per process."""
    import jsonschema_rs

    schema = resource_schema(resource_type, version)
    if schema is None:
        return None
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=False)
