"""Small helpers the subcommands share: input checks, error printing, stopping cleanly on a signal.

Exit codes (every subcommand): 0 success, 1 some events invalid or rejected, 2 usage or I/O error,
130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM), 141 the reader of standard output went
away (`| head`), as a shell reports a tool killed by SIGPIPE.
"""
from __future__ import annotations

import argparse
import difflib
import errno
import os
import re
import signal
import stat
import sys
import threading
from types import FrameType
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar
from urllib.parse import unquote, urlsplit

from ..errors import WiaError
from ..redact import redact

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141            # 128 + SIGPIPE (13); signal.SIGPIPE does not exist on Windows
EXIT_CODES_HELP = ("Exit codes: 0 success, 1 some events invalid or rejected, 2 usage or I/O error, "
                   "130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 141 output pipe closed (| head).")

T = TypeVar("T")


#: What must not reach a terminal from an event, a dead letter or a server's answer: C0 and C1 controls (ESC starts
#: sequences that recolour, clear or retitle the terminal; CR and LF forge a line of output) and the bidirectional
#: overrides and isolates that reorder what is shown.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with those characters written as escapes (`\\x1b`, `\\n`, `\\u202e`), for one line of terminal output."""
    return _UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def counted(n: int, noun: str) -> str:
    """"1 event", "1,000 events": a count with its noun, singular for one."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def add_delivery_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a run that validates events and delivers them in batches (forward, replay)."""
    from ..pipeline import DEFAULT_BATCH_SIZE
    p.add_argument("--lenient", action="store_true", default=None,
                   help="treat optional fields that are null as absent instead of rejecting the event")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help=f"events per delivery batch (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar on stderr (default: when stderr is a terminal and the events do not "
                        "go to that terminal too, as with --to -)")
    p.add_argument("--summary", choices=("text", "json"), default="text", help="summary format (default text)")


def missing_inputs(paths: Sequence[str]) -> list[str]:
    """Paths that cannot be read, each reported on stderr. For a regular file opening it is the test
    (os.access answers yes to root for any file)."""
    bad = []
    if list(paths).count("-") > 1:
        print("wia-security: -: standard input can be read only once", file=sys.stderr)
        bad.append("-")
    for path in paths:
        if path == "-":
            continue
        problem = _unreadable(path)
        if problem:
            print(f"wia-security: {path}: {problem}", file=sys.stderr)
            bad.append(path)
    return bad


def repeated_inputs(paths: Sequence[str], effect: str = "counted twice") -> list[str]:
    """Input paths naming a file given before (the same path, a hard or symbolic link, ./path, a shell glob that
    overlaps another), each reported on stderr with what reading it again would do (`effect`)."""
    seen: dict[tuple[int, int], int] = {}
    repeated = []
    for i, path in enumerate(paths):
        try:
            info = os.stat(path) if path != "-" else None
        except OSError:
            continue                            # missing_inputs names it
        if info is None or not stat.S_ISREG(info.st_mode):
            continue
        first = seen.setdefault((info.st_dev, info.st_ino), i)
        if first != i:
            print(f"wia-security: {path}: the same file as {paths[first]}, given before: its events would be "
                  f"{effect}", file=sys.stderr)
            repeated.append(path)
    return repeated


def _unreadable(path: str) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return _reason(exc)
    if stat.S_ISDIR(mode):
        return "is a directory"
    if not stat.S_ISREG(mode):
        # A FIFO or device: opening it here would take the writer's one connection (a FIFO) or
        # have effects; the permission bits are all that can be checked without reading.
        return None if os.access(path, os.R_OK) else "permission denied"
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        return _reason(exc)
    return None


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.EACCES:
        return "permission denied"
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


def no_events_reason(name: str, size: int | None, *, lines_only: bool = False, compressed: bool = False,
                     regular: bool = True) -> str:
    """Why an input that was read to its end gave no event: named so that a failed export (`export > f`
    that wrote nothing) is seen, not passed as zero events. `lines_only`: a line format (LEEF, CEF), where
    there is no JSON array to be empty; `compressed`: a gzip file (its size says nothing of what it holds);
    `regular`: False for a FIFO or device (its size is 0 whatever came through it)."""
    blank = "blank lines" if lines_only else "blank lines or an empty JSON array"
    if name == "<stdin>":
        what = f"standard input was empty or held only {blank}"
    elif not regular:
        what = f"the pipe or device gave nothing or only {blank}"
    elif compressed:
        what = f"the gzip file decompresses to nothing or only {blank}"
    elif size == 0:
        what = "the file is empty"
    else:
        what = f"the file holds only {blank}"
    return f"no events: {what} (a failed export?)"


def no_events_of(src: Any, *, lines_only: bool = False) -> str:
    """no_events_reason for an InputSource read to its end."""
    regular = src.name == "<stdin>" or os.path.isfile(src.name)
    return no_events_reason(src.name, src.size, lines_only=lines_only, compressed=src.compressed, regular=regular)


def noting_empty(items: Iterable[T], on_empty: Callable[[], None]) -> Iterator[T]:
    """The items; `on_empty()` once they are read to the end without one (never when the reader stops
    early: a stop signal leaves the input unread, not empty)."""
    seen = False
    for item in items:
        seen = True
        yield item
    if not seen:
        on_empty()


def fail(error: BaseException | str) -> int:
    """Print a usage/configuration error and return exit code 2 (known secrets masked: the error may
    quote a server's answer that echoed a credential)."""
    print(f"wia-security: {redact(described(error))}", file=sys.stderr)
    return EXIT_USAGE


def described(error: BaseException | str) -> str:
    """An error as one line for the user: an OSError about a file as `PATH: reason` (its str() is Python's
    `[Errno 2] No such file or directory: 'PATH'`), with the folder that is missing named."""
    if isinstance(error, OSError) and error.strerror and isinstance(error.filename, str):
        text = f"{error.filename}: {error.strerror}"
        folder = os.path.dirname(os.path.abspath(error.filename))
        if error.errno == errno.ENOENT and not os.path.isdir(folder):
            text += f" (directory {folder} does not exist)"
        return text
    return str(error)


def closest_match(word: str, choices: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def closest(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the nearest choice, or ''."""
    match = closest_match(word, choices)
    return f" (did you mean {match!r}?)" if match else ""


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def output_paths(thing: Any) -> list[str]:
    """Local files a sink or dead letter writes (a fan-out's, a SQLite store's, a sink dead letter's and
    its fallback's): an input that is one of them would grow while it is read."""
    paths = []
    path = getattr(thing, "path", None)
    if isinstance(path, str) and path != "-":
        paths.append(path)
    store = getattr(thing, "store", None)                    # SqliteSink
    if store is not None and isinstance(getattr(store, "path", None), str):
        paths.append(store.path)
    for inner in (getattr(thing, "sinks", None) or {}).values():   # FanOut
        paths += output_paths(inner)
    for attr in ("sink", "fallback"):                        # SinkDeadLetter
        inner = getattr(thing, attr, None)
        if inner is not None and not isinstance(inner, str):
            paths += output_paths(inner)
    return paths


def input_path(spec: str) -> str | None:
    """The local file an INPUT reads (a path, or a sqlite:/// dead letter); None for standard input."""
    if spec == "-":
        return None
    if spec.lower().startswith("sqlite://"):
        from wia_security.connectors.delivery.sqlite_url import sqlite_path
        return sqlite_path(spec)
    return spec


def sqlite_slashes_hint(spec: str, path: str) -> str:
    """For a missing store or dead letter named `sqlite:///dir/x.db`: the URL reads `dir/x.db` relative to the
    current directory, where `/dir/x.db` was probably meant (sqlite://// with four slashes)."""
    spec = spec[5:] if spec[:5].lower() == "sink+" else spec
    if not spec.lower().startswith("sqlite:///") or os.path.isabs(path) or "/" not in path:
        return ""
    absolute = "/" + path
    if not (os.path.exists(absolute) or os.path.isdir(os.path.dirname(absolute))):
        return ""
    # in the URL, the characters a URL reads otherwise are percent-encoded: a ? or # would be a query string or
    # fragment (refused), a % would read the next two characters as an escape
    encoded = absolute.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    return (f" (sqlite:/// is followed by a path relative to the current directory; for {absolute} write "
            f"sqlite:///{encoded})")


def sqlite_hint_for(error: object, specs: Iterable[str]) -> str:
    """The sqlite_slashes_hint for the store or dead letter among `specs` (destination URLs, dead-letter specs,
    sink+sqlite:// too) that `error` names and whose directory does not exist: `sqlite:///var/x.db` is
    ./var/x.db, and opening it failed for want of ./var."""
    text = str(error)
    for spec in specs:
        try:
            path = spec_path(spec)
        except WiaError:
            continue
        if (path and spec_path_is_sqlite(spec) and path in text
                and not os.path.isdir(os.path.dirname(path) or ".")):
            hint = sqlite_slashes_hint(spec, path)
            if hint:
                return hint
    return ""


def spec_path_is_sqlite(spec: str) -> bool:
    return (spec[5:] if spec[:5].lower() == "sink+" else spec)[:9].lower() == "sqlite://"


def spec_path(spec: str) -> str | None:
    """The local file a destination or dead-letter spec (a path, file://, sqlite://) writes, known before
    opening it, so an input is never touched; None for other URLs."""
    if "://" not in spec:
        from wia_security.connectors.delivery.sqlite_url import check_sqlite_url
        check_sqlite_url(spec[5:] if spec[:5].lower() == "sink+" else spec)    # sqlite:x.db: not a file named so
        return spec
    if spec[:5].lower() == "sink+":                 # a dead letter into a sink: that sink's file or store
        return spec_path(spec[5:])
    scheme = spec.split("://", 1)[0].lower()
    if scheme == "file":
        return unquote(urlsplit(spec).path)
    if scheme == "sqlite":
        from wia_security.connectors.delivery.sqlite_url import sqlite_path
        return sqlite_path(spec)
    return None


def dead_letter_in_destination(urls: Iterable[str], dead_letter_spec: str) -> str | None:
    """The destination URL that writes the dead letter's file, known before either is opened: the dead-letter
    records would be mixed into the events delivered there (and read back as events). None when none does, or
    when both are SQLite (a store and a SQLite dead letter keep separate tables in one file)."""
    try:
        dead = spec_path(dead_letter_spec)
    except WiaError:
        return None                                  # opening it reports the bad spec
    if not dead or dead == "-":
        return None
    for url in urls:
        try:
            path = spec_path(url)
        except WiaError:
            continue
        if not path or path == "-" or (spec_path_is_sqlite(url) and spec_path_is_sqlite(dead_letter_spec)):
            continue
        if os.path.realpath(path) == os.path.realpath(dead) or same_file(path, dead):
            return url
    return None


def clash_with_inputs(inputs: list[str], outputs: list[str]) -> tuple[str, str] | None:
    """(INPUT, output) of the first output file that is also an input."""
    for spec in inputs:
        path = input_path(spec)
        if path is None:
            continue
        for out in outputs:
            if same_file(path, out):
                return spec, out
    return None


def destination_clash(inputs: list[str], urls: list[str]) -> tuple[str, str] | None:
    """(INPUT, file) when a destination URL writes a file that is an input, found before it is opened
    (opening a SQLite store writes to it, a file destination is created empty)."""
    paths = []
    for url in urls:
        try:
            path = spec_path(url)
        except WiaError:
            continue                                 # opening it reports the bad URL
        if path and path != "-":
            paths.append(path)
    return clash_with_inputs(inputs, paths)


class Interrupted(BaseException):
    """Raised out of a blocked read when a stop signal arrives (BaseException: no reader swallows it)."""


class StopSignals:
    """SIGINT and SIGTERM ask a run to stop between two input items, so that everything read so far is
    finished (written, delivered or dead-lettered), the output ends with complete lines, and the counts
    printed are exact. A second signal aborts at once (KeyboardInterrupt).

    Use as a context manager around the run and read the input through `items()`. `exit_code` is
    128 + the signal number once one arrived. A signal the process was started ignoring (`nohup`, a
    background job) stays ignored."""

    def __init__(self, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = signals
        self.received: int | None = None
        self._reading = False
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> int | None:
        return None if self.received is None else 128 + self.received

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                previous = signal.getsignal(sig)
                if previous is signal.SIG_IGN:
                    continue
                self._previous[sig] = previous
                signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        # os.write, not print: the main thread may be inside a write to sys.stderr right now.
        name = "interrupted" if signum == signal.SIGINT else f"{signal.Signals(signum).name} received"
        _write_stderr(f"\nwia-security: {name}: finishing what was read so far "
                      "(send it again to stop at once)\n")
        if self._reading:
            raise Interrupted

    def items(self, iterables: Iterable[Iterable[T]]) -> Iterator[T]:
        """The items of each iterable in turn, until a stop signal arrives. A signal during a blocking
        read (a quiet pipe) ends the read; one at any other moment ends the run before the next item."""
        for iterable in iterables:
            iterator = iter(iterable)
            while True:
                try:
                    self._reading = True
                    if self.received is not None:
                        return
                    item = next(iterator, _END)
                    self._reading = False
                except Interrupted:
                    self._reading = False
                    return
                if item is _END:
                    break
                yield item  # type: ignore[misc]

    def note(self) -> str:
        """What to say after the counts when the run was stopped by a signal."""
        if self.received is None:
            return ""
        name = "interrupted" if self.received == signal.SIGINT else f"stopped by {signal.Signals(self.received).name}"
        return f"wia-security: {name}: the counts above cover everything read before the signal; the rest was not read"


_END = object()


def _write_stderr(text: str) -> None:
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass


def silence_stdout() -> None:
    """After EPIPE on stdout: point fd 1 at /dev/null so the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
