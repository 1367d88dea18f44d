"""Token rotation without a restart: the gateway re-reads `--token-file` (and `--metrics-token-file`) when it
changes and on SIGHUP. A removed token stops working for new requests and closes the streams opened with it
(a `close` message, then code 4001); a version of the file that cannot be used (gone, empty, not UTF-8, a short
token) is not taken, with one warning, and the last good tokens stay. Real gateway (uvicorn in a thread, and
`wia-security serve` as a subprocess for SIGHUP), real `websockets` clients."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from gateway_helpers import recv_json, until
from strategies import event_dicts
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wia_security.connectors.gateway import auth as auth_module
from wia_security.connectors.gateway.auth import TokenFile
from wia_security.connectors.gateway.stream import CLOSE_TOKEN_REVOKED
from wia_security.connectors.websocket_client import StreamAuthError, StreamClient

OLD = "rotation-old-token-1f0c9a7e5b"
KEPT = "rotation-kept-token-8d2e4b6a1c"
NEW = "rotation-new-token-3b7f2d9e0a"
METRICS_OLD = "metrics-old-token-5e1a7c3b9d"
METRICS_NEW = "metrics-new-token-0c4f8a2e6b"
ALL_TOKENS = (OLD, KEPT, NEW, METRICS_OLD, METRICS_NEW)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def replace_file(path, text: str | bytes) -> None:
    """As an operator should: write beside it, then rename over it (readers never see half a file)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(text if isinstance(text, bytes) else text.encode())
    os.replace(tmp, path)


def sample(gw, token: str, line_start: str) -> float:
    text = requests.get(gw.url + "/metrics", headers=bearer(token)).text
    [line] = [ln for ln in text.splitlines() if ln.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


RELOADS = 'wia_gateway_token_file_reloads_total{file="%s",outcome="%s"}'


def status(gw, token: str | None, path: str = "/v1/stats") -> int:
    return requests.get(gw.url + path, headers=bearer(token) if token else {}).status_code


def test_a_changed_token_file_is_taken_and_streams_of_a_removed_token_close_with_4001(make_gateway, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="wia_security")
    tokens, metrics_tokens = tmp_path / "tokens", tmp_path / "metrics.tokens"
    tokens.write_text(f"# ingest\n{OLD}\n{KEPT}\n")
    metrics_tokens.write_text(f"{METRICS_OLD}\n")
    gw = make_gateway(tokens=[], token_file=str(tokens), metrics_token_file=str(metrics_tokens))
    assert (status(gw, OLD), status(gw, KEPT), status(gw, NEW)) == (200, 200, 401)
    assert status(gw, METRICS_OLD, "/metrics") == 200
    assert sample(gw, METRICS_OLD, RELOADS % ("tokens", "taken")) == 0          # there from the start

    async def run() -> None:
        old_ws = await connect(gw.ws_url, additional_headers=bearer(OLD))
        kept_ws = await connect(gw.ws_url, additional_headers=bearer(KEPT))
        for ws in (old_ws, kept_ws):
            await ws.send(json.dumps({"action": "subscribe"}))
            assert (await recv_json(ws))["action"] == "subscribed"
        # The old token's connection stops reading: most of 8 MB of events waits in its queue at the gateway
        old_ws.transport.pause_reading()
        [old_client] = [c for c in gw.gateway.hub.clients if c.credential == OLD]
        big = event_dicts(400, seed=563)
        for e in big:
            e.setdefault("meta", {})["raw"] = "x" * 20000
        await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=big, headers=bearer(KEPT))
        assert old_client.queue
        kept_events = 0
        while kept_events < len(big):
            kept_events += (await recv_json(kept_ws))["action"] == "event"

        replace_file(tokens, f"{KEPT}\n{NEW}\n")
        replace_file(metrics_tokens, f"{METRICS_NEW}\n")
        # New requests: refused once the watch (a stat a second) saw the file; nothing else changes
        await until(lambda: status(gw, OLD) == 401, timeout=10)
        assert (status(gw, KEPT), status(gw, NEW)) == (200, 200)
        await until(lambda: status(gw, METRICS_OLD, "/metrics") == 401, timeout=10)
        assert status(gw, METRICS_NEW, "/metrics") == 200
        assert status(gw, METRICS_NEW) == 401                       # a metrics token stays metrics-only

        # The stream opened with the removed token: what was already written, then a `close` message saying why
        # (nothing more of its queue), then 4001
        old_ws.transport.resume_reading()
        written = 0
        while (close := await recv_json(old_ws))["action"] == "event":
            written += 1
        assert written < len(big) // 2
        assert (close["action"], close["reason"], close["reconnect_allowed"]) == ("close", "token_revoked", True)
        with pytest.raises(ConnectionClosed):
            await recv_json(old_ws)
        assert old_ws.close_code == CLOSE_TOKEN_REVOKED == 4001
        # ... the one opened with a kept token goes on
        await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=event_dicts(1, seed=562),
                                headers=bearer(NEW))
        assert (await recv_json(kept_ws))["action"] == "event"
        await kept_ws.close()
        # A StreamClient with the revoked token comes back once and stops with StreamAuthError, no loop
        client = StreamClient(gw.ws_url, token=OLD, initial_backoff=0.05)
        with pytest.raises(StreamAuthError):
            await asyncio.wait_for(anext(client.events()), 10)
        new_ws = await connect(gw.ws_url, additional_headers=bearer(NEW))
        await new_ws.close()
        for file in ("tokens", "metrics_tokens"):
            assert await asyncio.to_thread(sample, gw, METRICS_NEW, RELOADS % (file, "taken")) == 1
            assert await asyncio.to_thread(sample, gw, METRICS_NEW, RELOADS % (file, "refused")) == 0
        assert await asyncio.to_thread(sample, gw, METRICS_NEW,
                                       "wia_gateway_stream_token_revoked_disconnects_total") == 1
    asyncio.run(asyncio.wait_for(run(), 60))
    text = caplog.text
    assert "token file" in text and "reloaded: 2 token(s) in force" in text
    assert "closed 1 stream connection(s) whose token was revoked (close code 4001)" in text
    assert not any(token in text for token in ALL_TOKENS)


def test_a_token_file_that_cannot_be_used_keeps_the_last_good_tokens_with_one_warning(make_gateway, tmp_path,
                                                                                     monkeypatch, caplog):
    """Gone, empty, not UTF-8, a token too short: each such version neither locks every client out nor opens the
    gateway; each is warned about once however often the file is looked at, naming the file but no token."""
    monkeypatch.setattr(auth_module, "TOKEN_FILE_CHECK_SECONDS", 0.02)
    caplog.set_level(logging.INFO, logger="wia_security")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{OLD}\n")
    gw = make_gateway(tokens=[], token_file=str(tokens))
    token_file = gw.gateway.token_file
    polls = [0]
    real_poll = token_file.poll

    def counting_poll(**kwargs):
        polls[0] += 1
        return real_poll(**kwargs)
    monkeypatch.setattr(token_file, "poll", counting_poll)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    async def run() -> None:
        bad_versions = [
            (lambda: tokens.unlink(), "cannot read the token file"),
            # Each version replaces the file whole: written in place, a look between the truncation and the write
            # sees an empty file, a version of its own that is rightly warned about too (CI saw that race).
            (lambda: replace_file(tokens, ""), "is not taken: it holds no token"),
            (lambda: replace_file(tokens, "# all commented out\n\n"), "is not taken: it holds no token"),
            (lambda: replace_file(tokens, b"\xff\xfe" + NEW.encode()), "not UTF-8 text"),
            (lambda: replace_file(tokens, f"{NEW}\nshort-token\n"), "token 2 is shorter than 16 characters"),
        ]
        for change, expected in bad_versions:
            before = len(warnings())
            change()
            await until(lambda: len(warnings()) > before)
            seen = polls[0]
            await until(lambda: polls[0] >= seen + 5)               # looked at again and again
            assert len(warnings()) == before + 1, warnings()[before:]
            assert expected in warnings()[-1] and str(tokens) in warnings()[-1]
            assert "the 1 token(s) of its last good version stay in force" in warnings()[-1]
            assert await asyncio.to_thread(status, gw, OLD) == 200   # not locked out
            assert await asyncio.to_thread(status, gw, NEW) == 401
            assert await asyncio.to_thread(status, gw, None) == 401  # not opened
        replace_file(tokens, f"{NEW}\n")                            # a good version again: taken
        await until(lambda: status(gw, NEW) == 200, timeout=10)
        assert await asyncio.to_thread(status, gw, OLD) == 401
        assert await asyncio.to_thread(sample, gw, NEW, RELOADS % ("tokens", "refused")) == len(bad_versions)
        assert await asyncio.to_thread(sample, gw, NEW, RELOADS % ("tokens", "taken")) == 1
    asyncio.run(asyncio.wait_for(run(), 60))
    assert not any(token in caplog.text for token in ALL_TOKENS)


def unblock_fifo(path) -> None:
    """Gives a reader blocked opening or reading the FIFO at `path` a writer that closes at once (its read ends),
    so that a test of a broken check fails instead of leaving a thread blocked for ever (and pytest's exit)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:                                  # ENXIO: nobody is reading it
        pass


@pytest.mark.parametrize("which", ["token_file", "metrics_token_file"])
@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_token_file_that_is_not_a_regular_file_stops_the_start_naming_it(tmp_path, which, kind):
    """A FIFO (or a device) as a token file: the read blocked for ever waiting for a writer, so the gateway hung in
    its start. Refused at once (with no writer ever coming), a ConfigError naming the file and what it is."""
    import threading

    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    from wia_security.errors import ConfigError
    path = tmp_path / "tokens"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    good = tmp_path / "good"
    good.write_text(f"{OLD}\n")
    settings = GatewaySettings(tokens=[], store=None, dead_letter=str(tmp_path / "dead.ndjson"), taxii=False,
                               **{"token_file": str(good), which: str(path)})
    safety = threading.Timer(10, unblock_fifo, [path]) if kind == "fifo" else None
    if safety:
        safety.start()
    try:
        started = time.monotonic()
        with pytest.raises(ConfigError) as caught:
            GatewayServer(settings)
        assert time.monotonic() - started < 5
    finally:
        if safety:
            safety.cancel()
    message = str(caught.value)
    assert str(path) in message, message
    assert ("a FIFO (named pipe), not a regular file" if kind == "fifo" else "a directory, not a regular file") \
        in message


def test_a_token_file_replaced_by_a_fifo_keeps_the_last_good_tokens_and_the_watch_goes_on(make_gateway, tmp_path,
                                                                                          monkeypatch, caplog):
    """A FIFO renamed over the token file (or the metrics token file) while the gateway runs: the token-reader
    thread's open blocked for ever waiting for a writer, so no later version was ever taken (rotation stopped, a
    revoked token stayed in force) and the process could not exit (the thread is joined at exit). Refused like any
    other bad version: one warning, counted as refused, the last good tokens stay, the next good version is taken."""
    monkeypatch.setattr(auth_module, "TOKEN_FILE_CHECK_SECONDS", 0.02)
    caplog.set_level(logging.INFO, logger="wia_security")
    tokens, metrics_tokens = tmp_path / "tokens", tmp_path / "metrics.tokens"
    tokens.write_text(f"{OLD}\n")
    metrics_tokens.write_text(f"{METRICS_OLD}\n")
    gw = make_gateway(tokens=[], token_file=str(tokens), metrics_token_file=str(metrics_tokens))
    token_file = gw.gateway.token_file
    polls = [0]
    real_poll = token_file.poll

    def counting_poll(**kwargs):
        polls[0] += 1
        return real_poll(**kwargs)
    monkeypatch.setattr(token_file, "poll", counting_poll)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    fifo = tmp_path / "held-fifo"                   # a second name for the FIFO, to unblock a reader of it
    os.mkfifo(fifo)

    async def run() -> None:
        for path in (tokens, metrics_tokens):
            before = len(warnings())
            os.link(fifo, path.with_name(path.name + ".fifo"))
            os.replace(path.with_name(path.name + ".fifo"), path)
            await until(lambda: len(warnings()) > before)
            seen = polls[0]
            await until(lambda: polls[0] >= seen + 5)               # the watch goes on looking
            assert len(warnings()) == before + 1, warnings()[before:]
            assert str(path) in warnings()[-1] and "a FIFO (named pipe), not a regular file" in warnings()[-1]
            assert "the 1 token(s) of its last good version stay in force" in warnings()[-1]
        assert await asyncio.to_thread(status, gw, OLD) == 200       # the last good tokens, both files
        assert await asyncio.to_thread(status, gw, METRICS_OLD, "/metrics") == 200
        assert await asyncio.to_thread(status, gw, None) == 401
        for file in ("tokens", "metrics_tokens"):
            assert await asyncio.to_thread(sample, gw, OLD, RELOADS % (file, "refused")) == 1
        # A good version again: taken (the reader thread was not left blocked)
        replace_file(tokens, f"{NEW}\n")
        replace_file(metrics_tokens, f"{METRICS_NEW}\n")
        await until(lambda: status(gw, NEW) == 200 and status(gw, METRICS_NEW, "/metrics") == 200, timeout=10)
        assert await asyncio.to_thread(status, gw, OLD) == 401
        for file in ("tokens", "metrics_tokens"):
            assert await asyncio.to_thread(sample, gw, NEW, RELOADS % (file, "taken")) == 1
    try:
        asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        for path in (tokens, metrics_tokens):                        # no FIFO left to block a later look
            if not path.is_file():
                replace_file(path, f"{NEW}\n")
        unblock_fifo(fifo)
    assert not any(token in caplog.text for token in ALL_TOKENS)


def coarse_times(token_file: TokenFile) -> None:
    """Makes `token_file` look at the file as on a file system whose ctime changes too seldom to tell two edits
    apart (its size and mtime are still compared; tests set the mtime with os.utime)."""
    def signature() -> tuple[int, ...]:
        st = os.stat(token_file.path)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    token_file._signature = signature
    token_file._seen = signature()


def test_force_rereads_a_file_whose_stat_looks_unchanged(tmp_path):
    """An edit that keeps size and mtime (here set back, as `touch -r` would) on a file system with coarse times:
    the once-a-second look misses it, the re-read that SIGHUP asks for does not."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{OLD}\n")
    settled = time.time_ns() - 10 * 10**9
    os.utime(tokens, ns=(settled, settled))
    token_file = TokenFile(str(tokens))
    coarse_times(token_file)
    tokens.write_text(f"{NEW}\n")
    os.utime(tokens, ns=(settled, settled))
    assert token_file.poll() is None and token_file.tokens == [OLD]
    assert token_file.poll(force=True) == [NEW] and token_file.tokens == [NEW]
    assert OLD not in repr(token_file) and NEW not in repr(token_file)


def test_a_version_read_within_its_mtimes_granule_is_read_again(tmp_path):
    """Two edits of one size within one tick of the file system's clock (a jiffy on Linux, 1-2 s on some) leave
    the same size and times: a version read between them looked unchanged after the second, and a token that
    the second removed stayed in force until the next edit or SIGHUP. A version whose mtime is that recent is
    read again at the next look (once more after it settles), and taken only when its tokens differ."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{OLD}\n")
    now = time.time_ns()
    os.utime(tokens, ns=(now, now))
    token_file = TokenFile(str(tokens))
    coarse_times(token_file)
    tokens.write_text(f"{NEW}\n")                             # the same size, in the same tick
    os.utime(tokens, ns=(now, now))
    assert token_file.poll() == [NEW] and token_file.tokens == [NEW]
    assert token_file.poll() is None and token_file.taken == 1    # read again, unchanged: nothing taken


def test_sighup_rereads_the_token_file_and_no_longer_ends_the_process(tmp_path):
    """`wia-security serve` as an operator runs it: SIGHUP used to end the gateway (Python's default action)."""
    from test_gateway_cli import _serve
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{OLD}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("WIA_GATEWAY_TOKENS", "WIA_GATEWAY_METRICS_TOKENS")}
    proc, url = _serve("--no-store", "--dead-letter", str(tmp_path / "dead.ndjson"), "--token-file", str(tokens),
                       env=env)
    try:
        assert requests.get(url + "/v1/stats", headers=bearer(OLD)).status_code == 200
        replace_file(tokens, f"{NEW}\n")
        proc.send_signal(signal.SIGHUP)
        for _ in range(500):
            if requests.get(url + "/v1/stats", headers=bearer(OLD)).status_code == 401:
                break
            time.sleep(0.01)
        assert proc.poll() is None                                  # still serving
        assert requests.get(url + "/v1/stats", headers=bearer(NEW)).status_code == 200
        assert requests.get(url + "/v1/stats", headers=bearer(OLD)).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "SIGHUP: re-reading the token files" in output and "reloaded: 1 token(s) in force" in output
    assert OLD not in output and NEW not in output


def test_serve_refuses_to_start_with_a_token_file_it_cannot_use(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WIA_GATEWAY_TOKENS",)}
    base = [sys.executable, "-m", "wia_security", "serve", "--no-store", "--dead-letter", str(tmp_path / "d.ndjson")]
    cases = {"missing": None, "empty": "", "short": "short-token\n", "fifo": None}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        if name == "fifo":
            os.mkfifo(path)                      # its read blocked for ever: the start hung
        r = subprocess.run([*base, "--token-file", str(path)], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (name, r.stderr)
        expected = {"missing": "cannot read the token file", "empty": "no bearer token",
                    "short": "shorter than 16 characters", "fifo": "is a FIFO (named pipe), not a regular file"}[name]
        assert expected in r.stderr, (name, r.stderr)
        if name == "fifo":
            assert str(path) in r.stderr, r.stderr


@pytest.mark.parametrize("path", ["/v1/events", "/services/collector/event"])
def test_an_upload_begun_before_its_token_was_removed_is_refused_when_its_body_ends(make_gateway, tmp_path, path):
    """The token is checked when the head arrives, and a body has no time limit: a removed token's upload begun
    before (a head and part of a body, the rest trickled in) stored its events whenever it ended, so whoever held
    the token could keep such uploads open and write with it after the revocation. Checked again before storing."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{OLD}\n{KEPT}\n")
    gw = make_gateway(tokens=[], token_file=str(tokens))
    event = json.dumps(event_dicts(1, seed=631)[0]).encode()
    body = event if path == "/v1/events" else json.dumps({"event": json.loads(event)}).encode()
    sock = socket.create_connection((gw.host, gw.port), timeout=10)
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (path.encode(), OLD.encode(), len(body))
                 + body[:10])
    replace_file(tokens, f"{KEPT}\n")
    asyncio.run(until(lambda: not gw.gateway.tokens.check(OLD), timeout=10))
    sock.sendall(body[10:])
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    sock.close()
    assert answer.split(b" ", 2)[1] in (b"401", b"403"), answer[:200]
    found = requests.get(gw.url + "/v1/events", headers=bearer(KEPT)).json()
    assert found["count"] == 0


def test_an_ack_query_begun_before_its_token_was_removed_is_refused_when_its_body_ends(make_gateway, tmp_path):
    """/services/collector/ack reads a body too (no time limit): begun with a token that is then removed, it was
    still answered with the channel's ack statuses. Checked again once the body is in, as the uploads are."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{OLD}\n{KEPT}\n")
    gw = make_gateway(tokens=[], token_file=str(tokens))
    channel = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    issued = requests.post(gw.url + "/services/collector/event", json={"event": event_dicts(1, seed=632)[0]},
                           headers={"Authorization": f"Splunk {OLD}", "X-Splunk-Request-Channel": channel}).json()
    assert issued["ackId"] == 0
    body = json.dumps({"acks": [0]}).encode()
    sock = socket.create_connection((gw.host, gw.port), timeout=10)
    sock.sendall(b"POST /services/collector/ack HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
                 b"Authorization: Splunk %s\r\nX-Splunk-Request-Channel: %s\r\nContent-Length: %d\r\n\r\n"
                 % (OLD.encode(), channel.encode(), len(body)) + body[:5])
    replace_file(tokens, f"{KEPT}\n")
    asyncio.run(until(lambda: not gw.gateway.tokens.check(OLD), timeout=10))
    sock.sendall(body[5:])
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    sock.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split(b" ", 2)[1] == b"403", answer[:300]
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1]) == {"text": "Invalid token", "code": 4}
    # the same query with a token still in force is answered
    kept = requests.post(gw.url + "/services/collector/ack", json={"acks": [0]},
                         headers={"Authorization": f"Splunk {KEPT}", "X-Splunk-Request-Channel": channel})
    assert kept.json() == {"acks": {"0": True}}


def test_a_removed_token_is_refused_while_every_worker_thread_is_busy_with_ingest(make_gateway, tmp_path,
                                                                                    monkeypatch):
    """The token files were read in Starlette's worker threads (anyio's 40), which ingest shares for validation: under
    a load that kept them all busy a revocation waited behind every upload queued for them, while the removed token
    went on being accepted. They are read in a thread of their own."""
    import threading

    from wia_security.connectors.gateway import app as app_module
    monkeypatch.setattr(auth_module, "TOKEN_FILE_CHECK_SECONDS", 0.05)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{OLD}\n{KEPT}\n")
    gw = make_gateway(tokens=[], token_file=str(tokens))
    release = threading.Event()
    entered = [0]
    lock = threading.Lock()
    real_validate = app_module.validate_items

    def blocked_validate(*args, **kwargs):
        with lock:
            entered[0] += 1
        release.wait(30)
        return real_validate(*args, **kwargs)
    monkeypatch.setattr(app_module, "validate_items", blocked_validate)
    uploads = 45                                               # every worker thread busy, more waiting for one
    answers: list[int] = []

    def upload(seed: int) -> None:
        r = requests.post(gw.url + "/v1/events", json=event_dicts(1, seed=seed)[0], headers=bearer(KEPT), timeout=60)
        answers.append(r.status_code)
    threads = [threading.Thread(target=upload, args=(700 + i,)) for i in range(uploads)]
    for t in threads:
        t.start()
    try:
        asyncio.run(until(lambda: entered[0] >= 40, timeout=15))
        replace_file(tokens, f"{KEPT}\n")
        asyncio.run(until(lambda: not gw.gateway.tokens.check(OLD), timeout=10))
        assert entered[0] < uploads and not release.is_set()       # taken while the pool was still full
        assert status(gw, OLD) == 401
    finally:
        release.set()
        for t in threads:
            t.join(60)
    assert answers == [200] * uploads


def test_the_settings_repr_shows_no_token(tmp_path):
    # A dataclass repr lists every field: tracebacks with locals, debuggers and test failures printed the tokens.
    from wia_security.connectors.gateway import GatewaySettings
    settings = GatewaySettings(tokens=[OLD], metrics_tokens=[METRICS_OLD], token_file=str(tmp_path / "tokens"))
    text = repr(settings)
    assert OLD not in text and METRICS_OLD not in text
    assert "token_file=" in text and "tokens=<1 token(s)>" in text
