"""LEEF/CEF over syslog into a real rsyslog on loopback: UDP, TCP (RFC 6587 octet counting) and TLS.
Every message arrives intact and parses back to the event that was sent."""
from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from typing import Any

import pytest

from servers.rsyslog import Rsyslog, start_rsyslog, stop
from strategies import event_dicts
from wia_security import parse, validate_event
from wia_security.connectors import open_sink
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.qradar import SyslogSink, octet_counted, syslog_message
from wia_security.errors import ConfigError

POLICY = DeliveryPolicy(max_events=50, max_wait=0, initial_backoff=0.01, max_backoff=0.05)


def without_nul(node: Any) -> Any:
    """Strings without U+0000: rsyslog (C strings) always rewrites NUL as `#000` (documented limit)."""
    if isinstance(node, dict):
        return {k: without_nul(v) for k, v in node.items()}
    if isinstance(node, list):
        return [without_nul(v) for v in node]
    return node.replace("\x00", "") if isinstance(node, str) else node


def send_all(sink: SyslogSink, events: list[dict[str, Any]]) -> Any:
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    return report


def received_events(lines: list[str], fmt: str) -> dict[str, dict[str, Any]]:
    out = {}
    for line in lines:
        event = parse(line, from_=fmt)[0].to_dict()
        out[event["id"]] = event
    return out


@pytest.mark.parametrize("transport", ["tcp", "tls", "udp"])
def test_leef_events_arrive_intact_over_each_transport(transport: str, rsyslog: Rsyslog) -> None:
    rsyslog.clear()
    # Pipes, carets, backslashes, '=', newlines, control characters, emoji, RTL marks...
    events = [without_nul(e) for e in event_dicts(120, seed=40, wild=True)]
    port = {"tcp": rsyslog.tcp, "tls": rsyslog.tls, "udp": rsyslog.udp}[transport]
    extra = f"?ca_certs={rsyslog.ca}" if transport == "tls" else ""
    sink = open_sink(f"qradar+{transport}://127.0.0.1:{port}{extra}", delivery=POLICY)
    report = send_all(sink, events)
    assert (report.delivered, report.failed) == (120, [])
    got = received_events(rsyslog.wait_for(120), "leef")
    assert got == {e["id"]: e for e in events}
    assert all(validate_event(e).valid for e in got.values())


def test_cef_over_tls(rsyslog: Rsyslog) -> None:
    rsyslog.clear()
    events = event_dicts(40, seed=41)
    sink = open_sink(f"syslog+tls://localhost:{rsyslog.tls}?format=cef&ca_certs={rsyslog.ca}", delivery=POLICY)
    assert send_all(sink, events).delivered == 40
    lines = rsyslog.wait_for(40)
    assert all(line.startswith("CEF:0|WIA|Security|") for line in lines)
    assert received_events(lines, "cef") == {e["id"]: e for e in events}


def test_tls_verification_is_on_by_default(rsyslog: Rsyslog) -> None:
    events = event_dicts(3, seed=42)
    report = send_all(SyslogSink("127.0.0.1", rsyslog.tls, transport="tls", delivery=POLICY), events)
    assert report.delivered == 0 and len(report.failed) == 3
    assert all("TLS verification failed" in r.reason and not r.retryable for r in report.failed)


def test_octet_counting_and_rfc5424_header_on_the_wire() -> None:
    event = event_dicts(1, seed=43)[0]
    event["severity"] = 9.5
    message = syslog_message("LEEF:2.0|x", event, hostname="sensor-1")
    assert re.fullmatch(rb"<105>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z sensor-1 wia-security - "
                        + event["type"].encode() + rb" - LEEF:2\.0\|x", message)    # 13*8 + 1 (alert)
    framed = octet_counted(message)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(message)


def test_reconnects_after_the_server_restarts_and_loses_nothing(tmp_path: Any) -> None:
    server = start_rsyslog(tmp_path)
    try:
        sink = SyslogSink("127.0.0.1", server.tcp, transport="tcp", delivery=POLICY)
        first, second = event_dicts(30, seed=44), event_dicts(30, seed=45)
        report = sink.send(first)
        report.merge(sink.flush())
        server.wait_for(30)
        stop(server)
        restarted = start_rsyslog_on(tmp_path, server)
        report.merge(sink.send(second))
        report.merge(sink.flush())
        sink.close()
        assert (report.delivered, report.failed) == (60, [])
        ids = set(received_events(restarted.wait_for(60), "leef"))
        assert ids == {e["id"] for e in first + second}
    finally:
        stop(server)
        if "restarted" in locals():
            stop(restarted)


def start_rsyslog_on(directory: Any, old: Rsyslog) -> Rsyslog:
    """rsyslog again on the same ports and output file (the config in `directory` is reused)."""
    import subprocess
    import time
    conf = directory / "rsyslog.conf"
    process = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(directory / "rsyslogd2.pid")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", old.tcp), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    return Rsyslog(directory, old.udp, old.tcp, old.tls, old.ca, process)


def test_oversize_messages_are_dead_lettered_not_truncated(rsyslog: Rsyslog) -> None:
    event = event_dicts(1, seed=46)[0]
    event.setdefault("meta", {})["raw"] = "x" * 70_000
    report = send_all(SyslogSink("127.0.0.1", rsyslog.udp, transport="udp", delivery=POLICY), [event])
    assert report.delivered == 0 and "over the 32,000-byte limit" in report.failed[0].reason


def test_unreachable_server_is_retried_then_dead_lettered_with_reason() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                     # nothing listens here
    sink = SyslogSink("127.0.0.1", port, transport="tcp", delivery=DeliveryPolicy(max_wait=0, max_attempts=2,
                                                                                 initial_backoff=0.01))
    report = send_all(sink, event_dicts(5, seed=47))
    assert len(report.failed) == 5
    assert all(r.reason.startswith("gave up after 2 attempt(s)") and "ConnectionRefusedError" in r.reason
               and r.retryable for r in report.failed)


def _line_listener() -> tuple[socket.socket, list[bytes]]:
    """A TCP listener that splits what it reads on line feeds only, as a receiver without octet counting does."""
    server = socket.create_server(("127.0.0.1", 0))
    lines: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as stream:
            lines.extend(line.rstrip(b"\n") for line in stream)

    threading.Thread(target=serve, daemon=True).start()
    return server, lines


def test_framing_lf_ends_each_message_with_a_line_feed_for_a_newline_only_listener() -> None:
    events = [without_nul(e) for e in event_dicts(40, seed=44, wild=True)]     # newlines inside values too
    server, lines = _line_listener()
    sink = open_sink(f"qradar+tcp://127.0.0.1:{server.getsockname()[1]}?framing=lf", delivery=POLICY)
    report = send_all(sink, events)
    server.close()
    assert (report.delivered, report.failed) == (40, [])
    deadline = time.monotonic() + 30
    while len(lines) < 40 and time.monotonic() < deadline:     # the listener reads on after the sink's close
        time.sleep(0.01)
    assert all(line.startswith(b"<") for line in lines)                  # no length in front of a message
    got = received_events([line.decode().split(" - ", 2)[2] for line in lines], "leef")
    assert got == {e["id"]: e for e in events}


def test_framing_lf_is_read_by_rsyslog_too(rsyslog: Rsyslog) -> None:
    rsyslog.clear()
    events = [without_nul(e) for e in event_dicts(30, seed=45, wild=True)]
    sink = open_sink(f"qradar+tcp://127.0.0.1:{rsyslog.tcp}?framing=lf", delivery=POLICY)
    report = send_all(sink, events)
    assert (report.delivered, report.failed) == (30, [])
    assert received_events(rsyslog.wait_for(30), "leef") == {e["id"]: e for e in events}


def test_framing_is_checked() -> None:
    with pytest.raises(ConfigError, match="framing must be one of octet, lf") as info:
        open_sink("qradar+tcp://127.0.0.1:514?framing=crlf")
    assert info.value.key == "framing"
    with pytest.raises(ConfigError, match="tcp and tls"):
        open_sink("qradar+udp://127.0.0.1:514?framing=lf")
    sink = SyslogSink("127.0.0.1", 1, framing="lf", hostname="h")
    event = event_dicts(1, seed=46)[0]
    assert sink.encode(event).endswith(b"\n") and not sink.encode(event)[:1].isdigit()
    sink.hostname = "a\nb"                                 # a line feed that would split the message
    with pytest.raises(ValueError, match="line feed"):
        sink.encode(event)
