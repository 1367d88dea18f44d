"""A TAXII or gateway answer is read within a byte limit and a total time. It was read whole with only the socket
timeout (60 s) bounding each read: a server or proxy sending a byte every few seconds held the run, and so the input,
for ever (Splunk starts no new run of an input while one is going), and one sending without end filled the memory
of splunkd's host. Driven against a raw HTTP server on loopback, with the built app's source and its limits scaled
down (MAX_ANSWER_BYTES, MAX_ANSWER_SECONDS)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest

PROBE = """import json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/lib"]
from wia_app import pull
pull.MAX_ANSWER_BYTES, pull.MAX_ANSWER_SECONDS = 50_000, 2.0
source = pull.open_source(sys.argv[2], secret="t0ken-never-shown")
started = time.monotonic()
try:
    pages = [len(page.events) for page in source.pages({})]
    print(json.dumps({"pages": pages}))
except pull.SourceError as exc:
    print(json.dumps({"error": str(exc), "retryable": exc.retryable, "took": time.monotonic() - started}))
"""


class RawHttp:
    """Answers every request with `head` (status line and headers) then `body` in pieces of `piece` bytes, `pause`
    seconds apart, for at most `seconds`; a fresh thread per connection."""

    def __init__(self, body: bytes, *, piece: int, pause: float, seconds: float = 30.0, length: int | None = None):
        self.body, self.piece, self.pause, self.seconds = body, piece, pause, seconds
        self.length = len(body) if length is None else length
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"gateway+http://127.0.0.1:{self.server.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             + f"Content-Length: {self.length}\r\n\r\n".encode())
                until = time.monotonic() + self.seconds
                for start in range(0, len(self.body), self.piece):
                    if self._stop.is_set() or time.monotonic() > until:
                        return
                    conn.sendall(self.body[start:start + self.piece])
                    time.sleep(self.pause)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self.server.close()


def _probe(app, url: str) -> dict:
    run = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, str(app / "bin"), url], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.fixture
def raw_http():
    servers: list[RawHttp] = []

    def start(*args, **kwargs) -> RawHttp:
        servers.append(RawHttp(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_an_answer_that_trickles_is_given_up_after_the_time_limit_and_retried(built_app, raw_http):
    app, _ = built_app
    page = json.dumps({"events": [], "next": "0"}).encode() + b" " * 200
    server = raw_http(page, piece=1, pause=0.25)                 # about 55 s for the whole page
    result = _probe(app, server.url)
    assert result.get("error", "").startswith("the source's answer was still arriving after 2 s ("), result
    assert result["retryable"] is True and result["took"] < 20      # the limit plus one socket read at most


def test_an_answer_over_the_byte_limit_ends_the_run_naming_page_size(built_app, raw_http):
    app, _ = built_app
    server = raw_http(b"[" + b"1," * 40_000 + b"1]", piece=16_384, pause=0.0)
    result = _probe(app, server.url)
    assert result.get("error", "").startswith("the source's answer is over 50,000 bytes: lower page_size"), result
    assert result["retryable"] is False and "t0ken" not in json.dumps(result)


def test_an_answer_within_the_limits_is_read(built_app, raw_http):
    app, _ = built_app
    page = json.dumps({"events": [], "next": "0"}).encode()
    server = raw_http(page, piece=4, pause=0.01)                 # slow, within 2 s
    assert _probe(app, server.url) == {"pages": [0]}
