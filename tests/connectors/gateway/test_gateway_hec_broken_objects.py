"""Contract test: on the HEC event endpoint, a HEC object that HEC's own rules refuse (one that does not parse, such as
an object cut short in the concatenated stream; text between objects; a value that is no object; an object without
`event`, or with a blank one) no longer ends the batch. Splunk answers 400 code 6 `Invalid data format` (12, 13 for
their rules) with `invalid-event-number` and reads no further; Fluent Bit, OpenTelemetry's splunk_hec exporter and
kafka-connect-splunk take a 400 as final, so every valid event after the bad object was lost, neither stored nor
dead-lettered. Now the reply is the same (the first bad object's code and zero-based number), the bad piece is
dead-lettered with its text, and every whole object after it is read, validated, stored and numbered as it was sent.
Real gateway; requests posts the bodies as those forwarders send them (objects concatenated, or one a line)."""
from __future__ import annotations

import json

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts

SPLUNK = {"Authorization": f"Splunk {TOKEN}"}
URL = "/services/collector/event"


def hec(event) -> str:
    return json.dumps({"time": 1735689600.123, "sourcetype": "wia:security", "event": event})


def stored_ids(gw) -> set[str]:
    r = requests.get(gw.url + "/v1/events", params={"limit": 1000}, headers=AUTH)
    return {e["id"] for e in r.json()["events"]}


def dead_records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sample(gw, line_start: str) -> float:
    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    [line] = [ln for ln in text.splitlines() if ln.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


BROKEN = {
    "cut short": lambda event: hec(event)[:-2],                    # its two closing braces never came
    "text between objects": lambda event: "not json at all",
    "a bad literal": lambda event: hec(event).replace('"sourcetype": "wia:security"', '"sourcetype": wia'),
    "no object": lambda event: "[1, 2]",
    "a stray brace": lambda event: "}",
}


@pytest.mark.parametrize("separator", ["", "\n"], ids=["concatenated", "one a line"])
@pytest.mark.parametrize("kind", list(BROKEN))
def test_contract_every_whole_object_after_a_broken_one_is_taken(make_gateway, tmp_path, kind, separator):
    gw = make_gateway()
    events = event_dicts(6, seed=148)
    pieces = [hec(e) for e in events[:2]] + [BROKEN[kind](events[2])] + [hec(e) for e in events[3:]]
    r = requests.post(gw.url + URL, data=separator.join(pieces), headers=SPLUNK)
    assert (r.status_code, r.json()) == (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 2})
    taken = {e["id"] for i, e in enumerate(events) if i != 2}
    assert stored_ids(gw) == taken                             # 2 before: the 3 after were lost
    [dead] = dead_records(tmp_path / "dead.ndjson")
    assert dead["where"] == "hec:127.0.0.1[2]" and dead["reason"].startswith("HEC code 6: ")
    assert sample(gw, 'wia_gateway_events_accepted_total{source="hec"}') == 5
    assert sample(gw, 'wia_gateway_events_rejected_total{source="hec",reason="hec_format"}') == 1


def test_contract_later_objects_keep_their_numbers_and_the_first_bad_one_is_answered(make_gateway, tmp_path):
    """Several bad objects in one batch: each is dead-lettered under its own number (the objects after a broken
    piece are numbered as sent), and the reply names the first, with its code."""
    gw = make_gateway()
    events = event_dicts(7, seed=149)
    pieces = [hec(events[0]), json.dumps({"time": 1}), hec(events[1])[:-2], hec(events[2]),
              hec({**events[3], "severity": 11}), json.dumps({"event": ""}), hec(events[4])]
    r = requests.post(gw.url + URL, data="".join(pieces), headers=SPLUNK)
    assert (r.status_code, r.json()) == (400, {"text": "Event field is required", "code": 12,
                                               "invalid-event-number": 1})
    assert stored_ids(gw) == {events[0]["id"], events[2]["id"], events[4]["id"]}
    dead = sorted(dead_records(tmp_path / "dead.ndjson"), key=lambda d: d["where"])
    assert [(d["where"], d["reason"].split(":")[0]) for d in dead] == [
        ("hec:127.0.0.1[1]", "HEC code 12"), ("hec:127.0.0.1[2]", "HEC code 6"),
        ("hec:127.0.0.1[4]", "invalid"), ("hec:127.0.0.1[5]", "HEC code 13")]
    # An invalid event before the first object HEC refuses is the one named
    r = requests.post(gw.url + URL, data=hec({**events[5], "severity": 11}) + "oops" + hec(events[6]), headers=SPLUNK)
    assert (r.status_code, r.json()) == (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 0})
    assert events[6]["id"] in stored_ids(gw)


def test_contract_an_object_cut_inside_a_string_takes_the_next_one_to_the_dead_letter_not_to_nowhere(
        make_gateway, tmp_path):
    """Cut inside a string, the next object's text reads as part of that string: the two cannot be told apart, so
    both go to the dead letter as one piece under the cut one's number (its text kept whole); the objects after
    them are taken."""
    gw = make_gateway()
    events = event_dicts(4, seed=150)
    cut = hec(events[1]).split('"id": "')[0] + '"id": "cut-he'
    r = requests.post(gw.url + URL, data=hec(events[0]) + cut + hec(events[2]) + "\n" + hec(events[3]),
                      headers=SPLUNK)
    assert r.json()["invalid-event-number"] == 1
    assert stored_ids(gw) == {events[0]["id"], events[3]["id"]}
    [dead] = dead_records(tmp_path / "dead.ndjson")
    assert dead["where"] == "hec:127.0.0.1[1]" and "cut-he" in dead["raw"] and events[2]["id"] in dead["raw"]


def test_a_deeply_nested_piece_does_not_hold_the_gateway(make_gateway, tmp_path):
    """Nesting deeper than Python's parser goes, after a broken object: the rest is one refused piece, found at once."""
    gw = make_gateway()
    [event] = event_dicts(1, seed=151)
    body = hec(event) + '{"event": {"a": ' + '{"a": ' * 200_000
    r = requests.post(gw.url + URL, data=body, headers=SPLUNK, timeout=60)
    assert (r.status_code, r.json()["invalid-event-number"]) == (400, 1)
    assert stored_ids(gw) == {event["id"]}
