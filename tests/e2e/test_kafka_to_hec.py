"""Path 3: `forward` -> Kafka (tansu, a real Kafka-protocol broker) -> `pull kafka://...` (a child process, SIGKILLed
while a HEC request is under way) -> the HEC contract server (tests/servers/hec_contract.py). At least once: after
the restart every valid event has reached HEC (duplicates allowed and counted, HEC has no idempotent id), the
invalid ones are in forward's dead letter, and the one HEC refuses is in the pull's dead letter with its reason."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from e2e_helpers import expected, read_ndjson, write_ndjson
from strategies import event_dicts

from wia_security.cli import main

pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")

from servers.hec_contract import Fault, HecContractServer  # noqa: E402
from servers.tansu import tansu  # noqa: E402,F401  (fixture)

HEC_TOKEN = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def test_kafka_pull_killed_mid_hec_request_loses_nothing(tansu, tmp_path, capsys):  # noqa: F811
    topic = tansu.create_topic(partitions=2)
    events = event_dicts(60, seed=1420)
    invalid = [{**e, "severity": 42} for e in event_dicts(2, seed=1421)]
    code = main(["forward", str(write_ndjson(tmp_path / "in.ndjson", [*events[:30], invalid[0], *events[30:], invalid[1]])),
                 "--to", f"kafka://{tansu.bootstrap}/{topic}", "--dead-letter", str(tmp_path / "forward-dead.ndjson"),
                 "--summary", "json", "--no-progress"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and summary["delivered"] == 60 and summary["invalid"] == 2, summary
    assert sorted(d["event"]["id"] for d in read_ndjson(tmp_path / "forward-dead.ndjson")) == sorted(e["id"] for e in invalid)

    # request 3 hangs (the pull is killed during it, after the server has the events: they arrive twice);
    # request 5 refuses its second event as HEC does (code 6: that one is dead-lettered, the rest re-sent)
    hec = HecContractServer({HEC_TOKEN: {}}, faults=[Fault("none"), Fault("none"), Fault("delay", seconds=2),
                                                     Fault("none"), Fault("invalid_event", code=6, index=1)]).start()
    url = (f"kafka://{tansu.bootstrap}/{topic}?group=e2e-hec&batch_size=10&session.timeout.ms=1000"
           "&heartbeat.interval.ms=250")
    cmd = [sys.executable, "-m", "wia_security", "pull", url,
           "--to", f"splunk+http://127.0.0.1:{hec.port}?token_env=E2E_HEC_TOKEN&max_events=10&max_wait=0"
                   "&initial_backoff=0.01&max_backoff=0.05",
           "--dead-letter", str(tmp_path / "pull-dead.ndjson"), "--idle-timeout", "3", "--summary", "json"]
    env = {**os.environ, "E2E_HEC_TOKEN": HEC_TOKEN}
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 30
        while hec.state.event_requests < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before_restart = len(hec.events)
        done = subprocess.run(cmd, capture_output=True, timeout=60, env=env)
        time.sleep(2.5)                          # the hung request of the killed run is answered (and indexed)
        received = Counter(e["event"]["id"] for e in hec.events)
    finally:
        hec.stop()
    assert done.returncode == 1, done.stderr.decode()[-2000:]       # 1: the event HEC refused
    [refused] = read_ndjson(tmp_path / "pull-dead.ndjson")
    assert "Invalid data format" in refused["reason"] and refused["event"]["id"] in {e["id"] for e in events}
    delivered = {e["id"] for e in events} - {refused["event"]["id"]}
    assert set(received) == delivered, (len(received), len(delivered), before_restart)
    sent = {e["id"]: expected(e) for e in events}
    assert [e["event"]["id"] for e in hec.events if e["event"] != sent[e["event"]["id"]]] == []   # unmangled
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= 40, received                      # at most the killed run's uncommitted batches
