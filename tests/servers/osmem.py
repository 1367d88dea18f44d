"""osmem-server (an OpenSearch-API emulator from PyPI) on 127.0.0.1, plus a fault-injecting proxy in front of it.

`osmem()` starts the real emulator on a free loopback port (stopped by PID at the end of the test
session). `FaultProxy(upstream)` forwards requests unchanged unless a fault is queued for the next
request: an HTTP error status with a Retry-After header, a connection reset, a stall past the
client's timeout, a server that indexes the batch and then dies before answering, or a bulk
request in which chosen actions are refused with 429 `es_rejected_execution_exception` (those
are not forwarded, as a busy node does not index them). `EsCompatNode` is the test-only node class
DESIGN.md calls for: elasticsearch-py 8/9 sends `application/vnd.elasticsearch+json;
compatible-with=N`, which OpenSearch (and osmem) answer with 406, and checks for the
`X-Elastic-Product` header, which they do not send.
"""
from __future__ import annotations

import http.client
import json
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

try:
    from elastic_transport import HttpHeaders, Urllib3HttpNode
    from elastic_transport.client_utils import DEFAULT
except ImportError:  # pragma: no cover - the elastic extra is part of the test install
    Urllib3HttpNode = object  # type: ignore[assignment,misc]


class EsCompatNode(Urllib3HttpNode):  # type: ignore[misc,valid-type]
    """Rewrites elasticsearch-py's vendor media types to plain JSON and marks responses as Elasticsearch's."""

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = DEFAULT) -> Any:
        rewritten = HttpHeaders(headers or {})
        for name in ("accept", "content-type"):
            value = rewritten.get(name)
            if value and "vnd.elasticsearch" in value:
                rewritten[name] = "application/x-ndjson" if "x-ndjson" in value else "application/json"
        response = super().perform_request(method, target, body=body, headers=rewritten,
                                           request_timeout=request_timeout)
        response.meta.headers["X-Elastic-Product"] = "Elasticsearch"
        return response


def start_osmem() -> Any:
    from osmem_server import OsmemServer
    return OsmemServer.start(addr="127.0.0.1:0", japanese=False)


@pytest.fixture(scope="session")
def osmem_base() -> Iterator[Any]:
    server = start_osmem()
    yield server
    server.close()


@pytest.fixture
def osmem(osmem_base: Any) -> Iterator[str]:
    """A fresh, empty osmem cluster (a clone of the session's server on its own port): its URL."""
    clone = osmem_base.clone()
    yield clone.url
    clone.close()


# --- the fault-injecting proxy -----------------------------------------------------------------------
@dataclass
class Fault:
    kind: str                       # status | reset | stall | die_after_forward | reject_items
    # stall: no answer until the client hangs up (at most `seconds`), then a reset
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    raw: bytes | None = None            # status: this body as is (a proxy's HTML page, a cut-off JSON)
    seconds: float = 0.0
    every: int = 0                  # reject_items: refuse actions whose index % every == 0


#: What nginx answers for a body over `client_max_body_size` (1 MB by default).
NGINX_413 = (b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request "
             b"Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


class FaultProxy:
    """A threaded HTTP proxy to `upstream` that plays queued faults on bulk requests (others pass)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.faults: deque[Fault] = deque()
        self.requests: list[tuple[str, str, int]] = []     # (method, path, response status or 0)
        self.stalls_given_up = 0            # stalled requests the client abandoned (its timeout fired)
        self.max_body: int | None = None    # bulk bodies over this get nginx's 413 page (client_max_body_size)
        self.lock = threading.Lock()
        self.stall_ended = threading.Condition(self.lock)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = None
                if "_bulk" in self.path:
                    with proxy.lock:
                        fault = proxy.faults.popleft() if proxy.faults else None
                    if fault is None and proxy.max_body is not None and length > proxy.max_body:
                        fault = Fault("status", 413, {"Content-Type": "text/html"}, raw=NGINX_413)
                proxy.handle(self, body, fault)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def queue(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def stalls_given_up_after(self, expected: int, timeout: float = 30) -> int:
        """`stalls_given_up` once it reaches `expected`, else as it is after `timeout` seconds: the proxy sees the
        client's close a moment after the client has moved on."""
        with self.stall_ended:
            self.stall_ended.wait_for(lambda: self.stalls_given_up >= expected, timeout)
            return self.stalls_given_up

    def forward(self, method: str, path: str, body: bytes, headers: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            keep = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection", "content-length")}
            conn.request(method, path, body=body or None, headers=keep)
            resp = conn.getresponse()
            return resp.status, [(k, v) for k, v in resp.getheaders()
                                 if k.lower() not in ("connection", "transfer-encoding", "content-length")], resp.read()
        finally:
            conn.close()

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes, fault: Fault | None) -> None:
        status = 0
        try:
            if fault is None:
                status, headers, payload = self.forward(handler.command, handler.path, body, handler.headers)
                self._reply(handler, status, payload, headers)
            elif fault.kind == "status":
                status = fault.status
                payload = fault.raw if fault.raw is not None else json.dumps(
                    fault.body or {"error": {"type": "fault", "reason": f"injected {status}"}, "status": status}).encode()
                headers = {"Content-Type": "application/json", **fault.headers}
                self._reply(handler, status, payload, list(headers.items()))
            elif fault.kind == "reset":
                _reset(handler)
            elif fault.kind == "stall":
                # Unanswered until the client gives up: a stall of fixed length had to be shorter than the test
                # could wait, so the client's timeout was short too, and on a loaded machine it cut healthy
                # requests that had been indexed (their retry met 409s: duplicates the test did not expect).
                if _wait_for_hang_up(handler.connection, fault.seconds):
                    with self.stall_ended:
                        self.stalls_given_up += 1
                        self.stall_ended.notify_all()
                _reset(handler)
            elif fault.kind == "die_after_forward":
                self.forward(handler.command, handler.path, body, handler.headers)   # indexed upstream...
                _reset(handler)                                                      # ...but no answer
            elif fault.kind == "reject_items":
                status = 200
                self._reject_items(handler, body, fault.every)
        finally:
            with self.lock:
                self.requests.append((handler.command, handler.path, status))

    def _reject_items(self, handler: BaseHTTPRequestHandler, body: bytes, every: int) -> None:
        lines = body.split(b"\n")
        pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2) if lines[i]]
        kept = [p for i, p in enumerate(pairs) if i % every]
        forwarded: list[dict[str, Any]] = []
        if kept:
            _, _, payload = self.forward("POST", handler.path, b"\n".join(a + b"\n" + d for a, d in kept) + b"\n",
                                         {"Content-Type": "application/json"})
            forwarded = json.loads(payload)["items"]
        items, it = [], iter(forwarded)
        for i, (action, _) in enumerate(pairs):
            if i % every:
                items.append(next(it))
            else:
                (op, meta), = json.loads(action).items()         # create, or index with a version
                items.append({op: {"_index": meta["_index"], "_id": meta.get("_id"), "status": 429, "error": {
                    "type": "es_rejected_execution_exception",
                    "reason": "rejected execution of coordinating operation [injected]"}}})
        payload = json.dumps({"took": 1, "errors": True, "items": items}).encode()
        self._reply(handler, 200, payload, [("Content-Type", "application/json")])

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: list[tuple[str, str]]) -> None:
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait_for_hang_up(conn: socket.socket, limit: float) -> bool:
    """Whether the peer closed `conn` within `limit` seconds (anything it sends meanwhile is discarded)."""
    deadline = time.monotonic() + limit
    while (left := deadline - time.monotonic()) > 0:
        if select.select([conn], [], [], left)[0]:
            try:
                if not conn.recv(65536):
                    return True
            except OSError:                 # reset by the peer: gone too
                return True
    return False


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close with RST (SO_LINGER 0): the client sees a connection reset, not a clean end.

    `close()` alone leaves the descriptor open while the handler's `rfile` holds it, and a keep-alive handler
    then waits on it for the next request: the client saw no reset, only silence until its own timeout (30 s a
    "reset" in the fault tests). Ending the handler's loop lets the descriptor go as soon as the handler returns."""
    handler.close_connection = True
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()


@pytest.fixture
def fault_proxy(osmem: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(osmem)
    yield proxy
    proxy.close()
