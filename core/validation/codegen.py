"""A Node graph compiled to Python source: one `is_valid(value) -> bool` per schema.

The generated check is sound, never complete: it returns True only for values the interpreter
would accept, using exact-type tests (`type(v) is str`) and the canonical-form `fast_*` format
checks. Anything unusual (a str subclass, a float where an integer is due, a lower-case "t" in
a timestamp) makes it return False, and the interpreter then decides. Valid events, the common
case, never reach the interpreter.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from .formats import FAST_FORMAT_CHECKS
from .nodes import Node

_EXACT_TYPE = {"string": "str", "object": "dict", "array": "list", "boolean": "bool"}


class _Generator:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.functions: dict[int, str] = {}     # id(node) -> function name
        self._n = 0

    def const(self, value: Any, prefix: str) -> str:
        for name, existing in self.consts.items():
            if name.startswith(prefix) and existing == value and type(existing) is type(value):
                return name
        self._n += 1
        name = f"{prefix}{self._n}"
        self.consts[name] = value
        return name

    # -- expressions ---------------------------------------------------------------------------
    def expr(self, node: Node, var: str) -> str:
        """A boolean expression over `var`, or a call to the node's generated function."""
        if node.accepts_all:
            return "True"
        if node.rejects_all:
            return "False"
        if self._needs_function(node):
            return f"{self.function(node)}({var})"
        return self._leaf(node, var)

    @staticmethod
    def _needs_function(node: Node) -> bool:
        return bool(node.properties or node.required or node.all_of or node.items is not None
                    or isinstance(node.additional, Node) or node.additional is False)

    def _leaf(self, node: Node, var: str) -> str:
        terms: list[str] = []
        types = node.types
        if types is not None:
            if len(types) != 1:
                return "False"                  # rare: let the interpreter decide
            t = types[0]
            if t in _EXACT_TYPE:
                terms.append(f"type({var}) is {_EXACT_TYPE[t]}")
            elif t == "integer":
                terms.append(f"type({var}) is int")
            elif t == "number":
                terms.append(f"(type({var}) is int or type({var}) is float)")
            elif t == "null":
                terms.append(f"{var} is None")
            else:
                return "False"
        elif node.enum is not None or node.has_const or node.pattern or node.format \
                or node.minimum is not None or node.maximum is not None:
            return "False"                      # untyped but constrained: interpreter
        if node.enum is not None:
            if not all(type(e) is str for e in node.enum) or types != ("string",):
                return "False"
            terms.append(f"{var} in {self.const(frozenset(node.enum), '_E')}")
        if node.has_const:
            if type(node.const) is not str or types not in (None, ("string",)):
                return "False"
            if types is None:
                terms.append(f"type({var}) is str")
            terms.append(f"{var} == {node.const!r}")
        if node.pattern is not None:
            terms.append(f"{self.const(re.compile(node.pattern).search, '_P')}({var}) is not None")
        if node.format is not None and node.format in FAST_FORMAT_CHECKS:
            terms.append(f"{self.const(FAST_FORMAT_CHECKS[node.format], '_F')}({var})")
        numeric = types in (("integer",), ("number",))
        if numeric and node.minimum is not None and node.maximum is not None:
            terms.append(f"{node.minimum!r} <= {var} <= {node.maximum!r}")
        elif numeric and node.minimum is not None:
            terms.append(f"{var} >= {node.minimum!r}")
        elif numeric and node.maximum is not None:
            terms.append(f"{var} <= {node.maximum!r}")
        return " and ".join(terms) if terms else "True"

    # -- functions ------------------------------------------------------------------------------
    def function(self, node: Node) -> str:
        key = id(node)
        if key in self.functions:
            return self.functions[key]
        name = f"_v{len(self.functions)}"
        self.functions[key] = name
        body: list[str] = []
        parts = _flatten(node)
        types = {p.types for p in parts if p.types is not None}
        is_object = types == {("object",)} or (not types and any(p.properties or p.required for p in parts))
        leaf_terms = [self._leaf(_without_structure(p), "x") for p in parts]
        leaf_terms = [t for t in leaf_terms if t != "True"]
        if is_object:
            body.append("if type(x) is not dict: return False")
            leaf_terms = [t for t in leaf_terms if t != "type(x) is dict"]
        for term in leaf_terms:
            body.append(f"if not ({term}): return False")
        required: list[str] = []
        for p in parts:
            required += [r for r in p.required if r not in required]
        if required and is_object:
            if len(required) == 1:
                body.append(f"if {required[0]!r} not in x: return False")
            else:
                body.append(f"if not x.keys() >= {self.const(frozenset(required), '_R')}: return False")
        props: dict[str, list[Node]] = {}
        for p in parts:
            for pname, sub in p.properties.items():
                props.setdefault(pname, []).append(sub)
        if props and is_object:
            for i, (pname, subs) in enumerate(props.items()):
                checks = [c for c in (self.expr(s, f"v{i}") for s in subs) if c != "True"]
                if not checks:
                    continue
                cond = " and ".join(f"({c})" for c in checks)
                if pname in required:
                    body.append(f"v{i} = x[{pname!r}]")
                    body.append(f"if not ({cond}): return False")
                else:
                    body.append(f"v{i} = x.get({pname!r}, _MISSING)")
                    body.append(f"if v{i} is not _MISSING and not ({cond}): return False")
        additional = [p for p in parts if p.additional is not None and p.additional is not True]
        for p in additional:
            known = self.const(frozenset(p.properties), "_K")
            if p.additional is False:
                body.append(f"if not {known}.issuperset(x): return False")
            else:
                check = self.expr(p.additional, "a")
                body.append(f"for k, a in x.items():")
                body.append(f"    if k not in {known} and not ({check}): return False")
        items = [p.items for p in parts if p.items is not None]
        if items:
            body.append("if type(x) is list:")
            body.append("    for a in x:")
            for it in items:
                body.append(f"        if not ({self.expr(it, 'a')}): return False")
        if not is_object and (props or required or additional):
            return self._fallback(name)         # structure on a maybe-not-object: interpreter
        self.lines.append(f"def {name}(x):")
        self.lines += [f"    {line}" for line in body]
        self.lines.append("    return True")
        self.lines.append("")
        return name

    def _fallback(self, name: str) -> str:
        self.lines.append(f"def {name}(x):\n    return False\n")
        return name


def _flatten(node: Node) -> list[Node]:
    """The node and every allOf member, recursively: their conjunction is the node's meaning."""
    out = [node]
    for sub in node.all_of:
        out += _flatten(sub)
    return out


def _without_structure(node: Node) -> Node:
    """The node's scalar keywords only (types, enum, const, pattern, format, bounds)."""
    copy = Node(node.location, types=node.types, enum=node.enum, pattern=node.pattern,
                format=node.format, minimum=node.minimum, maximum=node.maximum)
    copy.const = node.const
    copy.accepts_all, copy.rejects_all = node.accepts_all, node.rejects_all
    return copy


def compile_check(node: Node) -> tuple[Callable[[Any], bool], str]:
    """(is_valid function, its Python source) for `node`."""
    gen = _Generator()
    entry = gen.expr(node, "x")
    source = "\n".join(gen.lines) + f"\ndef is_valid(x):\n    return {entry}\n"
    namespace: dict[str, Any] = {"_MISSING": _MISSING, **gen.consts}
    exec(compile(source, f"<wia-schema {node.location}>", "exec"), namespace)  # noqa: S102 - our own schema
    return namespace["is_valid"], source


_MISSING = object()
