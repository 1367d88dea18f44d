"""Splunk search source: an export search through splunk-sdk, turned back into WIA events.

`SplunkSearchSource("https://splunk.example.com:8089", token=Secret)` connects with
`splunklib.client.connect(..., splunkToken=token, autologin=False)` (a Splunk authentication token,
sent as a Bearer header) and runs `service.jobs.export(query, output_mode="json")`, read with
`splunklib.results.JSONResultsReader`. Each result yields a `reader.Item`, the same record the file
reader yields, so `Forwarder.run(source.items(...))` re-delivers Splunk's events anywhere:
  - sourcetype `wia:security:*`: `_raw` is the WIA event JSON the HEC sink sent; parsed into `value`
    (validation is the caller's: the Forwarder validates and dead-letters);
  - any other sourcetype, or a `_raw` that is not JSON: an Item with a ParseError naming the
    sourcetype — reported, never silently skipped;
  - Splunk messages (INFO/WARN/ERROR lines of the export stream) are kept in `messages`; a search whose
    stream said ERROR or FATAL raises DeliveryError after its results (they may be incomplete).

`pull(sink, dead_letter, checkpoint_path)` is the incremental mode: it reads by INDEX time
(`index_earliest` inclusive / `index_latest` exclusive export parameters, on epoch seconds) in
windows [a, b), [b, c), ... that neither overlap nor leave gaps, with all event time searched (an
event whose `_time` is days old but was indexed now is still read). After each window's events are
delivered or dead-lettered, the checkpoint (`SearchCheckpoint`) is saved atomically.
"""
from __future__ import annotations

import json
import re
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError, DeliveryError, ParseError
from wia_security.outputs import held_exclusively, replace_durably
from wia_security.reader import Item

from ..config import Secret, resolve_options
from ..delivery.urls import (boolean, check_header_secret, seconds, tls_verification, url_netloc,
                             warn_plain_http_secret)
from .hec import SOURCETYPE_PREFIX

SPLUNK_MANAGEMENT_PORT = 8089
DEFAULT_QUERY = f'search sourcetype="{SOURCETYPE_PREFIX}*"'
#: Bytes asked of the export stream per read (a line may span several reads).
EXPORT_READ_BLOCK = 64 * 1024
#: Message types of the export stream that mean the search did not run to its end everywhere.
SEARCH_ERROR_TYPES = ("ERROR", "FATAL")
OPTIONS = ("token", "tls_verify", "ca_file", "app", "owner", "timeout")

# Incremental pull (`pull()`, `wia-security pull --checkpoint`)
CHECKPOINT_FORMAT = "wia-security/splunk-search-checkpoint"
DEFAULT_START = "-24h"          # a first run (no checkpoint yet) reads what was indexed this long ago
DEFAULT_LAG = 60                # seconds: the newest index time read is now - LAG (see pull())
DEFAULT_WINDOW = 3600           # seconds of index time of the first export search, and the smallest
#: A window that read fewer events than this makes the next one twice as long (up to MAX_WINDOW), one that read
#: more than DENSE_WINDOW_EVENTS half as long (down to the configured window): each export search scans every
#: bucket of all event time, so a start months back read hour by hour ran thousands of searches.
SPARSE_WINDOW_EVENTS = 1_000
DENSE_WINDOW_EVENTS = 20_000
MAX_WINDOW = 7 * 86400
DEFAULT_MAX_EVENTS = 100_000    # per run; checked between windows (a window is always finished)


class SplunkSearchSource:
    """Reads WIA events back out of Splunk with an export search."""

    def __init__(self, url: str, *, token: Secret | str, tls_verify: bool = True, ca_file: str | None = None,
                 app: str | None = None, owner: str | None = None, timeout: float | None = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("expected https://host[:8089]", key="url")
        if not token:
            raise ConfigError("a Splunk authentication token is required (token_env / token_file)", key="token")
        self.host, self.port, self.scheme = parts.hostname, parts.port or SPLUNK_MANAGEMENT_PORT, parts.scheme
        self.name = f"splunk-search:{f'[{self.host}]' if ':' in self.host else self.host}:{self.port}"
        warn_plain_http_secret(self.name, url, "Splunk token")
        self._token = token if isinstance(token, Secret) else Secret(str(token), "argument")
        check_header_secret(self._token.reveal(), key="token", product="Splunk search")
        # as the HEC sink: a CA file wins over tls_verify=false (warned), verification off is warned
        verification = tls_verification(self.name, tls_verify, ca_file)
        self._verify = bool(verification)
        self._context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self.app, self.owner, self.timeout = app, owner, timeout
        self.messages: list[tuple[str, str]] = []
        self._service: Any = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SplunkSearchSource":
        """`splunk+https://host:8089?token_env=SPLUNK_TOKEN`"""
        parts = urlsplit(url)
        transport = parts.scheme.split("+", 1)[1] if "+" in parts.scheme else "https"
        pairs = parse_qsl(parts.query)
        repeated = sorted({k for k, _ in pairs if sum(1 for n, _ in pairs if n == k) > 1})
        if repeated:              # the last one won, silently (token_env=A&token_env=B searched with B's token)
            raise ConfigError(f"given more than once in the URL: {', '.join(repeated)}", key=repeated[0],
                              source=f"{parts.scheme}://{url_netloc(parts)}")
        query = resolve_options(dict(pairs), source=f"{parts.scheme}://{parts.hostname}")
        merged = {**query, **options}
        unknown = set(merged) - set(OPTIONS)
        if unknown:
            raise ConfigError(f"unknown Splunk search option(s) {', '.join(sorted(unknown))}; known: {', '.join(OPTIONS)}",
                              key=sorted(unknown)[0])
        where = f"{parts.scheme}://{parts.hostname}"
        if "tls_verify" in merged:
            merged["tls_verify"] = boolean(merged["tls_verify"], "tls_verify", where)
        if isinstance(merged.get("timeout"), str):        # from the URL or a config file: a number of seconds
            merged["timeout"] = seconds(merged["timeout"], "timeout", where)
        return cls(f"{transport}://{url_netloc(parts)}", **merged)    # an IPv6 address keeps its brackets

    def __repr__(self) -> str:
        return f"<SplunkSearchSource {self.name}>"

    @property
    def service(self) -> Any:
        if self._service is None:
            from splunklib import binding, client
            # splunk-sdk 2.x accepts `timeout` in connect() but never hands it to its HTTP handler:
            # a handler built here is the only way a stalled splunkd times out.
            http = binding.handler(timeout=self.timeout, verify=self._verify, context=self._context)
            try:
                service = client.connect(host=self.host, port=self.port, scheme=self.scheme, handler=http,
                                         splunkToken=self._token.reveal(), autologin=False,
                                         verify=self._verify, context=self._context, app=self.app,
                                         owner=self.owner, timeout=self.timeout)
                service.splunk_version          # GET /services/server/info now, so its failures are named here
                self._service = service
            except Exception as exc:  # noqa: BLE001 - every way connecting fails becomes one clear error
                raise self._error("connecting (GET /services/server/info)", exc) from None
        return self._service

    def items(self, query: str = DEFAULT_QUERY, *, earliest: str | None = "-24h", latest: str | None = "now",
              max_results: int | None = None, **params: Any) -> Iterator[Item]:
        """Run an export search; one Item per result (see the module docstring). `earliest`/`latest`
        None leave that end of the event-time range open (Splunk: all time). A line of the export
        stream that is not a result Item is an error Item naming the line; a stream that breaks off
        raises DeliveryError naming how many results came before."""
        if not query.lstrip().startswith(("search ", "|")):
            query = "search " + query
        service = self.service
        params = {"segmentation": "none", **params}
        try:
            # jobs.export() without dropping the status: splunklib raises only for >= 400, so a 3xx
            # (a proxy, a wrong port) would otherwise read as a search that found nothing.
            times = {k: v for k, v in (("earliest_time", earliest), ("latest_time", latest)) if v is not None}
            response = service.jobs.post(path_segment="export", search=query, output_mode="json", **times, **params)
        except Exception as exc:  # noqa: BLE001
            raise self._error("starting the export search", exc) from None
        stream = response.body
        try:
            if response.status != 200:
                location = dict((k.lower(), v) for k, v in response.headers).get("location")
                raise DeliveryError(f"Splunk search failed: HTTP {response.status} {response.reason}"
                                    + (f" (redirect to {location})" if location else "")
                                    + ": expected 200 and a JSON results stream", sink=self.name,
                                    status=response.status)
            kind = dict((k.lower(), v) for k, v in response.headers).get("content-type", "")
            if kind and "json" not in kind.lower():
                raise DeliveryError(f"Splunk search failed: the export answered {kind!r}, not a JSON results "
                                    "stream (a proxy page?)", sink=self.name, status=response.status)
            count = 0
            seen = len(self.messages)
            for line_number, line in enumerate(self._lines(stream, lambda: count), 1):
                for item in self._parse_line(line, line_number, count):
                    count += 1
                    yield item
                    if max_results is not None and count >= max_results:
                        return
            self._raise_search_errors(self.messages[seen:], count)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def _raise_search_errors(self, messages: list[tuple[str, str]], count: int) -> None:
        """An export stream that said ERROR or FATAL (a peer that failed or was down, a search cancelled or
        stopped by a limit) ended with results that may be incomplete: say so after them, so an incremental
        pull keeps its checkpoint before the window instead of passing events it never read."""
        errors = [(kind.upper(), text) for kind, text in messages if kind.upper() in SEARCH_ERROR_TYPES]
        if not errors:
            return
        said = "; ".join(f"{kind}: {' '.join(text.split())[:300]}" for kind, text in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise DeliveryError(f"Splunk search failed: the export stream reported {said}{more}; its {count} result(s) "
                            "may be incomplete", sink=self.name,
                            retryable=all(kind == "ERROR" for kind, _ in errors))

    def _lines(self, stream: Any, results_so_far: Any) -> Iterator[bytes]:
        """The non-blank lines of the export stream, read in blocks. splunk-sdk's ResponseReader has no buffer
        of its own, so readline() took the stream one byte per call (a peek and a read each): about 0.5 MB,
        some 250 results, a second of CPU."""
        parts: list[bytes] = []
        try:
            while True:
                block = stream.read(EXPORT_READ_BLOCK)
                if not block:
                    break
                start = 0
                while (end := block.find(b"\n", start)) >= 0:
                    parts.append(block[start:end])
                    line, parts = b"".join(parts), []
                    if line.strip():
                        yield line
                    start = end + 1
                if start < len(block):
                    parts.append(block[start:])
            line = b"".join(parts)
            if line.strip():
                yield line
        except Exception as exc:  # noqa: BLE001 - a cut or stalled stream: say how far it got
            raise self._error(f"reading the export stream after {results_so_far()} result(s)", exc) from None

    def _parse_line(self, line: bytes, line_number: int, count: int) -> Iterator[Item]:
        """The Items of one export line; messages go to `messages`, previews are skipped (final
        results supersede them). splunk-sdk's JSONResultsReader is not used: one bad line ends its
        stream, and it keeps only the last message of a line."""
        where = f"{self.name}/export"

        def bad(why: str) -> Item:
            return Item(where, count + 1, error=ParseError(f"export line {line_number}: {why}", source=where,
                                                           line=count + 1), raw=line.strip())
        try:
            doc = jsonio.loads(line, source=where, line=line_number)
        except ParseError as exc:
            yield bad(f"not JSON ({exc.reason})")
            return
        if not isinstance(doc, dict):
            yield bad(f"a JSON {type(doc).__name__}, not an object")
            return
        known = False
        messages = doc.get("messages")
        if messages is not None:
            known = True
            for message in messages if isinstance(messages, list) else [messages]:
                if isinstance(message, dict):
                    self.messages.append((str(message.get("type", "UNKNOWN")), str(message.get("text", ""))))
                else:
                    self.messages.append(("UNKNOWN", f"malformed message on export line {line_number}: {message!r}"))
        results: Any = None
        if "result" in doc:
            results = [doc["result"]]
        elif "results" in doc:
            results = doc["results"]
            if not isinstance(results, list):
                yield bad("/results is not a list")
                return
        if results is None:
            if not known:
                yield bad("no result, results or messages member")
            return
        if doc.get("preview") is True:
            return
        for n, result in enumerate(results):
            if isinstance(result, dict):
                yield self._item(result, count + 1)
            else:
                path = "/result" if "result" in doc else f"/results/{n}"
                yield bad(f"{path} is a JSON {type(result).__name__}, not an object")
            count += 1

    def _error(self, what: str, exc: Exception) -> DeliveryError:
        """A DeliveryError for a failed step: HTTP status and Splunk's message when there is one, the
        network error otherwise; never the token."""
        from splunklib.binding import HTTPError
        from ..delivery import classify_exception
        if isinstance(exc, DeliveryError):
            return exc
        if isinstance(exc, HTTPError):
            detail = " ".join(str(exc).split())[:300]
            return DeliveryError(f"Splunk search failed {what}: HTTP {exc.status}: {detail}", sink=self.name,
                                 status=exc.status, retryable=exc.status in (429, 500, 502, 503, 504))
        if isinstance(exc, (SyntaxError, ValueError, AttributeError, KeyError, TypeError)):
            # splunk-sdk choking on a reply it cannot read: an HTML page where splunkd answers Atom XML
            # (a proxy, the web UI's port)
            return DeliveryError(f"Splunk search failed {what}: the reply is not splunkd's "
                                 f"({type(exc).__name__}: {exc}); is the URL the management port (8089)?",
                                 sink=self.name)
        error = classify_exception(exc)
        return DeliveryError(f"Splunk search failed {what}: {error.reason}", sink=self.name,
                             retryable=error.retryable)

    def pull(self, sink: Any, dead_letter: Any, checkpoint_path: str, **options: Any) -> "PullResult":
        """One incremental run by index time (module docstring): windows of `window` seconds at first (longer
        after sparse ones, SPARSE_WINDOW_EVENTS) from the checkpoint (or `start` on a first run) up to now - `lag`, each delivered (rejects
        dead-lettered) before the checkpoint moves past it; stops between windows once `max_events`
        were read. Options: query, start, earliest (an event-time floor; default all time), lag,
        window, max_events, lenient, progress (a callable given one line per window), now (the
        clock, epoch seconds; tests pass a fixed one)."""
        return _pull(self, sink, dead_letter, checkpoint_path, **options)

    def events(self, query: str = DEFAULT_QUERY, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Only the WIA events (unvalidated dicts); use `items()` to see what was not one."""
        for item in self.items(query, **kwargs):
            if item.ok:
                yield item.value

    def _item(self, result: dict[str, Any], number: int) -> Item:
        where = f"{self.name}/{result.get('index', '?')}"
        raw = result.get("_raw")
        raw_bytes = raw.encode("utf-8") if isinstance(raw, str) else None
        sourcetype = result.get("sourcetype")
        if not isinstance(sourcetype, str) or not sourcetype.startswith(SOURCETYPE_PREFIX):
            return Item(where, number, error=ParseError(f"not a WIA event: sourcetype {sourcetype!r}", source=where,
                                                        line=number), raw=raw_bytes or jsonio.dumpb(result))
        if raw_bytes is None:
            return Item(where, number, error=ParseError("result has no _raw", source=where, line=number),
                        raw=jsonio.dumpb(result))
        try:
            value = jsonio.loads(raw_bytes, source=where, line=number)
        except ParseError as exc:
            return Item(where, number, error=exc, raw=raw_bytes)
        if not isinstance(value, dict):
            return Item(where, number, error=ParseError("_raw is JSON but not an object", source=where, line=number),
                        raw=raw_bytes)
        return Item(where, number, value=value, raw=raw_bytes)


# ---------------------------------------------------------------------------------------------
def next_window(size: int, read: int, smallest: int) -> int:
    """The next window's seconds after one of `size` seconds that read `read` events (SPARSE_WINDOW_EVENTS)."""
    if read < SPARSE_WINDOW_EVENTS:
        return max(min(size * 2, MAX_WINDOW), size)
    if read > DENSE_WINDOW_EVENTS:
        return max(size // 2, smallest)
    return size


@dataclass
class SearchCheckpoint:
    """How far an incremental pull has read: every event with `_indextime` < `index_time` (epoch
    seconds) matched by `query` on `splunk` (host:port) was delivered or dead-lettered."""

    splunk: str
    query: str
    index_time: int

    def to_dict(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "version": 1, "splunk": self.splunk, "query": self.query,
                "index_time": self.index_time, "index_time_utc": _iso(self.index_time), "saved": _iso(time.time())}

    @classmethod
    def load(cls, path: str, *, splunk: str, query: str) -> "SearchCheckpoint | None":
        """None when there is no file yet. A damaged or foreign file stops the pull with a ConfigError
        naming it: starting over would re-read a day, guessing could skip events."""
        reset = (f"; to start over, delete {path} (the next run reads from --index-start) or pass another "
                 "--checkpoint")
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"unreadable Splunk checkpoint: {exc}", key="checkpoint", source=path) from None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"the Splunk checkpoint is not JSON ({exc}){reset}", key="checkpoint",
                              source=path) from None
        if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(f"not a Splunk search checkpoint (no \"format\": \"{CHECKPOINT_FORMAT}\"; another "
                              f"source's checkpoint?){reset}", key="checkpoint", source=path)
        if doc.get("version") != 1:
            raise ConfigError(f"unknown Splunk checkpoint version {doc.get('version')!r}{reset}", key="checkpoint",
                              source=path)
        index_time = doc.get("index_time")
        if type(index_time) is not int or index_time < 0:
            raise ConfigError(f"index_time {str(index_time)[:40]!r} is not epoch seconds{reset}", key="checkpoint",
                              source=path)
        if doc.get("splunk") != splunk or doc.get("query") != query:
            raise ConfigError(f"the checkpoint belongs to another search ({doc.get('splunk')!r}, query "
                              f"{str(doc.get('query'))[:80]!r}), not ({splunk!r}, query {query[:80]!r}){reset}",
                              key="checkpoint", source=path)
        return cls(splunk, query, index_time)

    def save(self, path: str) -> None:
        """Atomically: a temporary file in the same folder, fsynced, renamed over `path`, then the
        folder fsynced (only then is the rename durable). A crash leaves the old or the new file."""
        replace_durably(path, json.dumps(self.to_dict()) + "\n")


_RELATIVE = re.compile(r"^-(\d+)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def index_start(text: str, now: float) -> int:
    """`--index-start`: epoch seconds, `-N{s,m,h,d}` before now, or an ISO 8601 date-time with offset."""
    text = text.strip()
    m = _RELATIVE.match(text)
    if m:
        return int(now) - int(m.group(1)) * _UNIT[m.group(2)]
    if text.isdigit():
        return int(text)
    try:
        # upper(): RFC 3339 takes t and z in either case ('2026-03-14t15:09:26z' was refused as having no offset)
        parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ConfigError(f"{text!r} is not epoch seconds, -N[smhd] or an ISO 8601 date-time with an offset",
                          key="index_start")
    return int(parsed.timestamp())


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PullResult:
    """What one incremental run did: `summary` (a ForwardSummary over all windows), the index-time
    range read [index_from, index_to), and whether it caught up to now - lag."""

    summary: Any
    index_from: int
    index_to: int
    windows: int = 0
    caught_up: bool = True
    checkpoint: str = ""
    stopped: bool = False           # a stop signal ended the run inside a window (not saved: re-read next run)

    def to_dict(self) -> dict[str, Any]:
        return {"index_time_from": _iso(self.index_from), "index_time_to": _iso(self.index_to),
                "index_earliest": self.index_from, "index_latest": self.index_to, "windows": self.windows,
                "caught_up": self.caught_up, "checkpoint": self.checkpoint, "stopped": self.stopped}

    def render(self) -> str:
        span = (f"index time: {_iso(self.index_from)} .. {_iso(self.index_to)} "
                f"(_indextime >= {self.index_from} and < {self.index_to}; {self.windows} window(s))")
        why = "stopped by a signal" if self.stopped else "--max-events reached"
        more = "" if self.caught_up else (f"\nnot caught up ({why}): the next run continues at {_iso(self.index_to)}")
        return f"{span}\ncheckpoint: {self.checkpoint}{more}"


def _pull(source: SplunkSearchSource, sink: Any, dead_letter: Any, checkpoint_path: str, *,
          query: str = DEFAULT_QUERY, start: str = DEFAULT_START, earliest: str | None = None,
          lag: int = DEFAULT_LAG, window: int = DEFAULT_WINDOW, max_events: int = DEFAULT_MAX_EVENTS,
          lenient: bool = False, progress: Callable[[str], None] | None = None,
          now: Callable[[], float] = time.time, stop: Any = None) -> PullResult:
    from wia_security.pipeline import Forwarder
    if not lag >= 0:
        raise ConfigError("the lag must be 0 or more seconds", key="lag")
    if not window >= 1:
        raise ConfigError("the window must be at least 1 second", key="window")
    if not max_events >= 1:
        raise ConfigError("max_events must be at least 1", key="max_events")
    if not query.lstrip().startswith(("search ", "|")):
        query = "search " + query
    # one run per checkpoint: a second would read the same windows, and could save an older position
    with held_exclusively(checkpoint_path, "Splunk pull"):
        splunk = f"{source.host}:{source.port}"
        checkpoint = SearchCheckpoint.load(checkpoint_path, splunk=splunk, query=query)
        if checkpoint is None:
            checkpoint = SearchCheckpoint(splunk, query, index_start(start, now()))
            checkpoint.save(checkpoint_path)       # a relative start would move on with the clock: pin it
        # Events become searchable a little after their _indextime (indexers write and replicate in
        # their own time): reading only up to now - lag leaves them time to appear before the checkpoint
        # passes them.
        until = int(now()) - lag
        forwarder = Forwarder(sink, dead_letter, lenient=lenient)
        summary = forwarder.summary
        result = PullResult(summary, checkpoint.index_time, checkpoint.index_time, checkpoint=checkpoint_path)
        started = time.monotonic()
        size = window
        try:
            while checkpoint.index_time < until:
                if summary.read >= max_events:
                    result.caught_up = False
                    break
                begin, end = checkpoint.index_time, min(checkpoint.index_time + size, until)
                before = (summary.read, summary.delivered, summary.duplicates, summary.dead_lettered)
                finished: list[bool] = []

                def window_items() -> Iterator[Item]:
                    yield from source.items(query, earliest=earliest, latest=None, index_earliest=str(begin),
                                            index_latest=str(end))
                    finished.append(True)

                # `stop` (the CLI's StopSignals) ends the window's reading at a signal; what was read is
                # still delivered, but the checkpoint stays before an unfinished window
                forwarder.run(stop.items([window_items()]) if stop is not None else window_items())
                if hasattr(dead_letter, "flush"):
                    dead_letter.flush()
                if not finished:
                    result.caught_up, result.stopped = False, True
                    break
                checkpoint = SearchCheckpoint(splunk, query, end)
                checkpoint.save(checkpoint_path)        # only after the window was delivered or dead-lettered
                result.index_to, result.windows = end, result.windows + 1
                size = next_window(size, summary.read - before[0], window)
                if progress is not None:
                    read, delivered, duplicates, dead = (a - b for a, b in zip(
                        (summary.read, summary.delivered, summary.duplicates, summary.dead_lettered), before))
                    progress(f"splunk: index time {_iso(begin)} .. {_iso(end)}: read {read:,}, delivered {delivered:,}, "
                             f"duplicates {duplicates:,}, dead-lettered {dead:,}; checkpoint saved")
                if stop is not None and stop.received is not None:
                    result.caught_up, result.stopped = False, True
                    break
        finally:
            summary.seconds = time.monotonic() - started
        return result

