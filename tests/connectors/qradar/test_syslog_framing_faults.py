"""Syslog framing when the listener misbehaves, against a byte-exact RFC 6587 octet-counting receiver
(a contract server: rsyslog rewrites NUL, this one keeps every byte): resets mid-stream, a slow reader,
values full of delimiters, newlines, NULs and very long values."""
from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import pytest

from strategies import event_dicts
from wia_security import parse
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.qradar import SyslogSink
from wia_security.errors import ConfigError
from wia_security.pipeline import normalize

POLICY = DeliveryPolicy(max_events=40, max_wait=0, initial_backoff=0.01, max_backoff=0.05)


class OctetCountingReceiver:
    """Accepts TCP connections and splits each stream into `LEN SP MSG` frames (RFC 6587 3.4.1); a
    partial frame at the end of a connection is discarded, as rsyslog does. Connection k is reset
    (RST, SO_LINGER 0) once it has read `reset_after[k]` bytes; `pause` slows every read."""

    def __init__(self, reset_after: tuple[int, ...] = (), pause: float = 0.0, rcvbuf: int | None = None) -> None:
        self.frames: list[bytes] = []
        self.garbage: list[bytes] = []
        self.connections = 0
        self.reset_after, self.pause = list(reset_after), pause
        self._sock = socket.socket()
        if rcvbuf:                          # before listen(): accepted connections take it (a small window)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.port = self._sock.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            limit = self.reset_after[self.connections] if self.connections < len(self.reset_after) else None
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, limit), daemon=True).start()

    def _serve(self, conn: socket.socket, limit: int | None) -> None:
        buffer, total = b"", 0
        with conn:
            while True:
                if self.pause:
                    time.sleep(self.pause)
                data = conn.recv(65536)
                if not data:
                    return
                total += len(data)
                buffer += data
                while b" " in buffer:
                    length, _, rest = buffer.partition(b" ")
                    if not length.isdigit():
                        with self._lock:
                            self.garbage.append(buffer)
                        return
                    if len(rest) < int(length):
                        break
                    with self._lock:
                        self.frames.append(rest[:int(length)])
                    buffer = rest[int(length):]
                if limit is not None and total >= limit:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return

    def events(self) -> list[dict[str, Any]]:
        out = []
        for frame in self.frames:
            header, sep, leef = frame.partition(b" - LEEF:")
            assert sep, frame[:200]
            out.append(parse(("LEEF:" + leef.decode("utf-8")), from_="leef")[0].to_dict())
        return out

    def close(self) -> None:
        self._sock.close()


def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


def hostile(n: int) -> list[dict[str, Any]]:
    """Events whose strings carry LEEF/syslog delimiters, line breaks, NULs, and one very long value."""
    events = event_dicts(n, seed=77, wild=True)
    nasty = "a|b^c=d\\e\tf\ng\r\nh\x00i 123 <13>1 LEEF:2.0|x|"
    for i, event in enumerate(events):
        event["source"]["name"] = nasty + str(i)
        if i % 10 == 0:
            event.setdefault("meta", {})["tags"] = ["x" * 20_000 + "\x00\n|="]
    return [normalize(e) for e in events]


def test_frames_stay_exact_with_delimiters_newlines_nuls_and_long_values() -> None:
    receiver = OctetCountingReceiver()
    events = hostile(60)
    sink = SyslogSink("127.0.0.1", receiver.port, transport="tcp", delivery=POLICY, hostname="sensor-1")
    report = sink.send(events).merge(sink.flush())
    sink.close()
    wait_until(lambda: len(receiver.frames) >= 60)
    receiver.close()
    assert (report.delivered, report.failed, receiver.garbage) == (60, [], [])
    assert {e["id"]: e for e in receiver.events()} == {e["id"]: e for e in events}     # byte-exact, NULs included


class CongestedSink(SyslogSink):
    """A sender on a congested link: small socket buffers, so the ~600 KB of `hostile(200)` cannot all sit
    in the kernel's buffers before the listener resets (syslog has no acknowledgements: the events of a
    sink that finished writing first count as delivered, and it never sees the reset)."""

    def _connect(self) -> socket.socket:
        sock = super()._connect()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return sock


def test_a_listener_that_resets_mid_stream_never_splices_frames_and_every_event_is_accounted_for() -> None:
    # Reset the first two connections part-way through a frame; what it had read in full is kept.
    receiver = OctetCountingReceiver(reset_after=(30_000, 90_000), rcvbuf=4096)
    events = hostile(200)
    sink = CongestedSink("127.0.0.1", receiver.port, transport="tcp", delivery=POLICY, hostname="sensor-1", timeout=2)
    report = sink.send(events).merge(sink.flush())
    sink.close()
    wait_until(lambda: receiver.connections >= 3 and len(receiver.frames) >= 1)
    time.sleep(0.5)
    receiver.close()
    assert report.delivered + len(report.failed) == 200
    assert receiver.connections >= 3 and receiver.garbage == []     # reconnected; no half frame glued to the next
    sent = {e["id"]: e for e in events}
    assert all(sent[e["id"]] == e for e in receiver.events())        # every frame that arrived is a whole event


def test_a_slow_listener_gets_everything_once_the_sink_closes() -> None:
    receiver = OctetCountingReceiver(pause=0.01)
    events = hostile(80)
    sink = SyslogSink("127.0.0.1", receiver.port, transport="tcp", delivery=POLICY, hostname="sensor-1", timeout=5)
    report = sink.send(events).merge(sink.flush())
    sink.close()
    wait_until(lambda: len(receiver.frames) >= 80, timeout=20)
    receiver.close()
    assert report.delivered == 80 and {e["id"] for e in receiver.events()} == {e["id"] for e in events}


@pytest.mark.parametrize("hostname", ["my sensor", "sensör", "", "x" * 256, "tab\there"])
def test_a_hostname_that_would_break_the_rfc5424_header_is_a_config_error(hostname: str) -> None:
    with pytest.raises(ConfigError, match="hostname must be 1-255 printable ASCII"):
        SyslogSink("127.0.0.1", 1, transport="tcp", hostname=hostname)


@pytest.mark.parametrize("machine, sent", [("10.0.0.5", "10.0.0.5"), ("sensor-1.corp.example", "sensor-1"),
                                           ("sensor-1", "sensor-1")])
def test_the_automatic_hostname_keeps_an_address_whole(monkeypatch: pytest.MonkeyPatch, machine: str,
                                                      sent: str) -> None:
    # a machine named by its address was sent as HOSTNAME "10" (its first label), a name QRadar then routed
    # events by (the log source identifier comes from the syslog header)
    monkeypatch.setattr(socket, "gethostname", lambda: machine)
    assert SyslogSink("127.0.0.1", 1, transport="tcp").hostname == sent
