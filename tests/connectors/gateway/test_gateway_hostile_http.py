"""Hostile and broken HTTP clients against a running gateway: every bad input gets a clear error naming where and
why, nothing accepted is lost, and no exception trace reaches the client or the log."""
from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import socket
import time

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts

from wia_security.connectors.gateway import Gateway, GatewaySettings
from wia_security.connectors.gateway.ingest import Verdicts
from wia_security.connectors.gateway.taxii_server import COLLECTION_ID

SPLUNK = {"Authorization": f"Splunk {TOKEN}"}


def dead_records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def stored_ids(gw) -> set[str]:
    r = requests.get(gw.url + "/v1/events", params={"limit": 1000}, headers=AUTH)
    assert r.status_code == 200
    return {e["id"] for e in r.json()["events"]}


def test_every_gzip_member_is_read_and_trailing_bytes_are_refused(make_gateway):
    gw = make_gateway()
    events = event_dicts(4, seed=80)
    # `cat a.gz b.gz` is one valid gzip stream of two members: both halves are events.
    body = gzip.compress(json.dumps(events[0]).encode() + b"\n") + gzip.compress(json.dumps(events[1]).encode())
    r = requests.post(gw.url + "/v1/events", data=body, headers={**AUTH, "Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    r = requests.post(gw.url + "/services/collector/event", headers={**SPLUNK, "Content-Encoding": "gzip"},
                      data=gzip.compress(json.dumps({"event": events[2]}).encode())
                      + gzip.compress(json.dumps({"event": events[3]}).encode()))
    assert r.json()["code"] == 0
    assert stored_ids(gw) == {e["id"] for e in events}
    # Bytes after the gzip data that are not another member: refused, not silently ignored.
    r = requests.post(gw.url + "/v1/events", data=gzip.compress(json.dumps(events[0]).encode()) + b"JUNK",
                      headers={**AUTH, "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "after the end of the gzip data" in r.json()["error"]["message"]
    # Several members that together inflate past the limit are a zip bomb too.
    bomb = b"".join(gzip.compress(b" " * 60_000) for _ in range(3))
    gw_small = make_gateway(max_body_bytes=100_000)
    r = requests.post(gw_small.url + "/v1/events", data=bomb, headers={**AUTH, "Content-Encoding": "gzip"})
    assert r.status_code == 413


def test_numbers_no_json_writer_can_reproduce_are_rejected_with_their_path(make_gateway, tmp_path):
    """1e400 is beyond a double (it used to be stored as null) and a BOM sends the body through the parser
    that keeps 100-bit integers (it used to crash the stream publish with a 500 after storing): each is
    refused alone, naming its JSON path; 1e400 already by the parser, its raw text kept in the dead letter."""
    gw = make_gateway()
    events = event_dicts(3, seed=81)
    infinite = json.dumps(events[0])[:-1] + ', "meta": {"n": [1, 1e400]}}'
    huge = b"\xef\xbb\xbf" + json.dumps({**events[1], "meta": {"big": 10 ** 30}}).encode()
    r = requests.post(gw.url + "/v1/events", data=infinite, headers=AUTH)
    assert r.status_code == 400, r.text
    error = r.json()["results"][0]["errors"][0]
    assert (error["path"], error["code"]) == ("/meta/n/1", "parse_error")
    column = infinite.index("1e400") + 1
    assert error["message"].endswith(f":1:{column}: number 1e400 is beyond a 64-bit float's range (at /meta/n/1)")
    r = requests.post(gw.url + "/v1/events", data=huge, headers=AUTH)
    assert r.status_code == 400, r.text
    assert r.json()["results"][0]["errors"][0]["path"] == "/meta/big"
    assert requests.post(gw.url + "/v1/events", json=events[2], headers=AUTH).status_code == 200
    assert stored_ids(gw) == {events[2]["id"]}
    dead = dead_records(tmp_path / "dead.ndjson")
    assert len(dead) == 2
    assert dead[0]["raw"] == infinite and "beyond a 64-bit float's range (at /meta/n/1)" in dead[0]["reason"]
    assert dead[1]["event"]["id"] == events[1]["id"]
    assert dead[1]["reason"] == "invalid: /meta/big: integer outside the 64-bit range"


def test_every_ndjson_line_gets_a_verdict_with_its_line_number(make_gateway, tmp_path):
    gw = make_gateway()
    good = event_dicts(3, seed=82)
    lines = ["", json.dumps(good[0]), "", "garbage", json.dumps({**good[1], "severity": 42}), "",
             json.dumps(good[1]), "[1, 2]", json.dumps(good[2])]
    r = requests.post(gw.url + "/v1/events", data="\n".join(lines), headers=AUTH)
    assert r.status_code == 207
    reply = r.json()
    got = [(x["index"], x["line"], x["status"]) for x in reply["results"]]
    assert got == [(0, 2, "accepted"), (1, 4, "rejected"), (2, 5, "rejected"), (3, 7, "accepted"),
                   (4, 8, "rejected"), (5, 9, "accepted")]
    dead = dead_records(tmp_path / "dead.ndjson")
    assert [d["where"].rsplit(":", 1)[1] for d in dead] == ["4", "5", "8"]
    assert reply["accepted"] + len(dead) == 6                         # none lost
    # A JSON array names elements by index, in the reply and in the dead letter.
    r = requests.post(gw.url + "/v1/events", json=[good[0], {"type": "alert"}], headers=AUTH)
    assert r.status_code == 207 and "line" not in r.json()["results"][1]
    assert dead_records(tmp_path / "dead.ndjson")[-1]["where"].endswith("[1]")


@pytest.mark.parametrize("query, fragment", [
    ("limit=-1", "limit must be at least 1"), ("limit=0", "limit must be at least 1"),
    ("limit=1e3", "limit must be an integer"), ("severity_min=nan", "severity_min must be a number from 0 to 10"),
    ("severity_max=inf", "severity_max must be a number from 0 to 10"), ("order=sideways", "newest or oldest"),
    ("after=99999999999999999999999", "after must be at most"), ("after=-1", "after must be at least 0")])
def test_bad_query_parameters_are_400_naming_the_parameter(make_gateway, query, fragment):
    gw = make_gateway()
    assert requests.post(gw.url + "/v1/events", json=event_dicts(3, seed=83), headers=AUTH).status_code == 200
    r = requests.get(gw.url + "/v1/events?" + query, headers=AUTH)
    assert r.status_code == 400 and fragment in r.json()["error"]["message"], r.text


def test_taxii_cursor_beyond_64_bits_is_400_not_500(make_gateway):
    gw = make_gateway(taxii=True)
    token = base64.urlsafe_b64encode(b"99999999999999999999999:1").decode().rstrip("=")
    r = requests.get(f"{gw.url}/taxii2/wia/collections/{COLLECTION_ID}/objects/", params={"next": token},
                     headers={**AUTH, "Accept": "application/taxii+json;version=2.1"})
    assert r.status_code == 400 and "next" in r.json()["title"]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_client_that_hangs_up_mid_body_leaves_no_trace_in_the_log(make_gateway):
    gw = make_gateway()
    handler = _Records()
    logger = logging.getLogger("uvicorn.error")          # where uvicorn logs "Exception in ASGI application"
    logger.addHandler(handler)
    try:
        body = json.dumps(event_dicts(1, seed=84)[0]).encode()
        for path in ("/v1/events", "/services/collector/event", "/services/collector/ack?channel=c"):
            sock = socket.create_connection((gw.host, gw.port))
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                         f"Content-Length: {len(body) + 100}\r\n\r\n".encode() + body)   # promises 100 more bytes
            time.sleep(0.2)
            sock.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and requests.get(gw.url + "/v1/stats", headers=AUTH).status_code != 200:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        logger.removeHandler(handler)
    assert not [r for r in handler.records if r.exc_info or r.levelno >= logging.ERROR], \
        [r.getMessage() for r in handler.records]
    assert stored_ids(gw) == set()


def test_hec_envelopes_refused_by_hec_rules_are_dead_lettered_too(make_gateway, tmp_path):
    gw = make_gateway()
    events = event_dicts(2, seed=85)
    cases = [(json.dumps({"event": events[0]}) + "[1]", 6, 1), (json.dumps({"time": "yesterday"}), 12, 0),
             (json.dumps({"event": events[1]}) + json.dumps({"event": ""}), 13, 1)]
    for body, code, number in cases:
        r = requests.post(gw.url + "/services/collector/event", data=body, headers=SPLUNK)
        assert r.json() == {"text": r.json()["text"], "code": code, "invalid-event-number": number}
    dead = dead_records(tmp_path / "dead.ndjson")
    assert [d["reason"].split(":")[0] for d in dead] == ["HEC code 6", "HEC code 12", "HEC code 13"]
    assert dead[1]["event"] == {"time": "yesterday"} and dead[0]["where"].startswith("hec:127.0.0.1")
    assert stored_ids(gw) == {e["id"] for e in events}          # the ones before the bad object were taken


def test_hec_ack_body_obeys_the_size_limit(make_gateway):
    gw = make_gateway(max_body_bytes=10_000)
    r = requests.post(gw.url + "/services/collector/ack?channel=c1", json={"acks": list(range(5000))}, headers=SPLUNK)
    assert r.status_code == 413 and r.json()["code"] == 6


def test_a_dead_letter_that_cannot_be_written_answers_503_and_the_gateway_lives_on(make_gateway, tmp_path):
    """The delivery thread used to die on the dead letter's error: every later request then hung forever."""
    gw = make_gateway(dead_letter=str(tmp_path / "missing-dir" / "dead.ndjson"))
    r = requests.post(gw.url + "/v1/events", json={"type": "alert"}, headers=AUTH, timeout=20)
    assert r.status_code == 503 and "OutputError" in r.json()["error"]["message"]
    event = event_dicts(1, seed=86)[0]
    r = requests.post(gw.url + "/v1/events", json=event, headers=AUTH, timeout=20)
    assert r.status_code == 200 and stored_ids(gw) == {event["id"]}


def test_an_event_the_store_refuses_is_answered_rejected_not_accepted(tmp_path):
    """`accepted` promises the event is stored. Validation lets nothing through that the store refuses, so this
    drives Gateway.ingest directly (real SQLite store and dead letter) with an event that skipped validation."""
    gateway = Gateway(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/events.db",
                                      dead_letter=str(tmp_path / "dead.ndjson"), taxii=False))
    gateway.open()
    good, bad = event_dicts(2, seed=87)
    bad = {**bad, "timestamp": "not a time"}
    verdicts = Verdicts(events=[bad, good], results=[{"index": 0, "status": "accepted", "id": bad["id"]},
                                                     {"index": 1, "status": "accepted", "id": good["id"]}])
    try:
        asyncio.run(gateway.ingest(verdicts))
    finally:
        gateway.close()
    assert verdicts.results[0]["status"] == "rejected"
    assert verdicts.results[0]["errors"][0]["code"] == "store_refused"
    assert verdicts.results[1]["status"] == "accepted" and verdicts.events == [good]
    assert gateway.hub.sequence == 1                                  # only the stored event was streamed
    [dead] = dead_records(tmp_path / "dead.ndjson")
    assert dead["event"]["id"] == bad["id"] and dead["sink"]


def test_keep_alive_connections_have_nagle_off(make_gateway):
    """GatewayServer's own socket must say TCP, or asyncio leaves Nagle on and every keep-alive response
    waits ~40 ms for a delayed ACK (tests and in-process servers crawled at 22 requests per second)."""
    gw = make_gateway()
    assert gw._socket.proto == socket.IPPROTO_TCP
    session = requests.Session()
    for _ in range(3):
        assert session.get(gw.url + "/healthz").status_code == 200
