"""Contract tests: an alert whose `iocs` is not a list reaches Splunk SOAR and XSOAR.

The alert schema does not define `data.iocs`, so an alert carrying `"iocs": 5` (or true, 2.5) is valid; the SOAR
mapping iterated it for indicators and raised TypeError, so both sinks failed that valid event. The event views had
the same loop (fixed in da3b494); the mapping now reads indicators through them. Listed indicators still become
artifacts and the XSOAR indicators field."""
from __future__ import annotations

import copy

import pytest

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink
from wia_security.connectors.soar.xsoar import XsoarSink

FAST = DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0.01, max_elapsed=30)
LOOSE = (5, True, 2.5, "not a list", {"type": "ip"})


def _alerts(sample_events) -> list[dict]:
    alert = next(e for e in sample_events if e["type"] == "alert")
    assert alert["data"].get("indicators"), "the sample alert carries indicators"
    out = []
    for n, loose in enumerate(LOOSE):
        event = copy.deepcopy(alert)
        event["id"] = f"{event['id'][:-2]}{n:02d}"
        event["data"]["iocs"] = loose
        out.append(event)
    return out


def _deliver(sink, events) -> tuple[int, list[str]]:
    report = sink.send(events)
    report.merge(sink.flush())
    return report.delivered, [r.reason for r in report.failed]


def test_contract_splunk_soar_alerts_with_a_loose_iocs_value_are_delivered_with_their_indicators(soar_server, sample_events):
    alerts = _alerts(sample_events)
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST) as sink:
        assert _deliver(sink, alerts) == (len(LOOSE), [])
    listed = len(alerts[0]["data"]["indicators"])
    for cid in soar_server.containers:
        artifacts = [a for a in soar_server.artifacts.values() if a["container"] == cid]
        assert len(artifacts) == 1 + listed                    # the event's own artifact and one per indicator


def test_contract_xsoar_alerts_with_a_loose_iocs_value_are_delivered_with_their_indicators(xsoar_server, sample_events):
    alerts = _alerts(sample_events)
    with XsoarSink(xsoar_server.url, token=xsoar_server.api_key, delivery=FAST) as sink:
        assert _deliver(sink, alerts) == (len(LOOSE), [])
    wanted = [f"{i['type']}:{i['value']}" for i in alerts[0]["data"]["indicators"]]
    assert [i["CustomFields"]["wiaindicators"] for i in xsoar_server.incidents.values()] == [wanted] * len(LOOSE)


@pytest.mark.parametrize("loose", LOOSE)
def test_the_mapping_reads_the_listed_indicators_only(sample_events, loose):
    from wia_security.connectors.soar import mapping
    alert = copy.deepcopy(next(e for e in sample_events if e["type"] == "alert"))
    listed = [(i["type"], i["value"]) for i in alert["data"]["indicators"]]
    alert["data"]["iocs"] = loose
    assert [(kind, value) for kind, value, _ in mapping.indicators(alert)] == listed
