"""Shared fixtures: the repository root and the bundled samples."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

# gRPC (the SCC tests' client) installs fork handlers; a test that starts `wia-security` with subprocess
# while a gRPC thread is busy can then deadlock the child before it execs ("Other threads are currently
# calling into gRPC, skipping fork() handlers"). Read when grpc is first imported, hence here.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

# A run started in the background by a shell without job control (`make test &` in a script) inherits
# SIGINT ignored, and so would every process the tests start: the Ctrl-C tests need it delivered. A
# handler (not SIG_IGN) is also what children get back as the default when they exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest
from hypothesis import HealthCheck, settings

# Property tests run in 4-6 xdist workers on 2 cores: an example can take longer than Hypothesis' 200 ms
# deadline, or generation can look "too slow", only because the machine is busy. Either fails the test
# (DeadlineExceeded, or Flaky when the re-run is fast) without saying anything about the code.
settings.register_profile("wia", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("wia")

# medallion in-process (fixtures `medallion`, `medallion_server`): one per session, whichever directory's tests
# use it (medallion.load_app works once per process): the connector's, the Splunk app's and the XSOAR pack's.
pytest_plugins = ["servers.medallion"]

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="session")
def samples() -> dict[str, dict]:
    """The seven upstream sample events, by file stem (e.g. "alert-sample")."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*-sample.json"))}


@pytest.fixture(autouse=True)
def _forget_secrets():
    """Secrets a test's sinks were given are masked process-wide (wia_security.redact); forget them after
    each test so one test's short made-up key cannot mask words in another's messages."""
    yield
    from wia_security.redact import forget_all
    forget_all()


# The CLI's default outputs land in the working directory (the repository root under `make test`): a test that
# runs a command without naming them leaves files in the checkout, and every later run appends to them.
_DEFAULT_OUTPUTS = ("wia-dead-letter.ndjson", "wia-events.db")
_SESSION_START = time.time()


def _default_outputs_written() -> list[Path]:
    return [p for p in map(Path, _DEFAULT_OUTPUTS) if p.exists() and p.stat().st_mtime >= _SESSION_START - 1]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """`make test` sets WIA_NO_SKIPS=1: there, every extra is installed, so a skipped test means a broken
    install or a missing feature, and the run fails instead of passing quietly. A run whose tests wrote the
    CLI's default outputs into the working directory fails too."""
    import os
    written = _default_outputs_written()
    if written:
        terminalreporter.write_line(f"tests wrote {', '.join(map(str, written))} in {Path.cwd()}: give the command "
                                    "a path under tmp_path (or monkeypatch.chdir(tmp_path))", red=True)
        terminalreporter._session.exitstatus = 1
    skipped = terminalreporter.stats.get("skipped", [])
    if os.environ.get("WIA_NO_SKIPS") == "1" and skipped:
        terminalreporter.write_line(f"WIA_NO_SKIPS: {len(skipped)} tests were skipped; every test must run here:",
                                    red=True)
        for report in skipped[:20]:
            terminalreporter.write_line(f"  {report.nodeid}: {report.longrepr[-1] if report.longrepr else ''}")
        terminalreporter._session.exitstatus = 1


def pytest_sessionfinish(session, exitstatus):
    import os
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("WIA_NO_SKIPS") == "1" and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = 1
