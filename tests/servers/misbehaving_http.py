"""An HTTP server on 127.0.0.1 whose answers misbehave at the body: one that trickles (a byte every
`pause` seconds, giving up after `give_up` seconds) or one that is huge (optionally gzip-encoded, a
small transfer that decodes to `size` bytes). Status and headers come first, as a slow origin or a
broken proxy sends them; every request (GET or POST) gets the same answer."""
from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class MisbehavingHttp:
    def __init__(self, *, body: bytes = b"[]", trickle: bool = False, pause: float = 0.1, give_up: float = 6.0,
                 gzip_body: bool = False, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.requests = 0
        payload = gzip.compress(body, compresslevel=9) if gzip_body else body
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if gzip_body:
                    self.send_header("Content-Encoding", "gzip")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    if not trickle:
                        self.wfile.write(payload)
                        return
                    end = time.monotonic() + give_up
                    for byte in payload:
                        if time.monotonic() > end:
                            break
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(pause)
                    self.close_connection = True
                except OSError:             # the client hung up: what a bounded client does
                    self.close_connection = True

            def do_POST(self) -> None:  # noqa: N802 - the request body read, then the same answer
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "MisbehavingHttp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
