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
  - a search that does not start with a command or `search` text is answered 400 with XML messages.
Search evaluation is deliberately small: `field=value` terms (with `*` wildcards, quotes optional)
filter the indexed events; anything else (`index=*`, pipes after the first) is ignored.
"""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
import threading
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
        self.wfile.write(body)

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
        results = [r for r in self.server.indexed if _matches(r, query)]
        lines = [json.dumps({"messages": [{"type": "INFO", "text": "contract server: export search"}]})]
        for i, result in enumerate(results):
            line: dict[str, Any] = {"preview": False, "offset": i}
            if i == len(results) - 1:
                line["lastrow"] = True
            line["result"] = result
            lines.append(json.dumps(line))
        self._send(200, ("\n".join(lines) + "\n").encode(), "application/json; charset=UTF-8")


_TERM = re.compile(r"^([A-Za-z_][\w.:]*)=(.+)$")


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
        if field in ("earliest", "latest"):
            continue
        value = result.get(field)
        if value is None or not fnmatch.fnmatchcase(str(value), pattern):
            return False
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tokens: set[str], version: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tokens = tokens
        self.version = version
        self.indexed: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.searches: list[dict[str, str]] = []
        self.lock = threading.Lock()


class SplunkRestContractServer:
    """`index(hec_event)` stores a HEC event as Splunk would return it from a search (fields as strings)."""

    def __init__(self, tokens: set[str], *, version: str = "9.3.0") -> None:
        self._server = _Server(tokens, version)
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

    def index(self, hec_event: dict[str, Any], *, index: str = "main") -> None:
        body = hec_event["event"]
        raw = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        self._server.indexed.append({
            "_raw": raw, "_time": str(hec_event.get("time", "")), "host": hec_event.get("host", "contract"),
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
