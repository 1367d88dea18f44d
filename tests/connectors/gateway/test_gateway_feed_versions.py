"""The arrival-order feed (GET /v1/events?after=) after the store replaced an event by a newer version.

The store keeps one row per id, the newest version. A newer version takes a new position in the feed (after
everything stored before it), so a reader already past the old position gets it, and a reader not yet there
reads the event once, in its newest version. Re-sends and older versions take no position: nothing is read
twice but newer versions. Positions given before (row numbers) keep their meaning.
"""
from __future__ import annotations

import copy
import json
import sqlite3

import requests
from strategies import event_dicts

from gateway_helpers import AUTH
from wia_security.builders import IncidentBuilder

INCIDENT_ID = "6d0f4a8e-2b1c-4e5f-8a9b-0c1d2e3f4a5b"


def post(gw, events: list[dict]) -> dict:
    reply = requests.post(gw.url + "/v1/events", json=events, headers=AUTH, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def feed(gw, after: str, **params) -> tuple[list[dict], str]:
    reply = requests.get(gw.url + "/v1/events", params={"after": after, "limit": 1000, **params}, headers=AUTH,
                         timeout=30)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["count"] == len(body["events"])
    return body["events"], body["next"]


def events_at(seconds: list[int], seed: int = 70) -> list[dict]:
    events = event_dicts(len(seconds), seed=seed, event_type="alert")
    for event, second in zip(events, seconds):
        event["timestamp"] = f"2026-03-01T10:00:{second:02d}Z"
    return events


def later(event: dict, second: int) -> dict:
    newer = copy.deepcopy(event)
    newer["timestamp"] = f"2026-03-01T10:00:{second:02d}Z"
    newer["severity"] = 9.5 if event["severity"] != 9.5 else 9.0       # a visible change of content
    return newer


def incident(status: str, updated_at: str) -> dict:
    event = (IncidentBuilder().id(INCIDENT_ID).timestamp("2026-03-01T09:00:00Z").title("Ransomware on FS-01")
             .category("ransomware").priority("high").status(status).incident_id("INC-9")).build().to_dict()
    event["data"]["updated_at"] = updated_at
    return event


def test_a_reader_past_an_event_gets_its_newer_version_once(make_gateway):
    gw = make_gateway()
    first = events_at([1, 2, 3])
    post(gw, first)
    read, cursor = feed(gw, "0")
    assert [e["id"] for e in read] == [e["id"] for e in first]
    update = later(first[1], 30)
    post(gw, [update])
    read, cursor2 = feed(gw, cursor)
    assert read == [update]                     # the new version, at a new position
    assert int(cursor2) > int(cursor)
    post(gw, [update, first[1]])                # a re-send and the older version: no new position
    assert feed(gw, cursor2) == ([], cursor2)


def test_a_reader_not_yet_at_the_event_reads_it_once_in_its_newest_version(make_gateway):
    gw = make_gateway()
    first = events_at([1, 2, 3])
    post(gw, first)
    read, position = feed(gw, "0", limit=1)     # a reader that has read the first event only
    assert [e["id"] for e in read] == [first[0]["id"]]
    update = later(first[1], 30)
    post(gw, [update])
    read, _ = feed(gw, position)
    assert read == [first[2], update]           # nothing lost, nothing twice, the newest version
    everything, _ = feed(gw, "0")
    assert everything == [first[0], first[2], update]


def test_an_incident_updated_at_the_same_timestamp_reaches_a_reader_past_it(make_gateway):
    gw = make_gateway()
    post(gw, [incident("new", "2026-03-01T09:05:00Z")])
    _, cursor = feed(gw, "0")
    closed = incident("closed", "2026-03-01T11:00:00Z")
    post(gw, [closed])
    read, cursor = feed(gw, cursor, type="incident")
    assert [e["data"]["status"] for e in read] == ["closed"]
    post(gw, [incident("investigating", "2026-03-01T10:00:00Z")])      # older updated_at: a duplicate
    assert feed(gw, cursor)[0] == []


def test_unchanged_events_keep_their_positions_for_a_reader_holding_one(make_gateway, tmp_path):
    """Positions are the store's row numbers, as before: a cursor from before a replacement reads the same
    events after it, plus the new version."""
    gw = make_gateway()
    first = events_at([1, 2, 3, 4, 5])
    post(gw, first)
    db = sqlite3.connect(tmp_path / "events.db")
    rows_before = db.execute("SELECT rowid, id FROM events ORDER BY rowid").fetchall()
    post(gw, [later(first[4], 40)])
    rows_after = db.execute("SELECT rowid, id FROM events ORDER BY rowid").fetchall()
    db.close()
    assert rows_after[:4] == rows_before[:4]    # the others did not move
    assert rows_after[4][1] == first[4]["id"] and rows_after[4][0] > rows_before[4][0]
    read, _ = feed(gw, str(rows_before[1][0]))
    assert [e["id"] for e in read] == [first[2]["id"], first[3]["id"], first[4]["id"]]
    assert json.dumps(read[-1]["timestamp"]) == '"2026-03-01T10:00:40Z"'
