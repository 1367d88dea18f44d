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


# -- destinations that fail only when opened ------------------------------------------------------------------
KAFKA_PASSWORD = "serve-kafka-password-5e1f"


def _serve(tmp_path, *flags: str, pythonpath: str | None = None, timeout: float = 60):
    import os
    import subprocess
    import sys
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN, "KAFKA_PASSWORD": KAFKA_PASSWORD}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "wia_security", "serve", "--no-store", "--port", str(_free_port()), *flags],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    from servers.ports import free_port
    return free_port()


def _kafka_config(tmp_path, extra: str = "") -> str:
    (tmp_path / "wia.toml").write_text(
        '[destinations.bus]\nurl = "kafka+sasl_ssl://127.0.0.1:9/wia-events"\nusername = "wia"\n'
        f'password_env = "KAFKA_PASSWORD"\nsasl_mechanism = "SCRAM-SHA-512"\n{extra}')
    return "wia.toml"


def _refused_before_start(r, named: str) -> None:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wia-security: ") and named in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "Started server process" not in r.stderr   # uvicorn never started
    assert KAFKA_PASSWORD not in r.stderr


def test_a_configured_destination_whose_ca_file_cannot_be_read_is_one_line_before_start(tmp_path):
    # librdkafka refuses its settings when the producer is made: found only when the destination is opened
    config = _kafka_config(tmp_path, f'config = {{ "ssl.ca.location" = "{tmp_path}/missing-ca.pem" }}\n')
    r = _serve(tmp_path, "--config", config)
    _refused_before_start(r, "destinations.bus")
    assert "ssl.ca.location failed" in r.stderr


def test_a_configured_destination_whose_library_is_missing_is_one_line_before_start(tmp_path):
    # confluent_kafka made unimportable for this process only (a folder ahead on sys.path), as when the kafka
    # extra was not installed
    stub = tmp_path / "no-kafka" / "confluent_kafka"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'confluent_kafka'\", "
                                      "name='confluent_kafka')\n")
    r = _serve(tmp_path, "--config", _kafka_config(tmp_path), pythonpath=str(stub.parent))
    _refused_before_start(r, "destinations.bus.url: kafka destinations: the Python package 'confluent_kafka' is "
                             "not installed")


def test_a_to_destination_that_fails_when_opened_is_one_line_before_start(tmp_path):
    r = _serve(tmp_path, "--to", "kafka://127.0.0.1:9/wia-events?no.such.property=1")
    _refused_before_start(r, "No such configuration property")
    assert "kafka://127.0.0.1:9" in r.stderr


def test_destinations_are_opened_once_when_the_gateway_starts(tmp_path):
    """Opened before uvicorn starts, they are not opened again by the app's lifespan: the Kafka destination says
    once that no SASL mechanism was configured or asked of a broker (each opening says it)."""
    import os
    import signal
    import subprocess
    import sys
    (tmp_path / "wia.toml").write_text('[destinations.bus]\nurl = "kafka+sasl://127.0.0.1:9/wia-events"\n'
                                       'username = "wia"\npassword_env = "KAFKA_PASSWORD"\n')
    env = {**os.environ, "WIA_GATEWAY_TOKENS": TOKEN, "KAFKA_PASSWORD": KAFKA_PASSWORD}
    server = subprocess.Popen([sys.executable, "-m", "wia_security", "serve", "--no-store", "--port", str(_free_port()),
                               "--config", "wia.toml"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in server.stderr:               # until uvicorn says the app started (or the process ends)
            lines.append(line)
            if "Application startup complete" in line:
                break
        server.send_signal(signal.SIGINT)
        lines += server.communicate(timeout=60)[1].splitlines()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    log = "".join(f"{line.rstrip()}\n" for line in lines)
    assert "Application startup complete" in log, log
    assert server.returncode == 0, log
    assert log.count("no sasl_mechanism configured") == 1, log
    assert KAFKA_PASSWORD not in log
