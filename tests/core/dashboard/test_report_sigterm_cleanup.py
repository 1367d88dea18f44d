"""Event files go through a temporary store of event copies (each id once, as its newest version): a SIGTERM
(`timeout`, a service stop) killed the process and left that store under TMPDIR. It now ends the run as an
exception does: the store is removed, no report is written, and the exit status is 143."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))   # tests/core/cli: the process helpers
from cli_process import write_events  # noqa: E402


@pytest.mark.parametrize("command", [["report", "-o", "r.html"], ["compliance"]])
def test_sigterm_removes_the_temporary_store(tmp_path, command):
    write_events(tmp_path / "big.ndjson", 60_000)
    temp = tmp_path / "temp"
    temp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "wia_security", command[0], "big.ndjson", *command[1:],
                             "--no-progress"], cwd=tmp_path, env={**os.environ, "TMPDIR": str(temp)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not any(temp.glob("wia-report-*/versions.db")):             # the store is being filled
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(temp.iterdir()) == []
    assert not (tmp_path / "r.html").exists()
