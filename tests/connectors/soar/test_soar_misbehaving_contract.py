"""Splunk SOAR and XSOAR sinks against misbehaving servers: the contract servers behind
tests/servers/fault_proxy.py (HTML error pages, 2xx replies that are not the product's answer,
redirects, cut bodies, hangs, Retry-After forms). Both products de-duplicate (SOAR by
source_data_identifier, the XSOAR sink by searching before it creates), so an answer that proves
nothing is retried, and a retry after a lost success reports a duplicate: for every event sent,
delivered + duplicates + dead-lettered == sent, and no reason or log carries the token."""
from __future__ import annotations

import logging
import time
from email.utils import formatdate

import pytest

from servers.fault_proxy import HTML_502, HTML_504, HTML_LOGIN, Fault, FaultProxy  # noqa: E402
from strategies import event_dicts  # noqa: E402

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink
from wia_security.connectors.soar.xsoar import XsoarSink
from wia_security.errors import DeliveryError

from splunk_soar_contract import SplunkSoarServer
from xsoar_contract import XsoarServer

POLICY = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.005, max_attempts=3)
HTML = {"Content-Type": "text/html"}
JSON = {"Content-Type": "application/json"}
CONTAINER = "/rest/container$"
INCIDENT = "/incident$"
SEARCH = "/incidents/search$"


@pytest.fixture(params=["soar", "xsoar"])
def product(request):
    server = SplunkSoarServer() if request.param == "soar" else XsoarServer()
    with server, FaultProxy(server.url) as proxy:
        proxy.kind, proxy.server = request.param, server
        proxy.create = CONTAINER if request.param == "soar" else INCIDENT
        proxy.secret = server.token if request.param == "soar" else server.api_key
        yield proxy


def stored(proxy) -> int:
    return len(proxy.server.containers if proxy.kind == "soar" else proxy.server.incidents)


def run(proxy, *faults, n=2, caplog=None, **options):
    proxy.add(*faults)
    sleeps: list[float] = []
    events = event_dicts(n, seed=31)
    cls = SplunkSoarSink if proxy.kind == "soar" else XsoarSink
    options.setdefault("timeout", (2.0, 1.0))
    sink = cls(proxy.url, token=proxy.secret, delivery=options.pop("delivery", POLICY), sleep=sleeps.append, **options)
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    assert report.delivered + report.duplicates + len(report.failed) == n, report
    for rejected in report.failed:
        assert rejected.reason and proxy.secret not in rejected.reason and rejected.event in events
    if caplog is not None:
        assert proxy.secret not in caplog.text
    return report, sleeps


def reply(proxy, status, body=b"", headers=None, **kw):
    return Fault("reply", status=status, body=body, headers=headers or {}, path=proxy.create, method="POST", **kw)


@pytest.mark.parametrize("status,page", [(502, HTML_502), (504, HTML_504)])
def test_contract_proxy_html_error_page_is_retried(product, status, page):
    report, sleeps = run(product, reply(product, status, page, HTML))
    assert report.delivered == 2 and len(sleeps) == 1 and stored(product) == 2


def test_contract_proxy_html_error_page_every_time_dead_letters_with_the_status(product):
    report, _ = run(product, *[reply(product, 502, HTML_502, HTML)] * 6)
    assert len(report.failed) == 2 and stored(product) == 0
    assert all("gave up after 3 attempt(s)" in r.reason and "502" in r.reason for r in report.failed)


@pytest.mark.parametrize("body", [HTML_LOGIN, b"", b"{}", b'{"success": true}', b'{"id": ""}', b'{"id": null}', b"[1]"],
                         ids=["html", "empty", "empty-object", "no-id", "blank-id", "null-id", "array"])
def test_contract_2xx_that_is_not_a_create_answer_is_not_counted_as_created(product, body):
    """Nothing was created (the proxy answered): counting it delivered would lose the event."""
    report, sleeps = run(product, reply(product, 200, body, JSON))
    assert report.delivered == 2 and len(sleeps) == 1 and stored(product) == 2


def test_contract_create_answer_lost_after_creation_retries_into_a_duplicate(product):
    lost = Fault("forward_then", status=200, body=HTML_LOGIN, headers=HTML, path=product.create, method="POST")
    report, _ = run(product, lost)
    assert (report.delivered, report.duplicates, report.failed) == (1, 1, []) and stored(product) == 2


def test_contract_create_answer_cut_mid_body_retries_into_a_duplicate(product):
    cut = Fault("forward_then", status=200, body=b'{"id": 1', length=200, headers=JSON, path=product.create,
                method="POST")
    report, _ = run(product, cut)
    assert (report.delivered, report.duplicates, report.failed) == (1, 1, []) and stored(product) == 2


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_contract_redirect_fails_at_once_naming_the_location_and_is_not_followed(product, status):
    location = "https://sso.example.com/login"
    report, sleeps = run(product, *[reply(product, status, b"", {"Location": location})] * 2)
    assert len(report.failed) == 2 and not sleeps and stored(product) == 0
    assert all(f"HTTP {status} redirect to {location}" in r.reason for r in report.failed)
    assert all(s.fault is not None or "/login" not in s.path for s in product.seen)


@pytest.mark.parametrize("status", [401, 403])
def test_contract_auth_failure_is_not_retried_and_never_shows_the_token(product, status, caplog):
    caplog.set_level(logging.DEBUG)
    report, sleeps = run(product, *[reply(product, status, b"<html>denied</html>", HTML)] * 2, caplog=caplog)
    assert len(report.failed) == 2 and not sleeps
    assert all(str(status) in r.reason for r in report.failed)


def test_contract_retry_after_seconds_and_http_date_are_floors(product):
    date = formatdate(time.time() + 20, usegmt=True)
    report, sleeps = run(product, reply(product, 503, b"busy", {"Retry-After": "6"}),
                         reply(product, 429, b"slow", {"Retry-After": date}))
    assert report.delivered == 2 and sleeps[0] == 6.0 and 15 <= sleeps[1] <= 21


@pytest.mark.parametrize("value", ["soon", "-3", "1e999", ""])
def test_contract_garbage_retry_after_falls_back_to_backoff(product, value):
    report, sleeps = run(product, reply(product, 503, b"busy", {"Retry-After": value}))
    assert report.delivered == 2 and len(sleeps) == 1 and sleeps[0] <= POLICY.backoff_ceiling(1)


def test_contract_server_that_hangs_past_the_timeout_is_retried(product):
    # The hang lasts until the client gives up (at most 30 s); the usual 1 s read timeout, which the healthy requests
    # have too (0.3 s under a 1.5 s hang timed out healthy requests on a loaded machine, and ran past 1.4 s).
    started = time.monotonic()
    report, sleeps = run(product, Fault("hang", seconds=30, path=product.create, method="POST"))
    elapsed = time.monotonic() - started
    assert report.delivered == 2 and len(sleeps) == 1
    assert product.hangs_abandoned_after(1) == 1                # the client gave up; it did not wait for the server
    assert elapsed < 15, elapsed


def test_contract_connection_reset_is_retried_once_per_attempt(product):
    report, sleeps = run(product, Fault("reset", path=product.create, method="POST"))
    assert report.delivered == 2 and len(sleeps) == 1
    assert sum(1 for s in product.seen if s.fault == "reset") == 1          # the client library did not retry on its own


# -- XSOAR's pre-create search -----------------------------------------------------------------------

@pytest.fixture
def xsoar():
    with XsoarServer() as server, FaultProxy(server.url) as proxy:
        proxy.kind, proxy.server, proxy.create, proxy.secret = "xsoar", server, INCIDENT, server.api_key
        yield proxy


@pytest.mark.parametrize("body", [HTML_LOGIN, b'{"total": 1}', b'{"total": 1, "data": {"id": "1"}}',
                                  b'{"total": 1, "data": [{"name": "no id"}]}', b"{}"],
                         ids=["html", "total-without-data", "data-not-a-list", "incident-without-id", "empty"])
def test_contract_xsoar_search_reply_that_is_not_a_search_result_is_retried_not_read_as_none(xsoar, body):
    """Read as "no incident yet", such a reply would make the sink create a second incident."""
    first, _ = run(xsoar, n=2)
    again, sleeps = run(xsoar, Fault("reply", status=200, body=body, headers=JSON, path=SEARCH), n=2)
    assert first.delivered == 2 and again.duplicates == 2 and len(sleeps) == 1
    assert len(xsoar.server.incidents) == 2


# -- Splunk SOAR's playbook start ----------------------------------------------------------------------

@pytest.mark.parametrize("body", [b'{"message": "playbook run request received"}', b'{"playbook_run_id": "x"}'],
                         ids=["no-run-id", "bad-run-id"])
def test_contract_soar_playbook_reply_without_a_run_id_keeps_the_container_delivered(body):
    with SplunkSoarServer() as server, FaultProxy(server.url) as proxy:
        proxy.kind, proxy.server, proxy.create, proxy.secret = "soar", server, CONTAINER, server.token
        proxy.add(*[Fault("reply", status=200, body=body, headers=JSON, path="/rest/playbook_run$")] * 2)
        sink = SplunkSoarSink(proxy.url, token=server.token, playbook="local/wia_triage", delivery=POLICY)
        report = sink.send(event_dicts(2, seed=32))
        report.merge(sink.flush())
        sink.close()
    assert report.delivered == 2 and not report.failed and len(server.containers) == 2
    assert all(isinstance(v, str) and v.startswith("not started:") for v in sink.playbook_runs.values())


def test_contract_soar_container_query_with_a_malformed_list_is_a_clear_error():
    with SplunkSoarServer() as server, FaultProxy(server.url) as proxy:
        proxy.add(Fault("reply", status=200, body=b'{"count": 1, "data": {"id": 3}}', headers=JSON))
        sink = SplunkSoarSink(proxy.url, token=server.token, delivery=POLICY)
        with pytest.raises(DeliveryError, match="/data is not a list of containers"):
            sink.find_container("3f1c4b52-7f58-4c47-9a7a-0b1f0f5e9d21")
        sink.close()


def test_contract_nothing_listening_is_a_network_error_retried_then_dead_lettered(product):
    port = product.port
    product.stop()                                             # the address refuses connections
    sleeps: list[float] = []
    cls = SplunkSoarSink if product.kind == "soar" else XsoarSink
    sink = cls(f"http://127.0.0.1:{port}", token=product.secret, delivery=POLICY, sleep=sleeps.append)
    report = sink.send(event_dicts(1, seed=33))
    report.merge(sink.flush())
    sink.close()
    [rejected] = report.failed
    assert len(sleeps) == 2 and rejected.retryable and "network error" in rejected.reason
    assert "gave up after 3 attempt(s)" in rejected.reason


@pytest.mark.parametrize("lost", [
    Fault("forward_then", status=200, body=HTML_LOGIN, headers=HTML, path=CONTAINER, method="POST"),
    Fault("forward_then", status=200, body=b'{"id": 1', length=200, headers=JSON, path=CONTAINER, method="POST"),
    Fault("forward_then", status=504, body=HTML_504, headers=HTML, path=CONTAINER, method="POST"),
], ids=["html-after-create", "cut-after-create", "gateway-timeout-after-create"])
def test_contract_soar_playbook_runs_on_a_container_whose_create_answer_was_lost(lost):
    """The retry meets existing_container_id for the container the lost attempt made: it is this sink's
    own new container, so its playbook still runs (it never did before: a duplicate started nothing)."""
    events = event_dicts(2, seed=34)
    with SplunkSoarServer() as server, FaultProxy(server.url) as proxy:
        proxy.add(lost)
        sink = SplunkSoarSink(proxy.url, token=server.token, playbook="local/wia_triage", delivery=POLICY,
                              sleep=lambda _: None)
        report = sink.send(events)
        report.merge(sink.flush())
        # a container another run made (SOAR answers existing_container_id at once): no second playbook run
        again = sink.send([events[0]])
        again.merge(sink.flush())
        sink.close()
    assert report.delivered + report.duplicates == 2 and not report.failed and len(server.containers) == 2
    assert again.duplicates == 1
    runs = sorted(run["container"] for run in server.playbook_runs.values())
    assert runs == sorted(server.containers), server.playbook_runs
    assert set(sink.playbook_runs) == set(server.containers)


@pytest.mark.parametrize("busy", [
    Fault("reply", status=503, body=b'{"failed": true, "message": "busy"}', headers={**JSON, "Retry-After": "1"},
          path="/rest/playbook_run$", method="POST"),
    Fault("reply", status=200, body=HTML_LOGIN, headers=HTML, path="/rest/playbook_run$", method="POST"),
    Fault("reset", path="/rest/playbook_run$", method="POST"),
], ids=["503-retry-after", "html-page", "reset"])
def test_contract_soar_playbook_start_refused_for_a_while_is_retried_with_the_event(busy):
    """A 503/429, a proxy's page or a reset on POST /rest/playbook_run is passing: the event is retried (SOAR
    answers existing_container_id, and the playbook is started then). Before, it was recorded 'not started'
    at once and the container never got its playbook."""
    events = event_dicts(2, seed=35)
    with SplunkSoarServer() as server, FaultProxy(server.url) as proxy:
        proxy.add(busy, busy)
        sleeps: list[float] = []
        sink = SplunkSoarSink(proxy.url, token=server.token, playbook="local/wia_triage", delivery=POLICY,
                              sleep=sleeps.append)
        report = sink.send(events)
        report.merge(sink.flush())
        sink.close()
    assert report.delivered + report.duplicates == 2 and not report.failed and len(server.containers) == 2
    assert sorted(r["container"] for r in server.playbook_runs.values()) == sorted(server.containers)
    assert all(isinstance(run, int) for run in sink.playbook_runs.values())
    assert 1 in sleeps or "Retry-After" not in busy.headers


def test_contract_soar_playbook_never_starting_fails_the_event_naming_the_container():
    events = event_dicts(1, seed=36)
    with SplunkSoarServer() as server, FaultProxy(server.url) as proxy:
        proxy.add(*[Fault("reply", status=503, body=HTML_502, headers=HTML, path="/rest/playbook_run$",
                          method="POST")] * 3)
        sink = SplunkSoarSink(proxy.url, token=server.token, playbook="local/wia_triage", delivery=POLICY,
                              sleep=lambda _: None)
        report = sink.send(events)
        report.merge(sink.flush())
        sink.close()
    (rejected,) = report.failed
    (cid,) = server.containers
    assert len(server.containers) == 1 and not server.playbook_runs
    assert rejected.retryable and f"container {cid} created" in rejected.reason and "local/wia_triage" in rejected.reason
    assert server.token not in rejected.reason
