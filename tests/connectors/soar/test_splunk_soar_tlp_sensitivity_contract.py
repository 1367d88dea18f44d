"""Splunk SOAR sink, contract test: a container's sensitivity is the event's own TLP marking. Every container got the
sink's configured sensitivity (amber by default), so an event tagged tlp:red or tlp:amber+strict was shown in SOAR as
amber (shareable with the organisation's clients), the opposite of what its producer marked; the MISP sink already
refuses to share such events beyond the organisation. The configured sensitivity stays the default for events
without a TLP tag; a newer version with a marking updates it."""
from __future__ import annotations

import copy

import pytest

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink

FAST = DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0.01, max_elapsed=30)


def _tagged(sample_events, *tags: str) -> dict:
    event = copy.deepcopy(next(e for e in sample_events if e["type"] == "alert"))
    event.setdefault("meta", {})["tags"] = [t for t in event.get("meta", {}).get("tags", [])
                                            if not t.lower().startswith("tlp:")] + list(tags)
    return event


@pytest.mark.parametrize("tags, configured, expected", [
    (["tlp:red"], "amber", "red"), (["TLP:AMBER+STRICT"], "amber", "red"), (["tlp:clear"], "amber", "white"),
    (["tlp:white"], "red", "white"), (["tlp:green", "tlp:red"], "green", "red"), (["Tlp:Amber"], "green", "amber"),
    ([], "amber", "amber"), ([], "green", "green"), (["tlp:unknown"], "amber", "amber"),
])
def test_contract_container_sensitivity_follows_the_events_tlp(soar_server, sample_events, tags, configured, expected):
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST, sensitivity=configured) as sink:
        report = sink.send([_tagged(sample_events, *tags)])
        report.merge(sink.flush())
    assert (report.delivered, report.failed) == (1, [])
    (container,) = soar_server.containers.values()
    assert container["sensitivity"] == expected


def test_contract_a_newer_version_marked_red_updates_the_sensitivity(soar_server, sample_events):
    first = _tagged(sample_events)
    later = _tagged(sample_events, "tlp:red")
    later["timestamp"] = "2099-01-01T00:00:00Z"
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST) as sink:
        assert sink.send([first]).delivered == 1
        (cid,) = soar_server.containers
        soar_server.containers[cid]["sensitivity"] = "green"          # an analyst's choice: kept without a marking
        assert sink.send([{**copy.deepcopy(first), "timestamp": "2098-01-01T00:00:00Z"}]).delivered == 1
        assert soar_server.containers[cid]["sensitivity"] == "green"
        assert sink.send([later]).delivered == 1
    assert soar_server.containers[cid]["sensitivity"] == "red"
