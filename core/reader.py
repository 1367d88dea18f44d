"""Events from files and streams: NDJSON, a JSON array, or concatenated (pretty-printed) JSON; gzip or not.

Every value comes out as an Item naming its source and the line it starts on, so a bad event can
be reported as `file:line` and dead-lettered with its raw text. Memory stays flat: values are cut
out of the stream one at a time, top-level arrays element by element, and a line longer than
LONG_LINE_BYTES (a whole array written on one line) is read in pieces rather than whole.

The format is told from the first value: when the first non-blank line is one whole JSON value,
the file is NDJSON and every line stands alone (a bad line is one error, the next line goes on),
until a line that is a lone `{` or `[` (no NDJSON line is): a pretty-printed value starts there, and
reading goes on by bracket depth.
Otherwise values are delimited by bracket depth, which works across line breaks; if a whole
object then shows up on one line at column 0 while a value is still open, the file was NDJSON
after all (its first lines were broken): the lines of the open value are read again one by one (an
error each, at its own line) and reading goes on line by line.
"""
from __future__ import annotations

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
#: JSON's whitespace (RFC 8259 section 2). str.strip() and bytes.strip() also take form feeds, vertical
#: tabs and (str) NBSP, U+2028, RS and the like, which no JSON parser takes beside a value.
_BLANKS = " \t\r\n"
_BLANK_BYTES = b" \t\r\n"


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


GZIP_MAGIC = b"\x1f\x8b"
#: Compressed bytes read at a time, and the size of the buffer inflated bytes are read through.
GZIP_READ_BYTES = 64 * 1024


class GunzipStream(io.RawIOBase):
    """A gzip stream inflated with zlib, every member in turn (`cat a.gz b.gz`; NUL padding between and
    after members allowed, as gzip(1) and gzip.GzipFile read them). Read it through io.BufferedReader.

    Unlike gzip.GzipFile, a stream cut short or corrupt does not raise (which made the buffered reader
    drop what it had inflated of the last line): reading just ends there, `problem` says what happened
    and `problem_line` the line it happened in (1-based). The complete lines before it are read as
    usual; `settle` reports the break on that line, whose torn fragment the reader keeps as raw bytes."""

    def __init__(self, compressed: BinaryIO, limit: int | None = None) -> None:
        super().__init__()
        self._compressed = compressed
        self._limit = limit          # the stream ends (a `problem`) once more than this is inflated
        self._out = 0                # bytes handed out so far
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""             # compressed bytes read but not yet inflated
        self._read = 0               # compressed bytes read so far
        self._member = 0             # where the member being inflated starts (byte offset)
        self._started = False        # a byte of that member has been given to the inflater
        self._newlines = 0           # b"\n" handed out so far: the line being read is _newlines + 1
        self._line_open = False      # bytes of that line have been handed out
        self._pending = b""          # inflated at the end of the input, handed out from _pending_at on
        self._pending_at = 0
        self._ended = False
        self.problem: str | None = None
        self._detail = ""
        self.problem_line = 0
        #: where in the compressed input the member zlib refused starts (bytes after a gzip stream that
        #: are not gzip, a corrupt member): nothing from there on was read whole. None for other problems.
        self.unread_from: int | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer) if self._limit is None else max(1, min(len(buffer), self._limit - self._out + 1))
        while not self._ended:
            data = self._tail
            if not data:
                data = self._compressed.read(GZIP_READ_BYTES)
                if not data:
                    self._end_of_input()
                    break
                self._read += len(data)
            if not self._started:
                data = data.lstrip(b"\0")         # padding after a member, not a new member
                if not data:
                    self._tail = b""
                    continue
                self._started = True
                self._member = self._read - len(data)
            before = self._inflater.copy()         # to recover what this data inflates to before a fault
            try:
                out = self._inflater.decompress(data, size)
            except zlib.error as exc:
                self._pending = _inflate_up_to_fault(before, data)
                self.unread_from = self._member
                self._stop("corrupt gzip data", f"(in the member that starts at byte {self._member:,}, before byte "
                                                f"{self._read:,}): {exc}")
                break
            if self._inflater.eof:                 # the next member, if any, starts in what is left
                self._tail = self._inflater.unused_data
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._started = False
            else:
                self._tail = self._inflater.unconsumed_tail
            if out:
                return self._hand_out(out, buffer)
        out = self._pending[self._pending_at:self._pending_at + size]
        self._pending_at += len(out)
        return self._hand_out(out, buffer) if out else 0

    def _hand_out(self, out: bytes, buffer: Any) -> int:
        self._newlines += out.count(b"\n")
        self._line_open = out[-1:] != b"\n"
        buffer[:len(out)] = out
        self._out += len(out)
        if self._limit is not None and self._out > self._limit and not self._ended:
            self._stop(f"the gzip data inflates beyond {self._limit:,} bytes", "")
        return len(out)

    def _end_of_input(self) -> None:
        if self._started:
            self._pending = self._inflater.flush()     # what zlib still holds is handed out first
            self._stop("the gzip stream is truncated", f"(it ends at byte {self._read:,}, inside the member "
                                                       f"that starts at byte {self._member:,})")
        self._ended = True

    def _stop(self, problem: str, detail: str) -> None:
        self._ended = True
        self._tail = b""
        self.problem, self._detail = problem, detail
        self.problem_line = self._newlines + self._pending.count(b"\n") + 1

    def broken_at(self, line: int) -> bool:
        """Whether the stream broke in `line` (or before it): the line is cut short, not whole."""
        return self.problem is not None and line >= self.problem_line

    def reason(self, name: str, line: int | None = None, *, torn: bool = True) -> str:
        """Why the reading stopped, naming the input and the line the stream broke in: `torn` when that
        line's item carries the bytes of it read before the break."""
        line = self.problem_line if line is None else line
        detail = f" {self._detail}" if self._detail else ""
        if line == self.problem_line and not self._line_open:
            where = f"after line {line - 1} of {name}" if line > 1 else f"before the first line of {name}"
            return f"unreadable input: {self.problem} {where}{detail}"
        text = f"unreadable input: {self.problem} in line {line} of {name}{detail}"
        return f"{text}; the line is cut short, its bytes before the break are kept" if torn else text

    def settle(self, items: Iterable[Item], name: str) -> Iterator[Item]:
        """`items` read from this stream, with a break reported: the error item of the line the stream
        broke in says so (the reader keeps that torn line as its raw bytes); when there is none (the
        break fell between lines, or what was read of the line still parsed), one error item does."""
        reported = False
        for item in items:
            if item.error is not None and self.broken_at(item.line):
                item.error = ParseError(self.reason(name, item.line), source=name, line=item.line)
                reported = True
            yield item
        if self.problem is not None and not reported:
            yield Item(name, self.problem_line, error=ParseError(self.reason(name, torn=False), source=name,
                                                                 line=self.problem_line))


#: What is recovered of the data read with a fault in it is bounded (a gzip bomb stays one).
MAX_SALVAGE_BYTES = 8 * 1024 * 1024


def _inflate_up_to_fault(inflater: Any, data: bytes) -> bytes:
    """What `data` inflates to before the byte zlib finds corrupt (zlib raises for the whole call, with
    none of its output): fed a byte at a time, only on this error path."""
    out: list[bytes] = []
    size = 0
    for i in range(len(data)):
        try:
            piece = inflater.decompress(data[i:i + 1])
        except zlib.error:
            break
        out.append(piece)
        size += len(piece)
        if size > MAX_SALVAGE_BYTES:
            break
    return b"".join(out)


#: Byte order marks of the Unicode encodings other than UTF-8, longest first (FF FE 00 00 starts both UTF-32LE
#: and UTF-16LE; a UTF-16 JSON text never starts with U+0000).
FOREIGN_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32LE"), (b"\x00\x00\xfe\xff", "UTF-32BE"),
                (b"\xff\xfe", "UTF-16LE"), (b"\xfe\xff", "UTF-16BE"))


class TranscodedStream(io.RawIOBase):
    """A UTF-16 or UTF-32 text (told by its byte order mark, which is left out) handed out as UTF-8: what
    Windows PowerShell 5 writes with `>` or Out-File, and Python's json.loads reads too. Read it through
    io.BufferedReader. A malformed code unit ends the reading with an OSError naming the byte, which the
    reader reports at the line it is in, as any unreadable input."""

    def __init__(self, stream: BinaryIO, encoding: str, bom: int) -> None:
        super().__init__()
        import codecs
        self._stream = stream
        self.encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._stream.read(bom)
        self._read = bom                        # bytes of the stream read so far
        self._pending = b""
        self._done = False
        self._fault: str | None = None          # raised once what was decoded before it is handed out

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            data = self._stream.read(GZIP_READ_BYTES)
            try:
                text = self._decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                # exc.object is the decoder's held bytes and `data`: the text before the fault is handed out
                # first, so the lines before it are read as usual.
                held = len(exc.object) - len(data)
                text = bytes(exc.object[:exc.start]).decode(self.encoding, "replace")
                self._fault = (f"not valid {self.encoding} text (byte {self._read - held + exc.start:,}: "
                               f"{exc.reason})")
                data = b""
            self._read += len(data)
            self._done = not data
            self._pending = text.encode("utf-8")
        if not self._pending and self._fault:
            fault, self._fault = self._fault, None
            raise OSError(fault)
        out, self._pending = self._pending[:len(buffer)], self._pending[len(buffer):]
        buffer[:len(out)] = out
        return len(out)


class InputSource:
    """An open input (file or stdin), gzip-transparent, that knows how far through it we are. A UTF-16 or
    UTF-32 text with its byte order mark is read as the same text in UTF-8 (`encoding` names it)."""

    def __init__(self, path: str) -> None:
        self.name = "<stdin>" if path == "-" else path
        self._raw: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        self.size: int | None = None if path == "-" else os.fstat(self._raw.fileno()).st_size
        buffered = self._raw if isinstance(self._raw, io.BufferedReader) else io.BufferedReader(self._raw)  # type: ignore[arg-type]
        self._buffered = buffered
        self.compressed = buffered.peek(2)[:2] == GZIP_MAGIC
        self.gunzip: GunzipStream | None = GunzipStream(buffered) if self.compressed else None
        self.stream: BinaryIO = (io.BufferedReader(self.gunzip, GZIP_READ_BYTES)  # type: ignore[assignment]
                                 if self.gunzip else buffered)
        self.encoding = "UTF-8"
        head = self.stream.peek(4)[:4]  # type: ignore[attr-defined]
        for bom, encoding in FOREIGN_BOMS:
            if head.startswith(bom):
                self.encoding = encoding
                self.stream = io.BufferedReader(TranscodedStream(self.stream, encoding, len(bom)),  # type: ignore[assignment]
                                                GZIP_READ_BYTES)
                break

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
        items = iter_items(self.stream, self.name)
        if self.gunzip is not None:
            items = self.gunzip.settle(items, self.name)
        try:
            for item in items:
                last = item.line
                yield item
        except OSError as exc:                      # the file itself could not be read on
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
        return (self._head.lstrip(_BLANK_BYTES) if strip else self._head).startswith(prefix)


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
        # The first read also takes a BOM whole, and whether the line ended is told before the BOM is cut off.
        ask = LONG_LINE_BYTES + 1 + (len(UTF8_BOM) if first else 0)
        line = readline(ask)
        if not line:
            return
        whole = len(line) < ask or line.endswith(b"\n")
        if first:
            first = False
            if line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM):]      # else "[" would not be the first byte of an array
        if whole:
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
        if isinstance(first, _LongLine) or first.strip(_BLANK_BYTES):
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
    if first.lstrip(_BLANK_BYTES)[:1] != b"[":
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


def _ndjson(lines: Iterator["bytes | _LongLine"], name: str, lineno: int, first_column: int = 0) -> Iterator[Item]:
    """NDJSON from the line after `lineno` on. `first_column`: where in its line the first line given starts
    (characters; it may be the end of a line whose start was read as something else)."""
    loads = jsonio.loads
    fast = jsonio.fast_loads               # None without orjson
    wide_digits = jsonio.wide_digits
    limit = jsonio.MAX_DEPTH
    for raw in lines:
        lineno += 1
        shift, first_column = first_column, 0
        if isinstance(raw, _LongLine):
            raw = _whole(raw)
            if raw is None:
                yield _too_long(name, lineno)
                continue
        if fast is not None and raw.count(b"{") + raw.count(b"[") <= limit and not wide_digits(raw):
            try:
                yield Item(name, lineno, fast(raw), raw=raw)     # raw: the line, reusable as the stored body
                continue
            except ValueError:
                pass                       # the full parser below names the problem precisely
        try:
            yield Item(name, lineno, loads(raw))
        except ParseError as exc:
            if not raw.strip(_BLANK_BYTES):
                continue
            if raw.strip(_BLANK_BYTES) in (b"{", b"["):
                # No NDJSON line is a lone bracket: a pretty-printed value starts here (`cat a.ndjson b.json`).
                # Read on by bracket depth, which goes back to lines if a one-line object shows up inside it.
                yield from _documents(raw, lines, name, lineno)
                return
            exc.source, exc.line = name, lineno
            if shift and exc.column is not None:
                exc.column += shift
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
    parts_column = 0             # where in its line the text in `parts` starts (characters from 0)

    def emit(text: str, line: int, column: int) -> Item:
        """The value in `text`, whose first non-blank character is on `line`; `text` starts at `column` of
        the line it starts on. A parse error's column is counted from the line's start, not the value's."""
        value = text.strip(_BLANKS)
        raw = value.encode("utf-8", "surrogateescape")
        try:
            return Item(name, line, jsonio.loads(raw, source=name, line=line), raw=raw if b"\n" in raw else None)
        except ParseError as exc:
            if exc.line == line and exc.column is not None:
                lead = text[:len(text) - len(text.lstrip(_BLANKS))]
                newline = lead.rfind("\n")
                exc.column += len(lead) - newline - 1 if newline >= 0 else column + len(lead)
                exc.args = (exc._describe(),)
            return Item(name, line, error=exc, raw=raw)

    def process(raw_line: bytes, line: int, column: int = 0, last: bool = True) -> Iterator[Item]:
        """Scan one line, or one piece of a long line starting at `column` (characters). A piece that
        is not its line's `last` leaves a string still open at its end, and top-level text, to `carry`."""
        nonlocal depth, in_array, start, size, carry, parts_column
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
                if depth == 0 and tok == "[" and not in_array and not "".join(parts).strip(_BLANKS) \
                        and not text[pos:m.start()].strip(_BLANKS):
                    in_array, depth, base, pos = True, 1, 1, m.end()
                    continue
                if depth == base and not parts and not text[pos:m.start()].strip(_BLANKS):
                    start = line
                depth += 1
            elif tok in "]}":
                depth -= 1
                if in_array and depth == 0:        # the top-level array closes
                    tail = "".join(parts) + text[pos:m.start()]
                    if tail.strip(_BLANKS):
                        yield emit(tail, start or line, parts_column if parts else column + pos)
                    parts.clear()
                    in_array, base, pos, start = False, 0, m.end(), 0
                elif depth == base and not in_array:  # a top-level value closes
                    yield emit("".join(parts) + text[pos:m.end()], start or line, parts_column if parts else column + pos)
                    parts.clear()
                    pos, start = m.end(), 0
                elif depth < base:                 # stray closing bracket
                    yield Item(name, line, error=ParseError(f"unexpected {tok!r}", source=name, line=line,
                                                            column=column + m.start() + 1), raw=raw_line.rstrip(b"\r\n"))
                    depth, pos = base, m.end()
                    parts.clear()
            elif tok == "," and in_array and depth == 1:
                element = "".join(parts) + text[pos:m.start()]
                yield emit(element, start or line, parts_column if parts else column + pos)
                parts.clear()
                pos, start = m.end(), 0
        rest, tail = text[pos:end], text[end:]
        if depth > base or (in_array and depth == 1):
            if depth > base and not start:
                start = line
            if rest.strip(_BLANKS) and not start:
                start = line
            if not parts:
                parts_column = column + pos
            parts.append(rest)
            size += len(rest)
            if size > MAX_DOCUMENT_BYTES:
                yield Item(name, start, error=ParseError(
                    f"document larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB", source=name, line=start))
                parts.clear()
                size = depth = 0
                in_array = False
            carry = tail
        elif rest.strip(_BLANKS):                 # a scalar or garbage at top level
            if last:
                yield emit(rest, line, column + pos)
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
            # whose earlier lines were broken. Read the open value's lines again as NDJSON lines (one
            # error each, at its own line, with its bytes; a good one read) and the rest line by line.
            value = _try_load(raw_line)
            if isinstance(value, dict):
                held = "".join(parts).encode("utf-8", "surrogateescape").split(b"\n")
                if not held[-1]:
                    held.pop()                     # the newline ending the last line held
                yield from _ndjson(iter(held), name, (start or lineno) - 1, parts_column)
                yield Item(name, lineno, value)
                yield from _ndjson(lines, name, lineno)
                return
        yield from process(raw_line, lineno)
    leftover = "".join(parts)
    if depth > 0 and (leftover.strip(_BLANKS) or not in_array):
        yield Item(name, start or lineno, error=ParseError(
            "truncated JSON: the value is never closed", source=name, line=start or lineno),
            raw=leftover.strip(_BLANKS).encode("utf-8", "surrogateescape")[:4096])
    elif in_array:
        yield Item(name, lineno, error=ParseError("truncated JSON: the array is never closed", source=name, line=lineno))


def read_items(paths: Iterable[str]) -> Iterator[Item]:
    """Items from every path in turn ("-" is stdin). OSError propagates for a missing file."""
    for path in paths:
        with InputSource(path) as src:
            yield from src.items()
