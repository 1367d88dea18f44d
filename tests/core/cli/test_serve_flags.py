"""`wia-security serve` refuses bad flag values before it starts, naming the flag the user typed."""
from __future__ import annotations

import pytest

TOKEN = "serve-flags-token-0123456789"


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("WIA_GATEWAY_TOKENS", TOKEN)


@pytest.mark.parametrize(("flag", "value", "reason"), [
    ("--ping-interval", "0", "must be a number of seconds above 0"),
    ("--ping-timeout", "-1", "must be a number of seconds above 0"),
    ("--client-queue", "0", "must be at least 1"),
    ("--client-queue-bytes", "0", "must be at least 1"),
    ("--max-stream-clients", "0", "must be at least 1"),
    ("--max-body-bytes", "0", "must be at least 1"),
    ("--replay-events", "0", "must be at least 1"),
])
def test_a_bad_gateway_setting_is_named_by_its_flag(cli, flag, value, reason):
    r = cli("serve", "--no-store", flag, value)
    assert r.code == 2
    assert r.err.strip() == f"wia-security: {flag}: {reason}", r.err


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_a_heartbeat_that_is_not_a_positive_interval_is_refused(cli, value):
    # at 0 each stream was sent heartbeats in a loop without pause
    r = cli("serve", "--no-store", "--heartbeat", value)
    assert r.code == 2
    assert r.err.strip() == "wia-security: --heartbeat: must be a number of seconds above 0", r.err


@pytest.mark.parametrize("value", ["0", "65536", "99999", "-1"])
def test_a_port_outside_the_tcp_range_is_a_usage_error_not_a_traceback(cli, value):
    r = cli("serve", "--no-store", "--port", value)
    assert r.code == 2
    assert r.err.strip() == "wia-security: --port: must be 1 to 65535", r.err
