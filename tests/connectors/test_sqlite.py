"""The embedded store: idempotent inserts, indexes, filters, URL forms."""
from __future__ import annotations

import pytest

from strategies import event_dicts
from wia_security.connectors import open_sink
from wia_security.connectors.sqlite import EventStore, path_from_url
from wia_security.errors import ConfigError


def test_insert_is_idempotent_on_event_id(tmp_path):
    store = EventStore(str(tmp_path / "s.db"))
    events = event_dicts(100, seed=1)
    assert store.insert(events)[:2] == (100, 0)
    changed = [dict(e, severity=0) for e in events[:10]]
    assert store.insert(changed + event_dicts(5, seed=2))[:2] == (5, 10)
    assert store.count() == 105
    assert store.count(max_severity=0) == sum(e["severity"] == 0 for e in events + event_dicts(5, seed=2))


def test_indexes_exist(tmp_path):
    store = EventStore(str(tmp_path / "s.db"))
    names = {row[0] for row in store._db.execute("select name from sqlite_master where type='index'")}
    assert {"events_ts", "events_type_ts", "events_severity"} <= names
    plan = " ".join(str(r) for r in store._db.execute(
        "explain query plan select * from events where type='alert' and ts_ms > 0"))
    assert "events_type_ts" in plan


def test_filters_and_order(tmp_path):
    store = EventStore(str(tmp_path / "s.db"))
    events = event_dicts(300, seed=3)
    store.insert(events)
    alerts = list(store.query(types=["alert"], limit=None))
    assert len(alerts) == sum(e["type"] == "alert" for e in events)
    times = [r.timestamp for r in store.query(limit=None, newest_first=False)]
    from wia_security.timeutil import to_epoch_ms
    assert [to_epoch_ms(t) for t in times] == sorted(to_epoch_ms(t) for t in times)
    assert store.counts_by("type") == {t: n for t, n in __import__("collections").Counter(e["type"] for e in events).items()}


def test_events_that_cannot_be_stored_are_rejected_not_dropped(tmp_path):
    store = EventStore(str(tmp_path / "s.db"))
    good = event_dicts(3, seed=4)
    inserted, dupes, rejected = store.insert(good + [{"id": "x", "type": "alert"}])
    assert (inserted, dupes, len(rejected)) == (3, 0, 1)
    assert "cannot store event: it has no 'timestamp'" in rejected[0].reason and "validate" in rejected[0].reason


@pytest.mark.parametrize("url, path", [
    ("sqlite:///wia-events.db", "wia-events.db"), ("sqlite:////var/x.db", "/var/x.db"), ("plain.db", "plain.db"),
])
def test_url_forms(url, path):
    assert path_from_url(url) == path


def test_bad_urls():
    for url in ("sqlite://host/x.db", "sqlite:///", "postgres:///x"):
        with pytest.raises(ConfigError):
            path_from_url(url)


def test_a_query_string_or_fragment_is_refused_wherever_a_sqlite_url_is_read(tmp_path):
    """`query --db`, `report --db`, `replay` and `pull --to` read their URL here: `?mode=ro` opened the file
    read-write and `#old` wrote to `x.db`, silently. Refused naming the URL with values (and user info) masked."""
    for url, said in (("sqlite:///x.db?mode=ro", "sqlite:///x.db?mode=***: a sqlite: URL takes no query string"),
                      ("sqlite:///x.db#old", "sqlite:///x.db#...: a sqlite: URL takes no fragment")):
        with pytest.raises(ConfigError) as caught:
            path_from_url(url)
        assert said in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        path_from_url("sqlite://reader:s3cret@host/x.db")
    assert "s3cret" not in str(caught.value) and "sqlite://***@host/x.db" in str(caught.value)
    assert "?" not in str(caught.value).split("sqlite://***@host/x.db", 1)[1][:1]
    assert path_from_url("sqlite:///odd%3Fname.db") == "odd?name.db"        # percent-encoded: part of the name


def test_sink_through_the_registry(tmp_path):
    with open_sink(f"sqlite:///{tmp_path}/s.db") as sink:
        report = sink.send(event_dicts(10, seed=5))
    assert (report.delivered, report.duplicates, report.failed) == (10, 0, [])


def test_a_batch_the_database_refuses_fails_whole_and_retryable_then_goes_in(tmp_path):
    from wia_security.connectors.sqlite import SqliteSink
    sink = SqliteSink(str(tmp_path / "s.db"))
    events = event_dicts(10, seed=5)
    sink.store._db.execute("PRAGMA query_only=ON")       # sqlite refuses writes, as on a read-only file
    report = sink.send(events)
    assert (report.delivered, report.duplicates, len(report.failed)) == (0, 0, 10)
    assert all(r.retryable and "attempt to write a readonly database" in r.reason for r in report.failed)
    assert [r.event for r in report.failed] == events
    sink.store._db.execute("PRAGMA query_only=OFF")
    assert sink.send(events).delivered == 10                 # the transaction was rolled back: nothing half-stored
    assert sink.store.count() == 10


def test_a_store_path_that_cannot_be_opened_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot open the SQLite store.*the path is a directory"):
        EventStore(str(tmp_path))
    with pytest.raises(ConfigError, match="directory .*missing does not exist"):
        EventStore(str(tmp_path / "missing" / "s.db"))
