"""A real rsyslog (Debian's package, scripts/test-setup.d/20-rsyslog.sh) listening on loopback UDP, TCP and TLS.

The fixture writes a config into a temporary directory, runs `rsyslogd -n` in the foreground
(stopped by PID), and has every received message's MSG part written to a file, one per line,
with control-character escaping switched off so messages arrive byte for byte. The TLS listener
uses a throwaway CA and server certificate made with `cryptography` (SAN 127.0.0.1 / localhost).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from .certificates import issue, make_ca, write_certificate, write_key
from .ports import free_port  # noqa: F401 - re-exported for the tests that import it from here
from .processes import stop_process

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

CONFIG = """
global(workDirectory="{dir}" parser.escapeControlCharactersOnReceive="off"
       maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{dir}/ca.pem" defaultNetstreamDriverCertFile="{dir}/server.pem"
       defaultNetstreamDriverKeyFile="{dir}/server.key")
module(load="imudp")
module(load="imtcp" maxSessions="200")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="out" rcvbufSize="4m")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="out" streamDriver.name="ossl"
      streamDriver.mode="1" streamDriver.authMode="anon")
template(name="msgonly" type="string" string="%msg%\\n")
ruleset(name="out") {{
    action(type="omfile" file="{dir}/received.log" template="msgonly" flushOnTXEnd="on" asyncWriting="off")
}}
"""


@dataclass
class Rsyslog:
    dir: Path
    udp: int
    tcp: int
    tls: int
    ca: Path
    process: subprocess.Popen

    @property
    def received(self) -> Path:
        return self.dir / "received.log"

    def lines(self) -> list[str]:
        text = self.received.read_text("utf-8") if self.received.exists() else ""
        return text.split("\n")[:-1]          # only LF ends a line (str.splitlines also splits on \x1c, \u2028...)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[str]:
        """The received lines once there are at least `count` (fails after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if len(lines) >= count:
                return lines
            time.sleep(0.05)
        raise AssertionError(f"rsyslog received {len(self.lines())} of {count} messages in {timeout}s")

    def clear(self) -> None:
        if self.received.exists():
            self.received.write_text("")


def make_certificates(directory: Path) -> None:
    """A throwaway CA (ca.pem) and a server certificate for 127.0.0.1/localhost (server.pem, server.key)."""
    ca = make_ca("wia-security test CA")
    key, cert = issue(ca, "localhost", server=True, hosts=("localhost", "127.0.0.1"))
    write_certificate(directory / "ca.pem", ca[1])
    write_certificate(directory / "server.pem", cert)
    write_key(directory / "server.key", key)


def start_rsyslog(directory: Path) -> Rsyslog:
    make_certificates(directory)
    ports = {"udp": free_port(socket.SOCK_DGRAM), "tcp": free_port(), "tls": free_port()}
    conf = directory / "rsyslog.conf"
    conf.write_text(CONFIG.format(dir=directory, **ports))
    check = subprocess.run([RSYSLOGD, "-N1", "-f", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr + check.stdout
    log = open(directory / "rsyslogd.out", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(directory / "rsyslogd.pid")],
                               stdout=log, stderr=subprocess.STDOUT)
    server = Rsyslog(directory, ports["udp"], ports["tcp"], ports["tls"], directory / "ca.pem", process)
    deadline = time.monotonic() + 15
    for port in (ports["tcp"], ports["tls"]):
        while True:
            assert process.poll() is None, (directory / "rsyslogd.out").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("rsyslogd did not open its ports: " + (directory / "rsyslogd.out").read_text())
                time.sleep(0.05)
    return server


def stop(server: Rsyslog) -> None:
    stop_process(server.process)


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    if not os.path.exists(RSYSLOGD):
        pytest.fail("rsyslogd is not installed: run scripts/test-setup.d/20-rsyslog.sh")
    server = start_rsyslog(tmp_path_factory.mktemp("rsyslog"))
    yield server
    stop(server)
