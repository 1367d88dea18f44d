"""Sentinel sink (azure-monitor-ingestion) and incidents source (azure-mgmt-securityinsight) against a
misbehaving endpoint: the TLS contract server behind tests/servers/fault_proxy.py (also TLS, same
throwaway certificate). HTML pages, 200 where the API answers 204, redirects, cut replies, hangs, odd
Retry-After values; unreadable incident pages and records. For N events sent: delivered +
dead-lettered == N with the reason, never the bearer token; a bad record read back is an error Item."""
from __future__ import annotations

import json
import logging
import time
from email.utils import formatdate
from pathlib import Path

import pytest

pytest.importorskip("azure.monitor.ingestion", reason="the azure extra is not installed")

from servers.fault_proxy import HTML_502, HTML_504, HTML_LOGIN, Fault, FaultProxy  # noqa: E402
from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401
from strategies import event_dicts  # noqa: E402

from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.azure.sentinel import SentinelIncidents  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.errors import ConfigError, DeliveryError, ParseError  # noqa: E402

DCR = "dcr-00000000000000000000000000000000"
POLICY = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.005, max_attempts=3)
INGEST = "/streams/"
JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html"}


@pytest.fixture
def proxy(sentinel):
    cert = sentinel.ca_file
    with FaultProxy(sentinel.endpoint, certfile=cert, keyfile=str(Path(cert).with_name("key.pem")),
                    upstream_ca=cert, host="localhost") as proxy:
        proxy.contract = sentinel
        yield proxy


def rows(proxy) -> list[str]:
    return [r["EventId"] for r in proxy.contract.state.all_rows()]


def run(proxy, *faults, n=3, caplog=None, **client_options):
    proxy.add(*faults)
    events = event_dicts(n, seed=61)
    if "timeout" not in client_options:
        client_options.setdefault("read_timeout", 2)
    sink = open_sink(f"sentinel://localhost:{proxy.port}/{DCR}?ca_file={proxy.contract.ca_file}", delivery=POLICY,
                     **client_options)
    sleeps: list[float] = []
    sink._sleep = sleeps.append
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    token = proxy.contract.state.token
    assert report.delivered + report.duplicates + len(report.failed) == n, report
    assert all(r.reason and token not in r.reason and r.event in events for r in report.failed)
    if caplog is not None:
        assert token not in caplog.text
    return report, sleeps, events


def reply(status, body=b"", headers=None, **kw):
    return Fault("reply", status=status, body=body, headers=headers if headers is not None else dict(JSON),
                 path=INGEST, **kw)


@pytest.mark.parametrize("status,page", [(502, HTML_502), (504, HTML_504)])
def test_contract_proxy_html_error_page_is_retried(proxy, status, page):
    report, sleeps, events = run(proxy, reply(status, page, HTML))
    assert report.delivered == 3 and len(sleeps) == 1 and sorted(rows(proxy)) == sorted(e["id"] for e in events)


def test_contract_200_where_the_api_answers_204_fails_with_a_clear_reason(proxy):
    report, _, _ = run(proxy, reply(200, HTML_LOGIN, HTML))
    assert len(report.failed) == 3 and not rows(proxy)
    assert all("HTTP 200" in r.reason and "Logs Ingestion API answers 204" in r.reason for r in report.failed)


def test_contract_unknown_error_code_is_judged_by_status(proxy):
    body = json.dumps({"error": {"code": "SomethingNew", "message": "new rule"}}).encode()
    report, sleeps, _ = run(proxy, reply(400, body), reply(503, body))
    assert len(report.failed) == 3 and not sleeps
    assert all("HTTP 400 SomethingNew: new rule" in r.reason for r in report.failed)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_contract_redirect_is_not_followed_and_names_the_location(proxy, status):
    """Following a 307/308 would post the rows wherever Location points."""
    report, sleeps, _ = run(proxy, reply(status, b"", {"Location": "https://collector.example.com/ingest"}))
    assert len(report.failed) == 3 and not sleeps and len(proxy.seen) == 1
    assert all(f"HTTP {status}: redirect to https://collector.example.com/ingest" in r.reason for r in report.failed)


@pytest.mark.parametrize("status,body,headers", [
    (401, b'{"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}', JSON),
    (403, b"<html>Forbidden</html>", HTML)])
def test_contract_auth_failure_is_not_retried_and_never_shows_the_token(proxy, status, body, headers, caplog):
    caplog.set_level(logging.DEBUG)
    report, sleeps, _ = run(proxy, *[reply(status, body, headers)] * 3, caplog=caplog)
    assert len(report.failed) == 3 and not sleeps and all(f"HTTP {status}" in r.reason for r in report.failed)


def test_contract_bearer_token_echoed_in_an_error_is_masked(proxy, caplog):
    # The managed identity's token is registered for masking when issued (RedactedTokens); a service that
    # quotes the Authorization header back used to carry it into the reason and the dead letter.
    caplog.set_level(logging.DEBUG)
    token = proxy.contract.state.token
    echo = json.dumps({"error": {"code": "BadRequest", "message": f"got Authorization: Bearer {token}"}}).encode()
    report, _, _ = run(proxy, *[reply(400, echo, JSON)] * 3, caplog=caplog)    # run() asserts the token is absent
    assert len(report.failed) == 3 and all("Bearer <redacted>" in r.reason for r in report.failed)


def test_contract_retry_after_seconds_and_http_date_are_floors(proxy):
    date = formatdate(time.time() + 20, usegmt=True)
    report, sleeps, _ = run(proxy, reply(429, b"{}", {**JSON, "Retry-After": "3"}),
                            reply(503, b"{}", {**JSON, "Retry-After": date}))
    assert report.delivered == 3 and sleeps[0] == 3.0 and 15 <= sleeps[1] <= 21


@pytest.mark.parametrize("value", ["soon", "-2", ""])
def test_contract_garbage_retry_after_falls_back_to_backoff(proxy, value):
    report, sleeps, _ = run(proxy, reply(503, b"busy", {"Content-Type": "text/plain", "Retry-After": value}))
    assert report.delivered == 3 and len(sleeps) == 1 and sleeps[0] <= POLICY.backoff_ceiling(1)


def test_contract_connection_closed_without_a_reply_is_retried(proxy):
    report, sleeps, events = run(proxy, Fault("reset", path=INGEST))
    assert report.delivered == 3 and len(sleeps) == 1 and sorted(rows(proxy)) == sorted(e["id"] for e in events)


def test_contract_reply_cut_mid_body_is_retried(proxy):
    report, sleeps, _ = run(proxy, reply(200, b'{"x', length=100))
    assert report.delivered == 3 and len(sleeps) == 1


def test_contract_reply_lost_after_ingestion_gives_at_least_once(proxy):
    lost = Fault("forward_then", status=502, body=HTML_502, headers=HTML, path=INGEST)
    report, _, events = run(proxy, lost)
    assert report.delivered == 3 and sorted(rows(proxy)) == sorted([e["id"] for e in events] * 2)


def test_contract_hang_past_the_read_timeout_is_retried_then_dead_lettered(proxy):
    started = time.monotonic()
    # each hang lasts until the client gives up (at most 30 s): 1 s hangs raced a 2.5 s bound on a loaded machine
    report, _, _ = run(proxy, *[Fault("hang", seconds=30, path=INGEST)] * 3, read_timeout=0.2)
    elapsed = time.monotonic() - started
    assert proxy.hangs_abandoned_after(3) == 3 and elapsed < 15, elapsed
    assert len(report.failed) == 3
    assert all("gave up after 3 attempt(s)" in r.reason and "network error" in r.reason for r in report.failed)


def test_contract_timeout_option_bounds_a_hung_upload(proxy):
    # `timeout` in the URL sets azure-core's connection and read timeouts (its own default read timeout is 300 s).
    started = time.monotonic()
    report, _, _ = run(proxy, *[Fault("hang", seconds=30, path=INGEST)] * 3, timeout=0.2)
    elapsed = time.monotonic() - started
    assert proxy.hangs_abandoned_after(3) == 3 and elapsed < 15, elapsed
    assert len(report.failed) == 3 and all("network error" in r.reason for r in report.failed)


def test_default_timeouts_are_bounded_and_bad_ones_refused():
    sink = open_sink(f"sentinel://dce.example.com/{DCR}", credential="default")
    assert sink.timeout == 60.0
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(ConfigError, match="timeout.*seconds"):
            open_sink(f"sentinel://dce.example.com/{DCR}?timeout={bad}", credential="default")


# -- incidents source --------------------------------------------------------------------------------

INCIDENT = {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws/"
                  "providers/Microsoft.SecurityInsights/incidents/abc", "name": "abc",
            "properties": {"title": "Brute force", "severity": "Medium", "status": "New", "incidentNumber": 1}}


def incidents(proxy) -> SentinelIncidents:
    return SentinelIncidents("s", "rg", "ws", base_url=proxy.url, ca_file=proxy.contract.ca_file, retry_total=0)


def page(*values, raw=None):
    body = raw if raw is not None else json.dumps({"value": list(values)}).encode()
    return Fault("reply", status=200, body=body, headers=JSON, path="/incidents")


def test_contract_incident_without_name_or_id_is_an_error_item_not_a_crash(proxy):
    nameless = {"properties": {"title": "t", "severity": "Low", "status": "New"}}
    proxy.add(page(INCIDENT, nameless, {**INCIDENT, "name": "def"}))
    client = incidents(proxy)
    items = list(client.items())
    assert [i.ok for i in items] == [True, False, True] and [i.line for i in items] == [1, 2, 3]
    assert "incident 2 (no name): the incident has neither a name nor an id" in str(items[1].error)
    proxy.add(page(INCIDENT, nameless))
    with pytest.raises(ParseError, match="incident 2"):
        list(client.list_events())
    client.close()


@pytest.mark.parametrize("body", [json.dumps({"value": [{**INCIDENT, "properties": "x"}]}).encode(),
                                  json.dumps({"value": [{**INCIDENT, "properties": {**INCIDENT["properties"],
                                                                                    "labels": "oops"}}]}).encode(),
                                  b'{"x": 1}', HTML_LOGIN],
                         ids=["properties-not-an-object", "labels-not-a-list", "no-value", "html"])
def test_contract_unreadable_incident_page_is_one_clear_error(proxy, body):
    proxy.add(page(raw=body))
    client = incidents(proxy)
    with pytest.raises(DeliveryError) as err:
        list(client.items())
    client.close()
    assert "listing incidents failed after 0 incident(s)" in str(err.value)
    assert "readable" in str(err.value) and len(str(err.value)) < 500


def test_contract_incident_listing_that_fails_on_page_two_says_how_far_it_got(proxy, samples):
    client = incidents(proxy)
    client.send([samples["incident-sample"], samples["alert-sample"]])
    proxy.add(Fault("reply", status=502, body=HTML_502, headers=HTML, path="skipToken"))
    got = []
    with pytest.raises(DeliveryError) as err:
        for item in client.items(top=1):
            got.append(item)
    client.close()
    assert len(got) == 1 and "listing incidents failed after 1 incident(s): SecurityInsights: HTTP 502" in str(err.value)
    assert err.value.retryable
