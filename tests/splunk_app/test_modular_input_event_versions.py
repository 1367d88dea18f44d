"""The wia_events input when the gateway's feed serves a newer version of an event it already indexed.

The gateway's store keeps the newest version of each event id and gives it a new position in its arrival-order
feed. Splunk indexes the newer version as an event of its own (a search keeps the latest by id); the checkpoint
remembers each emitted event by id and version, so a page served again after a crash (the same versions) is still
not indexed twice."""
from __future__ import annotations

import copy
import json

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


def test_ids_a_checkpoint_of_an_earlier_version_remembers_are_still_skipped(built_app, splunkd, tmp_path):
    """A checkpoint written before versions were remembered holds bare ids: those events are not indexed again."""
    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    app, _ = built_app
    splunkd.passwords[("wia_security", "gw_token")] = TOKEN
    events = [AlertBuilder().title(f"alert {n}").severity(5).build().to_dict() for n in range(2)]
    gateway = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                                            dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)).start()
    try:
        reply = requests.post(f"{gateway.url}/v1/events", json=events, headers={"Authorization": f"Bearer {TOKEN}"},
                              timeout=30)
        assert reply.status_code == 200, reply.text
        conf = input_xml(splunkd, tmp_path / "ckpt", "gw", {
            "source_url": gateway.url.replace("http://", "gateway+http://"), "credential": "gw_token"})
        run_input(app, [], conf)
        [checkpoint] = (tmp_path / "ckpt").glob("wia_events_*.json")
        checkpoint.write_text(json.dumps({"position": {"cursor": "0"}, "recent_ids": [events[0]["id"]]}))
        assert [g["event"] for g in streamed(run_input(app, [], conf).stdout)] == events[1:]
    finally:
        gateway.stop()
