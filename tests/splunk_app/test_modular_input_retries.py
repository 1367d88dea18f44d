"""The wia_events input retries a temporary source failure within the run, from the last checkpoint, with
bounded exponential backoff (honouring Retry-After), and fails at once on anything else. Run as Splunk runs
it (the built app, `bin/wia_events.py`); the faults come from the gateway feed stand-in (a real gateway does
not fail on cue) and from a port nobody listens on. Small `retry_backoff` settings keep the tests fast."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from wia_security import AlertBuilder

from .splunkd_stub import Splunkd
from .test_modular_input import input_xml, run_input, streamed

from intel_http import Fault  # noqa: E402  (tests/servers is on the path: test_modular_input puts it there)
from wia_gateway_feed import GatewayFeed  # noqa: E402

TOKEN = "gateway-retry-token-7f3a19c2"
SESSION_KEY = "splunkd-session-key-retry-e4b1"


@pytest.fixture
def splunkd():
    with Splunkd(session_key=SESSION_KEY) as server:
        server.passwords[("wia_security", "gw")] = TOKEN
        yield server


@pytest.fixture
def feed():
    with GatewayFeed(token=TOKEN) as server:
        server.events.extend(AlertBuilder().title(f"alert {n}").severity(n).build().to_dict() for n in range(7))
        yield server


def params(feed: GatewayFeed, **extra: str) -> dict[str, str]:
    return {"source_url": feed.url.replace("http://", "gateway+http://"), "credential": "gw", **extra}


def checkpoint_of(directory: Path) -> bytes | None:
    files = list(directory.glob("wia_events_*.json"))
    assert len(files) <= 1
    return files[0].read_bytes() if files else None


def feed_cursors(feed: GatewayFeed) -> list[str]:
    return [r.query["after"][-1] for r in feed.calls("/v1/events")]


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("WARNING wia_events")]


def test_two_503s_then_the_events_arrive_once_and_the_checkpoint_moves_once(built_app, splunkd, feed, tmp_path):
    app, _ = built_app
    feed.faults += [Fault(503, {"error": "busy"}, path_prefix="/v1/events")] * 2
    run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", params(feed, retry_backoff="0.05")))
    assert run.returncode == 0, run.stderr
    assert [g["event"] for g in streamed(run.stdout)] == feed.events
    # each retry asked again from the checkpoint (cursor 0); then one page moved it to 7, and the drained feed kept it
    assert feed_cursors(feed) == ["0", "0", "0", "7"]
    assert json.loads(checkpoint_of(tmp_path))["position"] == {"cursor": "7"}
    lines = warnings(run.stderr)
    assert len(lines) == 2 and all("source answered 503" in line for line in lines)
    assert "attempt 1 of 5 failed, retrying in" in lines[0] and "attempt 2 of 5 failed" in lines[1]
    waits = [float(re.search(r"retrying in ([0-9.]+) s", line).group(1)) for line in lines]
    assert 0.025 <= waits[0] <= 0.05 and 0.05 <= waits[1] <= 0.1          # doubled, with jitter
    assert TOKEN not in run.stderr + run.stdout and SESSION_KEY not in run.stderr + run.stdout


def test_a_retry_after_is_waited_for(built_app, splunkd, feed, tmp_path):
    app, _ = built_app
    feed.faults.append(Fault(429, {"error": "slow down"}, headers={"Retry-After": "1"}, path_prefix="/v1/events"))
    started = time.monotonic()
    run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", params(feed, retry_backoff="0.01")))
    assert run.returncode == 0, run.stderr
    assert len(streamed(run.stdout)) == len(feed.events)
    (line,) = warnings(run.stderr)
    assert "source answered 429" in line and "retrying in 1.00 s" in line
    assert time.monotonic() - started >= 1.0


def test_a_retry_after_beyond_what_a_run_waits_ends_the_run_at_the_checkpoint(built_app, splunkd, feed, tmp_path):
    app, _ = built_app
    feed.faults.append(Fault(503, {"error": "maintenance"}, headers={"Retry-After": "3600"}, path_prefix="/v1/events"))
    started = time.monotonic()
    run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", params(feed)))
    assert run.returncode == 1 and time.monotonic() - started < 10
    assert "asks to wait 3600 s (Retry-After), more than a run waits (60 s)" in run.stderr
    assert streamed(run.stdout) == [] and checkpoint_of(tmp_path) is None and feed_cursors(feed) == ["0"]


def test_a_refused_credential_fails_at_once_naming_it(built_app, splunkd, feed, tmp_path):
    app, _ = built_app
    splunkd.passwords[("wia_security", "gw")] = "not-the-gateway-token-0c1d"
    started = time.monotonic()
    run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", params(feed)))
    assert run.returncode == 1 and time.monotonic() - started < 10
    assert "the source refused the credential (401 Unauthorized)" in run.stderr
    assert "not retried (not a temporary failure)" in run.stderr and warnings(run.stderr) == []
    assert feed_cursors(feed) == ["0"] and checkpoint_of(tmp_path) is None
    assert "not-the-gateway-token-0c1d" not in run.stderr + run.stdout


def test_a_source_that_stays_down_is_given_up_after_the_retries_with_the_checkpoint_kept(built_app, splunkd, feed,
                                                                                          tmp_path):
    app, _ = built_app
    conf = input_xml(splunkd, tmp_path, "gw", params(feed, retries="2", retry_backoff="0.05"))
    first = run_input(app, [], conf)
    assert first.returncode == 0 and len(streamed(first.stdout)) == len(feed.events)
    saved = checkpoint_of(tmp_path)
    feed.stop()                                  # nothing listens on the port any more
    started = time.monotonic()
    down = run_input(app, [], conf)
    assert down.returncode == 1 and time.monotonic() - started < 10
    lines = warnings(down.stderr)
    assert len(lines) == 2 and all("cannot reach source" in line and "Connection refused" in line for line in lines)
    assert "attempt 2 of 3 failed" in lines[1]
    assert "gave up after 3 attempts; will resume from the last checkpoint" in down.stderr
    assert streamed(down.stdout) == [] and checkpoint_of(tmp_path) == saved


def test_a_failure_after_a_page_is_retried_from_that_page_checkpoint(built_app, splunkd, feed, tmp_path):
    """The first page is indexed and checkpointed; the next request fails once; the retry asks from the
    checkpoint (cursor 3), not from where the run started and not past unread events."""
    app, _ = built_app
    feed.faults += [Fault(200, {"events": feed.events[:3], "next": "3"}, path_prefix="/v1/events"),
                    Fault(502, {"error": "upstream"}, path_prefix="/v1/events")]
    run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", params(feed, page_size="3", retry_backoff="0.01")))
    assert run.returncode == 0, run.stderr
    assert [g["event"] for g in streamed(run.stdout)] == feed.events
    assert feed_cursors(feed) == ["0", "3", "3", "6", "7"]
    assert len(warnings(run.stderr)) == 1 and "duplicates=0" in run.stderr


def test_a_source_that_hangs_up_without_answering_is_retried_then_given_up(built_app, splunkd, tmp_path):
    """Connections accepted and closed without an HTTP answer (urllib raises RemoteDisconnected itself, not as a
    URLError): a temporary failure, retried, then a clear error, never a traceback."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.recv(65536)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        app, _ = built_app
        run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", {
            "source_url": f"gateway+http://127.0.0.1:{listener.getsockname()[1]}", "credential": "gw",
            "retries": "1", "retry_backoff": "0.01"}))
    finally:
        listener.close()
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "the source did not answer: RemoteDisconnected" in run.stderr and len(warnings(run.stderr)) == 1
    assert "gave up after 2 attempts" in run.stderr and len(accepted) == 2
