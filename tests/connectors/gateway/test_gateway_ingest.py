"""POST /v1/events and GET /v1/events on a running gateway, driven with requests: formats, verdicts, auth, limits."""
from __future__ import annotations

import gzip
import hmac
import json
import logging
import time
from datetime import datetime, timezone

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts

from wia_security.connectors.gateway import GatewaySettings, load_tokens
from wia_security.connectors.gateway.auth import TokenSet
from wia_security.errors import ConfigError
from wia_security.timeutil import to_iso


def dead_records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def stored(gw, **params) -> list[dict]:
    r = requests.get(gw.url + "/v1/events", params={"limit": 1000, **params}, headers=AUTH)
    assert r.status_code == 200
    return r.json()["events"]


@pytest.mark.parametrize("shape", ["object", "array", "ndjson"])
def test_each_body_shape_is_accepted_and_stored(make_gateway, shape):
    gw = make_gateway()
    events = event_dicts(1 if shape == "object" else 25, seed=20)
    if shape == "object":
        body, ctype = json.dumps(events[0]), "application/json"
    elif shape == "array":
        body, ctype = json.dumps(events), "application/json"
    else:
        body, ctype = "\n".join(json.dumps(e) for e in events) + "\n", "application/x-ndjson"
    r = requests.post(gw.url + "/v1/events", data=body, headers={**AUTH, "Content-Type": ctype})
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["accepted"] == len(events) and reply["rejected"] == 0
    assert [x["id"] for x in reply["results"]] == [e["id"] for e in events]
    assert {e["id"] for e in stored(gw)} == {e["id"] for e in events}


def test_mixed_batch_gets_per_event_verdicts_and_rejects_are_dead_lettered(make_gateway, tmp_path):
    gw = make_gateway()
    good = event_dicts(3, seed=21)
    bad_severity = {**good[0], "id": "0b1c2d3e-0000-4000-8000-000000000001", "severity": 11}
    missing_source = {k: v for k, v in good[1].items() if k != "source"} | {"id": "0b1c2d3e-0000-4000-8000-000000000002"}
    lines = [json.dumps(good[0]), json.dumps(bad_severity), "{not json", json.dumps(good[1]),
             json.dumps(missing_source), json.dumps(good[2])]
    r = requests.post(gw.url + "/v1/events", data="\n".join(lines), headers=AUTH)
    assert r.status_code == 207
    reply = r.json()
    assert (reply["accepted"], reply["rejected"]) == (3, 3)
    statuses = [x["status"] for x in reply["results"]]
    assert statuses == ["accepted", "rejected", "rejected", "accepted", "rejected", "accepted"]
    assert reply["results"][1]["errors"][0]["path"] == "/severity"
    assert reply["results"][2]["errors"][0]["code"] == "parse_error"
    assert any(e["path"] == "/source" and e["code"] == "required" for e in reply["results"][4]["errors"])
    assert {e["id"] for e in stored(gw)} == {e["id"] for e in good}
    dead = dead_records(tmp_path / "dead.ndjson")
    assert len(dead) == 3
    assert all(d["reason"] and d["where"].startswith("http:127.0.0.1") for d in dead)
    assert dead[1]["raw"] == "{not json"


def test_all_invalid_is_400_and_empty_body_is_400(make_gateway):
    gw = make_gateway()
    r = requests.post(gw.url + "/v1/events", json={"type": "alert"}, headers=AUTH)
    assert r.status_code == 400 and r.json()["rejected"] == 1
    r = requests.post(gw.url + "/v1/events", data=b"  \n", headers=AUTH)
    assert r.status_code == 400 and "no events" in r.json()["error"]["message"]


def test_gzip_bodies_are_decoded(make_gateway):
    gw = make_gateway()
    events = event_dicts(40, seed=22)
    body = gzip.compress("\n".join(json.dumps(e) for e in events).encode())
    r = requests.post(gw.url + "/v1/events", data=body, headers={**AUTH, "Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["accepted"] == 40


def test_bodies_over_the_limit_get_413_declared_streamed_or_gzip_bombs(make_gateway):
    gw = make_gateway(max_body_bytes=64 * 1024)
    big = json.dumps(event_dicts(200, seed=23)).encode()
    assert len(big) > 64 * 1024
    assert requests.post(gw.url + "/v1/events", data=big, headers=AUTH).status_code == 413
    chunked = (big[i:i + 8192] for i in range(0, len(big), 8192))        # no Content-Length
    assert requests.post(gw.url + "/v1/events", data=chunked, headers=AUTH).status_code == 413
    bomb = gzip.compress(b" " * (10 * 1024 * 1024))                       # 10 KB that inflate to 10 MB
    r = requests.post(gw.url + "/v1/events", data=bomb, headers={**AUTH, "Content-Encoding": "gzip"})
    assert len(bomb) < 64 * 1024 and r.status_code == 413
    assert stored(gw) == []


def test_auth_is_required_and_the_token_never_leaks(make_gateway, caplog):
    caplog.set_level(logging.DEBUG)
    gw = make_gateway()
    event = event_dicts(1, seed=24)
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": TOKEN}):
        r = requests.post(gw.url + "/v1/events", json=event, headers=headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in r.text
    r = requests.post(gw.url + f"/v1/events?token={TOKEN}", json=event, headers=AUTH)
    assert r.status_code == 200

    def server_log() -> str:
        return "\n".join(r.getMessage() for r in caplog.records
                         if r.name.startswith(("wia_security", "uvicorn", "starlette")))
    # The access line is written once the response is sent, on the server's thread: wait for it.
    deadline = time.monotonic() + 10
    while "POST /v1/events 200" not in server_log() and time.monotonic() < deadline:
        time.sleep(0.01)
    server_log = server_log()
    assert TOKEN not in server_log
    assert "POST /v1/events 200" in server_log           # the access log ran, without the query string
    assert TOKEN not in repr(gw.gateway.tokens) and TOKEN not in repr(gw.gateway.settings.tokens.__class__)


def test_token_comparison_is_constant_time_over_every_token(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(b) or real(a, b))
    tokens = TokenSet(["a" * 20, "b" * 20, "c" * 20])
    assert tokens.check("a" * 20)                       # a match on the first still compares all three
    assert len(calls) == 3
    assert not tokens.check("d" * 20) and not tokens.check("") and not tokens.check(None)


def test_tokens_come_from_file_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "tokens"
    path.write_text("# gateway tokens\nfile-token-0123456789\n\n")
    monkeypatch.setenv("WIA_GATEWAY_TOKENS", "env-token-0123456789, env-token-abcdefghij")
    assert load_tokens(path=str(path)) == ["file-token-0123456789", "env-token-0123456789", "env-token-abcdefghij"]
    with pytest.raises(ConfigError) as info:
        load_tokens(path=str(tmp_path / "missing"))
    assert "token_file" in str(info.value)


def test_settings_refuse_to_run_without_auth_unless_asked():
    with pytest.raises(ConfigError, match="no bearer token"):
        GatewaySettings().check()
    with pytest.raises(ConfigError, match="16 characters"):
        GatewaySettings(tokens=["short"]).check()
    GatewaySettings(allow_anonymous=True).check()


def test_query_filters_on_stored_events(make_gateway):
    gw = make_gateway()
    events = event_dicts(60, seed=25)
    assert requests.post(gw.url + "/v1/events", json=events, headers=AUTH).status_code == 200
    alerts = stored(gw, type="alert")
    assert {e["id"] for e in alerts} == {e["id"] for e in events if e["type"] == "alert"}
    high = stored(gw, severity_min=7)
    assert {e["id"] for e in high} == {e["id"] for e in events if e["severity"] >= 7}
    r = requests.get(gw.url + "/v1/events", params={"severity_min": "x"}, headers=AUTH)
    assert r.status_code == 400


def test_arrival_order_feed_with_a_cursor(make_gateway):
    gw = make_gateway()
    events = event_dicts(25, seed=26)
    for e in events:                                  # one at a time, as a forwarder would
        r = requests.post(gw.url + "/v1/events", json=e, headers=AUTH)
        assert r.status_code == 200 and r.json()["id"] == e["id"]
    seen, cursor = [], "0"
    while True:
        page = requests.get(gw.url + "/v1/events", params={"after": cursor, "limit": 10}, headers=AUTH).json()
        if not page["events"]:
            assert page["next"] == cursor             # nothing new: the same cursor comes back
            break
        seen += [e["id"] for e in page["events"]]
        cursor = page["next"]
    assert seen == [e["id"] for e in events]
    assert requests.get(gw.url + "/v1/events", params={"after": "x"}, headers=AUTH).status_code == 400


@pytest.mark.parametrize("params, says", [
    ({"type": "alerts"}, "type: unknown event type 'alerts' (did you mean 'alert'?)"),
    ({"severity": "7"}, "unknown parameter 'severity'"),              # misspelt: it used to answer every event
    ({"types": "alert"}, "unknown parameter 'types' (did you mean 'type'?)"),
    ({"since": "24H"}, "since: '24H' is neither an RFC 3339 time"),
    ({"since": "2025-12-14T09:30:00"}, "since: '2025-12-14T09:30:00' has no UTC offset"),
    ({"until": "99999999w"}, "until: '99999999w' reaches back before the year 1"),
    ({"severity_min": "8", "severity_max": "2"}, "severity_min is above severity_max"),
    ({"after": "0", "order": "oldest"}, "unknown parameter 'order'"),          # the feed has its own set
    ({"severity": "7"}, "; or after (the arrival-order feed, with limit and type only)"),   # `after` was not listed
    ({"aftr": "0"}, "unknown parameter 'aftr' (did you mean 'after'?)"),
    ({"after": "0", "since": "1h"}, "known with after (the arrival-order feed): after, limit, type"),
    ({"after": "0", "type": "endpoint"}, "did you mean 'endpoint_event'?"),
])
def test_a_query_that_could_not_mean_what_it_says_is_a_400_naming_the_parameter(make_gateway, params, says):
    gw = make_gateway()
    assert requests.post(gw.url + "/v1/events", json=event_dicts(5, seed=27), headers=AUTH).status_code == 200
    r = requests.get(gw.url + "/v1/events", params=params, headers=AUTH)
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text


def test_since_and_until_take_relative_times_as_the_cli_does(make_gateway):
    gw = make_gateway()
    now, old = event_dicts(2, seed=28)
    old["timestamp"] = "2020-01-01T00:00:00.000Z"
    now["timestamp"] = to_iso(datetime.now(timezone.utc))
    assert requests.post(gw.url + "/v1/events", json=[now, old], headers=AUTH).status_code == 200
    assert [e["id"] for e in stored(gw, since="1h")] == [now["id"]]
    assert [e["id"] for e in stored(gw, until="1h")] == [old["id"]]
