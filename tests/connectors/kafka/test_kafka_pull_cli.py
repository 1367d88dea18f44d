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


def test_pull_takes_a_sqlite_dead_letter_as_forward_does(tansu, tmp_path, capsys):
    """`--dead-letter sqlite:///dead.db` (forward's spelling) was taken for a file path, and refused because
    no directory `sqlite:` exists."""
    topic = tansu.create_topic(partitions=1)
    with KafkaSink(tansu.bootstrap, topic) as sink:
        assert sink.send(event_dicts(3, seed=62)).merge(sink.flush()).delivered == 3
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": tansu.bootstrap})
    producer.produce(topic, b'{"not": "an event"}')
    producer.flush(10)
    code = main(["pull", f"kafka://{tansu.bootstrap}/{topic}?group=cli-sqlite-dl", "--to", f"sqlite:///{tmp_path}/s.db",
                 "--dead-letter", f"sqlite:///{tmp_path}/dead.db", "--idle-timeout", "3", "--summary", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and summary["delivered"] == 3 and summary["invalid"] == 1
    [(_, record)] = sqlite3.connect(tmp_path / "dead.db").execute("select sink, record from dead_letters")
    assert json.loads(record)["where"].startswith(f"kafka:{topic}[")
    assert not list(tmp_path.glob("sqlite*"))
