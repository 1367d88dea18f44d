"""A fault-injecting HTTP(S) reverse proxy for contract tests: it sits in front of a contract server (HEC,
Splunk REST, SOAR, XSOAR, Sentinel, moto) and answers chosen requests the way a broken network or a
misconfigured proxy does, passing every other request through unchanged.

Faults are consumed in order, one per matching request (`Fault.path`: only requests whose path contains
it, or equals it when it ends with "$"; `Fault.method`: only that method). A request with no fault left is forwarded.

kinds:
  - "reply":    answer `status`, `headers`, `body` without forwarding (an HTML 502 page, a 200 with a
                non-JSON body, a 3xx redirect, a 401 ...); `length` overrides Content-Length
                (declare more than `body` to cut the body short; `seconds` waits that long before the
                cut, so the client is already blocked reading and sees a reset, not an early EOF), `close`
                closes the connection after;
  - "forward_then": forward (the upstream processes the request), then answer like "reply": a reply
                lost or mangled after the work was done;
  - "rewrite":  forward, then pass `rewrite(status, headers, body) -> (status, headers, body)` over the
                upstream's answer (success bodies missing fields, per-item results that do not match);
  - "hang":     read the request, then no answer until the client gives up and closes (at most `seconds`),
                then close (client read timeouts). `hangs_abandoned_after(n)` counts the hangs the client
                ended: a test asserts that, with a hang far longer than its bounds, not a race between a short hang
                and a short timeout (healthy requests then had that short timeout too, and a loaded machine
                ran past both);
  - "reset":    read the request, then close the connection without answering.
"""
from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

HTML_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
            b"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
HTML_504 = (b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway "
            b"Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
HTML_LOGIN = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>...</form></body></html>"

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length",
               "proxy-connection", "server", "date"}


@dataclass
class Fault:
    kind: str
    status: int = 502
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None
    close: bool = False
    seconds: float = 0.0
    path: str | None = None
    method: str | None = None
    rewrite: Callable[[int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]] | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.path is not None:
            if self.path.endswith("$"):                 # "…$": the whole path (query aside) must equal it
                if urlsplit(path).path != self.path[:-1]:
                    return False
            elif self.path not in path:
                return False
        return self.method is None or self.method == method


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    fault: str | None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        with proxy.lock:
            fault = next((f for f in proxy.faults if f.matches(self.command, self.path)), None)
            if fault is not None:
                proxy.faults.remove(fault)
            proxy.seen.append(Seen(self.command, self.path, dict(self.headers), fault.kind if fault else None))
        if fault is None:
            self._send(*proxy.forward(self.command, self.path, self.headers, body))
        elif fault.kind == "reply":
            self._send(fault.status, fault.headers, fault.body, fault.length, fault.close, fault.seconds)
        elif fault.kind == "forward_then":
            proxy.forward(self.command, self.path, self.headers, body)
            self._send(fault.status, fault.headers, fault.body, fault.length, fault.close)
        elif fault.kind == "rewrite":
            assert fault.rewrite is not None
            self._send(*fault.rewrite(*proxy.forward(self.command, self.path, self.headers, body)))
        elif fault.kind == "hang":
            if self._wait_for_hang_up(fault.seconds):
                with proxy.hang_ended:
                    proxy.hangs_abandoned += 1
                    proxy.hang_ended.notify_all()
            self._drop()
        elif fault.kind == "reset":
            self._drop()
        else:
            raise ValueError(f"unknown fault kind {fault.kind!r}")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def _send(self, status: int, headers: dict[str, str], body: bytes, length: int | None = None,
              close: bool = False, pause: float = 0.0) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        asked_close = self.headers.get("Connection", "").lower() == "close"     # as an HTTP/1.1 server must
        if close or asked_close or (length is not None and length != len(body)):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if length is not None and length > len(body):
            time.sleep(pause)
            self._drop()                              # the body ends short of what was declared

    def _wait_for_hang_up(self, limit: float) -> bool:
        """Whether the client closed the connection within `limit` seconds (what it sends meanwhile is dropped)."""
        deadline = time.monotonic() + limit
        while (left := deadline - time.monotonic()) > 0:
            if select.select([self.connection], [], [], left)[0]:
                try:
                    if not self.connection.recv(65536):
                        return True
                except OSError:                   # reset, or a TLS connection cut without close_notify
                    return True
        return False

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: "FaultProxy"


class FaultProxy:
    """`FaultProxy(upstream_url).start()`; `url` is the proxy's base URL. TLS: pass `certfile`/`keyfile`
    to listen with TLS, and `upstream_ca` to verify an https upstream."""

    def __init__(self, upstream: str, *, certfile: str | None = None, keyfile: str | None = None,
                 upstream_ca: str | None = None, host: str = "127.0.0.1") -> None:
        parts = urlsplit(upstream)
        self.upstream_scheme, self.upstream_host, self.upstream_port = parts.scheme, parts.hostname, parts.port
        self.upstream_ca = upstream_ca
        self.certfile, self.keyfile, self.host = certfile, keyfile, host
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.hangs_abandoned = 0                    # "hang" faults ended by the client closing the connection
        self.lock = threading.Lock()
        self.hang_ended = threading.Condition(self.lock)
        self._server: _Server | None = None

    def add(self, *faults: Fault) -> "FaultProxy":
        with self.lock:
            self.faults.extend(faults)
        return self

    def start(self) -> "FaultProxy":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        if self.certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.certfile, self.keyfile)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="fault-proxy").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.certfile else 'http'}://{self.host}:{self.port}"

    def forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.upstream_scheme == "https":
            context = ssl.create_default_context(cafile=self.upstream_ca)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.upstream_host, self.upstream_port, context=context, timeout=30)
        else:
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            # the client's Host goes through, as through a real reverse proxy: links the upstream builds
            # from it (nextLink) lead back through the proxy
            out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            out["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=out)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k: v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def hangs_abandoned_after(self, expected: int, timeout: float = 30) -> int:
        """`hangs_abandoned` once it reaches `expected`, else as it is after `timeout` seconds: the proxy sees the
        client's close a moment after the client has moved on."""
        with self.hang_ended:
            self.hang_ended.wait_for(lambda: self.hangs_abandoned >= expected, timeout)
            return self.hangs_abandoned

    def unused(self) -> list[Fault]:
        with self.lock:
            return list(self.faults)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
