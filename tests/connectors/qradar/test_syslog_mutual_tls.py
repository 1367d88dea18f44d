"""TLS syslog to a listener that requires a client certificate (QRadar's TLS Syslog log source in its "TLS and
Client Authentication" mode), against a real rsyslog whose TLS input verifies clients (authMode x509/certvalid).

Under TLS 1.3 the client's side of the handshake ends before the server has checked the client's certificate, so
a sink that wrote at once counted every event as delivered while the server refused each connection: 30 of 30
"delivered", none received. Now a refusal is a permanent failure saying what to give, and with `client_cert` /
`client_key` every event arrives."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from servers.certificates import issue, make_ca, write_certificate, write_key
from servers.ports import free_port
from servers.processes import stop_process
from servers.rsyslog import RSYSLOGD
from strategies import event_dicts
from wia_security import parse
from wia_security.connectors import open_sink
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.qradar import SyslogSink
from wia_security.errors import ConfigError

POLICY = DeliveryPolicy(max_events=10, max_wait=0, max_attempts=2, initial_backoff=0.01, max_backoff=0.05)

CONFIG = """
global(workDirectory="{dir}" parser.escapeControlCharactersOnReceive="off" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{dir}/ca.pem" defaultNetstreamDriverCertFile="{dir}/server.pem"
       defaultNetstreamDriverKeyFile="{dir}/server.key")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="out" streamDriver.name="ossl"
      streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
template(name="msgonly" type="string" string="%msg%\\n")
ruleset(name="out") {{
    action(type="omfile" file="{dir}/received.log" template="msgonly" flushOnTXEnd="on" asyncWriting="off")
}}
"""


class MutualTlsRsyslog:
    def __init__(self, directory: Path) -> None:
        # one CA for the server's certificate and the clients' (rsyslog verifies clients against ca.pem)
        self.ca = make_ca("wia-security test CA")
        key, cert = issue(self.ca, "localhost", server=True, hosts=("localhost", "127.0.0.1"))
        write_certificate(directory / "ca.pem", self.ca[1])
        write_certificate(directory / "server.pem", cert)
        write_key(directory / "server.key", key)
        self.dir, self.port = directory, free_port()
        conf = directory / "rsyslog.conf"
        conf.write_text(CONFIG.format(dir=directory, port=self.port))
        check = subprocess.run([RSYSLOGD, "-N1", "-f", str(conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr + check.stdout
        log = open(directory / "rsyslogd.out", "w")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(directory / "rsyslogd.pid")],
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            assert self.process.poll() is None, (directory / "rsyslogd.out").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "rsyslogd did not open its port"
                time.sleep(0.05)

    def lines(self) -> list[str]:
        received = self.dir / "received.log"
        return received.read_text("utf-8").split("\n")[:-1] if received.exists() else []

    def wait_for(self, count: int, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.lines()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.lines()


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MutualTlsRsyslog]:
    if not os.path.exists(RSYSLOGD):
        pytest.fail("rsyslogd is not installed: run scripts/test-setup.d/20-rsyslog.sh")
    server = MutualTlsRsyslog(tmp_path_factory.mktemp("rsyslog-mtls"))
    yield server
    stop_process(server.process)


@pytest.fixture(scope="module")
def client_files(mtls: MutualTlsRsyslog, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A client certificate from rsyslog's CA (trusted), one from another CA (not), and an encrypted key."""
    folder = tmp_path_factory.mktemp("client")
    key, cert = issue(mtls.ca, "wia-sensor-1", server=False)
    write_certificate(folder / "client.pem", cert)
    write_key(folder / "client.key", key)
    write_key(folder / "encrypted.key", key, passphrase="correct horse")
    stranger = issue(make_ca("some other CA"), "stranger", server=False)
    write_certificate(folder / "stranger.pem", stranger[1])
    write_key(folder / "stranger.key", stranger[0])
    return {k: str(folder / f) for k, f in (("cert", "client.pem"), ("key", "client.key"),
                                            ("encrypted", "encrypted.key"), ("stranger_cert", "stranger.pem"),
                                            ("stranger_key", "stranger.key"))}


def send_all(sink: SyslogSink, events: list[dict[str, Any]]) -> Any:
    report = sink.send(events)
    report.merge(sink.flush())
    report.merge(sink.close())
    return report


def test_a_listener_that_requires_a_client_certificate_is_a_permanent_failure_not_a_silent_loss(
        mtls: MutualTlsRsyslog) -> None:
    events = event_dicts(30, seed=139)
    sink = SyslogSink("127.0.0.1", mtls.port, transport="tls", ca_file=str(mtls.dir / "ca.pem"), delivery=POLICY)
    report = send_all(sink, events)
    assert (report.delivered, len(report.failed)) == (0, 30)
    assert all("refused this sink's TLS client certificate" in r.reason and "client_cert" in r.reason
               and not r.retryable for r in report.failed)


def test_events_arrive_with_a_client_certificate_the_listener_trusts(mtls: MutualTlsRsyslog,
                                                                   client_files: dict[str, str]) -> None:
    events = event_dicts(30, seed=140)
    before = len(mtls.lines())
    sink = open_sink(f"qradar+tls://127.0.0.1:{mtls.port}?ca_file={mtls.dir / 'ca.pem'}"
                     f"&client_cert={client_files['cert']}&client_key={client_files['key']}", delivery=POLICY)
    report = send_all(sink, events)
    assert (report.delivered, report.failed) == (30, [])
    lines = mtls.wait_for(before + 30)[before:]
    got = {parse(line, from_="leef")[0].to_dict()["id"] for line in lines}
    assert got == {e["id"] for e in events}


def test_a_client_certificate_the_listener_does_not_trust_is_refused_with_the_reason(
        mtls: MutualTlsRsyslog, client_files: dict[str, str]) -> None:
    sink = SyslogSink("127.0.0.1", mtls.port, transport="tls", ca_file=str(mtls.dir / "ca.pem"), delivery=POLICY,
                      client_cert=client_files["stranger_cert"], client_key=client_files["stranger_key"])
    report = send_all(sink, event_dicts(5, seed=141))
    assert report.delivered == 0 and len(report.failed) == 5
    assert all("refused this sink's TLS client certificate" in r.reason and not r.retryable for r in report.failed)


def test_client_certificate_options_are_checked_when_the_sink_is_made(client_files: dict[str, str],
                                                                     tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="applies to TLS only") as info:
        open_sink(f"qradar+tcp://127.0.0.1:514?client_cert={client_files['cert']}")
    assert info.value.key == "client_cert"
    with pytest.raises(ConfigError, match="client_key needs client_cert") as info:
        SyslogSink("127.0.0.1", 6514, transport="tls", client_key=client_files["key"])
    assert info.value.key == "client_key"
    # an encrypted key: refused at once (OpenSSL would otherwise prompt for a passphrase on the terminal)
    with pytest.raises(ConfigError, match="is encrypted") as info:
        SyslogSink("127.0.0.1", 6514, transport="tls", client_cert=client_files["cert"],
                   client_key=client_files["encrypted"])
    assert info.value.key == "client_key"
    with pytest.raises(ConfigError, match="cannot use the client certificate") as info:
        SyslogSink("127.0.0.1", 6514, transport="tls", client_cert=str(tmp_path / "missing.pem"))
    assert info.value.key == "client_cert"
    with pytest.raises(ConfigError, match="cannot use the client certificate"):       # key of another certificate
        SyslogSink("127.0.0.1", 6514, transport="tls", client_cert=client_files["cert"],
                   client_key=client_files["stranger_key"])
