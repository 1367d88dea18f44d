"""GET /metrics checked by the real tools rather than a parser of our own: `promtool check metrics` on a body
after mixed traffic, and a real Prometheus (Debian's 2.42, tests/servers/prometheus.py) scraping the running
gateway with a metrics-only bearer token: target health, exact counters through PromQL, label escaping
through Prometheus, and a wrong token's scrape refused."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from gateway_helpers import AUTH, TOKEN
from servers.prometheus import Prometheus, ScrapeJob, promtool_check_metrics, start_prometheus, stop
from strategies import event_dicts
from websockets.asyncio.client import connect

from wia_security.connectors.gateway import GatewaySettings
from wia_security.connectors.gateway.server import GatewayServer

METRICS_TOKEN = "metrics-only-token-prometheus-0123"
# A destination name with every character the text format escapes: `"`, `\` and a line feed.
ODD_NAME = 'odd "quoted" \\ back\\slash\nline2'


def hec_body(events: list[dict]) -> str:
    return "".join(json.dumps({"event": e, "sourcetype": "wia"}) for e in events)


def destinations_config(tmp_path) -> str:
    """A [destinations.NAME] file whose one destination (a file, which delivers at once) has ODD_NAME."""
    toml_key = ODD_NAME.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    path = tmp_path / "destinations.toml"
    path.write_text(f'[destinations."{toml_key}"]\nurl = "file://{tmp_path}/odd.ndjson"\n')
    return str(path)


@contextlib.contextmanager
def mixed_traffic(gw) -> Iterator[dict[str, int]]:
    """Valid, invalid and unparseable POSTs, HEC (with a channel, and a bad wrapper), refused requests and
    two stream clients that subscribe, receive and publish; one of them stays connected until the block ends.
    Yields what was accepted and rejected, by counter."""
    events = iter(event_dicts(200, seed=4400))

    def take(n: int) -> list[dict]:
        return [next(events) for _ in range(n)]
    sent = {"http_accepted": 0, "http_invalid": 0, "http_unparseable": 0, "hec_accepted": 0, "stream_accepted": 0}
    with requests.Session() as s:
        good, bad = take(7), [{**e, "severity": 11} for e in take(2)]
        body = "\n".join([json.dumps(e) for e in good + bad] + ["{not json"])
        assert s.post(gw.url + "/v1/events", data=body, headers=AUTH).status_code == 207
        sent.update(http_accepted=7, http_invalid=2, http_unparseable=1)
        assert s.post(gw.url + "/v1/events", json=take(5), headers=AUTH).status_code == 200
        sent["http_accepted"] += 5
        splunk = {"Authorization": f"Splunk {TOKEN}"}
        r = s.post(gw.url + "/services/collector/event?channel=c-1", data=hec_body(take(4)), headers=splunk)
        assert r.status_code == 200 and "ackId" in r.json()
        r = s.post(gw.url + "/services/collector/event", data=hec_body(take(2)) + '{"sourcetype": "wia"}',
                   headers=splunk)
        assert r.status_code == 400 and r.json()["code"] == 12
        sent["hec_accepted"] += 6
        assert s.post(gw.url + "/v1/events", json=take(1), headers={"Authorization": "Bearer nope-nope-nope-nope"}
                      ).status_code == 401
        assert s.get(gw.url + "/no/such/route", headers=AUTH).status_code == 404

    async def stream() -> Any:
        clients = []
        for _ in range(2):
            ws = await connect(gw.ws_url, additional_headers=AUTH)
            await ws.send(json.dumps({"action": "subscribe", "subscriptions": [{"channel": "events"}]}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["action"] == "subscribed"
            clients.append(ws)
        await clients[0].send(json.dumps({"action": "publish", "request_id": "p1", "events": take(3)}))
        for ws in clients:                       # both see the three events; the publisher also its reply
            seen = 0
            while seen < 3:
                if json.loads(await asyncio.wait_for(ws.recv(), 5))["action"] == "event":
                    seen += 1
        await clients[1].close()
        return clients[0]

    with asyncio.Runner() as runner:             # one loop for the client that stays open across the block
        still_open = runner.run(stream())
        sent["stream_accepted"] = 3
        try:
            yield sent
        finally:
            runner.run(still_open.close())


# --- promtool ---
def test_promtool_check_metrics_finds_nothing_after_mixed_traffic(make_gateway, tmp_path):
    gw = make_gateway(metrics_tokens=[METRICS_TOKEN], destinations=destinations_config(tmp_path))
    with mixed_traffic(gw):
        r = requests.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200
    body = r.content.decode("utf-8")
    # the traffic shows up in the body, so promtool reads labelled series of every kind, not an empty scrape
    assert 'source="stream"} 3' in body and 'wia_gateway_stream_clients 1' in body and 'line2' in body
    checked = promtool_check_metrics(body)
    # exit 0 means no parse error and no lint problem (missing HELP, counter not ending in _total, ...)
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stdout + checked.stderr


def test_promtool_is_strict_enough_to_catch_a_broken_exposition():
    """The gate above means something: promtool refuses what the gateway must never write."""
    broken = {
        "unescaped quote in a label value": '# HELP a_total x\n# TYPE a_total counter\na_total{sink="a"b"} 1\n',
        "counter without _total": "# HELP a x\n# TYPE a counter\na 1\n",
        "no HELP": "# TYPE a_total counter\na_total 1\n",
    }
    for why, text in broken.items():
        assert promtool_check_metrics(text).returncode != 0, why


# --- a real Prometheus scraping the gateway ---
@dataclass
class Scraped:
    gw: GatewayServer
    prom: Prometheus
    dir: Path


@pytest.fixture(scope="module")
def scraped(tmp_path_factory) -> Iterator[Scraped]:
    """One gateway and one Prometheus for the module: Prometheus 2.42 applies new targets on a 5 s tick, so a
    server per test would cost 5 s each. Job `wia` scrapes with the metrics-only token, job `wrong` with a token
    the gateway does not know. Only the counting test sends events."""
    directory = tmp_path_factory.mktemp("gateway-prometheus")
    gw = GatewayServer(GatewaySettings(
        tokens=[TOKEN], metrics_tokens=[METRICS_TOKEN], store=f"sqlite:///{directory}/events.db",
        dead_letter=str(directory / "dead.ndjson"), taxii=False, destinations=destinations_config(directory))).start()
    try:
        (directory / "prom").mkdir()
        target = f"127.0.0.1:{gw.port}"
        prom = start_prometheus(directory / "prom", [ScrapeJob("wia", target, METRICS_TOKEN),
                                                      ScrapeJob("wrong", target, "not-the-metrics-token-0123456789")])
        try:
            yield Scraped(gw, prom, directory)
        finally:
            stop(prom)
    finally:
        gw.stop()


def values(samples: list[dict], **labels: str) -> dict[frozenset, float]:
    """The samples whose labels include these, keyed by their remaining labels."""
    drop = {"__name__", "job", "instance", *labels}
    return {frozenset((k, v) for k, v in s["metric"].items() if k not in drop): s["value"]
            for s in samples if all(s["metric"].get(k) == v for k, v in labels.items())}


def test_prometheus_scrapes_exact_counts_with_a_metrics_token(scraped: Scraped):
    gw, prom = scraped.gw, scraped.prom
    target = prom.wait_for_target("wia", after=0)
    assert target["health"] == "up" and target["lastError"] == "", target
    assert target["scrapeUrl"] == f"http://127.0.0.1:{gw.port}/metrics"

    with mixed_traffic(gw) as sent:
        pass
    valid = event_dicts(40, seed=4500)
    with requests.Session() as s:                # N more, one request each, half of them invalid
        for i, event in enumerate(valid):
            r = s.post(gw.url + "/v1/events", json=event if i % 2 else {**event, "severity": 11}, headers=AUTH)
            assert r.status_code == (200 if i % 2 else 400), r.text
    sent["http_accepted"] += 20
    sent["http_invalid"] += 20
    done = time.time()

    accepted = values(prom.samples_after('wia_gateway_events_accepted_total{job="wia"}', done))
    assert accepted == {frozenset({("source", "http")}): sent["http_accepted"],
                        frozenset({("source", "hec")}): sent["hec_accepted"],
                        frozenset({("source", "stream")}): sent["stream_accepted"]}
    rejected = values(prom.samples_after('wia_gateway_events_rejected_total{job="wia"}', done), source="http")
    assert rejected == {frozenset({("reason", "invalid")}): sent["http_invalid"],
                        frozenset({("reason", "unparseable")}): sent["http_unparseable"],
                        frozenset({("reason", "store_refused")}): 0}
    # PromQL arithmetic over the scraped series agrees with the totals
    total = sum(sent[k] for k in ("http_accepted", "hec_accepted", "stream_accepted"))
    assert [float(r["value"][1]) for r in prom.query('sum(wia_gateway_events_accepted_total{job="wia"})')] == [total]
    # the destination's name, with `"`, `\` and a line feed, comes back from Prometheus as the same label value
    delivered = values(prom.samples_after('wia_gateway_destination_events_total{job="wia",outcome="delivered"}', done),
                       outcome="delivered")
    assert delivered == {frozenset({("sink", ODD_NAME)}): total}
    assert len((scraped.dir / "odd.ndjson").read_text().splitlines()) == total
    exact = json.dumps(ODD_NAME)                 # a PromQL string literal: Go escapes, of which JSON's are a subset
    matched = prom.query(f'wia_gateway_destination_events_total{{job="wia",sink={exact},outcome="delivered"}}')
    assert [r["metric"]["sink"] for r in matched] == [ODD_NAME]
    assert [float(r["value"][1]) for r in prom.query('up{job="wia"}')] == [1.0]
    target = prom.targets()["wia"]
    assert target["health"] == "up" and target["lastError"] == "", target


def test_prometheus_with_a_wrong_token_gets_401_and_the_target_is_down(scraped: Scraped):
    prom = scraped.prom
    started = time.time()
    wrong = prom.wait_for_target("wrong", after=started)
    assert wrong["health"] == "down", wrong
    assert "401" in wrong["lastError"], wrong
    right = prom.wait_for_target("wia", after=started)
    assert right["health"] == "up" and right["lastError"] == "", right
    # The gateway has answered (and counted) a 401 and a 200 by now. A scrape's body counts only the answers
    # before it, so the counts are read from a later one: the first successful scrape, when this test is the
    # first of the module on its worker (worksteal, or alone), has no 2xx yet.
    answered_by_now = time.time()
    up = {s["metric"]["job"]: s["value"] for s in prom.samples_after("up", started)}
    assert up == {"wia": 1.0, "wrong": 0.0}
    # the gateway answered the refused scrapes 401 and counted them as 4xx answers of /metrics
    answers = values(prom.samples_after('wia_gateway_http_requests_total{job="wia",endpoint="/metrics"}',
                                         answered_by_now),
                     method="GET", endpoint="/metrics")
    assert answers[frozenset({("status_class", "4xx")})] >= 1
    assert answers[frozenset({("status_class", "2xx")})] >= 1


def test_prometheus_reads_every_family_with_its_type_and_help(scraped: Scraped):
    """What Prometheus itself understood of each family (its metadata API): counters typed `counter` (a lost
    TYPE line makes a family `unknown`, which promtool accepts), everything else a gauge, every one with HELP."""
    prom = scraped.prom
    names = {s["metric"]["__name__"]
             for s in prom.samples_after('{job="wia",__name__=~"wia_gateway_.+"}', time.time())}
    assert {"wia_gateway_events_accepted_total", "wia_gateway_destination_events_total",
            "wia_gateway_stream_clients", "wia_gateway_start_time_seconds"} <= names
    metadata = {m["metric"]: m for m in prom.api("/api/v1/targets/metadata", match_target='{job="wia"}')}
    for name in names:
        assert metadata[name]["type"] == ("counter" if name.endswith("_total") else "gauge"), metadata[name]
        assert metadata[name]["help"], metadata[name]
