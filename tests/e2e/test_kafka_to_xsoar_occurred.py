"""`forward` -> Kafka (tansu) -> the XSOAR pack's own Kafka fetch (`fetch-incidents`, source_type kafka, the integration
code as XSOAR runs it, with the pack's stand-ins for demistomock/CommonServerPython) -> incidents. For events timed in
every valid spelling and holding arbitrary unicode: each event is one incident, its rawJSON the event `forward`
sent, its occurred the event's instant in a form XSOAR's RFC 3339 reader (Go's time.RFC3339) takes; a second fetch
brings nothing."""
from __future__ import annotations

import importlib.util
import json

import pytest
from e2e_helpers import (GO_RFC3339, OUT_OF_RANGE_SPELLINGS, XSOAR_PACK, expected, instant, read_ndjson,
                         time_spellings, with_times, write_ndjson, xsoar_fetch)
from strategies import event_dicts

from wia_security.cli import main

pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")
pytest.importorskip("kafka", reason="kafka-python (the XSOAR pack's Kafka client) is not installed")

from servers.tansu import tansu  # noqa: E402,F401  (fixture)


def test_every_time_spelling_is_an_incident_occurred_at_its_instant(tansu, tmp_path, capsys):
    spellings = time_spellings() + OUT_OF_RANGE_SPELLINGS
    events = with_times(event_dicts(len(spellings), seed=1498, wild=True), spellings)
    topic = tansu.create_topic(partitions=2)
    code = main(["forward", str(write_ndjson(tmp_path / "in.ndjson", events)), "--to",
                 f"kafka://{tansu.bootstrap}/{topic}", "--dead-letter", str(tmp_path / "dead.ndjson"),
                 "--no-progress", "--summary", "json"])
    forwarded = json.loads(capsys.readouterr().out)
    assert (code, forwarded["delivered"]) == (0, len(events)) and not read_ndjson(tmp_path / "dead.ndjson")
    spec = importlib.util.spec_from_file_location("WIASecurityKafkaE2E",
                                                  XSOAR_PACK / "Integrations" / "WIASecurity" / "WIASecurity.py")
    integration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(integration)
    params = {"url": f"kafka://{tansu.bootstrap}/{topic}", "source_type": "kafka", "max_fetch": "200",
              "first_fetch": "", "incidentType": "WIA Security Event"}
    incidents, state = xsoar_fetch(integration, params, {})
    again, _ = xsoar_fetch(integration, params, state)
    assert again == []
    by_id = {json.loads(i["rawJSON"])["id"]: i for i in incidents}
    assert len(incidents) == len(by_id) == len(events)
    for event in events:
        incident = by_id[event["id"]]
        assert json.loads(incident["rawJSON"]) == expected(event)
        assert GO_RFC3339.fullmatch(incident["occurred"]), (event["timestamp"], incident["occurred"])
        assert instant(incident["occurred"]) == instant(event["timestamp"]), (event["timestamp"], incident["occurred"])
