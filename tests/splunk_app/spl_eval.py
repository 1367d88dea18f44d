"""The search-time part of Splunk the app's props.conf relies on, small enough to check by eye:
KV_MODE=json extraction, FIELDALIAS, EVAL (the function subset props.conf uses) and event-type
searches of the form `sourcetype="x" field="v" field IN ("a", "b")`.

Semantics follow the Splunk docs: JSON keys are joined with "." and arrays add "{}"; field
aliases run before calculated fields; all EVAL- settings of a stanza are evaluated in parallel on
the fields as they were before any EVAL ("you cannot reference one calculated field in another");
an EVAL that yields null removes the field; null propagates through operators; comparisons are
numeric when both sides are numbers.
"""
from __future__ import annotations

import re
from typing import Any

Value = Any  # None | str | float | list[str]


# -- extraction ---------------------------------------------------------------------------------
def flatten_json(obj: Any, prefix: str = "", out: dict[str, list[str]] | None = None) -> dict[str, Value]:
    top = out is None
    out = {} if out is None else out
    if isinstance(obj, dict):
        for key, value in obj.items():
            flatten_json(value, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(obj, list):
        for item in obj:
            flatten_json(item, prefix + "{}", out)
    else:
        text = "null" if obj is None else ("true" if obj is True else "false" if obj is False else str(obj))
        out.setdefault(prefix, []).append(text)
    if top:
        return {k: (v[0] if len(v) == 1 else v) for k, v in out.items()}
    return out  # type: ignore[return-value]


def apply_props(stanza: dict[str, str], event: dict[str, Any], sourcetype: str) -> dict[str, Value]:
    fields: dict[str, Value] = {"sourcetype": sourcetype}
    if stanza.get("KV_MODE") == "json":
        fields.update(flatten_json(event))
    for key in sorted(k for k in stanza if k.startswith("FIELDALIAS-")):
        tokens = stanza[key].split()
        i = 0
        while i < len(tokens):
            src, op, dst = tokens[i], tokens[i + 1].upper(), tokens[i + 2]
            if op not in ("AS", "ASNEW"):
                raise ValueError(f"{key}: expected AS/ASNEW after {src!r}, got {tokens[i + 1]!r}")
            if src in fields and (op == "AS" or dst not in fields):
                fields[dst] = fields[src]
            i += 3
    snapshot = dict(fields)
    results = {key[5:]: evaluate(expr, snapshot) for key, expr in stanza.items() if key.startswith("EVAL-")}
    for name, value in results.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


# -- eval expressions ---------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>\d+(?:\.\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<field>'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|>=|<=|[=<>+\-*/%.(),])
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""", re.VERBOSE)


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise SyntaxError(f"cannot read eval expression at {expr[pos:pos + 20]!r}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(expr) and expr[pos].isspace():
            pos += 1
    return tokens


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], fields: dict[str, Value]) -> None:
        self.t, self.i, self.fields = tokens, 0, fields

    def peek(self) -> tuple[str, str] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1].upper() != value):
            raise SyntaxError(f"expected {value or 'a token'}, got {tok}")
        self.i += 1
        return tok

    def at(self, *values: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] in ("op", "name") and tok[1].upper() in values

    # Lazy evaluation: each parse_* returns a thunk so if()/case()/coalesce() only evaluate what they use.
    def expr(self):
        left = self.and_()
        while self.at("OR"):
            self.take()
            right = self.and_()
            left = (lambda a, b: lambda: _truth(a()) or _truth(b()))(left, right)
        return left

    def and_(self):
        left = self.not_()
        while self.at("AND"):
            self.take()
            right = self.not_()
            left = (lambda a, b: lambda: _truth(a()) and _truth(b()))(left, right)
        return left

    def not_(self):
        if self.at("NOT"):
            self.take()
            inner = self.not_()
            return lambda: not _truth(inner())
        return self.compare()

    def compare(self):
        left = self.additive()
        if self.at("==", "=", "!=", ">=", "<=", ">", "<"):
            op = self.take()[1]
            right = self.additive()
            return (lambda a, b: lambda: _compare(op, a(), b()))(left, right)
        return left

    def additive(self):
        left = self.term()
        while self.at("+", "-", "."):
            op = self.take()[1]
            right = self.term()
            left = (lambda a, b, op: lambda: _arith(op, a(), b()))(left, right, op)
        return left

    def term(self):
        left = self.unary()
        while self.at("*", "/", "%"):
            op = self.take()[1]
            right = self.unary()
            left = (lambda a, b, op: lambda: _arith(op, a(), b()))(left, right, op)
        return left

    def unary(self):
        if self.at("-"):
            self.take()
            inner = self.unary()
            return lambda: (lambda n: None if n is None else -n)(_num(inner()))
        return self.primary()

    def primary(self):
        kind, text = self.take()
        if kind == "num":
            return lambda: float(text)
        if kind == "str":
            value = _unescape(text[1:-1])
            return lambda: value
        if kind == "field":
            name = _unescape(text[1:-1])
            return lambda: self.fields.get(name)
        if kind == "op" and text == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if kind == "name":
            if self.at("("):
                self.take("(")
                args = []
                if not self.at(")"):
                    args.append(self.expr())
                    while self.at(","):
                        self.take()
                        args.append(self.expr())
                self.take(")")
                return _call(text.lower(), args)
            return lambda: self.fields.get(text)
        raise SyntaxError(f"unexpected {text!r}")


def evaluate(expr: str, fields: dict[str, Value]) -> Value:
    parser = _Parser(tokenize(expr), fields)
    thunk = parser.expr()
    if parser.peek() is not None:
        raise SyntaxError(f"unexpected {parser.peek()} in {expr!r}")
    return _normalise(thunk())


def _normalise(value: Value) -> Value:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return value[0] if len(value) == 1 else value
    return value


def _num(value: Value) -> float | None:
    if isinstance(value, bool) or value is None or isinstance(value, list):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _truth(value: Value) -> bool:
    return value is not None and value is not False and value != "false"


def _compare(op: str, a: Value, b: Value) -> bool | None:
    if a is None or b is None:
        return None
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        a, b = na, nb
    else:
        a, b = str(a), str(b)
    return {"==": a == b, "=": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]


def _arith(op: str, a: Value, b: Value) -> Value:
    if a is None or b is None:
        return None
    if op == ".":
        return f"{_normalise(a)}{_normalise(b)}"
    na, nb = _num(a), _num(b)
    if na is None or nb is None:
        return None
    if op == "/" and nb == 0:
        return None
    return {"+": na + nb, "-": na - nb, "*": na * nb, "/": na / nb if nb else None, "%": na % nb if nb else None}[op]


def _as_list(value: Value) -> list[str]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _call(name: str, args: list):
    def arg(i: int) -> Value:
        return args[i]() if i < len(args) else None

    def run() -> Value:
        if name == "coalesce":
            for a in args:
                value = a()
                if value is not None:
                    return value
            return None
        if name == "if":
            return arg(1) if _truth(arg(0)) else arg(2)
        if name == "case":
            for i in range(0, len(args) - 1, 2):
                if _truth(args[i]()):
                    return args[i + 1]()
            return None
        if name in ("null",):
            return None
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "isnull":
            return arg(0) is None
        if name == "isnotnull":
            return arg(0) is not None
        if name in ("lower", "upper"):
            value = arg(0)
            return None if value is None else (str(value).lower() if name == "lower" else str(value).upper())
        if name == "tostring":
            return None if arg(0) is None else str(_normalise(arg(0)))
        if name == "tonumber":
            return _num(arg(0))
        if name == "len":
            return None if arg(0) is None else float(len(str(arg(0))))
        if name == "match":
            value, pattern = arg(0), arg(1)
            return None if value is None else re.search(pattern, str(value)) is not None
        if name == "replace":
            value = arg(0)
            return None if value is None else re.sub(arg(1), re.sub(r"\\(\d)", r"\\\1", arg(2)), str(value))
        if name == "split":
            value = arg(0)
            return None if value is None else str(value).split(arg(1))
        if name == "mvcount":
            value = arg(0)
            return None if value is None else float(len(_as_list(value)))
        if name == "mvindex":
            values, index = _as_list(arg(0)), _num(arg(1))
            if index is None or not values:
                return None
            try:
                return values[int(index)]
            except IndexError:
                return None
        if name == "mvfind":
            values, pattern = _as_list(arg(0)), arg(1)
            for i, value in enumerate(values):
                if re.search(pattern, str(value)):
                    return float(i)
            return None
        raise NameError(f"eval function {name}() is not in the subset this test supports")
    return run


# -- event-type searches ------------------------------------------------------------------------
_TERM = re.compile(r'\s*(?P<field>[\w.{}]+)\s*(?:=\s*(?P<value>"[^"]*"|\S+)|\s+IN\s*\((?P<values>[^)]*)\))')


def matches_search(search: str, fields: dict[str, Value]) -> bool:
    """An event-type search of ANDed `field=value` / `field IN (...)` terms (the form eventtypes.conf uses)."""
    pos = 0
    while pos < len(search.strip()):
        m = _TERM.match(search, pos)
        if not m:
            raise SyntaxError(f"event-type search term not understood at {search[pos:]!r}")
        pos = m.end()
        have = [str(v).lower() for v in _as_list(fields.get(m.group("field")))]
        if m.group("values") is not None:
            wanted = [v.strip().strip('"').lower() for v in m.group("values").split(",")]
        else:
            wanted = [m.group("value").strip('"').lower()]
        if not any(_glob(w, h) for w in wanted for h in have):
            return False
    return True


def _glob(pattern: str, value: str) -> bool:
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), value) is not None
