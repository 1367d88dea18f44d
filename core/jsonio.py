"""Strict JSON in and out: RFC 8259 only (no NaN/Infinity), bounded nesting, errors with line and column.

orjson is used when installed (it is optional); the standard library otherwise, with the same verdicts.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .errors import ParseError

try:  # optional speed-up
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised in the no-extras CI job
    _orjson = None

#: orjson.loads when installed (raises ValueError subclasses), for callers that pre-check depth themselves.
fast_loads = _orjson.loads if _orjson is not None else None

#: Deeper documents are refused: no real event nests beyond a dozen levels, and orjson cannot
#: serialize more than 254.
MAX_DEPTH = 128


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def loads(data: bytes | bytearray | memoryview | str, *, source: str | None = None, line: int | None = None) -> Any:
    """Parse one JSON document; raise ParseError naming the source, line and column of the problem."""
    if isinstance(data, memoryview):
        data = bytes(data)
    brackets = data.count(b"[") + data.count(b"{") if isinstance(data, (bytes, bytearray)) \
        else data.count("[") + data.count("{")
    if brackets > MAX_DEPTH:
        _check_depth(_text(data, source, line), source, line)
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError:
            pass  # parse again below, for one precise message whichever parser is installed
    text = _text(data, source, line)
    try:
        return _decoder.decode(text)
    except json.JSONDecodeError as exc:
        lineno = exc.lineno + (line - 1 if line else 0)
        reason = exc.msg
        if exc.pos >= len(text.rstrip()):
            reason = f"truncated JSON ({exc.msg})"
        raise ParseError(reason, source=source, line=lineno, column=exc.colno, offset=exc.pos) from None
    except ValueError as exc:  # NaN / Infinity
        raise ParseError(str(exc), source=source, line=line) from None
    except RecursionError:
        raise ParseError(f"nesting deeper than {MAX_DEPTH} levels", source=source, line=line) from None


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
    if _orjson is not None:
        return _orjson.dumps(obj).decode("utf-8")
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumpb(obj: Any) -> bytes:
    """Compact JSON bytes."""
    if _orjson is not None:
        return _orjson.dumps(obj)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
