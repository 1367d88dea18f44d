"""First fetch time: where a new instance (or one whose last run was reset) starts reading, as XSOAR's fetch
integrations do. Without it a new instance made an incident of every event the source held (gateway cursor "0",
the whole TAXII collection, Kafka from offset 0), max_fetch at a time. Run through main() against the project's
gateway, medallion (TAXII 2.1, its memory backend seeded with objects added ten days ago) and tansu (Kafka)."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from wia_security import AlertBuilder, convert

from .conftest import run_command

FORMS = "a number of minutes, hours, days or weeks before now"


def _new_alerts(n: int) -> list[dict]:
    """Events happening now (the builder's timestamp); the samples happened on 2025-12-14, long before 3 days ago."""
    return [AlertBuilder().title(f"new alert {i}").severity(5).build().to_dict() for i in range(n)]


def _ids(demisto) -> list[str]:
    return [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]]


def _fetch_all(integration, demisto, params: dict, state: dict | None = None, rounds: int = 6) -> tuple[list[str], dict]:
    got, state = [], dict(state or {})
    for _ in range(rounds):
        run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
        assert not [r for r in demisto.results_log if isinstance(r, dict) and r.get("Type") == 4], demisto.results_log
        got += _ids(demisto)
        state = demisto.last_run
    return got, state


def _errors(entries: list) -> list[str]:
    return [e["Contents"] for e in entries if isinstance(e, dict) and e.get("Type") == 4]


# -- the parameter ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, back", [("3 days", timedelta(days=3)), ("12 hours", timedelta(hours=12)),
                                         ("1 week", timedelta(weeks=1)), ("90 Minutes", timedelta(minutes=90)),
                                         ("2 days ago", timedelta(days=2)), ("0 minutes", timedelta(0))])
def test_relative_first_fetch_times(integration, value, back):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert integration.first_fetch_cutoff(value, now) == now - back


def test_an_instant_and_empty(integration):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert integration.first_fetch_cutoff("2026-01-31T12:00:00Z", now) == datetime(2026, 1, 31, 12, tzinfo=timezone.utc)
    assert integration.first_fetch_cutoff("2026-01-31T13:00:00.5+01:00", now) == \
        datetime(2026, 1, 31, 12, 0, 0, 500000, tzinfo=timezone.utc)
    assert integration.first_fetch_cutoff("", now) is None and integration.first_fetch_cutoff(None, now) is None
    assert integration.first_fetch_cutoff("  ", now) is None


@pytest.mark.parametrize("value, why", [("3 dayz", FORMS), ("3 months", FORMS), ("-3 days", FORMS),
                                        ("2026-01-31", FORMS), ("2026-01-31T12:00:00", FORMS), ("yesterday", FORMS),
                                        ("9999999 weeks", "before the year 1"), ("2999-01-01T00:00:00Z", "in the future")])
def test_bad_first_fetch_times_are_refused_naming_the_parameter(integration, value, why):
    with pytest.raises(Exception, match="First fetch time") as refused:
        integration.first_fetch_cutoff(value)
    assert why in str(refused.value) and FORMS in str(refused.value)


def test_the_parameter_is_in_the_yml_as_xsoar_spells_it():
    import yaml
    from .conftest import ROOT
    yml = yaml.safe_load((ROOT / "xsoar_pack/Packs/WIASecurity/Integrations/WIASecurity/WIASecurity.yml").read_text())
    (param,) = [p for p in yml["configuration"] if p["name"] == "first_fetch"]
    assert (param["display"], param["type"], param["defaultvalue"], param["section"]) == \
        ("First fetch time", 0, "3 days", "Collect")


# -- gateway -------------------------------------------------------------------------------------------------------
def _gateway_params(gateway, first_fetch: str | None, max_fetch: int = 2) -> dict:
    params = {"url": gateway.url, "source_type": "gateway", "credentials": {"identifier": "", "password": gateway.token},
              "max_fetch": str(max_fetch), "incidentType": "WIA Security Event"}
    if first_fetch is not None:
        params["first_fetch"] = first_fetch
    return params


def test_gateway_first_fetch_skips_the_events_before_it(integration, demisto, gateway, sample_events):
    """Old and new events interleaved in the feed: with 3 days only the new ones become incidents, max_fetch at a
    time; the cutoff stays in last_run while the walk goes on, and once the feed's end is reached an event arriving
    late with an old timestamp is fetched like any other. Before: all eleven, the year-old ones first."""
    new = _new_alerts(4)
    old = sample_events[:7]
    gateway.publish([old[0], new[0], old[1], old[2], new[1], old[3], old[4], old[5], new[2], new[3]])
    params = _gateway_params(gateway, "3 days")
    run_command(integration, demisto, "fetch-incidents", params=params)
    assert _ids(demisto) == [new[0]["id"], new[1]["id"]]
    state = demisto.last_run
    cutoff = datetime.fromisoformat(state["first_fetch_cutoff"].replace("Z", "+00:00"))
    assert timedelta(days=3) <= datetime.now(timezone.utc) - cutoff < timedelta(days=3, minutes=10)
    assert any("3 gateway event(s) with a timestamp before the first fetch's cutoff" in m for _, m in demisto.logs)
    got, state = _fetch_all(integration, demisto, params, state, rounds=3)
    assert got == [new[2]["id"], new[3]["id"]]
    assert "first_fetch_cutoff" not in state          # the end of the feed was reached: the backlog is behind
    gateway.publish([old[6]])                           # arrives now, happened a year ago
    got, _ = _fetch_all(integration, demisto, params, state, rounds=1)
    assert got == [old[6]["id"]]


@pytest.mark.parametrize("first_fetch", ["", None])
def test_gateway_empty_first_fetch_gets_everything(integration, demisto, gateway, sample_events, first_fetch):
    new = _new_alerts(2)
    gateway.publish([sample_events[0], new[0], sample_events[1], new[1]])
    got, state = _fetch_all(integration, demisto, _gateway_params(gateway, first_fetch), rounds=3)
    assert got == [sample_events[0]["id"], new[0]["id"], sample_events[1]["id"], new[1]["id"]]
    assert "first_fetch_cutoff" not in state


def test_gateway_an_existing_last_run_is_not_moved_by_the_parameter(integration, demisto, gateway, sample_events):
    """An instance that has fetched before: its last run holds the cursor, and the old events after it are fetched
    whatever First fetch time says (it applies to a new instance only)."""
    new = _new_alerts(1)
    gateway.publish(new)
    run_command(integration, demisto, "fetch-incidents", params=_gateway_params(gateway, ""))
    state = demisto.last_run
    gateway.publish(sample_events[:2])
    got, _ = _fetch_all(integration, demisto, _gateway_params(gateway, "3 days"), state, rounds=2)
    assert got == [sample_events[0]["id"], sample_events[1]["id"]]


def test_gateway_a_bad_first_fetch_time_is_refused(integration, demisto, gateway, sample_events):
    gateway.publish(sample_events[:2])
    errors = _errors(run_command(integration, demisto, "fetch-incidents", params=_gateway_params(gateway, "three days")))
    assert len(errors) == 1 and "First fetch time must be" in errors[0] and FORMS in errors[0], errors
    assert demisto.incidents_out == [] and demisto.last_run == {}
    # test-module with Fetch incidents ticked says so before any fetch runs
    params = dict(_gateway_params(gateway, "three days"), isFetch=True)
    errors = _errors(run_command(integration, demisto, "test-module", params=params))
    assert len(errors) == 1 and "First fetch time must be" in errors[0] and FORMS in errors[0], errors
    assert run_command(integration, demisto, "test-module", params=dict(params, first_fetch="3 days")) == ["ok"]


# -- TAXII (medallion) ---------------------------------------------------------------------------------------------
def _stix_objects(event: dict) -> list[dict]:
    return [o for o in convert(event, to="stix")["objects"] if o["type"] != "extension-definition"]


@pytest.fixture
def taxii_with_old_objects(sample_events):
    """medallion whose collection already holds sample events added ten days ago (its memory backend loads them with
    their manifest's date_added, as a server running for a year would have them); tests add new ones through the API."""
    from medallion_subprocess import MEDIA, Medallion
    server = Medallion()
    data = json.loads((server.dir / "data.json").read_text())
    (collection,) = data["api1"]["collections"]
    added = datetime.now(timezone.utc) - timedelta(days=10)
    seen: set[str] = set()
    for n, event in enumerate(sample_events[:3]):
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


def _taxii_params(server, first_fetch: str | None) -> dict:
    from medallion_subprocess import PASSWORD, USER
    params = {"url": server.collection_url, "source_type": "taxii", "settle": "0", "max_fetch": "2",
              "credentials": {"identifier": USER, "password": PASSWORD}}
    if first_fetch is not None:
        params["first_fetch"] = first_fetch
    return params


def test_taxii_first_fetch_reads_what_was_added_since(integration, demisto, taxii_with_old_objects, sample_events):
    """Three events added ten days ago, three now: 3 days gets the three new ones (before: all six); the first
    fetch's added_after is the cutoff, and last_run then holds the collection's own position."""
    from medallion_subprocess import publish_event
    new = _new_alerts(3)
    for event in new:
        publish_event(taxii_with_old_objects, event)
    got, state = _fetch_all(integration, demisto, _taxii_params(taxii_with_old_objects, "3 days"), rounds=4)
    assert sorted(got) == sorted(e["id"] for e in new) and len(got) == 3
    assert state["added_after"] and "first_fetch_cutoff" not in state


def test_taxii_empty_first_fetch_reads_the_whole_collection(integration, demisto, taxii_with_old_objects, sample_events):
    from medallion_subprocess import publish_event
    new = _new_alerts(1)
    publish_event(taxii_with_old_objects, new[0])
    got, _ = _fetch_all(integration, demisto, _taxii_params(taxii_with_old_objects, ""), rounds=4)
    assert sorted(got) == sorted([e["id"] for e in sample_events[:3]] + [new[0]["id"]]) and len(got) == 4


def test_taxii_a_first_fetch_finding_nothing_keeps_its_cutoff(integration, demisto, taxii_with_old_objects):
    """Nothing added since the cutoff: the fetch has no position, so last_run keeps the cutoff it started from (a
    later fetch does not compute another one from the parameter, nor start from the beginning); what is added later
    is fetched."""
    from medallion_subprocess import publish_event
    run_command(integration, demisto, "fetch-incidents", params=_taxii_params(taxii_with_old_objects, "3 days"))
    assert demisto.incidents_out[-1] == []
    state = demisto.last_run
    assert "first_fetch_cutoff" in state and "added_after" not in state
    # the parameter changed meanwhile: the instance has a last run, so it is not read again
    run_command(integration, demisto, "fetch-incidents", params=_taxii_params(taxii_with_old_objects, ""), last_run=state)
    assert demisto.incidents_out[-1] == [] and demisto.last_run["first_fetch_cutoff"] == state["first_fetch_cutoff"]
    new = _new_alerts(1)
    publish_event(taxii_with_old_objects, new[0])
    got, state = _fetch_all(integration, demisto, _taxii_params(taxii_with_old_objects, ""), demisto.last_run, rounds=2)
    assert got == [new[0]["id"]] and "first_fetch_cutoff" not in state


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
def kafka_old_then_new(sample_events):
    """Two partitions: 0 holds three events produced before an instant and two after it, 1 only one before it.
    tansu stamps messages with its append time (ListOffsets by timestamp reads that, not the producer's
    CreateTime): the messages before are older by seconds, not days, so the cutoff is given as an instant."""
    from servers.tansu import start_tansu
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=2)
        old = sample_events[:4]
        new = _new_alerts(2)
        _produce_one_by_one(broker, topic, [(0, old[0]), (0, old[1]), (1, old[2]), (0, old[3])])
        time.sleep(1.5)
        cutoff = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        time.sleep(1.5)
        _produce_one_by_one(broker, topic, [(0, e) for e in new])
        yield broker, topic, old, new, cutoff
    finally:
        broker.kill()


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_kafka_first_fetch_starts_each_partition_at_the_cutoff(integration, demisto, kafka_old_then_new):
    """Only the messages stamped at or after the instant; partition 1, holding none, starts at its end (its offset
    recorded, so a message produced there later is read, and nothing before it). Before: all six."""
    broker, topic, old, new, cutoff = kafka_old_then_new
    params = {"url": f"kafka://{broker.bootstrap}/{topic}", "source_type": "kafka", "max_fetch": "10",
              "first_fetch": cutoff}
    run_command(integration, demisto, "fetch-incidents", params=params)
    assert not _errors(demisto.results_log), demisto.results_log
    assert _ids(demisto) == [e["id"] for e in new]
    state = demisto.last_run
    assert state["offsets"] == {"0": 5, "1": 1} and "first_fetch_cutoff" not in state
    later = _new_alerts(1)
    _produce_one_by_one(broker, topic, [(1, later[0])])
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
    assert _ids(demisto) == [later[0]["id"]] and demisto.last_run["offsets"] == {"0": 5, "1": 2}


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_kafka_empty_first_fetch_and_an_existing_last_run(integration, demisto, kafka_old_then_new):
    """Empty: the whole topic. An existing last run (offsets {"0": 1}) resumes there whatever the parameter says."""
    broker, topic, old, new, cutoff = kafka_old_then_new
    params = {"url": f"kafka://{broker.bootstrap}/{topic}", "source_type": "kafka", "max_fetch": "10", "first_fetch": ""}
    run_command(integration, demisto, "fetch-incidents", params=params)
    assert sorted(_ids(demisto)) == sorted(e["id"] for e in old + new)
    run_command(integration, demisto, "fetch-incidents", params=dict(params, first_fetch=cutoff),
                last_run={"offsets": {"0": 1}, "recent_ids": []})
    assert sorted(_ids(demisto)) == sorted([old[1]["id"], old[2]["id"], old[3]["id"]] + [e["id"] for e in new])
