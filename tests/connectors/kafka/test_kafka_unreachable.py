"""`wia-security pull kafka://...` with no broker listening: the idle timeout ends the pull with an error naming the
broker (exit 2), and librdkafka's connection failures, repeated about every 50 ms, are logged once."""
from __future__ import annotations

import socket
import subprocess
import sys


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_pull_from_a_closed_port_ends_at_the_idle_timeout_naming_the_broker(tmp_path):
    port = closed_port()
    cmd = [sys.executable, "-m", "wia_security", "pull", f"kafka://127.0.0.1:{port}/wia-events?group=g",
           "--idle-timeout", "1", "--to", f"sqlite:///{tmp_path}/s.db", "--dead-letter", str(tmp_path / "dl.ndjson")]
    # it never stopped: the timeout makes that a failure rather than a hang
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    [error] = [line for line in lines if line.startswith("wia-security: ")]
    assert f"no Kafka broker answered at 127.0.0.1:{port}" in error and "Connection refused" in error
    # librdkafka wrote a FAIL line to stderr per reconnect (dozens a second): now one, through logging
    fails = [line for line in lines if "Connection refused" in line and line is not error]
    assert len(fails) == 1, done.stderr
    assert not any(line.startswith("%3|") for line in lines)
