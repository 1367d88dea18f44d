"""The MISP sink never shares a TLP:RED or TLP:AMBER+STRICT event beyond the organisation. The configured
distribution applied to every event, so a sink set to share green intelligence with the community
(distribution=1 or 3) pushed a tlp:red event to every organisation on the MISP instance (or connected
ones) as well. Now such an event pushed at a distribution other than 0 fails alone, not retried, with the
reason (dead-lettered by the CLI), and MISP is not asked to store it. The real pymisp against the MISP
contract server."""
from __future__ import annotations

import pytest

from misp_contract import MispServer
from wia_security.builders import ThreatIntelBuilder
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.misp import MispSink

KEY = "misp-test-key"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.002, max_attempts=2)


def _intel(name: str, tag: str) -> dict:
    return (ThreatIntelBuilder().threat(name, "campaign").indicator("domain", f"{name.lower()}.example.net")
            .tags(tag).build().to_dict())


@pytest.mark.parametrize("tag", ["tlp:red", "TLP:RED", "tlp:amber+strict"])
def test_contract_an_org_only_event_is_refused_at_a_wider_distribution(tag):
    green, restricted = _intel("Green", "tlp:green"), _intel("Secret", tag)
    with MispServer(key=KEY) as misp:
        with MispSink(misp.url, KEY, distribution=1, delivery=FAST) as sink:
            report = sink.send([green, restricted]).merge(sink.flush())
        stored = {e["uuid"]: e for e in misp.events}
    assert report.delivered == 1 and green["id"] in stored and restricted["id"] not in stored
    [failed] = report.failed
    assert not failed.retryable and failed.event["id"] == restricted["id"]
    assert f"marked {tag}: MISP distribution 1 would share it beyond your organisation" in failed.reason


def test_contract_an_org_only_event_is_pushed_at_distribution_0():
    restricted = _intel("Secret", "tlp:red")
    with MispServer(key=KEY) as misp:
        with MispSink(misp.url, KEY, delivery=FAST) as sink:
            report = sink.send([restricted]).merge(sink.flush())
        [stored] = misp.events
    assert report.delivered == 1 and stored["distribution"] == "0"
    assert "tlp:red" in {t["name"] for t in stored["Tag"]}
