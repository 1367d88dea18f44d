"""`wia-security serve` as a user runs it: a subprocess, SIGINT to stop, the store flushed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import requests
from servers.ports import free_port
from strategies import event_dicts

TOKEN = "cli-test-token-0123456789"


def _serve(*args: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`wia-security serve ARGS` on a free port, once /healthz answers: (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wia_security", "serve", "--port", str(port), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    return proc, url


def test_serve_runs_until_sigint_and_keeps_what_it_accepted(tmp_path):
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN}
    proc, url = _serve("--store", f"sqlite:///{tmp_path}/events.db", "--dead-letter", str(tmp_path / "dead.ndjson"),
                       "--to", f"file://{tmp_path}/copy.ndjson", env=env)
    try:
        events = event_dicts(25, seed=80)
        r = requests.post(url + "/v1/events", json=events, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.json()["accepted"] == 25
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert TOKEN not in output
    copied = [json.loads(line)["id"] for line in (tmp_path / "copy.ndjson").read_text().splitlines()]
    assert copied == [e["id"] for e in events]
    import sqlite3
    assert sqlite3.connect(tmp_path / "events.db").execute("select count(*) from events").fetchone()[0] == 25


def test_serve_refuses_to_start_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WIA_GATEWAY_TOKENS"}
    r = subprocess.run([sys.executable, "-m", "wia_security", "serve", "--port", "1"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "no bearer token" in r.stderr


def test_the_cli_imports_no_server_code_until_serve_runs():
    code = ("import sys, wia_security.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'websockets') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "[]", r.stderr


def test_serve_checks_the_stream_queue_bounds_it_is_given(tmp_path):
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN}
    for flag in ("--client-queue", "--client-queue-bytes"):
        r = subprocess.run([sys.executable, "-m", "wia_security", "serve", "--port", "1", flag, "0"], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and f"{flag}: must be at least 1" in r.stderr, r.stderr


def test_serve_passes_the_stream_keepalive_flags_to_the_gateway(tmp_path):
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN}
    for flag in ("--ping-interval", "--ping-timeout"):
        r = subprocess.run([sys.executable, "-m", "wia_security", "serve", "--port", "1", flag, "0"], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and f"{flag}: must be a number of seconds above 0" in r.stderr, r.stderr
    proc, url = _serve("--no-store", "--ping-interval", "7.5", "--ping-timeout", "3", env=env)
    try:
        assert requests.get(url + "/healthz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_serve_runs_on_asyncio_s_loop_even_where_uvloop_is_importable(tmp_path):
    """uvicorn's default loop ("auto") is uvloop whenever it can be imported (`uvicorn[standard]` installs it),
    and the bounded close of a connection (server._BoundedCloseTransport) reads asyncio's own TLS and TCP
    transports: under the real uvloop a slow HTTPS reader still taking a response was reset (1.26 of 4.8 MB, with
    test_a_slow_reader_still_taking_what_was_written_before_the_close_is_not_reset run on uvloop), since uvloop's
    TLS transport does not lead to the TCP transport beneath and its buffer. `serve` pins asyncio's loop, which
    is also the one the gateway tests run on. A stand-in uvloop module records whether uvicorn asked it for a
    loop."""
    (tmp_path / "uvloop.py").write_text(
        "import asyncio, os\n"
        "def new_event_loop():\n"
        "    open(os.environ['WIA_TEST_UVLOOP_USED'], 'w').close()\n"
        "    return asyncio.new_event_loop()\n")
    used = tmp_path / "uvloop-used"
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN, "WIA_TEST_UVLOOP_USED": str(used),
           "PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}
    proc, url = _serve("--no-store", env=env)
    try:
        assert requests.get(url + "/healthz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert not used.exists(), "uvicorn ran the gateway on uvloop"


def test_serve_takes_metrics_only_tokens_from_a_file_and_serves_metrics_anonymously_only_when_asked(tmp_path):
    metrics_token = "metrics-only-token-7c1e5a93"
    (tmp_path / "metrics.tokens").write_text(f"# scraper\n{metrics_token}\n")
    env = {**{k: v for k, v in os.environ.items() if k != "WIA_GATEWAY_METRICS_TOKENS"}, "WIA_GATEWAY_TOKENS": TOKEN}
    proc, url = _serve("--no-store", "--dead-letter", str(tmp_path / "dead.ndjson"),
                       "--metrics-token-file", str(tmp_path / "metrics.tokens"), env=env)
    try:
        scrape = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
        assert scrape.status_code == 200 and "wia_gateway_" in scrape.text
        assert requests.get(url + "/metrics").status_code == 401
        # the metrics token opens /metrics only
        assert requests.post(url + "/v1/events", json=[], headers={"Authorization": f"Bearer {metrics_token}"}).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and metrics_token not in output

    proc, url = _serve("--no-store", "--dead-letter", str(tmp_path / "dead.ndjson"), "--metrics-anonymous", env=env)
    try:
        assert requests.get(url + "/metrics").status_code == 200
        assert requests.post(url + "/v1/events", json=[]).status_code == 401          # ingest still needs a token
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "without a token (--metrics-anonymous)" in output


def test_serve_limits_stream_connections_to_max_stream_clients(tmp_path):
    """--max-stream-clients reaches the gateway: with 1, a second stream handshake is HTTP 503 with Retry-After."""
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN}
    r = subprocess.run([sys.executable, "-m", "wia_security", "serve", "--port", "1", "--max-stream-clients", "0"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--max-stream-clients: must be at least 1" in r.stderr, r.stderr
    proc, url = _serve("--no-store", "--dead-letter", str(tmp_path / "dead.ndjson"), "--max-stream-clients", "1",
                       env=env)
    ws_url, auth = url.replace("http://", "ws://") + "/v1/stream", {"Authorization": f"Bearer {TOKEN}"}

    async def run() -> tuple[int, str]:
        async with connect(ws_url, additional_headers=auth) as first:
            try:
                async with connect(ws_url, additional_headers=auth):
                    raise AssertionError("a second stream connection was accepted")
            except InvalidStatus as exc:
                refused = exc.response.status_code, exc.response.headers.get("Retry-After")
            await first.send(json.dumps({"action": "ping"}))
            assert json.loads(await first.recv())["action"] == "pong"
        return refused
    try:
        assert asyncio.run(asyncio.wait_for(run(), 30)) == (503, "5")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
