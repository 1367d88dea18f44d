"""`wia-security pull kafka://...` against tansu: events land in the store, a bad message is dead-lettered, offsets commit."""
from __future__ import annotations

import json
import sqlite3

from strategies import event_dicts
from wia_security.cli import main
from wia_security.connectors.kafka import KafkaSink


def test_pull_from_kafka_into_the_store(tansu, tmp_path, capsys):
    topic = tansu.create_topic(partitions=2)
    events = event_dicts(40, seed=61)
    with KafkaSink(tansu.bootstrap, topic) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == 40
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": tansu.bootstrap})
    producer.produce(topic, b'{"not": "an event"}')
    producer.flush(10)
    url = f"kafka://{tansu.bootstrap}/{topic}?group=cli-test"
    args = ["pull", url, "--to", f"sqlite:///{tmp_path}/s.db", "--dead-letter", str(tmp_path / "dl.ndjson"),
            "--idle-timeout", "3", "--summary", "json"]
    code = main(args)
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and summary["delivered"] == 40 and summary["invalid"] == 1
    assert sqlite3.connect(tmp_path / "s.db").execute("select count(*) from events").fetchone()[0] == 40
    [dead] = [json.loads(x) for x in (tmp_path / "dl.ndjson").read_text().splitlines()]
    assert dead["where"].startswith(f"kafka:{topic}[")
    # the group's offsets were committed: a second pull finds nothing new
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["read"] == 0
