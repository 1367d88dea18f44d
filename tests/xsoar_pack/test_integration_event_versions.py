"""fetch-incidents when the gateway's feed serves a newer version of an event already fetched.

The gateway's store keeps the newest version of each event id and gives a newer version a new position in its
arrival-order feed, so a reader past the event reads it again (Splunk indexes it as a new event). XSOAR's
fetch-incidents can only create incidents (updating one needs mirroring, which this integration does not do):
the integration recognizes the id among the event ids last_run remembers, makes no second incident and says so
in one info line; a new event of the same page is fetched as usual.
"""
from __future__ import annotations

import copy
import json

from .conftest import run_command


def _params(gateway) -> dict:
    return {"url": gateway.url, "source_type": "gateway", "credentials": {"identifier": "", "password": gateway.token},
            "max_fetch": "10", "incidentType": "WIA Security Event"}


def _newer(event: dict) -> dict:
    update = copy.deepcopy(event)
    update["timestamp"] = "2031-01-01T00:00:00Z"         # later than any sample's
    return update


def test_a_newer_version_of_a_fetched_event_makes_no_second_incident_and_is_logged(integration, demisto, gateway,
                                                                                   sample_events):
    gateway.publish(sample_events[:3])
    params = _params(gateway)
    run_command(integration, demisto, "fetch-incidents", params=params)
    assert [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]] == [e["id"] for e in sample_events[:3]]
    state = demisto.last_run

    update = _newer(sample_events[1])
    gateway.publish([update, sample_events[3]])
    assert [e["id"] for e in gateway.feed()][-2:] == [update["id"], sample_events[3]["id"]]   # served again
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
    assert [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]] == [sample_events[3]["id"]]
    said = [m for level, m in demisto.logs if level == "info" and update["id"] in m]
    assert len(said) == 1 and "newer version" in said[0] and "no second incident" in said[0]
    # remembered as seen last (an event updated often stays among the remembered ids)
    assert demisto.last_run["recent_ids"][-2:] == [update["id"], sample_events[3]["id"]]

    run_command(integration, demisto, "fetch-incidents", params=params, last_run=demisto.last_run)
    assert demisto.incidents_out[-1] == []
