"""Bulk sink against answers a real deployment can give besides the cluster's own: a proxy's 413 page
(nginx's 1 MB `client_max_body_size`), HTML or cut-off bodies with 200, bulk responses whose items do not
fit the request. osmem-server behind the fault-injecting proxy ("emulator" tests), both official
clients; every event delivered or dead-lettered with a clear reason, counted."""
from __future__ import annotations

import json
from typing import Any

import pytest

from servers.osmem import NGINX_413, Fault, FaultProxy  # noqa: E402
from test_elastic_sink import CLIENTS, account, deliver, make_sink, stored_ids, unique_events  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402

POLICY = dict(max_wait=0, initial_backoff=0.01, max_backoff=0.02)


@pytest.mark.parametrize("kind", CLIENTS)
def test_fault_413_from_a_proxy_splits_requests_until_they_fit(kind: str, fault_proxy: FaultProxy) -> None:
    fault_proxy.max_body = 6000                   # a few documents per request
    events = unique_events(40, seed=31)
    sink = make_sink(kind, fault_proxy.url, delivery=DeliveryPolicy(max_events=25, **POLICY))
    report = deliver(sink, events)
    assert (report.delivered, report.duplicates, report.failed) == (40, 0, [])
    assert stored_ids(fault_proxy.url) == {e["id"] for e in events}
    statuses = [s for m, p, s in fault_proxy.requests if "_bulk" in p]
    assert 413 in statuses and statuses.count(200) >= 40 * 1500 // 6000
    # Later batches were made small enough up front: the limit learnt from the refusals stays.
    assert sink.policy.max_bytes < 6000 * 2
    account(report, events, fault_proxy.url)


@pytest.mark.parametrize("kind", CLIENTS)
def test_fault_413_for_one_document_fails_only_that_document(kind: str, fault_proxy: FaultProxy) -> None:
    events = unique_events(12, seed=32)
    events[5]["data"]["description"] = "x" * 20_000        # larger than the proxy takes, alone
    fault_proxy.max_body = 10_000
    report = deliver(make_sink(kind, fault_proxy.url, delivery=DeliveryPolicy(max_events=12, **POLICY)), events)
    assert report.delivered == 11
    (rejected,) = report.failed
    assert rejected.event["id"] == events[5]["id"] and not rejected.retryable
    assert rejected.reason.startswith("HTTP 413: <html>") and "one document of" in rejected.reason
    assert "request size limit" in rejected.reason
    account(report, events, fault_proxy.url)


def _bulk_items(n: int, item: Any) -> bytes:
    return json.dumps({"took": 1, "errors": True, "items": [item] * n}).encode()


ODD_ANSWERS = {
    # name: (fault, what the dead-letter reason says when the one attempt allowed is spent)
    "html-page-with-200": (Fault("status", 200, {"Content-Type": "text/html"}, raw=b"<html><body>Welcome</body></html>"),
                           "bulk response"),
    "empty-200": (Fault("status", 200, raw=b""), "bulk response"),
    "cut-off-json": (Fault("status", 200, raw=b'{"took":1,"errors":false,"ite'), "bulk response could not be read"),
    "json-array": (Fault("status", 200, raw=b"[1,2]"), "bulk response is not a JSON object: [1, 2]"),
    "fewer-items": (Fault("status", 200, raw=_bulk_items(3, {"create": {"status": 201}})),
                    "bulk response has 3 item(s) for 8 action(s)"),
    "items-not-a-list": (Fault("status", 200, raw=b'{"errors":true,"items":{"a":1}}'),
                         "bulk response has items {'a': 1} for 8 action(s)"),
    "item-without-status": (Fault("status", 200, raw=_bulk_items(8, {"create": {"_id": "x"}})),
                            "malformed bulk response item #"),
    "item-not-an-object": (Fault("status", 200, raw=_bulk_items(8, 7)), "malformed bulk response item #"),
    # a JSON object with status 200 that is no bulk answer (a proxy or another service on the path): it was
    # taken for "no errors" and all 8 counted delivered, none indexed
    "json-object-without-items": (Fault("status", 200, raw=b'{"acknowledged":true}'),
                                  "bulk response has items None for 8 action(s)"),
    "no-errors-and-no-items": (Fault("status", 200, raw=b'{"took":1,"errors":false,"items":[]}'),
                               "bulk response has 0 item(s) for 8 action(s)"),
    "proxy-502-page": (Fault("status", 502, {"Content-Type": "text/html"}, raw=b"<html><h1>502 Bad Gateway</h1></html>"),
                       "HTTP 502: <html><h1>502 Bad Gateway</h1></html>"),
}


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("name", list(ODD_ANSWERS))
def test_fault_an_answer_that_is_not_a_bulk_response_is_retried(kind: str, name: str, fault_proxy: FaultProxy) -> None:
    fault, _ = ODD_ANSWERS[name]
    fault_proxy.queue(fault)
    events = unique_events(8, seed=33)
    report = deliver(make_sink(kind, fault_proxy.url, delivery=DeliveryPolicy(max_events=8, **POLICY)), events)
    # `create` by _id makes the re-send safe whatever the first answer hid.
    assert (report.delivered, report.duplicates, report.failed) == (8, 0, [])
    account(report, events, fault_proxy.url)


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("name", list(ODD_ANSWERS))
def test_fault_an_answer_that_is_not_a_bulk_response_is_named_in_the_reason(kind: str, name: str,
                                                                            fault_proxy: FaultProxy) -> None:
    fault, says = ODD_ANSWERS[name]
    fault_proxy.queue(fault)
    events = unique_events(8, seed=34)
    report = deliver(make_sink(kind, fault_proxy.url, delivery=DeliveryPolicy(max_events=8, max_attempts=1, **POLICY)),
                     events)
    assert report.delivered == 0 and len(report.failed) == 8
    for rejected in report.failed:
        assert says in rejected.reason, rejected.reason
        assert rejected.retryable and "Error:" not in rejected.reason.replace("SerializationError", "")
