"""Every command of the WIA Security integration, run through main() with the demistomock and
CommonServerPython stand-ins, against the project's gateway, a real TAXII 2.1 server (medallion) and
a Kafka-protocol broker (tansu); the feed stand-in only injects what a real gateway never serves."""
from __future__ import annotations

import copy
import json

import pytest

from wia_security import convert
from wia_security.formats import FORMATS

from .conftest import run_command


def _context(entry: dict) -> dict:
    (key, value), = entry["EntryContext"].items()
    return {"key": key, "value": value}


def _gateway_params(server) -> dict:
    return {"url": server.url, "source_type": "gateway", "credentials": {"identifier": "", "password": server.token},
            "max_fetch": "3", "incidentType": "WIA Security Event"}


# -- wia-validate-event ------------------------------------------------------------------------------
def test_validate_event_valid_and_invalid(integration, demisto, sample_events):
    alert = sample_events[0]
    (entry,) = run_command(integration, demisto, "wia-validate-event", {"event": json.dumps(alert)})
    ctx = _context(entry)
    assert ctx["key"] == "WIA.Validation(val.EventID && val.EventID == obj.EventID)"
    assert ctx["value"]["Valid"] is True and ctx["value"]["Errors"] == []
    broken = copy.deepcopy(alert)
    broken["severity"] = 11
    del broken["data"]["title"]
    (entry,) = run_command(integration, demisto, "wia-validate-event", {"event": json.dumps(broken)})
    errors = _context(entry)["value"]["Errors"]
    assert _context(entry)["value"]["Valid"] is False
    paths = {e["Path"] for e in errors}
    assert "/severity" in paths and any(p.startswith("/data") for p in paths)
    assert "invalid" in entry["HumanReadable"]


def test_validate_event_lenient_drops_nulls(integration, demisto):
    import pathlib
    raw = json.loads((pathlib.Path(integration.__file__).parents[5] / "samples" / "incident-sample.json").read_text())
    (strict,) = run_command(integration, demisto, "wia-validate-event", {"event": json.dumps(raw)})
    (lenient,) = run_command(integration, demisto, "wia-validate-event", {"event": json.dumps(raw), "lenient": "true"})
    assert _context(strict)["value"]["Valid"] is False
    assert _context(lenient)["value"]["Valid"] is True and _context(lenient)["value"]["Warnings"]


def test_validate_event_rejects_non_json_with_a_clear_error(integration, demisto):
    (entry,) = run_command(integration, demisto, "wia-validate-event", {"event": "{not json"})
    assert entry["Type"] == 4 and "not JSON" in entry["Contents"]


# -- wia-convert-event --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["stix", "ocsf", "ecs", "asff"])
def test_convert_event_matches_the_core_converter(integration, demisto, sample_events, fmt):
    """The command is the core's converter; a format the core does not (yet) register is a clear
    error naming it (OCSF: core/formats, helper A), never a silent fallback."""
    alert = sample_events[0]
    args = {"event": json.dumps(alert), "format": fmt}
    options = {}
    if fmt == "asff":
        args["aws_account_id"], options = "123456789012", {"account_id": "123456789012"}
    (entry,) = run_command(integration, demisto, "wia-convert-event", args)
    if fmt not in FORMATS:
        assert entry["Type"] == 4 and f"no {fmt} converter" in entry["Contents"]
        return
    ctx = _context(entry)
    assert ctx["key"] == "WIA.Conversion(val.EventID && val.EventID == obj.EventID && val.Format && val.Format == obj.Format)"
    assert ctx["value"]["Format"] == fmt
    assert json.loads(json.dumps(ctx["value"]["Document"])) == json.loads(json.dumps(convert(alert, to=fmt, **options)))


def test_convert_event_refuses_unknown_formats_and_invalid_events(integration, demisto, sample_events):
    (entry,) = run_command(integration, demisto, "wia-convert-event", {"event": json.dumps(sample_events[0]), "format": "leef"})
    assert entry["Type"] == 4 and "format must be one of stix, ocsf, ecs, asff" in entry["Contents"]
    bad = dict(sample_events[0], type="nope")
    (entry,) = run_command(integration, demisto, "wia-convert-event", {"event": json.dumps(bad), "format": "stix"})
    assert entry["Type"] == 4 and "not a valid WIA event" in entry["Contents"] and "/type" in entry["Contents"]


# -- wia-send-event ------------------------------------------------------------------------------------
def test_send_event_posts_to_the_gateway(integration, demisto, gateway, sample_events):
    (entry,) = run_command(integration, demisto, "wia-send-event", {"event": json.dumps(sample_events[1])},
                           _gateway_params(gateway))
    value = _context(entry)["value"]
    assert (value["EventID"], value["Status"]) == (sample_events[1]["id"], "sent")
    assert value["Response"]["accepted"] == 1 and value["Response"]["id"] == sample_events[1]["id"]
    assert gateway.feed() == [sample_events[1]]


def test_send_event_refuses_invalid_events_and_reports_auth_failures(integration, demisto, gateway, sample_events):
    (entry,) = run_command(integration, demisto, "wia-send-event", {"event": json.dumps({"id": "x"})}, _gateway_params(gateway))
    assert entry["Type"] == 4 and "not sent" in entry["Contents"]
    params = _gateway_params(gateway)
    params["credentials"] = {"password": "wrong-token-xyz"}
    (entry,) = run_command(integration, demisto, "wia-send-event", {"event": json.dumps(sample_events[0])}, params)
    assert entry["Type"] == 4 and "401" in entry["Contents"] and "wrong-token-xyz" not in entry["Contents"]
    assert gateway.feed() == []


# -- wia-get-events and fetch-incidents: gateway ----------------------------------------------------------
def test_get_events_reads_without_moving_the_fetch_position(integration, demisto, gateway, sample_events):
    gateway.publish(sample_events)
    (entry,) = run_command(integration, demisto, "wia-get-events", {"limit": "5", "event_type": "alert,incident"},
                           _gateway_params(gateway), last_run={"cursor": "7"})
    value = _context(entry)["value"]
    assert [e["type"] for e in value] == ["alert", "incident"]
    assert demisto.last_run == {"cursor": "7"}


def test_fetch_incidents_keeps_its_place_and_never_repeats(integration, demisto, gateway, sample_events):
    gateway.publish(sample_events[:5])
    params = _gateway_params(gateway)
    run_command(integration, demisto, "fetch-incidents", params=params)
    first, state = demisto.incidents_out[-1], demisto.last_run
    assert len(first) == 3 and state["cursor"]
    assert [json.loads(i["rawJSON"])["id"] for i in first] == [e["id"] for e in sample_events[:3]]
    assert all(i["type"] == "WIA Security Event" for i in first)
    assert first[0]["severity"] == 4 and first[0]["occurred"] == sample_events[0]["timestamp"]
    gateway.publish(sample_events[5:] + sample_events[:2])                # new events plus two repeats
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
    second = demisto.incidents_out[-1]
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=demisto.last_run)
    third = demisto.incidents_out[-1]
    fetched = [json.loads(i["rawJSON"])["id"] for i in first + second + third]
    assert sorted(fetched) == sorted(e["id"] for e in sample_events)      # all seven, none twice
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=demisto.last_run)
    assert demisto.incidents_out[-1] == []


def test_fetch_reports_invalid_events_instead_of_dropping_them_silently(integration, demisto, feed, sample_events):
    """A source that serves invalid events (the gateway validates on ingest, so the stand-in does it)."""
    broken = dict(sample_events[0], id="00000000-0000-4000-8000-00000000000b", severity=42)
    feed.events.extend([broken, sample_events[1]])
    run_command(integration, demisto, "fetch-incidents", params=_gateway_params(feed))
    assert [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]] == [sample_events[1]["id"]]
    errors = [m for level, m in demisto.logs if level == "error"]
    assert any(broken["id"] in m and "/severity" in m for m in errors)


def test_test_module(integration, demisto, gateway):
    assert run_command(integration, demisto, "test-module", params=_gateway_params(gateway)) == ["ok"]
    params = dict(_gateway_params(gateway), credentials={"password": "nope"})
    (entry,) = run_command(integration, demisto, "test-module", params=params)
    assert entry["Type"] == 4 and "401" in entry["Contents"]


# -- TAXII 2.1 (medallion) ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def taxii():
    from medallion_subprocess import Medallion
    with Medallion() as server:
        yield server


def test_fetch_incidents_from_a_taxii_collection(integration, demisto, taxii, sample_events):
    """Pages of 3 objects (events' objects span pages; one envelope's objects share a date_added):
    repeated fetches with last-run state bring every event exactly once, equal to what was published."""
    from medallion_subprocess import PASSWORD, USER, publish_event
    for event in sample_events[:4]:
        publish_event(taxii, event)
    params = {"url": taxii.collection_url, "source_type": "taxii", "credentials": {"identifier": USER, "password": PASSWORD},
              "max_fetch": "3", "settle": "0"}   # at once what was just published (the window: test_integration_taxii_settle.py)
    assert run_command(integration, demisto, "test-module", params=params) == ["ok"]
    fetched, state = [], {}
    for round_ in range(8):
        if round_ == 4:
            for event in sample_events[4:]:
                publish_event(taxii, event)
        run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
        fetched += demisto.incidents_out[-1]
        state = demisto.last_run
    events = [json.loads(i["rawJSON"]) for i in fetched]
    assert sorted(e["id"] for e in events) == sorted(e["id"] for e in sample_events)
    assert len(events) == len({e["id"] for e in events})
    by_id = {e["id"]: e for e in events}
    assert all(by_id[e["id"]] == e for e in sample_events)
    assert state["added_after"]


# -- wia-attack-lookup -------------------------------------------------------------------------------------
def test_attack_lookup_by_id_and_name(integration, demisto):
    (entry,) = run_command(integration, demisto, "wia-attack-lookup", {"technique": "T1059.001,Brute Force"})
    rows = _context(entry)["value"]
    assert [r["ID"] for r in rows] == ["T1059.001", "T1110"]
    assert rows[0]["Name"] == "PowerShell" and rows[0]["ParentID"] == "T1059" and rows[0]["IsSubtechnique"] is True
    assert {"ID": "TA0002", "Name": "Execution"} in rows[0]["Tactics"]
    assert rows[0]["URL"] == "https://attack.mitre.org/techniques/T1059/001" and rows[0]["AttackVersion"] == "18.1"


def test_attack_lookup_names_the_replacement_of_a_revoked_technique(integration, demisto):
    from wia_security.attack import table
    revoked = next(t for t in table() if t.status == "revoked" and table().replacement(t.id))
    (entry,) = run_command(integration, demisto, "wia-attack-lookup", {"technique": revoked.id})
    (row,) = _context(entry)["value"]
    assert row["Status"] == "revoked" and row["RevokedBy"] == table().replacement(revoked.id).id


def test_attack_lookup_unknown(integration, demisto):
    (entry,) = run_command(integration, demisto, "wia-attack-lookup", {"technique": "T9999"})
    assert entry["Type"] == 4 and "T9999" in entry["Contents"]


def test_unknown_command(integration, demisto):
    (entry,) = run_command(integration, demisto, "wia-nope")
    assert entry["Type"] == 4 and "not implemented" in entry["Contents"]


# -- Kafka (tansu broker) ----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_fetch_incidents_from_a_kafka_topic(integration, demisto, sample_events):
    """Two partitions written by the project's kafka sink; fetches of at most 3 resume from the
    per-partition offsets kept in last-run state; a message that is not a WIA event is reported."""
    import sys
    from pathlib import Path
    sys.path.append(str(Path(__file__).resolve().parents[1] / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)
    from servers.tansu import start_tansu
    from confluent_kafka import Producer
    from wia_security.connectors import open_sink
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=2)
        with open_sink(f"kafka://{broker.bootstrap}/{topic}") as sink:
            sink.send(sample_events[:5])
            sink.flush()
        params = {"url": f"kafka://{broker.bootstrap}/{topic}", "source_type": "kafka", "max_fetch": "3"}
        assert run_command(integration, demisto, "test-module", params=params) == ["ok"]
        fetched, state, errors = [], {}, []
        for round_ in range(5):
            if round_ == 3:
                producer = Producer({"bootstrap.servers": broker.bootstrap})
                producer.produce(topic, value=b"[1, 2]", partition=1)
                assert producer.flush(15) == 0
                del producer              # librdkafka stops its threads when the Producer is freed
                with open_sink(f"kafka://{broker.bootstrap}/{topic}") as sink:
                    sink.send(sample_events[5:])
                    sink.flush()
            run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
            assert len(demisto.incidents_out[-1]) <= 3
            fetched += demisto.incidents_out[-1]
            state = demisto.last_run
            errors += [m for level, m in demisto.logs if level == "error"]
    finally:
        broker.kill()
    ids = [json.loads(i["rawJSON"])["id"] for i in fetched]
    assert sorted(ids) == sorted(e["id"] for e in sample_events) and len(ids) == len(set(ids))
    assert set(state["offsets"]) == {"0", "1"}
    assert any(f"{topic}/1@" in m and "not a WIA event" in m for m in errors), errors
