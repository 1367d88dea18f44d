"""A Splunk REST (splunkd management port) contract server, enough for splunk-sdk's export search.

Follows the documented splunkd behaviour that `splunklib.client` relies on:
  - GET /services/server/info -> an Atom feed whose entry content is an `s:dict` with `version`
    (splunk-sdk reads it to choose the search API: v2 paths from 9.0.2 on);
  - POST /services/search/v2/jobs/export (and the v1 /services/search/jobs/export) with form fields
    `search`, `output_mode=json`, `earliest_time`, `latest_time`, ... -> a stream of JSON lines
    `{"preview": false, "offset": n, "lastrow": true?, "result": {field: string, ...}}`, plus
    `{"messages": [{"type", "text"}]}` lines;
  - authentication by `Authorization: Bearer <token>` (splunk-sdk's `splunkToken=`) or
    `Splunk <session key>`; otherwise 401 with an XML `<response><messages><msg type="WARN">` body;
  - a search that does not start with a command or `search` text is answered 400 with XML messages;
  - index time, as Splunk documents it: every event carries `_indextime` (epoch seconds, when it was
    indexed) beside `_time` (when it happened, which can be much older). The export parameters
    `index_earliest` (inclusive) and `index_latest` (exclusive), and the search-time modifiers
    `_index_earliest=` / `_index_latest=`, select by `_indextime`; time strings are epoch seconds,
    `now`, or `-N{s,m,h,d}`; another string is answered 400 like splunkd's time parser;
  - `earliest_time` (inclusive) / `latest_time` (exclusive) select by `_time` only when the server is
    made with `event_time_filter=True` (older tests index events with arbitrary timestamps and search
    `-7d`); absent, they mean all time, as in Splunk.
Search evaluation is deliberately small: `field=value` terms (with `*` wildcards, quotes optional)
filter the indexed events; anything else (`index=*`, pipes after the first) is ignored.
"""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SERVER_INFO = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:s="http://dev.splunk.com/ns/rest" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">
  <title>server-info</title>
  <id>https://127.0.0.1/services/server/info</id>
  <updated>2025-01-01T00:00:00+00:00</updated>
  <generator build="contract" version="{version}"/>
  <author><name>Splunk</name></author>
  <opensearch:totalResults>1</opensearch:totalResults>
  <opensearch:itemsPerPage>30</opensearch:itemsPerPage>
  <opensearch:startIndex>0</opensearch:startIndex>
  <entry>
    <title>server-info</title>
    <id>https://127.0.0.1/services/server/info/server-info</id>
    <updated>2025-01-01T00:00:00+00:00</updated>
    <link href="/services/server/info/server-info" rel="alternate"/>
    <author><name>system</name></author>
    <content type="text/xml">
      <s:dict>
        <s:key name="build">contract</s:key>
        <s:key name="serverName">contract-splunkd</s:key>
        <s:key name="version">{version}</s:key>
        <s:key name="product_type">enterprise</s:key>
      </s:dict>
    </content>
  </entry>
</feed>
"""

EXPORT_PATHS = ("/services/search/v2/jobs/export", "/services/search/jobs/export")


def _messages_xml(kind: str, text: str) -> bytes:
    from xml.sax.saxutils import escape
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <messages>\n    <msg type="{kind}">'
            f"{escape(text)}</msg>\n  </messages>\n</response>\n").encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.headers.get("Connection", "").lower() == "close":     # splunk-sdk asks; splunkd honours it
            self.send_header("Connection", "Close")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):     # the client went away (a killed pull)
            self.close_connection = True

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        ok = scheme in ("Bearer", "Splunk") and value in self.server.tokens
        if not ok:
            self._send(401, _messages_xml("WARN", "call not properly authenticated"), "text/xml; charset=utf-8")
        return ok

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        with self.server.lock:
            self.server.requests.append(("GET", path))
        if not self._authorized():
            return
        if path == "/services/server/info":
            self._send(200, SERVER_INFO.format(version=self.server.version).encode(), "text/xml; charset=utf-8")
        else:
            self._send(404, _messages_xml("ERROR", f"Not Found: {path}"), "text/xml; charset=utf-8")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        with self.server.lock:
            self.server.requests.append(("POST", path))
            self.server.searches.append(form)
        if not self._authorized():
            return
        if path not in EXPORT_PATHS:
            self._send(404, _messages_xml("ERROR", f"Not Found: {path}"), "text/xml; charset=utf-8")
            return
        query = form.get("search", "")
        if form.get("output_mode") != "json":
            self._send(400, _messages_xml("ERROR", "this contract server answers output_mode=json only"),
                       "text/xml; charset=utf-8")
            return
        stripped = query.strip()
        if not (stripped.startswith("search ") or stripped.startswith("|")) or re.search(r"\|\s*(\||$)", stripped):
            self._send(400, _messages_xml("FATAL", "Error in 'SearchParser': Missing a search command before '|'."),
                       "text/xml; charset=utf-8")
            return
        try:
            bounds = _bounds(form, query, self.server.event_time_filter)
        except ValueError as exc:
            self._send(400, _messages_xml("FATAL", str(exc)), "text/xml; charset=utf-8")
            return
        with self.server.lock:
            indexed = list(self.server.indexed)
        results = [r for r in indexed if _matches(r, query) and _in_bounds(r, bounds)]
        lines = [json.dumps({"messages": [{"type": "INFO", "text": "contract server: export search"}]})]
        for i, result in enumerate(results):
            line: dict[str, Any] = {"preview": False, "offset": i}
            if i == len(results) - 1:
                line["lastrow"] = True
            line["result"] = result
            lines.append(json.dumps(line))
        self._send(200, ("\n".join(lines) + "\n").encode(), "application/json; charset=UTF-8")


_TERM = re.compile(r"^([A-Za-z_][\w.:]*)=(.+)$")
_RELATIVE = re.compile(r"^-(\d+)([smhd])$")


def _time_value(text: str, name: str) -> float:
    text = text.strip()
    if text == "now":
        return time.time()
    m = _RELATIVE.match(text)
    if m:
        return time.time() - int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"Invalid value \"{text}\" for time term '{name}'") from None


def _bounds(form: dict[str, str], query: str, event_time: bool) -> dict[str, tuple[float | None, float | None]]:
    """{field: (inclusive low, exclusive high)} for `_indextime` and (when honoured) `_time`."""
    low, high = form.get("index_earliest"), form.get("index_latest")
    try:
        terms = shlex.split(query.split("|", 1)[0])
    except ValueError:
        terms = []
    for term in terms:                        # search-time modifiers win over the parameters, as in Splunk
        if term.startswith("_index_earliest="):
            low = term.split("=", 1)[1]
        elif term.startswith("_index_latest="):
            high = term.split("=", 1)[1]
    bounds = {"_indextime": (None if low in (None, "") else _time_value(low, "index_earliest"),
                             None if high in (None, "") else _time_value(high, "index_latest"))}
    if event_time:
        e, l = form.get("earliest_time"), form.get("latest_time")
        bounds["_time"] = (None if e in (None, "") else _time_value(e, "earliest"),
                           None if l in (None, "") else _time_value(l, "latest"))
    return bounds


def _in_bounds(result: dict[str, Any], bounds: dict[str, tuple[float | None, float | None]]) -> bool:
    for name, (low, high) in bounds.items():
        value = float(result[name])
        if (low is not None and value < low) or (high is not None and value >= high):
            return False
    return True


def _matches(result: dict[str, Any], query: str) -> bool:
    first = query.split("|", 1)[0]
    try:
        terms = shlex.split(first)
    except ValueError:
        terms = first.split()
    for term in terms:
        m = _TERM.match(term)
        if not m:
            continue
        field, pattern = m.groups()
        if field in ("earliest", "latest", "_index_earliest", "_index_latest"):
            continue
        value = result.get(field)
        if value is None or not fnmatch.fnmatchcase(str(value), pattern):
            return False
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tokens: set[str], version: str, event_time_filter: bool, host: str = "127.0.0.1") -> None:
        if ":" in host:                       # an IPv6 address (::1)
            self.address_family = socket.AF_INET6
        super().__init__((host, 0), _Handler)
        self.event_time_filter = event_time_filter
        self.tokens = tokens
        self.version = version
        self.indexed: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.searches: list[dict[str, str]] = []
        self.lock = threading.Lock()


class SplunkRestContractServer:
    """`index(hec_event)` stores a HEC event as Splunk would return it from a search (fields as strings)."""

    def __init__(self, tokens: set[str], *, version: str = "9.3.0", event_time_filter: bool = False,
                 host: str = "127.0.0.1") -> None:
        self._server = _Server(tokens, version, event_time_filter, host)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._server.requests

    @property
    def searches(self) -> list[dict[str, str]]:
        return self._server.searches

    def index(self, hec_event: dict[str, Any], *, index: str = "main", indextime: float | None = None) -> None:
        """`indextime`: when Splunk indexed it (default now); `_time` is the HEC `time` (default: the
        index time, as HEC does for an event without one)."""
        body = hec_event["event"]
        raw = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        indexed_at = int(time.time() if indextime is None else indextime)
        event_time = hec_event.get("time")
        with self._server.lock:
            self._server.indexed.append({
                "_raw": raw, "_time": str(indexed_at if event_time in (None, "") else event_time),
                "_indextime": str(indexed_at), "host": hec_event.get("host", "contract"),
                "source": hec_event.get("source", "http:contract"), "sourcetype": hec_event.get("sourcetype", "_json"),
                "index": hec_event.get("index", index), "splunk_server": "contract-splunkd",
            })

    def start(self) -> "SplunkRestContractServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "SplunkRestContractServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
