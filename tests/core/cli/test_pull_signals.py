"""`wia-security pull kafka://…` runs until stopped: Ctrl-C or SIGTERM ends it after the batch in hand is
delivered and committed, with the true counts printed and exit 130/143 (it used to print zeros and exit 0)."""
from __future__ import annotations

import json
import signal
import subprocess

import pytest

from cli_process import start, stored_count, wait_until
from strategies import event_dicts

pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")

import servers.tansu as tansu_server  # noqa: E402
from wia_security.connectors.kafka import KafkaSink  # noqa: E402

tansu = tansu_server.tansu                # the broker fixture


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_kafka_pull_with_true_counts(tansu, tmp_path, sig, code):
    topic = tansu.create_topic(partitions=1)
    with KafkaSink(tansu.bootstrap, topic) as sink:
        assert sink.send(event_dicts(30, seed=5)).merge(sink.flush()).delivered == 30
    url = f"kafka://{tansu.bootstrap}/{topic}?group=sig-{sig}"
    proc = start("pull", url, "--to", "sqlite:///s.db", "--summary", "json", cwd=tmp_path)

    def stored() -> int:
        return stored_count(tmp_path / "s.db")

    wait_until(lambda: stored() == 30 or proc.poll() is not None, what="the pull to store the events")
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert b"Traceback" not in err
    summary = json.loads(out)
    assert (summary["read"], summary["delivered"]) == (30, 30)
    # the offsets were committed before it stopped: the same group finds nothing new
    again = subprocess.run([*proc.args[:3], "pull", url, "--to", "sqlite:///s.db", "--idle-timeout", "3",
                            "--summary", "json"], cwd=tmp_path, capture_output=True, timeout=120)
    assert again.returncode == 0 and json.loads(again.stdout)["read"] == 0
