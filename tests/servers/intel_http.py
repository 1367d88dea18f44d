"""Shared plumbing of the threat-intel contract servers (VirusTotal, MISP, OTX): a JSON HTTP server on
127.0.0.1 in a background thread, a request log (with secrets masked) and queued fault injection."""
from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    """Answer the next matching request with `status` and `body` (and optional headers / delay). `gzip`: the
    body sent gzip-encoded (Content-Encoding: gzip; a small transfer can decode to a huge answer). `trickle`:
    the body sent one byte every `trickle` seconds after the headers, for at most `give_up` seconds (then
    the connection is closed short), as a slow origin or a broken proxy sends it."""

    status: int
    body: Any = None
    headers: dict[str, str] | None = None
    delay: float = 0.0
    path_prefix: str = ""
    gzip: bool = False
    trickle: float = 0.0
    give_up: float = 6.0


def _trickle(out: Any, data: bytes, pause: float, give_up: float) -> None:
    """`data` one byte at a time, `pause` seconds apart, until sent or `give_up` seconds have passed."""
    end = time.monotonic() + give_up
    for byte in data:
        if time.monotonic() > end:
            return
        out.write(bytes([byte]))
        out.flush()
        time.sleep(pause)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class ContractServer:
    """Subclasses implement `handle(req) -> (status, body, headers)`; `secret_headers` are masked in the log."""

    secret_headers: tuple[str, ...] = ()
    #: the loopback address it listens on; "::1" in a subclass for a client's IPv6 URL handling
    host = "127.0.0.1"

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                parts = urlsplit(self.path)
                headers = {k.lower(): ("***" if k.lower() in server.secret_headers else v) for k, v in self.headers.items()}
                req = Request(self.command, parts.path, parse_qs(parts.query), headers, body)
                real_headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append(req)
                    fault = next((f for f in server.faults if req.path.startswith(f.path_prefix)), None)
                    if fault is not None:
                        server.faults.remove(fault)
                if fault is not None:
                    if fault.delay:
                        import time
                        time.sleep(fault.delay)
                    status, payload, extra = fault.status, fault.body, fault.headers or {}
                else:
                    status, payload, extra = server.handle(req, real_headers)
                data = b"" if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                if fault is not None and fault.gzip:
                    data = gzip.compress(data, compresslevel=9)
                    extra = {**extra, "Content-Encoding": "gzip"}
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", extra.pop("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if self.command != "HEAD" and fault is not None and fault.trickle:
                        _trickle(self.wfile, data, fault.trickle, fault.give_up)
                        self.close_connection = True
                    elif self.command != "HEAD":
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve

        server_class = ThreadingHTTPServer
        if ":" in self.host:
            class server_class(ThreadingHTTPServer):  # type: ignore[no-redef]
                address_family = socket.AF_INET6
        self.httpd = server_class((self.host, 0), Handler)
        self.httpd.daemon_threads = True
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{netloc}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def handle(self, req: Request, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:  # pragma: no cover
        raise NotImplementedError

    def start(self) -> "ContractServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def calls(self, prefix: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]
