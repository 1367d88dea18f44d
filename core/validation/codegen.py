"""A Node graph compiled to Python source: one inlined `is_valid(value) -> bool` per schema.

The generated check is sound, never complete: it returns True only for values the interpreter
would accept, using exact-type tests (`type(v) is str`) and the canonical-form `fast_*` format
checks (a date-time the fast pattern refuses gets the exact check inline). Anything unusual (a
str subclass, a float where an integer is due, a uuid with a trailing hyphen) makes it return
False, and the interpreter then decides. Valid events, the common case, never reach the
interpreter.

Nested objects and arrays are inlined into one function (no call per object), optional keys are
tested with `in` (cheaper than `.get` when absent, the usual case), and builtins are bound as
default arguments so they load as locals.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

from .formats import _FAST_DATE_TIME, _FAST_UUID, FAST_FORMAT_CHECKS, is_date_time
from .nodes import Node

_EXACT_TYPE = {"string": "str", "object": "dict", "array": "list", "boolean": "bool"}
#: Python allows 20 statically nested blocks; deeper schema parts become calls.
_MAX_INLINE_DEPTH = 12


def _flatten(node: Node) -> list[Node]:
    """The node and every allOf member, recursively: their conjunction is the node's meaning."""
    out = [node]
    for sub in node.all_of:
        out += _flatten(sub)
    return out


def _is_structural(parts: list[Node]) -> bool:
    return any(p.properties or p.required or p.items is not None or isinstance(p.additional, Node)
               or p.additional is False for p in parts)


class _Generator:
    def __init__(self) -> None:
        self.consts: dict[str, Any] = {}
        self.helpers: list[str] = []             # out-of-line functions (deep or recursive parts)
        self.helper_names: dict[int, str] = {}
        self._n = 0
        self._stack: set[int] = set()

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, value: Any, prefix: str) -> str:
        for name, existing in self.consts.items():
            if name.startswith(prefix) and type(existing) is type(value) and existing == value:
                return name
        name = self.name(prefix)
        self.consts[name] = value
        return name

    # -- scalar keywords as one boolean expression ------------------------------------------------
    def leaf(self, parts: list[Node], var: str) -> str | None:
        """An expression for the scalar keywords of `parts`, or None when only the interpreter can tell."""
        terms: list[str] = []
        types = [p.types for p in parts if p.types is not None]
        if any(len(t) != 1 for t in types) or len({t for t in types}) > 1:
            return None
        t = types[0][0] if types else None
        if t in _EXACT_TYPE:
            terms.append(f"type({var}) is {_EXACT_TYPE[t]}")
        elif t == "integer":
            terms.append(f"type({var}) is int")
        elif t == "number" and _finitely_bounded(parts):
            # NaN and infinity fail `min <= v <= max` below: no separate finiteness test needed
            terms.append(f"(type({var}) is int or type({var}) is float)")
        elif t == "number":
            terms.append(f"(type({var}) is int or type({var}) is float and {var} - {var} == 0)")   # not NaN/inf
        elif t == "null":
            terms.append(f"{var} is None")
        elif t is not None:
            return None
        const = next((p.const for p in parts if p.has_const), None)
        for p in parts:
            if p.rejects_all:
                return "False"
            if p.enum is not None and type(const) is str and const in p.enum:
                pass                    # the const check below implies this enum check
            elif p.enum is not None:
                if t != "string" or not all(type(e) is str for e in p.enum):
                    return None
                terms.append(f"{var} in {self.const(frozenset(p.enum), '_E')}")
            if p.has_const:
                if type(p.const) is not str:
                    return None
                if t is None:
                    terms.append(f"type({var}) is str")
                terms.append(f"{var} == {p.const!r}")
            if p.pattern is not None:
                if t != "string":
                    return None
                terms.append(self.memo_expr(_Memo(re.compile(p.pattern).search), "_P", var))
            if p.format is not None and p.format in FAST_FORMAT_CHECKS:
                if t != "string":
                    return None
                terms.append(self.format_expr(p.format, var))
            if p.minimum is not None or p.maximum is not None:
                if t not in ("integer", "number"):
                    return None
                if p.minimum is not None and p.maximum is not None:
                    terms.append(f"{p.minimum!r} <= {var} <= {p.maximum!r}")
                elif p.minimum is not None:
                    terms.append(f"{var} >= {p.minimum!r}")
                else:
                    terms.append(f"{var} <= {p.maximum!r}")
        return " and ".join(terms) if terms else "True"

    def optional_leaf(self, body: list[str], value: str, var: str, pname: str) -> str | None:
        """One statement for an optional key whose check is a single test mentioning its value
        once: `if 'k' in x and not (test on x['k']): return False` (absent keys cost one probe)."""
        if len(body) != 1 or not body[0].startswith("if not (") or not body[0].endswith("): return False"):
            return None
        test = body[0][len("if not ("):-len("): return False")]
        if test.count(value) != 1:
            read = f"({value} := {var}[{pname!r}])"
            return f"if {pname!r} in {var} and not ({test.replace(value, read, 1)}): return False"
        return f"if {pname!r} in {var} and not ({test.replace(value, f'{var}[{pname!r}]')}): return False"

    def format_expr(self, fmt: str, var: str) -> str:
        """The fast format check, inlined where it is a regex (saves a Python call per value)."""
        if fmt == "uuid":
            return f"{self.const(_FAST_UUID, '_U')}({var}) is not None"
        if fmt == "date-time":
            # A match object is truthy; the exact check runs only for what the fast pattern refuses
            # (29 February, lower-case "t", invalid values), so it may accept those too.
            dt, exact = self.const(_FAST_DATE_TIME, "_D"), self.const(is_date_time, "_DS")
            return f"({dt}({var}) or {exact}({var}))"
        if fmt == "email":
            return f"'@' in {var}"
        if fmt == "uri":
            return self.memo_expr(_Memo(FAST_FORMAT_CHECKS[fmt]), "_M", var)
        return f"{self.const(FAST_FORMAT_CHECKS[fmt], '_F')}({var})"

    def memo_expr(self, memo: "_Memo", prefix: str, var: str) -> str:
        """`var` among the memo's accepted strings (a plain set: `in` on it costs a hash probe, no
        call), else the memo's check, which records what it accepts."""
        name = self.const(memo, prefix)
        accepted = f"{name}_S"                   # registered as is: equal (empty) sets must not merge
        self.consts[accepted] = memo.accepted
        return f"({var} in {accepted} or {name}.check({var}))"

    # -- statements that `return False` on any violation -----------------------------------------
    def block(self, node: Node, var: str, depth: int) -> list[str]:
        parts = _flatten(node)
        if any(p.accepts_all for p in parts) and all(p.accepts_all or not _has_keywords(p) for p in parts):
            return []
        if not _is_structural(parts):
            expr = self.leaf(parts, var)
            if expr is None:
                return ["return False"]
            return [] if expr == "True" else [f"if not ({expr}): return False"]
        if depth > _MAX_INLINE_DEPTH or id(node) in self._stack:
            return [f"if not {self.helper(node)}({var}): return False"]
        self._stack.add(id(node))
        try:
            types = {p.types for p in parts if p.types is not None}
            if types == {("array",)} or (not types and any(p.items is not None for p in parts)
                                         and not any(p.properties or p.required for p in parts)):
                return self._array(parts, var, depth)
            if types and types != {("object",)}:
                return ["return False"]             # structure on a non-object type: interpreter
            return self._object(parts, var, depth)
        finally:
            self._stack.discard(id(node))

    def _object(self, parts: list[Node], var: str, depth: int) -> list[str]:
        lines = [f"if type({var}) is not dict: return False"]
        scalar = self.leaf([_scalars(p) for p in parts], var)
        if scalar is None:
            return ["return False"]
        if scalar not in ("True", f"type({var}) is dict"):
            lines.append(f"if not ({scalar}): return False")
        required: list[str] = []
        for p in parts:
            required += [r for r in p.required if r not in required]
        # Required keys are read with var[key]: a missing one raises KeyError, which the
        # function's try/except turns into False (a try costs nothing when nothing is raised).
        props: dict[str, list[Node]] = {}
        for p in parts:
            for pname, sub in p.properties.items():
                props.setdefault(pname, []).append(sub)
        for pname in required:
            if pname not in props:
                lines.append(f"{var}[{pname!r}]")
        optional: list[str] = []
        for pname, subs in props.items():
            value = self.name("v")
            body: list[str] = []
            flat = [q for sub in subs for q in _flatten(sub)]
            if len(subs) > 1 and not _is_structural(flat):
                expr = self.leaf(flat, value)        # one test for e.g. `type`: const + enum
                body = ["return False"] if expr is None else ([] if expr == "True" else [f"if not ({expr}): return False"])
            else:
                for sub in subs:
                    body += self.block(sub, value, depth + 1)
            if not body:
                if pname in required:
                    lines.append(f"{var}[{pname!r}]")
                continue
            if pname in required and len(body) == 1 and body[0].startswith("if not (") and value not in body[0][8:].split(value, 1)[1]:
                # a single test that mentions the value once: read it in place
                lines.append(body[0].replace(value, f"{var}[{pname!r}]", 1))
            elif pname in required and len(body) == 1 and body[0].startswith("if not ("):
                read = f"({value} := {var}[{pname!r}])"
                lines.append(body[0].replace(value, read, 1))
            elif pname in required:
                lines.append(f"{value} = {var}[{pname!r}]")
                lines += body
            elif (single := self.optional_leaf(body, value, var, pname)) is not None:
                optional.append(single)
            else:
                optional.append(f"if {pname!r} in {var}:")
                optional.append(f"    {value} = {var}[{pname!r}]")
                optional += [f"    {b}" for b in body]
        if optional and required:
            # Objects often hold just their required keys: then no optional key needs probing.
            lines.append(f"if len({var}) > {len(required)}:")
            lines += [f"    {b}" for b in optional]
        else:
            lines += optional
        for p in parts:
            if p.additional is None or p.additional is True:
                continue
            known = self.const(frozenset(p.properties), "_K")
            if p.additional is False:
                lines.append(f"if not {known}.issuperset({var}): return False")
                continue
            key, item = self.name("k"), self.name("a")
            body = self.block(p.additional, item, depth + 2)
            if body:
                lines.append(f"for {key}, {item} in {var}.items():")
                lines.append(f"    if {key} not in {known}:")
                lines += [f"        {b}" for b in body]
        return lines

    def _array(self, parts: list[Node], var: str, depth: int) -> list[str]:
        lines = [f"if type({var}) is not list: return False"]
        for p in parts:
            if p.items is None:
                continue
            item = self.name("a")
            body = self.block(p.items, item, depth + 1)
            if body:
                lines.append(f"for {item} in {var}:")
                lines += [f"    {b}" for b in body]
        return lines

    def helper(self, node: Node) -> str:
        """An out-of-line function for a node (recursion, or nesting deeper than Python allows)."""
        if id(node) in self.helper_names:
            return self.helper_names[id(node)]
        fname = self.name("_h")
        self.helper_names[id(node)] = fname
        saved, self._stack = self._stack, set()
        body = self.block(node, "x", 0)
        self._stack = saved
        self.helpers.append(_function(fname, body))
        return fname


class _Memo:
    """Strings a check accepted before (bounded): repeated values (ATT&CK ids, "1.0.0", the
    $schema URI) skip the regex. Only accepted values are stored, so a hit is always sound.

    The generated code tests `value in memo.accepted` itself: a plain set, because `in` on a
    dict subclass goes through a slot wrapper and costs several times a set probe."""

    __slots__ = ("accepted", "_check")
    LIMIT = 4096

    def __init__(self, check: Callable[[str], Any]) -> None:
        self.accepted: set[str] = set()
        self._check = check

    def check(self, value: str) -> bool:
        verdict = self._check(value)             # once: a regex run is the expensive part
        if verdict is None or verdict is False:
            return False
        if len(self.accepted) >= self.LIMIT:
            self.accepted.clear()                # in place: the generated code holds this set
        self.accepted.add(value)
        return True


def _finitely_bounded(parts: list[Node]) -> bool:
    """Both a minimum and a maximum, finite: then range tests alone refuse NaN and infinity."""
    lows = [p.minimum for p in parts if p.minimum is not None]
    highs = [p.maximum for p in parts if p.maximum is not None]
    return bool(lows and highs) and all(math.isfinite(b) for b in lows + highs)


def _has_keywords(node: Node) -> bool:
    return bool(node.types or node.properties or node.required or node.enum is not None or node.has_const
                or node.pattern or node.format or node.minimum is not None or node.maximum is not None
                or node.items is not None or node.additional is not None or node.all_of or node.rejects_all)


def _scalars(node: Node) -> Node:
    """The node's scalar keywords only (types, enum, const, pattern, format, bounds)."""
    copy = Node(node.location, types=node.types, enum=node.enum, pattern=node.pattern,
                format=node.format, minimum=node.minimum, maximum=node.maximum)
    copy.const = node.const
    copy.rejects_all = node.rejects_all
    return copy


_BUILTINS = "type=type, str=str, dict=dict, list=list, int=int, float=float, bool=bool"


def _function(name: str, body: list[str]) -> str:
    lines = [f"def {name}(x, {_BUILTINS}):", "    try:"] + [f"        {b}" for b in body]
    lines += ["    except KeyError:", "        return False", "    return True", ""]
    return "\n".join(lines)


def compile_check(node: Node) -> tuple[Callable[[Any], bool], str]:
    """(is_valid function, its Python source) for `node`."""
    gen = _Generator()
    main = _function("is_valid", gen.block(node, "x", 0))
    source = "\n".join(gen.helpers) + "\n" + main
    namespace: dict[str, Any] = dict(gen.consts)
    exec(compile(source, f"<wia-schema {node.location}>", "exec"), namespace)  # noqa: S102 - our own schema
    return namespace["is_valid"], source
