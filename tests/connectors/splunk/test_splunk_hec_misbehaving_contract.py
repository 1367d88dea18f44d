"""HEC sink against a misbehaving HEC: the contract server behind tests/servers/fault_proxy.py, which
answers chosen requests like a broken proxy or network would (HTML error pages, 200s that are not HEC
replies, redirects, cut bodies, hangs, odd Retry-After values). For every scenario: each event sent is
delivered, a duplicate, or dead-lettered with a reason, and the token never shows in a reason or log."""
from __future__ import annotations

import json
import logging
import time
from email.utils import formatdate

import pytest

from servers.fault_proxy import HTML_502, HTML_504, HTML_LOGIN, Fault, FaultProxy  # noqa: E402
from servers.hec_contract import HecContractServer  # noqa: E402
from strategies import event_dicts  # noqa: E402

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.splunk.hec import HecSink

TOKEN = "5e0c1d2a-77b4-4c1e-9d3f-a1b2c3d4e5f6"
ACK_TOKEN = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
POLICY = DeliveryPolicy(max_wait=0, max_events=5, initial_backoff=0.001, max_backoff=0.005, max_attempts=3)
EVENT_PATH = "/services/collector/event"


@pytest.fixture
def proxied():
    with HecContractServer({TOKEN: {}, ACK_TOKEN: {"ack": True}}) as hec, FaultProxy(hec.url) as proxy:
        yield hec, proxy


def run(proxy, *faults, n=5, token=TOKEN, **options):
    """Send n events through the proxy with `faults` queued; returns (report, sleeps, events)."""
    proxy.add(*faults)
    sleeps: list[float] = []
    events = event_dicts(n, seed=21)
    options.setdefault("timeout", (2.0, 1.0))
    sink = HecSink(proxy.url, token=token, delivery=options.pop("delivery", POLICY), sleep=sleeps.append, **options)
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    assert report.delivered + report.duplicates + len(report.failed) == n, report
    for rejected in report.failed:
        assert rejected.reason and TOKEN not in rejected.reason and ACK_TOKEN not in rejected.reason
        assert rejected.event in events
    return report, sleeps, events


def html(status, body, **headers):
    return Fault("reply", status=status, body=body, headers={"Content-Type": "text/html", **headers},
                 path=EVENT_PATH)


@pytest.mark.parametrize("status,page", [(502, HTML_502), (504, HTML_504)])
def test_contract_proxy_html_error_page_is_retried_then_indexed(proxied, status, page):
    hec, proxy = proxied
    report, sleeps, events = run(proxy, html(status, page))
    assert report.delivered == 5 and not report.failed and len(sleeps) == 1
    assert sorted(e["event"]["id"] for e in hec.events) == sorted(e["id"] for e in events)


def test_contract_proxy_html_error_page_every_time_dead_letters_with_the_status(proxied):
    hec, proxy = proxied
    report, _, _ = run(proxy, *[html(502, HTML_502)] * 3)
    assert len(report.failed) == 5 and not hec.events
    assert all("gave up after 3 attempt(s)" in r.reason and "HEC 502" in r.reason and "Bad Gateway" in r.reason
               for r in report.failed)


@pytest.mark.parametrize("body", [HTML_LOGIN, b'{"text": "Succ', b"", b"[0]", b'{"status": "ok"}'],
                         ids=["html-login-page", "truncated-json", "empty", "json-array", "json-without-code"])
def test_contract_200_that_is_not_a_hec_reply_is_not_counted_as_delivered(proxied, body):
    """A 200 whose body is not a HEC reply (a captive portal, a web UI, a cut reply) proves nothing:
    the events are re-sent, never counted as indexed on its word."""
    hec, proxy = proxied
    report, sleeps, events = run(proxy, Fault("reply", status=200, body=body, path=EVENT_PATH))
    assert report.delivered == 5 and not report.failed and len(sleeps) == 1
    assert len(proxy.seen) == 2 and proxy.seen[1].fault is None            # the retry reached HEC


def test_contract_200_that_is_never_a_hec_reply_dead_letters_with_why(proxied):
    hec, proxy = proxied
    report, _, _ = run(proxy, *[Fault("reply", status=200, body=HTML_LOGIN, path=EVENT_PATH)] * 3)
    assert len(report.failed) == 5
    assert all("not a HEC reply" in r.reason and "Sign in" in r.reason for r in report.failed)


def test_contract_200_with_an_error_code_fails_with_the_code(proxied):
    hec, proxy = proxied
    report, _, _ = run(proxy, Fault("reply", status=200, body=b'{"text": "Invalid token", "code": 4}', path=EVENT_PATH))
    assert len(report.failed) == 5 and all(r.reason.startswith("HEC 200 code 4: Invalid token") for r in report.failed)


@pytest.mark.parametrize("status,retried", [(400, False), (503, True)])
def test_contract_unknown_hec_code_is_judged_by_http_status(proxied, status, retried):
    hec, proxy = proxied
    report, sleeps, _ = run(proxy, Fault("reply", status=status, body=b'{"text": "Mystery", "code": 99}',
                                         path=EVENT_PATH))
    if retried:
        assert report.delivered == 5 and len(sleeps) == 1
    else:
        assert len(report.failed) == 5 and not sleeps
        assert all(r.reason == "HEC 400 code 99: Mystery" for r in report.failed)


@pytest.mark.parametrize("number", [5, -1, "2", None])
def test_contract_invalid_event_number_out_of_range_fails_the_batch_not_silently(proxied, number):
    hec, proxy = proxied
    body = json.dumps({"text": "Invalid data format", "code": 6, "invalid-event-number": number}).encode()
    report, _, _ = run(proxy, Fault("reply", status=400, body=body, path=EVENT_PATH))
    assert len(report.failed) == 5 and all("HEC 400 code 6" in r.reason for r in report.failed)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_contract_redirect_is_a_configuration_error_naming_the_location(proxied, status):
    """HEC never redirects; a redirect is a proxy or a wrong URL. Following it would turn the POST into a
    GET (301/302) or send the token to another host: the events fail at once, naming where it pointed."""
    hec, proxy = proxied
    location = "https://splunk.example.com:8088/services/collector/event"
    report, sleeps, _ = run(proxy, Fault("reply", status=status, headers={"Location": location}, path=EVENT_PATH))
    assert len(report.failed) == 5 and not sleeps and not hec.events
    assert all(f"HEC {status}" in r.reason and location in r.reason for r in report.failed)
    assert len(proxy.seen) == 1                                             # not followed


@pytest.mark.parametrize("status", [401, 403])
def test_contract_proxy_auth_failure_fails_once_without_the_token(proxied, status, caplog):
    hec, proxy = proxied
    caplog.set_level(logging.DEBUG)
    page = b"<html><body>Access denied</body></html>"
    report, sleeps, _ = run(proxy, *[html(status, page)] * 5)
    assert len(report.failed) == 5 and not sleeps and len(proxy.seen) == 1
    assert all(f"HEC {status}" in r.reason for r in report.failed)
    assert TOKEN not in caplog.text


def test_contract_retry_after_seconds_is_a_floor(proxied):
    hec, proxy = proxied
    report, sleeps, _ = run(proxy, html(503, b"busy", **{"Retry-After": "7"}))
    assert report.delivered == 5 and sleeps == [7.0]


def test_contract_retry_after_http_date_is_a_floor(proxied):
    hec, proxy = proxied
    report, sleeps, _ = run(proxy, html(429, b"slow down", **{"Retry-After": formatdate(time.time() + 30, usegmt=True)}))
    assert report.delivered == 5 and len(sleeps) == 1 and 25 <= sleeps[0] <= 31


@pytest.mark.parametrize("value", ["soon", "-5", "1e999", "NaN", "Wed, 99 Foo 2026 99:99:99 GMT", ""])
def test_contract_garbage_retry_after_falls_back_to_backoff(proxied, value):
    hec, proxy = proxied
    report, sleeps, _ = run(proxy, html(503, b"busy", **{"Retry-After": value}))
    assert report.delivered == 5 and len(sleeps) == 1 and 0 <= sleeps[0] <= POLICY.backoff_ceiling(1)


def test_contract_connection_closed_mid_reply_is_retried(proxied):
    hec, proxy = proxied
    cut = Fault("reply", status=200, body=b'{"text": "Succ', length=100, headers={"Content-Type": "application/json"},
                path=EVENT_PATH)
    report, sleeps, _ = run(proxy, cut)
    assert report.delivered == 5 and len(sleeps) == 1


def test_contract_reply_lost_after_indexing_gives_at_least_once(proxied):
    hec, proxy = proxied
    lost = Fault("forward_then", status=200, body=b'{"text": "Succ', length=100, path=EVENT_PATH)
    report, _, events = run(proxy, lost)
    assert report.delivered == 5 and not report.failed
    assert sorted(e["event"]["id"] for e in hec.events) == sorted([e["id"] for e in events] * 2)


def test_contract_server_that_hangs_past_the_timeout_is_retried_then_dead_lettered(proxied):
    hec, proxy = proxied
    started = time.monotonic()
    # each hang lasts until the client gives up (at most 30 s): 1 s hangs against a 3 s bound raced on a loaded machine
    report, _, _ = run(proxy, *[Fault("hang", seconds=30, path=EVENT_PATH)] * 3, timeout=(1.0, 0.2))
    elapsed = time.monotonic() - started
    assert proxy.hangs_abandoned_after(3) == 3 and elapsed < 15, elapsed
    assert len(report.failed) == 5
    assert all("gave up after 3 attempt(s)" in r.reason and "timed out" in r.reason.lower() for r in report.failed)


def test_contract_connection_reset_without_reply_is_retried(proxied):
    hec, proxy = proxied
    report, sleeps, _ = run(proxy, Fault("reset", path=EVENT_PATH), Fault("reset", path=EVENT_PATH))
    assert report.delivered == 5 and len(sleeps) == 2


@pytest.mark.parametrize("ack_reply", [Fault("reply", status=502, body=HTML_502, path="/services/collector/ack"),
                                       Fault("reply", status=200, body=b"<html/>", path="/services/collector/ack"),
                                       Fault("reply", status=200, body=b'{"acks": [true]}', path="/services/collector/ack"),
                                       Fault("reset", path="/services/collector/ack")],
                         ids=["html-502", "html-200", "acks-list", "reset"])
def test_contract_misbehaving_ack_endpoint_keeps_polling(proxied, ack_reply):
    hec, proxy = proxied
    report, _, _ = run(proxy, ack_reply, token=ACK_TOKEN, ack=True)
    assert report.delivered == 5 and not report.failed
    assert sum(1 for s in proxy.seen if "/ack" in s.path) >= 2
