"""Splunk SOAR and XSOAR answers are read within a byte limit and a total time. requests and urllib3 bound
each socket read only: a server or proxy sending a byte now and then held one event (and every event
behind it) for as long as it kept sending, and a huge or gzip-bombed answer was read whole into memory.
The sinks (requests; demisto-py on urllib3) against tests/servers/misbehaving_http.py."""
from __future__ import annotations

import json

import pytest

from servers.misbehaving_http import MisbehavingHttp
from strategies import event_dicts

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.splunk_soar import SOAR_ANSWER_SECONDS, SOAR_MAX_ANSWER_BYTES, SplunkSoarSink
from wia_security.connectors.soar.xsoar import XSOAR_ANSWER_SECONDS, XSOAR_MAX_ANSWER_BYTES, XsoarSink

from splunk_soar_contract import Fault

TOKEN = "soar-bounds-token-7f3a"
ONCE = DeliveryPolicy(max_wait=0, max_attempts=1)
SOAR_CREATED = json.dumps({"id": 5, "success": True, "artifacts": []}).encode()
XSOAR_SEARCH = json.dumps({"total": 0, "data": []}).encode()


def _sink(product: str, url: str, **options):
    cls = SplunkSoarSink if product == "soar" else XsoarSink
    return cls(url, token=TOKEN, delivery=ONCE, timeout=(10.0, 30.0), **options)


def _send_one(sink) -> object:
    report = sink.send(event_dicts(1, seed=7))
    report.merge(sink.flush())
    sink.close()
    assert report.delivered + report.duplicates + len(report.failed) == 1
    return report


@pytest.mark.parametrize("product,body", [("soar", SOAR_CREATED), ("xsoar", XSOAR_SEARCH)])
def test_an_answer_that_trickles_is_given_up_after_answer_seconds_and_retried(product, body):
    # a byte every 0.1 s: each socket read returns well within the read timeout, the answer never ends in time
    with MisbehavingHttp(body=body + b" " * 200, trickle=True, pause=0.1, give_up=8.0) as server:
        report = _send_one(_sink(product, server.url, answer_seconds=1.0))
        server.close()
    (rejected,) = report.failed
    assert "the answer was still arriving after 1 s" in rejected.reason
    assert rejected.retryable and TOKEN not in rejected.reason


@pytest.mark.parametrize("product", ["soar", "xsoar"])
@pytest.mark.parametrize("gzip_body", [False, True], ids=["plain", "gzip-bomb"])
def test_an_answer_over_the_byte_limit_is_refused_not_read_into_memory(product, gzip_body):
    huge = json.dumps({"failed": True, "message": "x" * 3_000_000}).encode()
    with MisbehavingHttp(body=huge, gzip_body=gzip_body, status=500) as server:
        report = _send_one(_sink(product, server.url, max_answer_bytes=1_000_000))
        server.close()
    (rejected,) = report.failed
    assert "over the 1,000,000-byte limit" in rejected.reason and not rejected.retryable


@pytest.mark.parametrize("product,body", [("soar", SOAR_CREATED), ("xsoar", XSOAR_SEARCH)])
def test_answers_within_the_bounds_are_read_as_before(product, body):
    with MisbehavingHttp(body=body, status=200) as server:
        sink = _sink(product, server.url, max_answer_bytes=len(body), answer_seconds=10.0)
        if product == "soar":
            report = _send_one(sink)
            assert report.delivered == 1
        else:
            assert sink.find_incident("0b7f6d2c-8f6e-4d43-9c1e-3f2d8a0c4e11") is None
            sink.close()
        server.close()


def test_the_bounds_are_named_constants():
    assert SOAR_MAX_ANSWER_BYTES == XSOAR_MAX_ANSWER_BYTES == 64 * 1024 * 1024
    assert SOAR_ANSWER_SECONDS == XSOAR_ANSWER_SECONDS == 120.0


@pytest.mark.parametrize("product", ["soar", "xsoar"])
def test_the_answer_time_counts_from_the_request_not_from_the_first_byte(product, soar_server, xsoar_server):
    # headers held back 2 s, then the whole body at once: 2 s in all is past a 1 s answer bound
    server, path = (soar_server, "/rest/container") if product == "soar" else (xsoar_server, "/incidents/search")
    body = {"id": 5, "success": True, "artifacts": []} if product == "soar" else {"total": 0, "data": []}
    server.faults.append(Fault(200, body, delay=2.0, path_prefix=path))
    cls = SplunkSoarSink if product == "soar" else XsoarSink
    token = server.token if product == "soar" else server.api_key
    report = _send_one(cls(server.url, token=token, delivery=ONCE, timeout=(10.0, 30.0), answer_seconds=1.0))
    (rejected,) = report.failed
    assert "the answer was still arriving after 1 s" in rejected.reason and rejected.retryable
