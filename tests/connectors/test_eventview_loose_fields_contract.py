"""`_eventview` (the read-only event views the Security Command Center, Sentinel and SOAR mappings share) on
valid events whose loosely typed fields are not what the mapping expects. An alert's `data.iocs` is not
defined by the alert schema, so any value is valid there (`"iocs": 5`); `indicators()` iterated it and raised
TypeError, which failed the event at SCC as 'cannot encode event' (a valid event never delivered).
Against the real google-cloud-securitycenter client and the in-process gRPC contract server."""
from __future__ import annotations

import copy

import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401

from wia_security import validate_event  # noqa: E402
from wia_security.connectors import _eventview as view  # noqa: E402
from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402

LOOSE = [5, "203.0.113.7", {"type": "ip", "value": "203.0.113.7"}, True, 2.5]


@pytest.mark.parametrize("iocs", LOOSE)
def test_a_loose_iocs_value_yields_no_indicator_and_raises_nothing(samples, iocs):
    alert = copy.deepcopy(samples["alert-sample"])
    alert["data"]["iocs"] = iocs
    assert validate_event(alert).valid
    assert list(view.indicators(alert)) == list(view.indicators(samples["alert-sample"]))


def test_contract_an_alert_with_loose_iocs_is_delivered_to_scc(scc, samples):
    events = []
    for n, iocs in enumerate(LOOSE):
        alert = copy.deepcopy(samples["alert-sample"])
        alert["id"] = f"5b1e6f8c-3d2a-4c1b-9e7f-00000000000{n}"
        alert["data"]["iocs"] = iocs
        events.append(alert)
    source = scc.create_source()
    url = f"scc://{source}?endpoint={scc.endpoint}&ca_file={scc.ca_file}&auth=anonymous"
    with open_sink(url, delivery=DeliveryPolicy(max_wait=0)) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    assert [r.reason for r in report.failed] == [] and report.delivered == len(LOOSE)
    stored = {f.source_properties["wia_event_id"] for f in scc.state.findings.values()}
    assert stored == {e["id"] for e in events}
