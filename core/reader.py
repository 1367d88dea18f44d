"""Events from files and streams: NDJSON, a JSON array, or concatenated (pretty-printed) JSON; gzip or not.

Every value comes out as an Item naming its source and the line it starts on, so a bad event can
be reported as `file:line` and dead-lettered with its raw text. Memory stays flat: values are cut
out of the stream one at a time, top-level arrays element by element, and a line longer than
LONG_LINE_BYTES (a whole array written on one line) is read in pieces rather than whole.

The format is told from the first value: when the first non-blank line is one whole JSON value,
the file is NDJSON and every line stands alone (a bad line is one error, the next line goes on).
Otherwise values are delimited by bracket depth, which works across line breaks; if a whole
object then shows up on one line at column 0 while a value is still open, the file was NDJSON
after all (its first line was cut short), and reading goes on line by line.
"""
from __future__ import annotations

import gzip
import io
import os
import re
import sys
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Iterator

from . import jsonio
from .errors import ParseError

#: A single document bigger than this is refused rather than buffered.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
#: A line longer than this is read in pieces of about this size (a whole JSON array written on one
#: line, as `jq -c` or many APIs produce it), so memory does not grow with the line.
LONG_LINE_BYTES = 1024 * 1024
UTF8_BOM = b"\xef\xbb\xbf"

_TOKENS = re.compile(r'"(?:[^"\\\n]|\\.)*"|[\[\]{},]')
#: _TOKENS for a piece of a long line that is not its last: a string still open at the piece's end is
#: one token (`open`), carried into the next piece instead of being scanned as other text.
_PIECE_TOKENS = re.compile(r'"(?:[^"\\\n]|\\.)*"|(?P<open>"(?:[^"\\\n]|\\.)*\\?\Z)|[\[\]{},]')
_MISSING = object()


@dataclass(slots=True)
class Item:
    """One value read from a source: `value` when it parsed, `error` (a ParseError) when not."""

    source: str
    line: int
    value: Any = None
    error: ParseError | None = None
    raw: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


class InputSource:
    """An open input (file or stdin), gzip-transparent, that knows how far through it we are."""

    def __init__(self, path: str) -> None:
        self.name = "<stdin>" if path == "-" else path
        self._raw: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        self.size: int | None = None if path == "-" else os.fstat(self._raw.fileno()).st_size
        buffered = self._raw if isinstance(self._raw, io.BufferedReader) else io.BufferedReader(self._raw)  # type: ignore[arg-type]
        self._buffered = buffered
        self.compressed = buffered.peek(2)[:2] == b"\x1f\x8b"
        self.stream: BinaryIO = gzip.GzipFile(fileobj=buffered) if self.compressed else buffered  # type: ignore[assignment]

    def position(self) -> int:
        """Bytes consumed from the underlying file (compressed bytes for gzip)."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self._raw is not sys.stdin.buffer:
            self._raw.close()

    def __enter__(self) -> "InputSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def items(self) -> Iterator[Item]:
        last = 0
        try:
            for item in iter_items(self.stream, self.name):
                last = item.line
                yield item
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:  # corrupt or truncated gzip
            # The line after the last value read: where the reading stopped (1 when nothing could be read).
            after = f" after line {last}" if last else ""
            yield Item(self.name, last + 1, error=ParseError(f"unreadable input{after}: {exc}", source=self.name,
                                                             line=last + 1))


class _LongLine:
    """One line longer than LONG_LINE_BYTES, handed out in pieces of about that size (never inside a
    UTF-8 character), read from the stream only as it is iterated. Bracket-depth reading carries
    what a piece ends with (an open string, top-level text) into the next one."""

    def __init__(self, head: bytes, read_more: Any) -> None:
        self._head = head
        self._read_more = read_more      # () -> the next chunk of this line (ends with b"\n" at its end)
        self._done = read_more is None   # the whole line has been read from the stream
        self.size = 0                    # bytes handed out so far

    def __iter__(self) -> Iterator[bytes]:
        while True:
            data, self._head = self._head, b""
            if not self._done:
                more = self._read_more()
                self._done = not more or more.endswith(b"\n")
                data += more
            if self._done and len(data) <= 2 * LONG_LINE_BYTES:
                if data:
                    self.size += len(data)
                    yield data
                return
            end = min(len(data), LONG_LINE_BYTES) if self._done else len(data)
            cut = end - _partial_utf8(data, end)
            if cut == 0:
                if not self._done:
                    self._head = data                   # only the start of one character so far: read on
                    continue
                cut = min(len(data), _utf8_width(data[0]))   # a window narrower than one character
            self._head = data[cut:]
            self.size += cut
            yield data[:cut]

    def drain(self) -> None:
        for _ in self:
            pass

    def opens(self, prefix: bytes, *, strip: bool = True) -> bool:
        """Whether the line starts with `prefix` (after blanks, when `strip`); only before iterating."""
        return (self._head.lstrip() if strip else self._head).startswith(prefix)


def _utf8_width(byte: int) -> int:
    return 2 if 0xC0 <= byte < 0xE0 else 3 if 0xE0 <= byte < 0xF0 else 4 if byte >= 0xF0 else 1


def _partial_utf8(data: bytes, end: int) -> int:
    """How many bytes before `end` start a UTF-8 character that `end` would cut (0 to 3)."""
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 != 0x80:                    # ASCII or a lead byte
            return back if _utf8_width(byte) > back else 0
    return 0


def _lines(stream: Iterable[bytes]) -> Iterator["bytes | _LongLine"]:
    """The lines of `stream`, with those over LONG_LINE_BYTES as _LongLine (read lazily when the
    stream has `readline`)."""
    readline = getattr(stream, "readline", None)
    if readline is None:
        for n, line in enumerate(stream):
            if n == 0 and line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM):]      # else "[" would not be the first byte of an array
            if len(line) > LONG_LINE_BYTES:
                long = _LongLine(line, None)
                yield long
                long.drain()
            else:
                yield line
        return
    first = True
    while True:
        line = readline(LONG_LINE_BYTES + 1)
        if not line:
            return
        if first:
            first = False
            if line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM):]      # else "[" would not be the first byte of an array
        if len(line) <= LONG_LINE_BYTES or line.endswith(b"\n"):
            yield line
            continue
        long = _LongLine(line, lambda: readline(LONG_LINE_BYTES))
        yield long
        long.drain()                     # whatever the reader left of it: the next line starts after


def iter_items(stream: Iterable[bytes], name: str) -> Iterator[Item]:
    """The values in a binary line stream, as Items."""
    lines = _lines(stream)
    lineno = 0
    for first in lines:
        lineno += 1
        if isinstance(first, _LongLine) or first.strip():
            break
    else:
        return
    if isinstance(first, _LongLine) and not first.opens(b"["):
        whole = _whole(first)              # one long object is NDJSON's first line, as a short one
        if whole is None:
            yield _too_long(name, lineno)
            first = b""
        else:
            first = whole
    if isinstance(first, _LongLine):
        yield from _documents(first, lines, name, lineno)
        return
    if first.lstrip()[:1] != b"[":
        value = _try_load(first)
        if value is not _MISSING and isinstance(value, dict):
            yield Item(name, lineno, value)
            yield from _ndjson(lines, name, lineno)
            return
    yield from _documents(first, lines, name, lineno)


def _try_load(raw: bytes) -> Any:
    try:
        return jsonio.loads(raw)
    except ParseError:
        return _MISSING


def _ndjson(lines: Iterator["bytes | _LongLine"], name: str, lineno: int) -> Iterator[Item]:
    loads = jsonio.loads
    fast = jsonio.fast_loads               # None without orjson
    limit = jsonio.MAX_DEPTH
    for raw in lines:
        lineno += 1
        if isinstance(raw, _LongLine):
            raw = _whole(raw)
            if raw is None:
                yield _too_long(name, lineno)
                continue
        if fast is not None and raw.count(b"{") + raw.count(b"[") <= limit:
            try:
                yield Item(name, lineno, fast(raw), raw=raw)     # raw: the line, reusable as the stored body
                continue
            except ValueError:
                pass                       # the full parser below names the problem precisely
        try:
            yield Item(name, lineno, loads(raw))
        except ParseError as exc:
            if not raw.strip():
                continue
            exc.source, exc.line = name, lineno
            exc.args = (exc._describe(),)
            yield Item(name, lineno, error=exc, raw=raw.rstrip(b"\r\n"))


def _too_long(name: str, lineno: int) -> Item:
    return Item(name, lineno, error=ParseError(f"line longer than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB",
                                               source=name, line=lineno))


def _whole(long: _LongLine) -> bytes | None:
    """A long NDJSON line in one piece, or None (drained) when it is over MAX_DOCUMENT_BYTES."""
    parts = []
    for piece in long:
        if long.size > MAX_DOCUMENT_BYTES:
            long.drain()
            return None
        parts.append(piece)
    return b"".join(parts)


def _documents(first: "bytes | _LongLine", lines: Iterator["bytes | _LongLine"], name: str,
               lineno: int) -> Iterator[Item]:
    """Values delimited by bracket depth; the elements of a top-level array one by one."""
    depth = 0
    in_array = False
    parts: list[str] = []        # text of the value being collected
    carry = ""                   # what a piece of a long line ends with, scanned again with the next
    size = 0
    start = 0                    # line the value being collected starts on

    def emit(text: str, line: int) -> Item:
        raw = text.strip().encode("utf-8", "surrogateescape")
        try:
            return Item(name, line, jsonio.loads(raw, source=name, line=line), raw=raw if b"\n" in raw else None)
        except ParseError as exc:
            return Item(name, line, error=exc, raw=raw)

    def process(raw_line: bytes, line: int, column: int = 0, last: bool = True) -> Iterator[Item]:
        """Scan one line, or one piece of a long line starting at `column` (characters). A piece that
        is not its line's `last` leaves a string still open at its end, and top-level text, to `carry`."""
        nonlocal depth, in_array, start, size, carry
        text = raw_line.decode("utf-8", "surrogateescape")
        if carry:
            column -= len(carry)
            text, carry = carry + text, ""
        base = 1 if in_array else 0
        pos = 0                                   # start of the not-yet-assigned text on this line
        end = len(text)                           # where this piece's scan stops (an open string)
        for m in (_TOKENS if last else _PIECE_TOKENS).finditer(text):
            tok = m.group()
            if tok[0] == '"':
                if m.lastgroup == "open":
                    end = m.start()
                    break
                continue
            if tok in "[{":
                if depth == 0 and tok == "[" and not in_array and not "".join(parts).strip() \
                        and not text[pos:m.start()].strip():
                    in_array, depth, base, pos = True, 1, 1, m.end()
                    continue
                if depth == base and not parts and not text[pos:m.start()].strip():
                    start = line
                depth += 1
            elif tok in "]}":
                depth -= 1
                if in_array and depth == 0:        # the top-level array closes
                    tail = "".join(parts) + text[pos:m.start()]
                    parts.clear()
                    if tail.strip():
                        yield emit(tail, start or line)
                    in_array, base, pos, start = False, 0, m.end(), 0
                elif depth == base and not in_array:  # a top-level value closes
                    yield emit("".join(parts) + text[pos:m.end()], start or line)
                    parts.clear()
                    pos, start = m.end(), 0
                elif depth < base:                 # stray closing bracket
                    yield Item(name, line, error=ParseError(f"unexpected {tok!r}", source=name, line=line,
                                                            column=column + m.start() + 1), raw=raw_line.rstrip(b"\r\n"))
                    depth, pos = base, m.end()
                    parts.clear()
            elif tok == "," and in_array and depth == 1:
                element = "".join(parts) + text[pos:m.start()]
                parts.clear()
                yield emit(element, start or line)
                pos, start = m.end(), 0
        rest, tail = text[pos:end], text[end:]
        if depth > base or (in_array and depth == 1):
            if depth > base and not start:
                start = line
            if rest.strip() and not start:
                start = line
            parts.append(rest)
            size += len(rest)
            if size > MAX_DOCUMENT_BYTES:
                yield Item(name, start, error=ParseError(
                    f"document larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB", source=name, line=start))
                parts.clear()
                size = depth = 0
                in_array = False
            carry = tail
        elif rest.strip():                        # a scalar or garbage at top level
            if last:
                yield emit(rest, line)
            else:
                carry = rest + tail
        else:
            carry = tail
        if len(carry) > MAX_DOCUMENT_BYTES:       # one string (or top-level run) longer than any document
            yield Item(name, line, error=ParseError(
                f"document larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB", source=name, line=line))
            carry = ""
            parts.clear()
            size = depth = 0
            in_array = False
        if not parts:
            size = 0

    def process_line(raw_line: "bytes | _LongLine", line: int) -> Iterator[Item]:
        if isinstance(raw_line, _LongLine):
            column = 0
            pieces = iter(raw_line)
            piece = next(pieces, None)
            while piece is not None:
                following = next(pieces, None)
                yield from process(piece, line, column, last=following is None)
                column += len(piece.decode("utf-8", "surrogateescape"))
                piece = following
        else:
            yield from process(raw_line, line)

    yield from process_line(first, lineno)
    for raw_line in lines:
        lineno += 1
        if isinstance(raw_line, _LongLine):
            if not (depth > 0 and not in_array and raw_line.opens(b"{", strip=False)):
                yield from process_line(raw_line, lineno)
                continue
            whole = _whole(raw_line)       # may be the whole-object line the check below looks for
            if whole is None:
                yield _too_long(name, lineno)
                continue
            raw_line = whole
        if depth > 0 and not in_array and raw_line[:1] == b"{":
            # A whole object on one line, at column 0, while a value is still open: this is NDJSON
            # whose earlier line was cut short. Report that value and read the rest line by line.
            value = _try_load(raw_line)
            if isinstance(value, dict):
                yield Item(name, start or lineno, error=ParseError(
                    "truncated JSON: the value is never closed", source=name, line=start or lineno),
                    raw="".join(parts).strip().encode("utf-8", "surrogateescape")[:1_048_576])
                yield Item(name, lineno, value)
                yield from _ndjson(lines, name, lineno)
                return
        yield from process(raw_line, lineno)
    leftover = "".join(parts)
    if depth > 0 and (leftover.strip() or not in_array):
        yield Item(name, start or lineno, error=ParseError(
            "truncated JSON: the value is never closed", source=name, line=start or lineno),
            raw=leftover.strip().encode("utf-8", "surrogateescape")[:4096])
    elif in_array:
        yield Item(name, lineno, error=ParseError("truncated JSON: the array is never closed", source=name, line=lineno))


def read_items(paths: Iterable[str]) -> Iterator[Item]:
    """Items from every path in turn ("-" is stdin). OSError propagates for a missing file."""
    for path in paths:
        with InputSource(path) as src:
            yield from src.items()
