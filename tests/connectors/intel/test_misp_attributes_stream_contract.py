"""MISP attribute pulls stream page by page and give each group of attributes its own id. `attributes()` read
every page before yielding anything (a 1,000,000-attribute feed held in memory at once), and the WIA event of
an attribute group took its id from the event summary (uuid and a timestamp the summary does not carry) and
its time from the clock: a later pull of a new attribute of the same MISP event got the same id and a later
time, so the store replaced the event holding the earlier indicators with one holding only the new one, and
re-reading the same attributes stored them again as "newer". The real pymisp against the MISP contract server."""
from __future__ import annotations

import pytest

from misp_contract import MispServer
from wia_security.connectors.intel.misp import MispSource
from wia_security.connectors.sqlite import SqliteSink

KEY = "misp-test-key"


def _event(server: MispServer, n: int, values: list[str], timestamp: str = "1767225600") -> dict:
    return server.add_event({"uuid": f"5e6b3c2a-0000-4000-8000-00000000000{n}", "info": f"Event {n}",
                             "timestamp": timestamp,
                             "Attribute": [{"type": "domain", "category": "Network activity", "value": v,
                                            "to_ids": True} for v in values]})


@pytest.fixture
def misp():
    with MispServer(key=KEY) as server:
        for n in (1, 2, 3):
            _event(server, n, [f"a{n}.example.net", f"b{n}.example.net"])
        yield server


def _values(events) -> list[str]:
    return sorted(i["value"] for e in events for i in e["data"].get("indicators", []))


def test_contract_each_page_is_yielded_before_the_next_page_is_asked_for(misp):
    source = MispSource(misp.url, KEY, page_size=2)
    pulled = source.attributes()
    first = next(pulled)
    assert len(misp.calls("/attributes/restSearch")) == 1            # page 2 not asked for yet
    assert _values([first]) == ["a1.example.net", "b1.example.net"]
    rest = list(pulled)
    assert _values([first, *rest]) == sorted(f"{x}{n}.example.net" for n in (1, 2, 3) for x in "ab")
    assert [c.body["page"] for c in misp.calls("/attributes/restSearch")] == [1, 2, 3, 4]


def test_contract_an_event_spanning_pages_gives_one_event_per_page_each_with_its_own_id(misp):
    events = list(MispSource(misp.url, KEY, page_size=3).attributes())
    assert [e["data"]["report_id"] for e in events] == ["misp:5e6b3c2a-0000-4000-8000-000000000001",
                                                        "misp:5e6b3c2a-0000-4000-8000-000000000002",
                                                        "misp:5e6b3c2a-0000-4000-8000-000000000002",
                                                        "misp:5e6b3c2a-0000-4000-8000-000000000003"]
    assert len({e["id"] for e in events}) == 4
    assert _values(events) == sorted(f"{x}{n}.example.net" for n in (1, 2, 3) for x in "ab")


def test_contract_a_new_attribute_of_a_pulled_event_is_stored_beside_the_earlier_ones(misp, tmp_path):
    sink = SqliteSink(str(tmp_path / "events.db"))
    first = list(MispSource(misp.url, KEY).attributes())
    assert sink.send(first).delivered == 3
    again = sink.send(list(MispSource(misp.url, KEY).attributes()))
    assert (again.delivered, again.duplicates) == (0, 3)                 # the same attributes: the same events
    misp.events[0]["Attribute"].append({"id": "99", "uuid": "0f9c1d2e-0000-4000-8000-000000000099",
                                        "event_id": "1", "type": "domain", "category": "Network activity",
                                        "value": "new1.example.net", "to_ids": True, "timestamp": "1767312000"})
    misp.events[0]["timestamp"] = "1767312000"
    newer = list(MispSource(misp.url, KEY).attributes(timestamp=1767312000))
    assert _values(newer) == ["new1.example.net"]
    assert newer[0]["timestamp"] == "2026-01-02T00:00:00.000Z"            # the attribute's time, not the clock's
    assert sink.send(newer).delivered == 1
    stored = [s.event for s in sink.store.query(limit=None)]
    assert _values(stored) == sorted(["new1.example.net"] + [f"{x}{n}.example.net" for n in (1, 2, 3) for x in "ab"])
    sink.close()
