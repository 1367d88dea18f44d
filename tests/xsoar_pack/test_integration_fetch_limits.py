"""fetch-incidents' limits as XSOAR uses them: max_fetch is the most incidents one fetch creates, whatever the
pages read on the way held (events skipped as already fetched, rejected ones), and nothing past what was made an
incident is skipped: the next fetch goes on from there. Run through main() against the project's gateway."""
from __future__ import annotations

import copy
import json

from wia_security import AlertBuilder

from .conftest import run_command


def _params(gateway, max_fetch: int) -> dict:
    return {"url": gateway.url, "source_type": "gateway", "credentials": {"identifier": "", "password": gateway.token},
            "max_fetch": str(max_fetch), "incidentType": "WIA Security Event"}


def _alerts(n: int) -> list[dict]:
    return [AlertBuilder().title(f"alert {i}").severity(5).build().to_dict() for i in range(n)]


def _ids(demisto) -> list[str]:
    return [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]]


def test_a_fetch_never_makes_more_incidents_than_max_fetch(integration, demisto, gateway):
    """The first page holds newer versions of fetched events (skipped): the next page was asked for max_fetch
    events again, so one fetch made up to 2 x max_fetch - 1 incidents (4 for max_fetch 3)."""
    first = _alerts(3)
    gateway.publish(first)
    params = _params(gateway, 3)
    run_command(integration, demisto, "fetch-incidents", params=params)
    assert _ids(demisto) == [e["id"] for e in first]
    state = demisto.last_run

    newer = []
    for event in first[:2]:
        update = copy.deepcopy(event)
        update["timestamp"] = "2031-01-01T00:00:00Z"
        newer.append(update)
    later = _alerts(6)
    gateway.publish(newer + later)
    got = []
    for _ in range(4):
        run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
        assert len(demisto.incidents_out[-1]) <= 3, "max_fetch exceeded"
        got += _ids(demisto)
        state = demisto.last_run
    assert got == [e["id"] for e in later]          # each once, in order, none skipped


def test_a_taxii_fetch_never_makes_more_incidents_than_max_fetch(integration, demisto):
    """Every TAXII fetch reads last_run's instant again (added_after is exclusive) and skips what it read there, so
    its first page holds fewer new events than asked; the next page was asked for max_fetch objects again."""
    from medallion_subprocess import PASSWORD, USER, Medallion, publish_event
    events = _alerts(12)                        # two STIX objects each, one with the WIA extension
    with Medallion() as taxii:
        for event in events:                    # one Add each: each its own date_added
            publish_event(taxii, event)
        params = {"url": taxii.collection_url, "source_type": "taxii", "settle": "0", "max_fetch": "4",
                  "credentials": {"identifier": USER, "password": PASSWORD}}
        got, state = [], {}
        for _ in range(5):
            run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
            assert not [r for r in demisto.results_log if r.get("Type") == 4], demisto.results_log
            assert len(demisto.incidents_out[-1]) <= 4, "max_fetch exceeded"
            got += _ids(demisto)
            state = demisto.last_run
    assert sorted(got) == sorted(e["id"] for e in events) and len(got) == len(events)


# -- test-module answers 'ok' only when fetching would work -----------------------------------------------------
def test_test_module_refuses_a_max_fetch_every_fetch_would_refuse(integration, demisto, gateway):
    params = dict(_params(gateway, 3), isFetch=True, max_fetch="fifty")
    (entry,) = run_command(integration, demisto, "test-module", params=params)
    assert entry["Type"] == 4 and "Maximum number of incidents per fetch must be a whole number" in entry["Contents"]
    assert run_command(integration, demisto, "test-module", params=dict(params, isFetch=False)) == ["ok"]
    assert run_command(integration, demisto, "test-module", params=dict(params, max_fetch="50")) == ["ok"]


def test_test_module_refuses_an_answer_that_is_not_the_sources(integration, demisto):
    """A URL answering 200 with JSON of another shape (another service, a health page) was 'ok', and every fetch
    then read it as an empty page: no incident, no error. The gateway's feed always holds 'events'. (A TAXII
    envelope may leave 'objects' out, so a TAXII answer is checked as a fetch checks it: 'objects' an array if there.)"""
    from intel_http import Fault
    from wia_gateway_feed import GatewayFeed
    with GatewayFeed(token="t0ken-of-the-feed") as feed:
        params = {"url": feed.url, "source_type": "gateway", "credentials": {"identifier": "", "password": "t0ken-of-the-feed"}}
        feed.faults.append(Fault(200, {"status": "up"}, path_prefix="/v1/events"))
        (entry,) = run_command(integration, demisto, "test-module", params=params)
        assert entry["Type"] == 4 and "the gateway answered a JSON dict without a 'events' array" in entry["Contents"]
        assert run_command(integration, demisto, "test-module", params=params) == ["ok"]
        feed.faults.append(Fault(200, {"status": "up"}, path_prefix="/v1/events"))
        (entry,) = run_command(integration, demisto, "fetch-incidents", params=params, last_run={"cursor": "0"})
        assert entry["Type"] == 4 and "without a 'events' array" in entry["Contents"] and demisto.last_run == {"cursor": "0"}
