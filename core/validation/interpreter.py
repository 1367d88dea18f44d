"""The exact, error-collecting walk over a Node graph: every violation, each with its path.

This walk is the authority on verdicts (the generated fast check only short-cuts valid events);
its keyword semantics are those of jsonschema's Draft7Validator with a FormatChecker.
"""
from __future__ import annotations

import numbers
import re
from functools import lru_cache
from typing import Any, Iterator

from .formats import FORMAT_CHECKS
from .nodes import Node
from .result import ValidationIssue, pointer

_JSON_TYPE_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
                    int: "integer", float: "number"}


def json_type_name(value: Any) -> str:
    for t, name in _JSON_TYPE_NAMES.items():
        if isinstance(value, t):
            return name
    return type(value).__name__


_JSON_CONSTANTS = {None: "null", True: "true", False: "false"}


def short_repr(value: Any, limit: int = 80) -> str:
    """repr() cut to `limit` characters, so a 10 MB string never lands in a message whole."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} chars)"
    if isinstance(value, (dict, list)):
        return f"<{json_type_name(value)} of {len(value)}>"
    if value is None or value is True or value is False:
        return _JSON_CONSTANTS[value]        # the JSON the user wrote, not Python's None/True/False
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "number":
        if type(value) is int:
            return True
        if not isinstance(value, numbers.Number):
            return False
        # NaN and infinity are no JSON numbers (RFC 8259 s6), as a float or a Decimal (whose NaN makes `<`
        # raise and whose infinity makes `-` raise): x - x is 0 for every finite number
        try:
            return bool(value - value == 0)
        except ArithmeticError:
            return False
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    raise ValueError(f"unknown JSON type {name!r}")


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema means it: True is not 1, and sequences/mappings compare deeply."""
    if a is b:
        return True
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - exotic objects that refuse comparison are simply unequal
        return False


@lru_cache(maxsize=256)
def _search(pattern: str) -> Any:
    return re.compile(pattern).search


def iter_errors(node: Node, value: Any, path: tuple[str | int, ...] = ()) -> Iterator[ValidationIssue]:
    """Every violation of `node` by `value`, depth first, in keyword order."""
    if node.accepts_all:
        return
    here = pointer(path)
    if node.rejects_all:
        yield ValidationIssue(here, "false_schema", "no value is allowed here", node.location)
        return
    for sub in node.all_of:
        yield from iter_errors(sub, value, path)
    if node.types is not None and not any(is_type(value, t) for t in node.types):
        expected = " or ".join(node.types)
        yield ValidationIssue(here, "type", f"{short_repr(value)} is not of type {expected}",
                              f"{node.location}/type")
    if node.enum is not None and not any(json_equal(value, e) for e in node.enum):
        choices = ", ".join(repr(e) for e in node.enum)
        yield ValidationIssue(here, "enum", f"{short_repr(value)} is not one of: {choices}",
                              f"{node.location}/enum")
    if node.has_const and not json_equal(value, node.const):
        yield ValidationIssue(here, "const", f"{node.const!r} was expected, got {short_repr(value)}",
                              f"{node.location}/const")
    if isinstance(value, str):
        if node.pattern is not None and not _search(node.pattern)(value):
            yield ValidationIssue(here, "pattern", f"{short_repr(value)} does not match {node.pattern!r}",
                                  f"{node.location}/pattern")
        if node.format is not None:
            check = FORMAT_CHECKS.get(node.format)
            if check is not None and not check(value):
                yield ValidationIssue(here, "format", f"{short_repr(value)} is not a valid {node.format}",
                                      f"{node.location}/format")
    if is_type(value, "number"):
        if node.minimum is not None and value < node.minimum:
            yield ValidationIssue(here, "minimum", f"{short_repr(value)} is less than the minimum of {node.minimum}",
                                  f"{node.location}/minimum")
        if node.maximum is not None and value > node.maximum:
            yield ValidationIssue(here, "maximum", f"{short_repr(value)} is greater than the maximum of {node.maximum}",
                                  f"{node.location}/maximum")
    if isinstance(value, dict):
        for name in node.required:
            if name not in value:
                yield ValidationIssue(pointer((*path, name)), "required", f"required property {name!r} is missing",
                                      f"{node.location}/required")
        for name, sub in node.properties.items():
            if name in value:
                yield from iter_errors(sub, value[name], (*path, name))
        if node.additional is not None and node.additional is not True:
            for name in value:
                if name in node.properties:
                    continue
                if node.additional is False:
                    yield ValidationIssue(pointer((*path, name)), "additional_properties",
                                          f"property {name!r} is not allowed here", f"{node.location}/additionalProperties")
                else:
                    yield from iter_errors(node.additional, value[name], (*path, name))
    elif isinstance(value, list) and node.items is not None:
        for i, item in enumerate(value):
            yield from iter_errors(node.items, item, (*path, i))
