"""Threat-intel feeds against servers that misbehave in ways a deployment meets: a Retry-After far past
any retry budget, paging that never ends. Real clients (pymisp, requests) against the contract servers."""
from __future__ import annotations

import pytest

from misp_contract import Fault, MispServer
from otx_contract import Fault as OtxFault, OtxServer
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.misp import MispSource
from wia_security.connectors.intel.otx import OtxSource
from wia_security.errors import DeliveryError

MISP_KEY, OTX_KEY = "misp-test-key", "otx-test-key"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.002, max_attempts=3)


def otx_pulse(n: int) -> dict:
    return {"id": f"65a1b2c3d4e5f6a7b8c9d{n:03d}", "name": f"Pulse {n}", "modified": f"2026-02-{n:02d}T10:00:00",
            "created": "2026-01-01T00:00:00", "indicators": [{"indicator": f"198.51.100.{n}", "type": "IPv4"}]}


# -- a Retry-After past the retry budget ends the pull with an error; it is not slept ------------------------

def test_misp_contract_retry_after_past_the_budget_is_an_error_not_a_day_of_sleep():
    with MispServer(key=MISP_KEY) as server:
        server.add_event({"uuid": "5e6b3c2a-0000-4000-8000-000000000001", "info": "event 1",
                          "Attribute": [{"type": "ip-dst", "category": "Network activity", "value": "198.51.100.1"}]})
        server.faults.append(Fault(429, {"name": "Too many requests", "message": "Rate limit exceeded"},
                                   headers={"Retry-After": "86400"}, path_prefix="/events/restSearch"))
        slept: list[float] = []
        with pytest.raises(DeliveryError) as caught:
            list(MispSource(server.url, MISP_KEY, retry=FAST, sleep=slept.append).events())
    assert slept == []
    error = caught.value
    assert error.retryable and error.retry_after == 86400.0
    assert "events/restSearch page 1" in str(error) and "86,400 s" in str(error) and "retry budget" in str(error)
    assert "HTTP 429" in str(error)


def test_misp_contract_retry_after_too_large_for_sleep_is_an_error_not_overflow():
    with MispServer(key=MISP_KEY) as server:
        server.faults.append(Fault(503, {"name": "Service unavailable", "message": "maintenance"},
                                   headers={"Retry-After": "9" * 30}, path_prefix="/events/restSearch"))
        with pytest.raises(DeliveryError, match="retry budget"):
            list(MispSource(server.url, MISP_KEY, retry=FAST).events())     # the real time.sleep


def test_otx_contract_retry_after_past_the_budget_is_an_error_not_a_day_of_sleep():
    with OtxServer(api_key=OTX_KEY) as server:
        server.pulses = [otx_pulse(1)]
        server.faults.append(OtxFault(429, {"detail": "Request was throttled."}, headers={"Retry-After": "86400"}))
        slept: list[float] = []
        source = OtxSource(OTX_KEY, base_url=server.url, retry=FAST, sleep=slept.append)
        with pytest.raises(DeliveryError) as caught:
            list(source.poll())
    assert slept == [] and caught.value.retry_after == 86400.0
    assert "/api/v1/pulses/subscribed" in str(caught.value) and "retry budget" in str(caught.value)
    assert "HTTP 429: Request was throttled." in str(caught.value)
    source.commit()
    assert source.cursor is None                 # nothing read: the cursor stays


def test_retry_after_within_the_budget_is_still_honoured():
    with OtxServer(api_key=OTX_KEY) as server:
        server.pulses = [otx_pulse(1)]
        server.faults.append(OtxFault(429, {"detail": "Request was throttled."}, headers={"Retry-After": "30"}))
        slept: list[float] = []
        events = list(OtxSource(OTX_KEY, base_url=server.url, retry=FAST, sleep=slept.append).poll())
    assert len(events) == 1 and slept == [30.0]


# -- paging that never ends --------------------------------------------------------------------------------

class EndlessOtx(OtxServer):
    """Links every page to a new one (page=N+1), as a broken proxy or server may: `empty` pages hold no
    pulse; otherwise each holds one pulse while `count` stays 1. (It gives up after 200 pages, so a client
    that pages on ends the test too.)"""

    def __init__(self, *, empty: bool) -> None:
        super().__init__(api_key=OTX_KEY)
        self.empty = empty

    def handle(self, req, headers):
        page = int(req.query.get("page", ["1"])[-1])
        results = [] if self.empty and page > 1 else [otx_pulse(1 + page % 20)]
        return 200, {"count": 1, "next": f"{self.url}/api/v1/pulses/subscribed?page={page + 1}" if page < 200 else None,
                     "previous": None, "results": results}, {}


@pytest.mark.parametrize("empty", [True, False], ids=["empty-pages", "past-its-count"])
def test_otx_contract_paging_that_never_ends_is_refused(empty):
    with EndlessOtx(empty=empty) as server:
        source = OtxSource(OTX_KEY, base_url=server.url, page_size=5, retry=FAST)
        with pytest.raises(DeliveryError, match="refusing to page for ever") as caught:
            for _ in source.poll():
                pass
        assert len(server.calls()) <= 10
    assert ("has no pulses but links to another page" in str(caught.value)) is empty
    source.commit()
    assert source.cursor is None                 # an unfinished poll moves no cursor


# -- the push's existence check (HEAD) throttled -------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 503])
def test_misp_contract_push_waits_the_retry_after_of_a_refused_existence_check(status):
    from wia_security.builders import ThreatIntelBuilder
    from wia_security.connectors.intel.misp import MispSink

    event = (ThreatIntelBuilder().threat("LockBit", "ransomware").indicator("domain", "lockbit-c2.example.net")
             .build().to_dict())
    with MispServer(key=MISP_KEY) as server:
        server.faults.append(Fault(status, None, headers={"Retry-After": "6"}, path_prefix="/events/view/"))
        slept: list[float] = []
        with MispSink(server.url, MISP_KEY, delivery=FAST, sleep=slept.append) as sink:
            report = sink.send([event]).merge(sink.flush())
        assert [r.method for r in server.calls("/events/")] == ["HEAD", "HEAD", "POST"]
    assert report.delivered == 1 and slept == [6.0]     # FAST alone would wait about a millisecond
