"""Draft-07 schema documents turned into a graph of Node objects, `$ref`s resolved offline.

Only the keywords and formats the WIA schemas use are supported; any other validation keyword, or a
format without a check, is refused at load time (SchemaCompileError) so a schema change can never be
silently ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import schemas
from ..errors import WiaError
from .formats import FORMAT_CHECKS

#: Keywords that carry no validation meaning.
ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "definitions",
                         "default", "examples"})
SUPPORTED = frozenset({"type", "properties", "required", "enum", "const", "pattern", "format",
                       "minimum", "maximum", "items", "additionalProperties", "allOf", "$ref"})

_NO_CONST = object()


class SchemaCompileError(WiaError):
    """A bundled schema uses something this validator does not implement."""


@dataclass(eq=False)
class Node:
    """One schema object; `location` is `file#pointer`, used as the error's schema path."""

    location: str
    types: tuple[str, ...] | None = None
    properties: dict[str, "Node"] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    enum: tuple[Any, ...] | None = None
    const: Any = _NO_CONST
    pattern: str | None = None
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    items: "Node | None" = None
    additional: "Node | bool | None" = None
    all_of: tuple["Node", ...] = ()
    accepts_all: bool = False          # the `true` schema (or `{}`)
    rejects_all: bool = False          # the `false` schema

    @property
    def has_const(self) -> bool:
        return self.const is not _NO_CONST


class _Loader:
    def __init__(self) -> None:
        self._done: dict[tuple[str, str], Node] = {}

    def load(self, uri: str) -> Node:
        doc, doc_uri, pointer = schemas.resolve(uri, uri)
        return self._node(doc, doc_uri, pointer)

    def _node(self, schema: Any, base: str, pointer: str) -> Node:
        key = (base, pointer)
        if key in self._done:
            return self._done[key]
        location = f"{base.rsplit('/', 1)[-1]}#{pointer}"
        node = Node(location)
        self._done[key] = node          # registered before descending, so cycles terminate
        if schema is True or schema == {}:
            node.accepts_all = True
            return node
        if schema is False:
            node.rejects_all = True
            return node
        if not isinstance(schema, dict):
            raise SchemaCompileError(f"{location}: a schema must be an object or boolean")
        base = schema.get("$id", base) if pointer == "" else base
        if "$ref" in schema:
            # Draft-07: keywords beside $ref are ignored.
            target, target_base, target_ptr = schemas.resolve(schema["$ref"], base)
            resolved = self._node(target, target_base, target_ptr)
            self._done[key] = resolved
            return resolved
        unknown = set(schema) - SUPPORTED - ANNOTATIONS
        if unknown:
            raise SchemaCompileError(f"{location}: unsupported keywords {sorted(unknown)}")
        t = schema.get("type")
        if t is not None:
            node.types = (t,) if isinstance(t, str) else tuple(t)
        for name, sub in schema.get("properties", {}).items():
            node.properties[name] = self._node(sub, base, f"{pointer}/properties/{_escape(name)}")
        node.required = tuple(schema.get("required", ()))
        if "enum" in schema:
            node.enum = tuple(schema["enum"])
        if "const" in schema:
            node.const = schema["const"]
        node.pattern = schema.get("pattern")
        node.format = schema.get("format")
        if node.format is not None and node.format not in FORMAT_CHECKS:
            # the reference checks many formats (ipv4, date, hostname, ...): skipping one would accept
            # what it refuses
            raise SchemaCompileError(f"{location}: format {node.format!r} has no check here")
        node.minimum = schema.get("minimum")
        node.maximum = schema.get("maximum")
        if "items" in schema:
            if isinstance(schema["items"], list):
                raise SchemaCompileError(f"{location}: tuple-form items is not supported")
            node.items = self._node(schema["items"], base, f"{pointer}/items")
        if "additionalProperties" in schema:
            ap = schema["additionalProperties"]
            node.additional = ap if isinstance(ap, bool) else self._node(ap, base, f"{pointer}/additionalProperties")
        node.all_of = tuple(self._node(s, base, f"{pointer}/allOf/{i}") for i, s in enumerate(schema.get("allOf", ())))
        return node


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def load_node(uri: str) -> Node:
    """The compiled root node of the bundled schema at `uri`."""
    return _Loader().load(uri)
