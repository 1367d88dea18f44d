"""A gateway or TAXII fetch stops reading pages after its time budget (FETCH_PAGES_SECONDS), keeping its place as a
stop at max_fetch does, and the next fetch goes on from there.

Pages whose objects make no incident (other STIX than WIA events in a shared TAXII collection, events already
fetched) do not count toward max_fetch: a fetch walked them until it found max_fetch events or the end, and on a
big collection ran past XSOAR's command timeout (3 minutes by default), which saves no last run: every fetch walked
the same pages again and was stopped again. Run through main() against medallion; the budget is scaled to 0 s
(one page per fetch)."""
from __future__ import annotations

import json

from wia_security import AlertBuilder

from .conftest import run_command


def indicator(n: int) -> dict:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{n:08d}-1111-4000-8000-000000000000",
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "name": f"other feed {n}",
            "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00.000Z",
            "pattern": f"[ipv4-addr:value = '198.51.100.{n}']"}


def test_a_taxii_fetch_stops_at_its_budget_and_the_next_goes_on(integration, demisto, monkeypatch):
    from medallion_subprocess import PASSWORD, USER, Medallion, publish_event
    event = AlertBuilder().title("after the others").severity(5).build().to_dict()
    with Medallion() as taxii:
        for n in range(9):                       # one Add each: each its own date_added
            taxii.add_objects([indicator(n)])
        publish_event(taxii, event)
        monkeypatch.setattr(integration, "FETCH_PAGES_SECONDS", 0)
        params = {"url": taxii.collection_url, "source_type": "taxii", "settle": "0", "max_fetch": "3",
                  "credentials": {"identifier": USER, "password": PASSWORD}}
        run_command(integration, demisto, "fetch-incidents", params=params)
        assert demisto.incidents_out[-1] == [] and demisto.last_run["added_after"]       # one page, place kept
        assert any("stopped reading after 0 s" in m for level, m in demisto.logs if level == "info"), demisto.logs
        got, state = [], demisto.last_run
        for _ in range(8):
            run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
            assert not [r for r in demisto.results_log if r.get("Type") == 4], demisto.results_log
            got += [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]]
            state = demisto.last_run
    assert got == [event["id"]]
