"""GET /metrics on a running gateway: the text format parsed strictly, auth, and counters that add up exactly to
what concurrent clients sent, what the store and the destinations got, and what stream clients saw."""
from __future__ import annotations

import asyncio
import json
import math
import re
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from strategies import event_dicts
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway.metrics import (Exposition, destination_name, escape_help,
                                                     escape_label_value)
from wia_security.errors import ConfigError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_TOKEN = "metrics-only-token-0123456789"


# --- a strict parser of text format 0.0.4 (Prometheus "Exposition formats", text format details) ---
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class FormatError(AssertionError):
    pass


def _unescape(text: str, allowed: str) -> str:
    """Undo backslash escapes; only `\\\\`, `\\n` and (in label values) `\\"` are valid."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in allowed:
                raise FormatError(f"bad escape in {text!r}")
            out.append("\n" if text[i + 1] == "n" else text[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _labels(line: str, pos: int) -> tuple[dict[str, str], int]:
    labels: dict[str, str] = {}
    pos += 1                                            # past "{"
    while True:
        if line[pos] == "}":
            return labels, pos + 1
        m = LABEL_NAME.match(line, pos)
        if not m:
            raise FormatError(f"bad label name at {pos}: {line!r}")
        name = m.group()
        if name in labels or name.startswith("__"):
            raise FormatError(f"duplicate or reserved label {name!r}: {line!r}")
        pos = m.end()
        if line[pos:pos + 2] != '="':
            raise FormatError(f"expected =\" at {pos}: {line!r}")
        pos += 2
        start = pos
        while line[pos] != '"':
            pos += 2 if line[pos] == "\\" else 1
        labels[name] = _unescape(line[start:pos], '\\"n')
        pos += 1
        if line[pos] == ",":
            pos += 1
        elif line[pos] != "}":
            raise FormatError(f"expected , or }} at {pos}: {line!r}")


def _value(token: str) -> float:
    if token in ("+Inf", "-Inf", "NaN"):
        return float(token.replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", token):
        raise FormatError(f"bad value {token!r}")
    return float(token)


def parse_exposition(text: str) -> dict[str, dict]:
    """{metric name: {"type", "help", "samples": {frozenset(labels): value}}}; FormatError on any deviation."""
    if not text.endswith("\n"):
        raise FormatError("the last line must end with a line feed")
    families: dict[str, dict] = {}
    done: set[str] = set()                              # families whose group of lines has ended
    current = None
    for line in text[:-1].split("\n"):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line[1:].strip().split(None, 2)
            if len(parts) < 2 or parts[0] not in ("HELP", "TYPE"):
                continue                                # a plain comment
            name = parts[1]
            if not METRIC_NAME.fullmatch(name):
                raise FormatError(f"bad metric name {name!r}")
            fam = families.setdefault(name, {"type": None, "help": None, "samples": {}})
            if name in done or (current not in (None, name) and fam["samples"]):
                raise FormatError(f"lines of {name} are not one group")
            if current is not None and current != name:
                done.add(current)
            current = name
            if parts[0] == "HELP":
                if fam["help"] is not None:
                    raise FormatError(f"second HELP for {name}")
                fam["help"] = _unescape(parts[2] if len(parts) > 2 else "", "\\n")
            else:
                if fam["type"] is not None or fam["samples"]:
                    raise FormatError(f"TYPE for {name} repeated or after its samples")
                if len(parts) != 3 or parts[2] not in TYPES:
                    raise FormatError(f"bad TYPE line {line!r}")
                fam["type"] = parts[2]
            continue
        m = METRIC_NAME.match(line)
        if not m:
            raise FormatError(f"bad sample line {line!r}")
        name, pos = m.group(), m.end()
        labels: dict[str, str] = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = _labels(line, pos)
        tokens = line[pos:].split()
        if not 1 <= len(tokens) <= 2 or (pos < len(line) and line[pos] not in " \t"):
            raise FormatError(f"bad sample line {line!r}")
        if len(tokens) == 2 and not re.fullmatch(r"-?\d+", tokens[1]):
            raise FormatError(f"bad timestamp in {line!r}")
        if name in done or (current not in (None, name)):
            if current is not None and current != name:
                done.add(current)
            if name in done:
                raise FormatError(f"samples of {name} are not one group")
        current = name
        fam = families.setdefault(name, {"type": None, "help": None, "samples": {}})
        key = frozenset(labels.items())
        if key in fam["samples"]:
            raise FormatError(f"duplicate sample {line!r}")
        fam["samples"][key] = _value(tokens[0])
    return families


def test_the_strict_parser_refuses_what_the_format_forbids():
    good = '# HELP a_total x\\\\y\n# TYPE a_total counter\na_total{l="q\\"\\\\\\n"} 1\n'
    assert parse_exposition(good)["a_total"]["samples"] == {frozenset({("l", 'q"\\\n')}): 1.0}
    assert parse_exposition(good)["a_total"]["help"] == "x\\y"
    for bad in ("a 1",                                      # no final line feed
                'a{l="x\\t"} 1\n',                           # \t is not an escape
                'a{l="x"} 1\na{l="x"} 2\n',                  # duplicate series
                "a 1\nb 1\na 2\n",                           # a's lines are not one group
                "a 1\n# TYPE a gauge\n",                     # TYPE after the samples
                "# TYPE a gauge\n# TYPE a gauge\na 1\n",     # two TYPE lines
                "# TYPE a widget\n",                         # unknown type
                "a{1l=\"x\"} 1\n", "a one\n", "2a 1\n", 'a{__x="y"} 1\n'):
        with pytest.raises(FormatError):
            parse_exposition(bad)


def scrape(gw, headers=AUTH) -> dict[str, dict]:
    r = requests.get(gw.url + "/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPE
    return parse_exposition(r.content.decode("utf-8"))


def value(families: dict, name: str, **labels: str) -> float:
    """The sample of `name` with exactly these labels (KeyError when it is not exposed)."""
    return families[name]["samples"][frozenset(labels.items())]


def total(families: dict, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include these."""
    return sum(v for k, v in families[name]["samples"].items() if set(labels.items()) <= k)


# --- the endpoint ---
def test_metrics_is_well_formed_and_needs_a_token_by_default(make_gateway):
    before = time.time()
    gw = make_gateway()
    assert requests.get(gw.url + "/metrics").status_code == 401
    assert requests.get(gw.url + "/metrics", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    families = scrape(gw)
    assert families and all(f["type"] and f["help"] for f in families.values())
    for name, fam in families.items():
        assert name.startswith("wia_gateway_")
        assert name.endswith("_total") == (fam["type"] == "counter"), name
    assert before - 1 <= value(families, "wia_gateway_start_time_seconds") <= time.time()
    # the refused scrapes are counted; a scrape counts itself only once its response has started
    assert value(families, "wia_gateway_http_requests_total", method="GET", endpoint="/metrics", status_class="4xx") == 2
    with pytest.raises(KeyError):
        value(families, "wia_gateway_http_requests_total", method="GET", endpoint="/metrics", status_class="2xx")
    again = scrape(gw)
    assert value(again, "wia_gateway_http_requests_total", method="GET", endpoint="/metrics", status_class="2xx") == 1
    r = requests.get(gw.url + "/no/such/path-with-an-id-1234", headers=AUTH)
    assert r.status_code == 404
    families = scrape(gw)
    assert value(families, "wia_gateway_http_requests_total", method="GET", endpoint="unmatched", status_class="4xx") == 1
    assert "path-with-an-id" not in requests.get(gw.url + "/metrics", headers=AUTH).text   # raw paths are never labels


def test_a_metrics_token_reads_metrics_only_and_anonymous_metrics_is_an_explicit_choice(make_gateway, tmp_path):
    gw = make_gateway(metrics_tokens=[METRICS_TOKEN])
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    scrape(gw, scraper)
    scrape(gw, AUTH)                                             # a gateway token reads metrics too
    basic = requests.get(gw.url + "/metrics", auth=("prometheus", METRICS_TOKEN))
    assert basic.status_code == 200                              # Prometheus' basic_auth, token as password
    assert requests.post(gw.url + "/v1/events", json=event_dicts(1, seed=300), headers=scraper).status_code == 401
    assert requests.get(gw.url + "/v1/events", headers=scraper).status_code == 401
    assert requests.get(gw.url + "/v1/stats", headers=scraper).status_code == 401
    open_gw = make_gateway(metrics_anonymous=True, store=f"sqlite:///{tmp_path}/other.db",
                           dead_letter=str(tmp_path / "other-dead.ndjson"))
    scrape(open_gw, {})
    assert requests.post(open_gw.url + "/v1/events", json=event_dicts(1, seed=301)).status_code == 401
    with pytest.raises(ConfigError):
        GatewaySettings(tokens=[TOKEN], metrics_tokens=["short"]).check()


# --- exact counts under concurrency ---
SECRET = "wia-SECRET-7f3c9a1b5d2e4f60a8b7c6d5"


def hec_body(events) -> str:
    return "".join(json.dumps({"event": e, "sourcetype": "wia"}) for e in events)


def test_counters_add_up_exactly_under_concurrent_ingest(make_gateway, tmp_path, monkeypatch):
    # A downstream HEC that refuses our token: a real destination that fails every event (HEC code 4).
    downstream = make_gateway(tokens=["downstream-token-0123456789"], store=f"sqlite:///{tmp_path}/down.db",
                              dead_letter=str(tmp_path / "down-dead.ndjson"))
    monkeypatch.setenv("WIA_TEST_DOWNSTREAM_TOKEN", SECRET)
    secret_dir = tmp_path / SECRET                               # a secret-looking URL path (a webhook token)
    secret_dir.mkdir()
    config = tmp_path / "destinations.toml"
    config.write_text(f"""
[destinations."odd \\"name\\" \\\\ x\\nline2"]
url = "file://{tmp_path}/named.ndjson"

[destinations.downstream-hec]
url = "splunk+http://127.0.0.1:{downstream.port}"
token_env = "WIA_TEST_DOWNSTREAM_TOKEN"
""")
    gw = make_gateway(max_body_bytes=64 * 1024, destinations=str(config),
                      extra_sinks=[f"file://{secret_dir}/copy.ndjson"])
    odd_name = 'odd "name" \\ x\nline2'
    copy_name = "file://"

    source = iter(event_dicts(4000, seed=310))
    lock = threading.Lock()

    def take(n: int) -> list[dict]:              # the client threads share one supply of distinct events
        with lock:
            return [next(source) for _ in range(n)]
    sent = {"http_accepted": 0, "http_invalid": 0, "http_unparseable": 0, "hec_accepted": 0, "hec_invalid": 0,
            "hec_format": 0, "too_large": 0, "http_auth": 0, "hec_auth": 0, "http_2xx": 0, "http_4xx": 0}
    big = json.dumps(event_dicts(150, seed=311)).encode()
    assert len(big) > 64 * 1024

    def job(n: int) -> dict[str, int]:
        mine = dict.fromkeys(sent, 0)
        with requests.Session() as s:
            kind = n % 6
            if kind in (0, 1):                   # NDJSON with valid, invalid and unparseable lines
                good = take(5 + n % 7)
                bad = [{**e, "severity": 11} for e in take(n % 3)]
                lines = [json.dumps(e) for e in good + bad] + ["{not json"] * (n % 2)
                r = s.post(gw.url + "/v1/events", data="\n".join(lines), headers=AUTH)
                assert r.status_code in (200, 207), r.text
                reply = r.json()
                assert reply["accepted"] == len(good)
                mine.update(http_accepted=len(good), http_invalid=len(bad), http_unparseable=n % 2, http_2xx=1)
            elif kind == 2:                      # a JSON array, all valid
                good = take(20)
                assert s.post(gw.url + "/v1/events", json=good, headers=AUTH).status_code == 200
                mine.update(http_accepted=20, http_2xx=1)
            elif kind == 3:                      # over the body limit, and a wrong token
                assert s.post(gw.url + "/v1/events", data=big, headers=AUTH).status_code == 413
                assert s.post(gw.url + "/v1/events", json=[], headers={"Authorization": "Bearer nope-nope-nope-nope"}
                              ).status_code == 401
                mine.update(too_large=1, http_auth=1, http_4xx=2)
            elif kind == 4:                      # HEC: an invalid event is named; the valid ones around it are taken
                events = take(6)
                body = hec_body(events[:3]) + hec_body([{**events[3], "severity": 11}]) + hec_body(events[4:])
                r = s.post(gw.url + "/services/collector/event", data=body, headers={"Authorization": f"Splunk {TOKEN}"})
                assert r.status_code == 400 and r.json()["invalid-event-number"] == 3
                mine.update(hec_accepted=5, hec_invalid=1)
            else:                                # HEC: valid events, then a wrapper without `event`; a bad token
                events = take(4)
                body = hec_body(events) + json.dumps({"sourcetype": "wia"})
                r = s.post(gw.url + "/services/collector/event", data=body, headers={"Authorization": f"Splunk {TOKEN}"})
                assert r.status_code == 400 and r.json()["code"] == 12
                r = s.post(gw.url + "/services/collector/event", data=hec_body(events),
                           headers={"Authorization": "Splunk wrong-token-wrong-token"})
                assert r.status_code == 403
                mine.update(hec_accepted=4, hec_format=1, hec_auth=1)
        return mine

    with ThreadPoolExecutor(12) as pool:
        for mine in pool.map(job, range(120)):
            for k, v in mine.items():
                sent[k] += v

    text = requests.get(gw.url + "/metrics", headers=AUTH).text
    for secret in (SECRET, TOKEN, "downstream-token-0123456789", str(downstream.port)):
        assert secret not in text
    fam = parse_exposition(text)
    accepted = sent["http_accepted"] + sent["hec_accepted"]
    rejected_at_ingest = sent["http_invalid"] + sent["http_unparseable"] + sent["hec_invalid"] + sent["hec_format"]

    assert value(fam, "wia_gateway_events_accepted_total", source="http") == sent["http_accepted"]
    assert value(fam, "wia_gateway_events_accepted_total", source="hec") == sent["hec_accepted"]
    assert value(fam, "wia_gateway_events_accepted_total", source="stream") == 0
    assert value(fam, "wia_gateway_events_rejected_total", source="http", reason="invalid") == sent["http_invalid"]
    assert value(fam, "wia_gateway_events_rejected_total", source="http", reason="unparseable") == sent["http_unparseable"]
    assert value(fam, "wia_gateway_events_rejected_total", source="hec", reason="invalid") == sent["hec_invalid"]
    assert value(fam, "wia_gateway_events_rejected_total", source="hec", reason="hec_format") == sent["hec_format"]
    assert total(fam, "wia_gateway_events_rejected_total", reason="store_refused") == 0
    assert value(fam, "wia_gateway_requests_refused_total", source="http", reason="too_large") == sent["too_large"]
    assert value(fam, "wia_gateway_requests_refused_total", source="http", reason="auth") == sent["http_auth"]
    assert value(fam, "wia_gateway_requests_refused_total", source="hec", reason="auth") == sent["hec_auth"]
    assert total(fam, "wia_gateway_requests_refused_total") == sent["too_large"] + sent["http_auth"] + sent["hec_auth"]
    post = {"method": "POST", "endpoint": "/v1/events"}
    assert value(fam, "wia_gateway_http_requests_total", **post, status_class="2xx") == sent["http_2xx"]
    assert value(fam, "wia_gateway_http_requests_total", **post, status_class="4xx") == sent["http_4xx"]
    assert total(fam, "wia_gateway_http_requests_total", endpoint="/services/collector/event") == 60

    # ... and what the store, the destinations and the dead letter actually hold
    db = sqlite3.connect(tmp_path / "events.db")
    in_store = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    assert in_store == accepted == value(fam, "wia_gateway_store_events_total", outcome="stored")
    copy_lines = len((secret_dir / "copy.ndjson").read_text().splitlines())
    named_lines = len((tmp_path / "named.ndjson").read_text().splitlines())
    assert copy_lines == named_lines == accepted
    for sink in (copy_name, odd_name):
        assert value(fam, "wia_gateway_destination_events_total", sink=sink, outcome="delivered") == accepted
        assert value(fam, "wia_gateway_destination_events_total", sink=sink, outcome="failed") == 0
        assert value(fam, "wia_gateway_destination_pending_events", sink=sink) == 0
    # The HEC destination batches (max_events, max_wait): a batch's failure is reported with a later send,
    # so at any moment every event handed to it is either failed (and dead-lettered) or still pending.
    hec = {"sink": "downstream-hec"}
    failed = value(fam, "wia_gateway_destination_events_total", **hec, outcome="failed")
    assert value(fam, "wia_gateway_destination_events_total", **hec, outcome="delivered") == 0
    assert failed + value(fam, "wia_gateway_destination_pending_events", **hec) == accepted
    assert value(fam, "wia_gateway_dead_lettered_events_total", stage="destination", **hec) == failed
    dead = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert len([d for d in dead if d.get("sink") == "downstream-hec"]) == failed
    assert len([d for d in dead if not d.get("sink")]) == rejected_at_ingest
    assert value(fam, "wia_gateway_dead_lettered_events_total", stage="ingest") == rejected_at_ingest
    assert value(fam, "wia_gateway_dead_lettered_events_total", stage="store") == 0
    assert value(fam, "wia_gateway_dead_lettered_events_total", stage="destination", sink=odd_name) == 0
    # the delivery thread lowers the pending count just after it answers the requests
    deadline = time.monotonic() + 5
    while value(scrape(gw), "wia_gateway_delivery_pending_events") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert value(scrape(gw), "wia_gateway_delivery_pending_events") == 0
    gw.stop()                                    # close() flushes the HEC destination: the rest fail now
    dead = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert len([d for d in dead if d.get("sink") == "downstream-hec"]) == accepted
    assert SECRET not in (tmp_path / "dead.ndjson").read_text()


def test_destination_names_drop_credentials_path_and_query():
    assert destination_name("splunk+https://user:pw@hec.example:8088/services?token=abc", []) == "splunk+https://hec.example:8088"
    assert destination_name("kafka://broker:9092/wia-events", ["kafka://broker:9092"]) == "kafka://broker:9092 #2"
    assert destination_name("kafka://broker:9092/t2", ["kafka://broker:9092", "kafka://broker:9092 #2"]) == \
        "kafka://broker:9092 #3"
    assert destination_name("file:///var/lib/secret-token/x.ndjson", []) == "file://"
    out = Exposition()
    out.family("x_total", "counter", "a\\b\nc", [({"sink": 'q"\\\n'}, 3), ({}, 1.5)])
    assert out.text() == '# HELP x_total a\\\\b\\nc\n# TYPE x_total counter\nx_total{sink="q\\"\\\\\\n"} 3\nx_total 1.5\n'
    assert escape_label_value('a"b') == 'a\\"b' and escape_help('a"b') == 'a"b'
    assert parse_exposition(out.text())["x_total"]["samples"][frozenset({("sink", 'q"\\\n')})] == 3


# --- the stream ---
async def recv_json(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def wait_for_metric(gw, name: str, expected: float, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        fam = scrape(gw)
        if value(fam, name) == expected or time.monotonic() > deadline:
            return fam
        time.sleep(0.01)


def test_subscriber_gauge_follows_real_clients(make_gateway):
    gw = make_gateway()

    async def run() -> None:
        clients = []
        for _ in range(3):
            ws = await connect(gw.ws_url, additional_headers=AUTH)
            await ws.send(json.dumps({"action": "subscribe", "subscriptions": [{"channel": "events"}]}))
            assert (await recv_json(ws))["action"] == "subscribed"    # the connection is registered by now
            clients.append(ws)
        fam = await asyncio.to_thread(scrape, gw)
        assert value(fam, "wia_gateway_stream_clients") == 3
        assert value(fam, "wia_gateway_stream_connections_total") == 3
        r = await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=event_dicts(5, seed=320), headers=AUTH)
        assert r.status_code == 200
        for ws in clients:
            for _ in range(5):
                assert (await recv_json(ws))["action"] == "event"
        for ws in clients[:2]:
            await ws.close()
        fam = await asyncio.to_thread(wait_for_metric, gw, "wia_gateway_stream_clients", 1)
        assert value(fam, "wia_gateway_stream_clients") == 1
        assert value(fam, "wia_gateway_stream_events_published_total") == 5
        assert value(fam, "wia_gateway_stream_messages_sent_total") == 3 * (1 + 5)      # subscribed + 5 events each
        try:
            async with connect(gw.ws_url, additional_headers={"Authorization": "Bearer wrong-wrong-wrong-wrong"}):
                pass
        except Exception:  # noqa: BLE001 - refused at the handshake (HTTP 401)
            pass
        good = event_dicts(2, seed=321)
        await clients[2].send(json.dumps({"action": "publish", "request_id": "p1",
                                          "events": [good[0], {**good[1], "severity": 11}, {"type": "alert"}]}))
        reply = await recv_json(clients[2])
        while reply["action"] != "published":
            reply = await recv_json(clients[2])
        assert (reply["accepted"], reply["rejected"]) == (1, 2)
        await clients[2].close()
    asyncio.run(run())
    fam = wait_for_metric(gw, "wia_gateway_stream_clients", 0)
    assert value(fam, "wia_gateway_events_accepted_total", source="stream") == 1
    assert value(fam, "wia_gateway_events_rejected_total", source="stream", reason="invalid") == 2
    assert value(fam, "wia_gateway_dead_lettered_events_total", stage="ingest") == 2
    assert value(fam, "wia_gateway_stream_clients") == 0
    assert value(fam, "wia_gateway_stream_connections_total") == 3
    assert value(fam, "wia_gateway_requests_refused_total", source="stream", reason="auth") == 1


def test_hec_acks_are_counted(make_gateway):
    gw = make_gateway()
    splunk = {"Authorization": f"Splunk {TOKEN}"}
    for i, channel in enumerate(["c-1", "c-1", "c-2"]):
        r = requests.post(gw.url + f"/services/collector/event?channel={channel}",
                          data=hec_body(event_dicts(2, seed=340 + i)), headers=splunk)
        assert r.status_code == 200 and "ackId" in r.json()
    assert requests.post(gw.url + "/services/collector/event", data=hec_body(event_dicts(1, seed=345)),
                         headers=splunk).status_code == 200                     # no channel: no ackId
    fam = scrape(gw)
    assert value(fam, "wia_gateway_hec_acks_issued_total") == 3
    assert value(fam, "wia_gateway_hec_ack_channels") == 2
    assert value(fam, "wia_gateway_events_accepted_total", source="hec") == 7


@pytest.mark.parametrize("policy", ["drop_oldest", "disconnect"])
def test_slow_consumer_drops_are_counted(make_gateway, policy):
    gw = make_gateway(client_queue=20, slow_consumer=policy)
    events = event_dicts(2000, seed=330)
    for e in events:
        e.setdefault("meta", {})["raw"] = "x" * 2000     # big messages fill the socket buffers quickly

    async def run() -> tuple[list[dict], int | None]:
        ws = await connect(gw.ws_url, additional_headers=AUTH, max_queue=1)
        await ws.send(json.dumps({"action": "subscribe", "subscriptions": [{"channel": "events"}]}))
        await recv_json(ws)
        for i in range(0, len(events), 200):            # the client reads nothing meanwhile
            r = await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=events[i:i + 200], headers=AUTH)
            assert r.status_code == 200
        messages = []
        try:
            while True:
                messages.append(await recv_json(ws, 3))
        except (ConnectionClosed, asyncio.TimeoutError):
            pass
        await ws.close()
        return messages, ws.close_code
    messages, code = asyncio.run(run())
    fam = scrape(gw)
    seen = [m for m in messages if m["action"] == "event"]
    assert value(fam, "wia_gateway_stream_events_published_total") == 2000
    if policy == "drop_oldest":
        dropped = sum(m["count"] for m in messages if m["action"] == "dropped")
        assert dropped > 0 and len(seen) + dropped == 2000
        assert value(fam, "wia_gateway_stream_dropped_messages_total", policy="drop_oldest") == dropped
        assert value(fam, "wia_gateway_stream_dropped_messages_total", policy="disconnect") == 0
        assert value(fam, "wia_gateway_stream_slow_consumer_disconnects_total") == 0
        # every message the client got was counted as sent (the subscribed reply, events; `dropped` notices are not queued)
        assert value(fam, "wia_gateway_stream_messages_sent_total") == 1 + len(seen)
    else:
        assert code == 4008
        fam = wait_for_metric(gw, "wia_gateway_stream_slow_consumer_disconnects_total", 1)
        assert value(fam, "wia_gateway_stream_slow_consumer_disconnects_total") == 1
        discarded = value(fam, "wia_gateway_stream_dropped_messages_total", policy="disconnect")
        assert discarded >= 1 and len(seen) + discarded <= 2000      # delivered or discarded, never both
        assert value(fam, "wia_gateway_stream_dropped_messages_total", policy="drop_oldest") == 0
    assert value(fam, "wia_gateway_store_events_total", outcome="stored") == 2000
    assert not math.isnan(value(fam, "wia_gateway_stream_queued_messages"))


def test_every_refusal_the_code_can_count_is_exposed_at_zero_from_the_start(make_gateway):
    """The docs promise every series that can occur from the start with 0 (rate() and absent() work at once). Each
    `metrics.refuse(source, reason)` in the gateway's code is one such series: `stream`/`not_found` (a handshake on
    a path with no stream) appeared only with its first refusal."""
    import pathlib

    import wia_security.connectors.gateway as package
    calls = set()
    for source in pathlib.Path(package.__file__).parent.glob("*.py"):
        text = source.read_text()
        calls |= set(re.findall(r'metrics\.refuse\("(\w+)", "(\w+)"\)', text))
        for pair in re.findall(r'metrics\.refuse\("(\w+)", "(\w+)" if .+? else "(\w+)"\)', text):
            calls |= {(pair[0], pair[1]), (pair[0], pair[2])}
    assert ("stream", "not_found") in calls and ("stream", "busy") in calls and len(calls) >= 20
    families = scrape(make_gateway())
    for source, reason in sorted(calls):
        assert value(families, "wia_gateway_requests_refused_total", source=source, reason=reason) == 0, (source, reason)
