"""`wia-security enrich` stopped by Ctrl-C or SIGTERM writes the events it had read (enriched), prints its counts and
exits 130/143, as forward and convert do: the batch in hand (up to 100 events) was lost to a KeyboardInterrupt, with
no count to say how far it got. Contract test against the VirusTotal contract server, driven by the real vt-py
client."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from cli_process import start, wait_until  # noqa: E402
from vt_contract import VirusTotalServer  # noqa: E402
from wia_security.builders import AlertBuilder  # noqa: E402

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def _wchan(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_contract_a_signal_writes_what_was_read(tmp_path, monkeypatch, sig, code):
    events = [AlertBuilder().title(f"x{i}").indicator("file_hash_sha256", SHA256).build().to_dict() for i in range(5)]
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        proc = start("enrich", "--vt-url", vt.url, "-o", "out.ndjson", "-", cwd=tmp_path, stdin=subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write("".join(json.dumps(e) + "\n" for e in events).encode())
        proc.stdin.flush()                                   # stdin stays open: a quiet producer
        # the 5 events are read once enrich waits on the pipe for more (its main thread blocked in a pipe read)
        wait_until(lambda: "pipe" in _wchan(proc.pid), what="enrich to wait for more input")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    written = [json.loads(line) for line in (tmp_path / "out.ndjson").read_text().splitlines()]
    assert [e["id"] for e in written] == [e["id"] for e in events]
    assert all(e["meta"]["custom"]["enrichment"]["virustotal"]["status"] == "complete" for e in written)
    assert b"5 events written" in err and b"the counts above cover everything read before the signal" in err
