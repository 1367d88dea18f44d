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


def test_connection_failures_that_differ_only_in_the_attempts_time_are_logged_once(caplog):
    """librdkafka's FAIL line ends with the time the attempt took, "(after 0ms in state CONNECT)": usually 0 ms for
    a refused loopback port, but 3 ms now and then on a loaded machine (and anything against a remote broker), and
    each new value was logged as a new line (the test above saw two). The lines below are librdkafka's own."""
    import logging

    from wia_security.connectors.kafka import _LibrdkafkaLog
    caplog.set_level(logging.INFO, logger="wia_security")
    librdkafka = _LibrdkafkaLog("kafka:127.0.0.1:57275/wia-events#g")
    refused = ("[thrd:127.0.0.1:57275/bootstrap]: 127.0.0.1:57275/bootstrap: Connect to ipv4#127.0.0.1:57275 failed: "
               "Connection refused (after {}ms in state CONNECT)")
    for ms in (3, 0, 0, 12, 1021):
        librdkafka.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", refused.format(ms))
    timed_out = ("[thrd:127.0.0.1:57275/bootstrap]: 127.0.0.1:57275/bootstrap: Connection setup timed out in state "
                 "CONNECT (after 30029ms in state CONNECT)")
    librdkafka.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", timed_out)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["kafka:127.0.0.1:57275/wia-events#g: librdkafka FAIL: 127.0.0.1:57275/bootstrap: Connect to "
                     "ipv4#127.0.0.1:57275 failed: Connection refused (after 3ms in state CONNECT)",
                     "kafka:127.0.0.1:57275/wia-events#g: librdkafka FAIL: 127.0.0.1:57275/bootstrap: Connection setup "
                     "timed out in state CONNECT (after 30029ms in state CONNECT)"]
