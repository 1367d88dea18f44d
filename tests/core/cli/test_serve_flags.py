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


def test_tls_files_that_cannot_be_read_are_named_before_start(cli):
    r = cli("serve", "--no-store", "--tls-cert", "missing.pem", "--tls-key", "missing.key")
    assert r.code == 2
    assert r.err == ("wia-security: missing.pem: no such file\nwia-security: missing.key: no such file\n"
                     "wia-security: cannot read the TLS certificate or key (--tls-cert, --tls-key)\n"), r.err


@pytest.mark.parametrize(("flags", "named"), [
    (["--store", "sqlite:///missing/x.db"], "--store sqlite:///missing/x.db: cannot write missing/x.db"),
    (["--no-store", "--dead-letter", "missing/d.ndjson"], "--dead-letter missing/d.ndjson: cannot write missing/d.ndjson"),
    (["--no-store", "--to", "file:///nonexistent-wia-dir/x.ndjson"],
     "--to file:///nonexistent-wia-dir/x.ndjson: cannot write /nonexistent-wia-dir/x.ndjson"),
])
def test_a_store_dead_letter_or_file_destination_that_cannot_be_written_is_refused_before_start(cli, tmp_path, flags, named):
    # it was found only in uvicorn's start-up: a traceback in the log and exit status 3
    r = cli("serve", *flags)
    assert r.code == 2
    assert r.err.startswith(f"wia-security: {named}: directory "), r.err
    assert "does not exist" in r.err and "Traceback" not in r.err


def test_a_port_in_use_is_exit_status_2_not_uvicorns_3():
    import os
    import socket
    import subprocess
    import sys
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "wia_security", "serve", "--no-store", "--port", str(port)],
                           env={**os.environ, "WIA_GATEWAY_TOKENS": TOKEN}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "address already in use" in r.stderr
    assert r.stderr.rstrip().endswith("wia-security: the gateway did not start (the reason is logged above)"), r.stderr


def test_a_tls_file_that_is_not_pem_names_both_flags(cli, tmp_path):
    (tmp_path / "not.pem").write_text("not a certificate\n")
    r = cli("serve", "--no-store", "--tls-cert", "not.pem", "--tls-key", "not.pem")
    assert r.code == 2
    assert r.err.startswith("wia-security: --tls-cert not.pem, --tls-key not.pem: not a PEM certificate chain and "
                            "its private key ("), r.err
