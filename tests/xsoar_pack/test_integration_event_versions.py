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


def _store_as_another_core_did(gateway, event: dict) -> None:
    """Puts `event` in the gateway's store as a gateway of another core version that accepted it would: the pack's
    embedded core may be older or newer than the gateway's, and this gateway validates what it is sent with its own."""
    from wia_security.connectors.sqlite import EventStore
    store = EventStore(gateway.store_path)
    try:
        assert store.insert([event])[0] == 1
    finally:
        store.close()


def test_a_corrected_version_of_a_rejected_event_becomes_an_incident(integration, demisto, gateway, sample_events):
    """An event the pack rejects is not among the ids of fetched events: its corrected newer version, which the
    gateway serves again, is fetched (before, its id was remembered and the correction skipped as 'a newer version
    of an event already fetched'). The rejected version served again (a gateway cursor set back) is not reported
    twice, and last_run keeps its released shape plus the rejected ids apart."""
    rejected = copy.deepcopy(sample_events[0])
    rejected["source"]["type"] = "xdr"                         # not a source type of the pack's core
    assert not integration.wia_security.validate_event(rejected).valid
    _store_as_another_core_did(gateway, rejected)
    gateway.publish([sample_events[1]])
    params = _params(gateway)
    run_command(integration, demisto, "fetch-incidents", params=params)
    assert [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]] == [sample_events[1]["id"]]
    errors = [m for level, m in demisto.logs if level == "error"]
    assert len(errors) == 1 and rejected["id"] in errors[0] and "/source/type" in errors[0]
    state = demisto.last_run

    corrected = _newer(sample_events[0])                         # the producer's fix, a later timestamp
    gateway.publish([corrected])
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
    assert [json.loads(i["rawJSON"]) for i in demisto.incidents_out[-1]] == [corrected]
    assert not [m for level, m in demisto.logs if corrected["id"] in m]        # no 'newer version ... skipped' line
    # the rejected id was kept apart from the ids of events made incidents, and joins them once it is one
    assert state["recent_ids"] == [sample_events[1]["id"]] and list(state["rejected_ids"]) == [rejected["id"]]
    assert demisto.last_run["recent_ids"] == [sample_events[1]["id"], corrected["id"]]
    assert demisto.last_run["rejected_ids"] == {}

    # from now on the id is an incident's: a later version of it makes no second one, as for any fetched event
    later = dict(corrected, timestamp="2032-01-01T00:00:00Z")
    gateway.publish([later])
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=demisto.last_run)
    assert demisto.incidents_out[-1] == []
    assert any("newer version" in m for level, m in demisto.logs if level == "info" and later["id"] in m)


def test_a_rejected_version_read_again_is_reported_once(integration, demisto, gateway, sample_events):
    rejected = copy.deepcopy(sample_events[0])
    rejected["source"]["type"] = "xdr"
    _store_as_another_core_did(gateway, rejected)
    params = _params(gateway)
    run_command(integration, demisto, "fetch-incidents", params=params)
    assert [m for level, m in demisto.logs if level == "error" and rejected["id"] in m]
    state = dict(demisto.last_run, cursor="0")                    # the feed read again from its start
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
    assert demisto.incidents_out[-1] == [] and not [m for level, m in demisto.logs if rejected["id"] in m]

