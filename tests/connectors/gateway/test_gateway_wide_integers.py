"""Integers past 64 bits reach the gateway's range check with every digit, whichever JSON parser is installed
(orjson alone would read them as rounded floats, which pass the check and are stored changed)."""
from __future__ import annotations

import json

import requests
from gateway_helpers import AUTH
from strategies import event_dicts

from wia_security import jsonio


def test_an_integer_past_64_bits_is_refused_at_its_path_not_stored_rounded(make_gateway, tmp_path):
    assert jsonio._orjson is not None                        # part of the test install: the fast path is in play
    gw = make_gateway()
    wide, fits = event_dicts(2, seed=82)
    body = json.dumps({**wide, "meta": {"counter": 2 ** 64}}) + "\n" + json.dumps({**fits, "meta": {"counter": 2 ** 64 - 1}})
    r = requests.post(gw.url + "/v1/events", data=body, headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.status_code in (200, 207, 400), r.text
    results = r.json()["results"]
    assert results[0]["errors"][0]["path"] == "/meta/counter"
    assert results[0]["errors"][0]["code"] == "number_range"
    stored = requests.get(gw.url + "/v1/events", params={"limit": 10}, headers=AUTH).json()["events"]
    assert [(e["id"], e["meta"]["counter"]) for e in stored] == [(fits["id"], 2 ** 64 - 1)]
    dead = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert [d["event"]["id"] for d in dead] == [wide["id"]]
    assert dead[0]["event"]["meta"]["counter"] == 2 ** 64                 # the dead letter keeps it exact too
