"""`wia-security pull … --to -` writes the events on standard output and its summary on standard error, as forward
does: the summary was printed after the events on standard output, so `pull … --to - | next-tool` ended its stream
with 'source: …' and the count table (or the JSON summary, which looks like one more event line). Against the
Kafka-protocol broker tansu."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from strategies import event_dicts

pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")

import servers.tansu as tansu_server  # noqa: E402
from wia_security.connectors.kafka import KafkaSink  # noqa: E402

tansu = tansu_server.tansu                # the broker fixture


@pytest.mark.parametrize("summary", ["text", "json"])
def test_pull_to_stdout_keeps_the_summary_on_stderr(tansu, tmp_path, summary):
    topic = tansu.create_topic(partitions=1)
    events = event_dicts(5, seed=71)
    with KafkaSink(tansu.bootstrap, topic) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == 5
    url = f"kafka://{tansu.bootstrap}/{topic}?group=stdout-{summary}"
    proc = subprocess.run([sys.executable, "-m", "wia_security", "pull", url, "--to", "-", "--idle-timeout", "3",
                           "--summary", summary], cwd=tmp_path, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    written = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(e["id"] for e in written) == sorted(e["id"] for e in events)
    assert b"destination: file:-" in proc.stderr or b'"destination":"file:-"' in proc.stderr
