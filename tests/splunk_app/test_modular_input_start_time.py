"""start_time: where a new input (one without a checkpoint) starts, as the XSOAR pack's First fetch time does (one
parser, the core's wia_security.start_time). Without it a new input indexed everything its source held (gateway cursor
"0", the whole TAXII collection, Kafka from offset 0); empty, the default, still does. Run as Splunk runs the input
(the built app, bin/wia_events.py) against the project's gateway, medallion (its memory backend seeded with objects
added ten days ago) and tansu."""
from __future__ import annotations

import json
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from wia_security import AlertBuilder, convert, validate_event

from .conftest import ROOT
from .splunkd_stub import Splunkd
from .test_modular_input import input_xml, run_input, streamed

sys.path.append(str(ROOT / "tests" / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)

FORMS = "a number of minutes, hours, days or weeks before now (3 days, 12 hours, 1 week), an RFC 3339 instant"


@pytest.fixture
def splunkd():
    with Splunkd() as server:
        yield server


@pytest.fixture(scope="module")
def samples() -> list[dict]:
    """The repository's samples: they happened on 2025-12-14, long before 3 days ago."""
    return [validate_event(json.loads(p.read_text()), lenient=True).event for p in sorted((ROOT / "samples").glob("*.json"))]


def _new(n: int) -> list[dict]:
    """Events happening now (the builder's timestamp)."""
    return [AlertBuilder().title(f"new alert {i}").severity(5).build().to_dict() for i in range(n)]


def _ids(run) -> list[str]:
    assert run.returncode == 0, run.stderr
    return [e["event"]["id"] for e in streamed(run.stdout)]


def _position(checkpoints: Path) -> dict:
    (path,) = checkpoints.glob("wia_events_*.json")
    return json.loads(path.read_text())["position"]


# -- the setting ---------------------------------------------------------------------------------------------------
def test_the_scheme_offers_start_time(built_app):
    app, _ = built_app
    scheme = ET.fromstring(run_input(app, ["--scheme"], "").stdout)
    (arg,) = [a for a in scheme.iter("arg") if a.get("name") == "start_time"]
    assert arg.findtext("title") == "Start time" and arg.findtext("required_on_create") == "false"
    assert "empty (default) for everything the source holds" in arg.findtext("description")


@pytest.mark.parametrize("value, ok, why", [
    ("3 days", True, ""), ("12 hours", True, ""), ("1 week", True, ""), ("2026-01-31T12:00:00Z", True, ""), ("", True, ""),
    ("three days", False, "start_time must be a number of minutes"), ("3 months", False, "start_time must be"),
    ("2026-01-31", False, "start_time must be"), ("2026-01-31T12:00:00", False, "start_time must be"),
    ("9999999 weeks", False, "start_time '9999999 weeks' reaches back before the year 1"),
    ("2999-01-01T00:00:00Z", False, "start_time '2999-01-01T00:00:00Z' is in the future")])
def test_validate_arguments_refuses_a_bad_start_time_naming_it_and_the_forms(built_app, value, ok, why):
    app, _ = built_app
    items = f'<param name="source_url">gateway+https://gw.example</param><param name="start_time">{escape(value)}</param>'
    run = run_input(app, ["--validate-arguments"], f'<items><item name="x">{items}</item></items>')
    assert (run.returncode == 0) is ok, run.stdout
    if not ok:
        message = ET.fromstring(run.stdout).findtext("message")
        assert why in message and FORMS in message, message


def test_a_run_with_a_bad_start_time_reads_nothing(built_app, splunkd, tmp_path):
    """The run validates too (a stanza written by hand skips Splunk Web's validation): nothing read, no checkpoint."""
    app, _ = built_app
    run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", {"source_url": "gateway+http://127.0.0.1:9",
                                                                   "start_time": "yesterday"}))
    assert run.returncode == 2 and "start_time must be" in run.stderr and FORMS in run.stderr
    assert not list(tmp_path.glob("wia_events_*.json"))


# -- gateway (the project's own) -----------------------------------------------------------------------------------
@pytest.fixture
def gateway(tmp_path, splunkd):
    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    token = "start-time-gateway-token-0123456789"
    splunkd.passwords[("wia_security", "gw_token")] = token
    server = GatewayServer(GatewaySettings(tokens=[token], store=f"sqlite:///{tmp_path}/events.db",
                                           dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)).start()

    def publish(batch: list[dict]) -> None:
        import requests
        reply = requests.post(f"{server.url}/v1/events", json=batch, headers={"Authorization": f"Bearer {token}"},
                              timeout=30)
        assert reply.status_code == 200, reply.text

    server.publish = publish
    try:
        yield server
    finally:
        server.stop()


def _gateway_conf(splunkd, checkpoints: Path, gateway, start_time: str | None, **more: str) -> str:
    params = {"source_url": gateway.url.replace("http://", "gateway+http://"), "credential": "gw_token", "page_size": "2",
              **more}
    if start_time is not None:
        params["start_time"] = start_time
    return input_xml(splunkd, checkpoints, "gw", params)


def test_gateway_start_time_passes_over_the_events_before_it(built_app, splunkd, tmp_path, gateway, samples):
    """Old and new events interleaved in the feed: with 3 days only the new ones are indexed (before: all ten, the
    year-old ones first), max_events at a time; the cutoff stays in the checkpoint while the walk goes on and goes
    once the walk reached the end of the feed, after which an event arriving late with an old timestamp is indexed
    like any other."""
    app, _ = built_app
    new, old = _new(4), samples[:7]
    gateway.publish([old[0], new[0], old[1], old[2], new[1], old[3], old[4], old[5], new[2], new[3]])
    checkpoints = tmp_path / "checkpoints"
    conf = _gateway_conf(splunkd, checkpoints, gateway, "3 days", max_events="2")
    first = run_input(app, [], conf)
    assert _ids(first) == [new[0]["id"], new[1]["id"]]
    assert "no checkpoint yet: starting at start_time '3 days' = " in first.stderr
    assert "before_start_time=4" in first.stderr      # pages of 2: the one holding new[1] also held old[3]
    position = _position(checkpoints)
    cutoff = datetime.fromisoformat(position["start_cutoff"].replace("Z", "+00:00"))
    assert timedelta(days=3) <= datetime.now(timezone.utc) - cutoff < timedelta(days=3, minutes=10)
    second = run_input(app, [], conf)
    assert _ids(second) == [new[2]["id"], new[3]["id"]] and "before_start_time=2" in second.stderr
    assert "no checkpoint yet" not in second.stderr
    assert _position(checkpoints)["start_cutoff"] == position["start_cutoff"]      # fixed at the first run
    assert _ids(run_input(app, [], conf)) == []
    assert "start_cutoff" not in _position(checkpoints)     # the end of the feed was reached: the backlog is behind
    gateway.publish([old[6]])                                 # arrives now, happened a year ago
    assert _ids(run_input(app, [], conf)) == [old[6]["id"]]


@pytest.mark.parametrize("start_time", ["", None])
def test_gateway_empty_start_time_indexes_everything(built_app, splunkd, tmp_path, gateway, samples, start_time):
    app, _ = built_app
    new = _new(2)
    gateway.publish([samples[0], new[0], samples[1], new[1]])
    run = run_input(app, [], _gateway_conf(splunkd, tmp_path, gateway, start_time))
    assert _ids(run) == [samples[0]["id"], new[0]["id"], samples[1]["id"], new[1]["id"]]
    assert "before_start_time" not in run.stderr and "no checkpoint yet" not in run.stderr
    assert _position(tmp_path) == {"cursor": _position(tmp_path)["cursor"]}


def test_gateway_an_existing_checkpoint_is_not_moved_by_start_time(built_app, splunkd, tmp_path, gateway, samples):
    """An input that has run before: old events after its cursor are indexed whatever start_time now says (it
    applies to a new input only)."""
    app, _ = built_app
    gateway.publish(_new(1))
    assert len(_ids(run_input(app, [], _gateway_conf(splunkd, tmp_path, gateway, "")))) == 1
    gateway.publish(samples[:2])
    run = run_input(app, [], _gateway_conf(splunkd, tmp_path, gateway, "3 days"))
    assert _ids(run) == [samples[0]["id"], samples[1]["id"]] and "before_start_time" not in run.stderr


# -- TAXII (medallion) ---------------------------------------------------------------------------------------------
def _stix_objects(event: dict) -> list[dict]:
    return [o for o in convert(event, to="stix")["objects"] if o["type"] != "extension-definition"]


@pytest.fixture
def taxii_with_old_objects(splunkd, samples):
    """medallion whose collection already holds three sample events added ten days ago (its memory backend loads them
    with their manifest's date_added, as a server running for a year would have them); tests add new ones."""
    from medallion_subprocess import MEDIA, PASSWORD, Medallion
    splunkd.passwords[("wia_security", "taxii")] = PASSWORD
    server = Medallion()
    data = json.loads((server.dir / "data.json").read_text())
    (collection,) = data["api1"]["collections"]
    added = datetime.now(timezone.utc) - timedelta(days=10)
    seen: set[str] = set()
    for n, event in enumerate(samples[:3]):
        stamp = (added + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for obj in _stix_objects(event):
            if obj["id"] in seen:
                continue
            seen.add(obj["id"])
            # as medallion stores what it is given: the version is modified, else created, else the add's time,
            # kept on the object as _date_added
            version = obj.get("modified") or obj.get("created")
            if version is None:
                version = obj["_date_added"] = stamp
            collection["objects"].append(obj)
            collection["manifest"].append({"id": obj["id"], "date_added": stamp, "version": version, "media_type": MEDIA})
    (server.dir / "data.json").write_text(json.dumps(data))
    with server:
        server.published_ids = set(seen)
        yield server


def _taxii_conf(splunkd, checkpoints: Path, server, start_time: str) -> str:
    from medallion_subprocess import USER
    return input_xml(splunkd, checkpoints, "taxii", {
        "source_url": server.collection_url.replace("http://", "taxii+http://"), "credential": "taxii", "username": USER,
        "settle": "0", "page_size": "3", "start_time": start_time})


def test_taxii_start_time_reads_what_was_added_since(built_app, splunkd, tmp_path, taxii_with_old_objects, samples):
    """Three events added ten days ago, three now: 3 days indexes the three new ones (before: all six); the checkpoint
    then holds the collection's own position."""
    from medallion_subprocess import publish_event
    app, _ = built_app
    new = _new(3)
    for event in new:
        publish_event(taxii_with_old_objects, event)
    conf = _taxii_conf(splunkd, tmp_path, taxii_with_old_objects, "3 days")
    got = _ids(run_input(app, [], conf)) + _ids(run_input(app, [], conf))
    assert sorted(got) == sorted(e["id"] for e in new) and len(got) == 3
    position = _position(tmp_path)
    assert position["added_after"] and "start_cutoff" not in position


def test_taxii_empty_start_time_reads_the_whole_collection(built_app, splunkd, tmp_path, taxii_with_old_objects, samples):
    from medallion_subprocess import publish_event
    app, _ = built_app
    new = _new(1)
    publish_event(taxii_with_old_objects, new[0])
    got = _ids(run_input(app, [], _taxii_conf(splunkd, tmp_path, taxii_with_old_objects, "")))
    assert sorted(got) == sorted([e["id"] for e in samples[:3]] + [new[0]["id"]]) and len(got) == 4


def test_taxii_a_first_run_finding_nothing_keeps_its_cutoff(built_app, splunkd, tmp_path, taxii_with_old_objects):
    """Nothing added since the cutoff: the checkpoint keeps the cutoff the first run started from, and a later run
    neither computes another one from the setting (changed meanwhile) nor starts from the beginning; what is added
    later is indexed."""
    from medallion_subprocess import publish_event
    app, _ = built_app
    assert _ids(run_input(app, [], _taxii_conf(splunkd, tmp_path, taxii_with_old_objects, "3 days"))) == []
    position = _position(tmp_path)
    assert set(position) == {"start_cutoff"}
    # the setting emptied meanwhile: the input has a checkpoint, so it is not read again
    assert _ids(run_input(app, [], _taxii_conf(splunkd, tmp_path, taxii_with_old_objects, ""))) == []
    assert _position(tmp_path) == position
    new = _new(1)
    publish_event(taxii_with_old_objects, new[0])
    assert _ids(run_input(app, [], _taxii_conf(splunkd, tmp_path, taxii_with_old_objects, ""))) == [new[0]["id"]]
    assert "start_cutoff" not in _position(tmp_path)


# -- Kafka (tansu) -------------------------------------------------------------------------------------------------
def _produce_one_by_one(broker, topic: str, items: list[tuple[int, dict]]) -> None:
    """One message per produce request: tansu answers ListOffsets (latest) for a batch of several records with the
    batch's first offset + 1, not its end."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for partition, event in items:
        producer.produce(topic, key=event["id"].encode(), value=json.dumps(event).encode(), partition=partition)
        assert producer.flush(15) == 0
    del producer                      # librdkafka stops its threads when the Producer is freed


@pytest.fixture
def kafka_old_then_new(samples):
    """Two partitions: 0 holds three events produced before an instant and two after it, 1 only one before it.
    tansu stamps messages with its append time (ListOffsets by timestamp reads that, not the producer's
    CreateTime): the messages before are older by seconds, not days, so the cutoff is given as an instant."""
    from servers.tansu import start_tansu
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=2)
        old, new = samples[:4], _new(2)
        _produce_one_by_one(broker, topic, [(0, old[0]), (0, old[1]), (1, old[2]), (0, old[3])])
        time.sleep(1.5)
        cutoff = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        time.sleep(1.5)
        _produce_one_by_one(broker, topic, [(0, e) for e in new])
        yield broker, topic, old, new, cutoff
    finally:
        broker.kill()


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_kafka_start_time_starts_each_partition_at_the_cutoff(built_app, splunkd, tmp_path, kafka_old_then_new):
    """Only the messages stamped at or after the instant (before: all six); partition 1, holding none, starts at its
    end, its offset checkpointed, so a message produced there later is read, and nothing before it."""
    app, _ = built_app
    broker, topic, old, new, cutoff = kafka_old_then_new
    conf = input_xml(splunkd, tmp_path, "kafka", {"source_url": f"kafka://{broker.bootstrap}/{topic}",
                                                  "start_time": cutoff})
    assert _ids(run_input(app, [], conf)) == [e["id"] for e in new]
    assert _position(tmp_path) == {"offsets": {"0": 5, "1": 1}}
    later = _new(1)
    _produce_one_by_one(broker, topic, [(1, later[0])])
    assert _ids(run_input(app, [], conf)) == [later[0]["id"]]
    assert _position(tmp_path) == {"offsets": {"0": 5, "1": 2}}


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_kafka_empty_start_time_and_an_existing_checkpoint(built_app, splunkd, tmp_path, kafka_old_then_new):
    """Empty: the whole topic. An existing checkpoint (offsets {"0": 1}) resumes there whatever start_time says."""
    app, _ = built_app
    broker, topic, old, new, cutoff = kafka_old_then_new
    params = {"source_url": f"kafka://{broker.bootstrap}/{topic}", "start_time": ""}
    everything = _ids(run_input(app, [], input_xml(splunkd, tmp_path / "empty", "kafka", params)))
    assert sorted(everything) == sorted(e["id"] for e in old + new)
    existing = tmp_path / "existing"
    existing.mkdir()
    (path,) = (tmp_path / "empty").glob("wia_events_*.json")
    (existing / path.name).write_text(json.dumps({"position": {"offsets": {"0": 1}}, "recent_ids": []}))
    resumed = _ids(run_input(app, [], input_xml(splunkd, existing, "kafka", dict(params, start_time=cutoff))))
    assert sorted(resumed) == sorted([old[1]["id"], old[2]["id"], old[3]["id"]] + [e["id"] for e in new])
