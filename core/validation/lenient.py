"""Lenient mode: an optional field set to null is treated as absent, and each drop is reported.

The schema types optional fields as plain strings, so `null` is invalid (two upstream samples
carry such nulls). Lenient mode removes a null-valued key that the schema defines but does not
require; a null in a required field, inside an array, or under a key the schema does not know,
stays (and is an error where the schema says so).
"""
from __future__ import annotations

from typing import Any

from .nodes import Node
from .result import ValidationIssue, pointer


def drop_nulls(node: Node, value: Any, path: tuple[str | int, ...] = ()) -> tuple[Any, list[ValidationIssue]]:
    """A copy of `value` without optional nulls (the input is never modified), and a warning per drop."""
    dropped: list[ValidationIssue] = []
    return _walk(node, value, path, dropped), dropped


def _parts(node: Node) -> list[Node]:
    out = [node]
    for sub in node.all_of:
        out += _parts(sub)
    return out


def _allows_null(node: Node) -> bool:
    return node.accepts_all or all(p.types is None or "null" in p.types for p in _parts(node))


def _walk(node: Node, value: Any, path: tuple[str | int, ...], dropped: list[ValidationIssue]) -> Any:
    parts = _parts(node)
    if isinstance(value, dict):
        required = {r for p in parts for r in p.required}
        out: dict[str, Any] = {}
        for key, item in value.items():
            subs = [p.properties[key] for p in parts if key in p.properties]
            if item is None and subs and key not in required and not any(_allows_null(s) for s in subs):
                dropped.append(ValidationIssue(pointer((*path, key)), "null_dropped",
                                               f"optional field {key!r} was null; treated as absent"))
                continue
            for sub in subs:
                item = _walk(sub, item, (*path, key), dropped)
            out[key] = item
        return out
    if isinstance(value, list):
        items = [p.items for p in parts if p.items is not None]
        if not items:
            return value
        result = []
        for i, item in enumerate(value):
            for sub in items:
                item = _walk(sub, item, (*path, i), dropped)
            result.append(item)
        return result
    return value
