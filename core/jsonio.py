"""Strict JSON in and out: RFC 8259 only (no NaN/Infinity), bounded nesting, errors with line and column.

orjson is used when installed (it is optional); the standard library otherwise, with the same verdicts.
A number beyond a 64-bit float's range (`1e400`) is refused by both, naming its line, column and JSON
pointer: read as infinity it would be written back as `null`. Integers beyond 64 bits stay exact with
the standard library; orjson reads them as (rounded) floats, and `dumps` writes them either way.
"""
from __future__ import annotations

import json
import re
import sys
from typing import Any

from .errors import ParseError

try:  # optional speed-up
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised in the no-extras CI job
    _orjson = None

#: orjson.loads when installed (raises ValueError subclasses), for callers that pre-check depth and
#: `wide_digits` themselves.
fast_loads = _orjson.loads if _orjson is not None else None

_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_STR_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
# The shortest integer literals that can be beyond orjson's range: 20 digits (2**64 - 1 has 20),
# or a minus and 19 (-2**63 has 19).
_WIDE, _WIDE_NEGATIVE = b"0" * 20, b"-" + b"0" * 19
_STR_WIDE, _STR_WIDE_NEGATIVE = _WIDE.decode(), _WIDE_NEGATIVE.decode()


def wide_digits(data: bytes | bytearray | str) -> bool:
    """True when `data` has a run of 20+ digits or a minus and 19: maybe an integer orjson would
    round to a float (`[18446744073709551616]` reads as 1.8446744073709552e+19). A run inside a
    string or a fraction gives a false alarm, which only costs the slower exact parser. ~1 µs per
    KB: a C-level translate and substring search (a regex scan costs ten times that)."""
    if isinstance(data, str):
        zeroed = data.translate(_STR_DIGITS_TO_ZERO)
        return _STR_WIDE in zeroed or _STR_WIDE_NEGATIVE in zeroed
    zeroed_bytes = data.translate(_DIGITS_TO_ZERO)
    return _WIDE in zeroed_bytes or _WIDE_NEGATIVE in zeroed_bytes


#: Deeper documents are refused: no real event nests beyond a dozen levels, and orjson cannot
#: serialize more than 254.
MAX_DEPTH = 128


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _OutOfRange(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value - value:           # inf - inf is nan: a literal beyond a double's range
        raise _OutOfRange(literal)
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_infinity_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def loads(data: bytes | bytearray | memoryview | str, *, source: str | None = None, line: int | None = None,
          infinity: bool = False) -> Any:
    """Parse one JSON document; raise ParseError naming the source, line and column of the problem.
    `infinity=True` reads a number beyond a double's range as +-inf instead, for a caller that checks
    each value of the document itself (the gateway refuses one event of a frame, not the frame)."""
    if isinstance(data, memoryview):
        data = bytes(data)
    brackets = data.count(b"[") + data.count(b"{") if isinstance(data, (bytes, bytearray)) \
        else data.count("[") + data.count("{")
    if brackets > MAX_DEPTH:
        _check_depth(_text(data, source, line), source, line)
    if _orjson is not None and not wide_digits(data):
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError:
            pass  # parse again below, for one precise message whichever parser is installed
    text = _text(data, source, line)
    try:
        value = (_infinity_decoder if infinity else _decoder).decode(text)
    except json.JSONDecodeError as exc:
        lineno = exc.lineno + (line - 1 if line else 0)
        reason = exc.msg
        if exc.pos >= len(text.rstrip(" \t\r\n")):       # JSON's blanks only: a form feed at the end is no truncation
            reason = f"truncated JSON ({exc.msg})"
        raise ParseError(reason, source=source, line=lineno, column=exc.colno, offset=exc.pos) from None
    except _OutOfRange as exc:
        raise _out_of_range(text, exc.literal, source, line) from None
    except ValueError as exc:  # NaN / Infinity, or an integer longer than Python converts
        if "integer string conversion" in str(exc):
            raise _too_many_digits(text, source, line) from None
        raise ParseError(str(exc), source=source, line=line) from None
    except RecursionError:
        raise ParseError(f"nesting deeper than {MAX_DEPTH} levels", source=source, line=line) from None
    # a str (not decoded here from UTF-8) may hold a lone surrogate as a character, not only as an escape
    if "\\ud" in text or "\\uD" in text or (isinstance(data, str) and _SURROGATE.search(text)):
        _refuse_lone_surrogates(value, text, source, line)
    return value


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?', re.DOTALL)
_INTEGER = re.compile(r"-?[0-9]+")


def _out_of_range(text: str, literal: str, source: str | None, line: int | None) -> ParseError:
    """Where the first number beyond a double's range is: line, column and JSON pointer (error path only)."""
    offset = next((m.start() for m in _TOKEN.finditer(text) if m.group() == literal), None)
    mark = object()
    try:
        marked = json.JSONDecoder(parse_float=lambda s: mark if s == literal else 0.0).decode(text)
    except ValueError:          # another fault later in the text: the position alone must do
        marked = None
    pointer = _pointer_to(marked, mark)
    where: dict[str, Any] = {"source": source, "line": line}
    if offset is not None:
        where = {"source": source, "line": text.count("\n", 0, offset) + (line or 1),
                 "column": offset - text.rfind("\n", 0, offset), "offset": offset}
    at = "" if pointer is None else f" (at {pointer or '/'})"
    return ParseError(f"number {literal[:40]} is beyond a 64-bit float's range{at}", path=pointer, **where)


def _too_many_digits(text: str, source: str | None, line: int | None) -> ParseError:
    """Where the first integer literal longer than Python converts (`sys.get_int_max_str_digits()`,
    4,300 by default) is: line, column and JSON pointer (error path only)."""
    limit = sys.get_int_max_str_digits() or 4300
    # an integer token only: a float has no digit limit, however long (`1000...e-4290` has no ".")
    literal = next((m for m in _TOKEN.finditer(text) if _INTEGER.fullmatch(m.group())
                    and len(m.group().lstrip("-")) > limit), None)
    if literal is None:         # not found by the scan: say what was wrong without a position
        return ParseError(f"an integer has more than {limit:,} digits", source=source, line=line)
    mark = object()
    try:
        marked = json.JSONDecoder(parse_int=lambda s: mark if s == literal.group() else 0,
                                  parse_float=lambda s: 0.0).decode(text)
    except ValueError:          # another fault later in the text: the position alone must do
        marked = None
    pointer = _pointer_to(marked, mark)
    offset = literal.start()
    at = "" if pointer is None else f" (at {pointer or '/'})"
    return ParseError(f"integer of {len(literal.group().lstrip('-')):,} digits is longer than the {limit:,} "
                      f"digits a number may have{at}", path=pointer, source=source,
                      line=text.count("\n", 0, offset) + (line or 1),
                      column=offset - text.rfind("\n", 0, offset), offset=offset)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(value: Any, text: str, source: str | None, line: int | None) -> None:
    """orjson refuses `"\\ud800"` (half of a pair: no UTF-8 writer can write it); so does this parser."""
    found = _first_surrogate(value, "")
    if found is None:
        return
    pointer, char = found
    pointer = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", pointer)     # printable, writable
    offset = next((m.start() for m in _STRING.finditer(text)
                   if ("\\u" in m.group() or _SURROGATE.search(m.group())) and _SURROGATE.search(json.loads(m.group()))),
                  None)
    where: dict[str, Any] = {"source": source, "line": line}
    if offset is not None:
        where = {"source": source, "line": text.count("\n", 0, offset) + (line or 1),
                 "column": offset - text.rfind("\n", 0, offset), "offset": offset}
    raise ParseError(f"lone surrogate \\u{ord(char):04x} in a string (at {pointer or '/'}): half of a UTF-16 pair "
                     f"is not Unicode text", path=pointer, **where)


def _first_surrogate(node: Any, path: str) -> tuple[str, str] | None:
    if isinstance(node, str):
        m = _SURROGATE.search(node)
        return (path, m.group()) if m else None
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        here = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
        found = _first_surrogate(key, here) if isinstance(key, str) else None
        found = found or _first_surrogate(child, here)
        if found is not None:
            return found
    return None


def _pointer_to(node: Any, mark: object, path: str = "") -> str | None:
    if node is mark:
        return path
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found = _pointer_to(child, mark, f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}")
        if found is not None:
            return found
    return None


def _text(data: bytes | bytearray | str, source: str | None, line: int | None) -> str:
    if isinstance(data, str):
        return data
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                         source=source, line=_line_of(raw, exc.start, line), offset=exc.start) from None
    return text[1:] if text.startswith("\ufeff") else text


def _line_of(raw: bytes, offset: int, base: int | None) -> int:
    return raw.count(b"\n", 0, offset) + (base or 1)


_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _check_depth(text: str, source: str | None, line: int | None) -> None:
    """Refuse documents nested deeper than MAX_DEPTH before a recursive parser sees them."""
    depth = 0
    for m in _STRUCTURE.finditer(text):
        ch = m.group()
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                pos = m.start()
                raise ParseError(f"nesting deeper than {MAX_DEPTH} levels",
                                 source=source, line=text.count("\n", 0, pos) + (line or 1), offset=pos)
        elif ch in "]}":
            depth -= 1


def dumps(obj: Any) -> str:
    """Compact JSON text (UTF-8, no NaN)."""
    return dumpb(obj).decode("utf-8") if _orjson is not None else _std_dumps(obj)


def dumpb(obj: Any) -> bytes:
    """Compact JSON bytes."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj)
        except _orjson.JSONEncodeError as exc:
            if "Integer" not in str(exc):
                raise
            # an integer beyond 64 bits: the standard library writes it exactly
    return _std_dumps(obj).encode("utf-8")


def _std_dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
