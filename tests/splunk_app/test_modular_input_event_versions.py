"""The wia_events input when the gateway's feed serves a newer version of an event it already indexed.

The gateway's store keeps the newest version of each event id and gives it a new position in its arrival-order
feed. Splunk indexes the newer version as an event of its own (a search keeps the latest by id); the checkpoint
remembers each emitted event by id and version, so a page served again after a crash (the same versions) is still
not indexed twice."""
from __future__ import annotations

import copy
import json

import pytest
import requests

from wia_security import AlertBuilder

from .test_modular_input import input_xml, run_input, splunkd, streamed  # noqa: F401 - splunkd is a fixture

TOKEN = "splunk-versions-gateway-token-0123456789"


def test_a_newer_version_of_an_indexed_event_is_indexed_once_and_a_re_send_is_not(built_app, splunkd, tmp_path):
    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    app, _ = built_app
    splunkd.passwords[("wia_security", "gw_token")] = TOKEN
    events = [AlertBuilder().title(f"alert {n}").severity(5).timestamp(f"2026-03-01T10:00:0{n}Z").build().to_dict()
              for n in range(3)]
    gateway = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                                            dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)).start()
    try:
        def publish(batch):
            reply = requests.post(f"{gateway.url}/v1/events", json=batch, headers={"Authorization": f"Bearer {TOKEN}"},
                                  timeout=30)
            assert reply.status_code == 200, reply.text

        publish(events)
        conf = input_xml(splunkd, tmp_path / "ckpt", "gw", {
            "source_url": gateway.url.replace("http://", "gateway+http://"), "credential": "gw_token"})
        assert [g["event"] for g in streamed(run_input(app, [], conf).stdout)] == events
        resolved = copy.deepcopy(events[1])
        resolved["timestamp"] = "2026-03-01T11:00:00Z"
        resolved["data"]["status"] = "resolved"
        publish([resolved, events[1]])                          # the newer version, then the older one late
        run = run_input(app, [], conf)
        assert run.returncode == 0, run.stderr
        assert [g["event"] for g in streamed(run.stdout)] == [resolved]
        assert streamed(run_input(app, [], conf).stdout) == []

        # The same page handed back (a crash before the checkpoint was written): the versions emitted are remembered.
        [checkpoint] = (tmp_path / "ckpt").glob("wia_events_*.json")
        saved = json.loads(checkpoint.read_text())
        checkpoint.write_text(json.dumps({**saved, "position": {"cursor": "0"}}))
        assert streamed(run_input(app, [], conf).stdout) == []
    finally:
        gateway.stop()


def test_an_update_of_an_event_an_earlier_version_indexed_is_indexed_after_the_upgrade(built_app, splunkd, tmp_path):
    """A checkpoint an earlier version (0.1.0) wrote holds bare ids, at a cursor past their events. Past the cursor
    the gateway's feed serves such an id again only as a newer version: it is indexed (a bare id used to hide
    every version, so updates of the last 20,000 events indexed before the upgrade never reached Splunk)."""
    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    app, _ = built_app
    splunkd.passwords[("wia_security", "gw_token")] = TOKEN
    events = [AlertBuilder().title(f"alert {n}").severity(5).timestamp(f"2026-03-02T10:00:0{n}Z").build().to_dict()
              for n in range(2)]
    gateway = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                                            dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)).start()
    try:
        def publish(batch):
            reply = requests.post(f"{gateway.url}/v1/events", json=batch, headers={"Authorization": f"Bearer {TOKEN}"},
                                  timeout=30)
            assert reply.status_code == 200, reply.text

        publish(events)
        conf = input_xml(splunkd, tmp_path / "ckpt", "gw", {
            "source_url": gateway.url.replace("http://", "gateway+http://"), "credential": "gw_token"})
        run_input(app, [], conf)
        [checkpoint] = (tmp_path / "ckpt").glob("wia_events_*.json")
        saved = json.loads(checkpoint.read_text())
        checkpoint.write_text(json.dumps({"position": saved["position"], "recent_ids": [e["id"] for e in events]}))
        assert streamed(run_input(app, [], conf).stdout) == []
        updated = {**copy.deepcopy(events[0]), "timestamp": "2026-03-02T11:00:00Z"}
        publish([updated])
        assert [g["event"] for g in streamed(run_input(app, [], conf).stdout)] == [updated]
    finally:
        gateway.stop()


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_the_same_version_spelled_otherwise_is_not_indexed_twice(built_app, splunkd, tmp_path):
    """A version is its instants, not their spelling (the store compares instants too): an event delivered again
    with `+00:00` for `Z` and `.000` added (a second producer, a redelivery through another path), or an incident
    whose data.updated_at is the same instant in another offset, is remembered; a later instant is a new version.
    Through a real Kafka-protocol broker (tansu), which keeps every message it is given."""
    from servers.tansu import start_tansu
    from wia_security import IncidentBuilder
    from wia_security.connectors import open_sink
    app, _ = built_app
    alert = AlertBuilder().title("spelled").severity(5).timestamp("2026-03-01T10:00:00Z").build().to_dict()
    incident = IncidentBuilder().title("case").severity(6).timestamp("2026-03-01T10:00:00Z").build().to_dict()
    incident["data"]["updated_at"] = "2026-03-01T10:05:00Z"
    alert_again = {**copy.deepcopy(alert), "timestamp": "2026-03-01T10:00:00.000+00:00"}
    incident_again = copy.deepcopy(incident)
    incident_again["data"]["updated_at"] = "2026-03-01T11:05:00.000000+01:00"
    incident_updated = copy.deepcopy(incident)
    incident_updated["data"]["updated_at"] = "2026-03-01T10:06:00Z"
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=1)
        with open_sink(f"kafka://{broker.bootstrap}/{topic}") as sink:
            assert sink.send([alert, incident]).merge(sink.flush()).delivered == 2
        conf = input_xml(splunkd, tmp_path, "kafka", {"source_url": f"kafka://{broker.bootstrap}/{topic}"})
        assert [g["event"] for g in streamed(run_input(app, [], conf).stdout)] == [alert, incident]
        with open_sink(f"kafka://{broker.bootstrap}/{topic}") as sink:
            assert sink.send([alert_again, incident_again, incident_updated]).merge(sink.flush()).delivered == 3
        run = run_input(app, [], conf)
        assert run.returncode == 0, run.stderr
        assert [g["event"] for g in streamed(run.stdout)] == [incident_updated]
        # A Kafka source hands messages back after a crash: a bare id an earlier version's checkpoint holds still
        # stands for every version there.
        [checkpoint] = tmp_path.glob("wia_events_*.json")
        checkpoint.write_text(json.dumps({"position": {"offsets": {"0": 0}}, "recent_ids": [alert["id"], incident["id"]]}))
        assert streamed(run_input(app, [], conf).stdout) == []
    finally:
        broker.kill()
