"""MISP answers are read within a byte limit and a total time. pymisp reads every answer whole through its own
requests.Session (no `stream`): requests bounds each socket read only, so a MISP server or proxy sending a
byte every few seconds held a pull for hours, and a huge or gzip-bombed restSearch answer was read whole
into memory (and a padded one even parsed as a good, empty page). Contract tests: the real pymisp against
tests/servers/misp_contract.py with the answer faults of intel_http.Fault."""
from __future__ import annotations

import json

import pytest

from misp_contract import Fault, MispServer
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.misp import MispSink, MispSource
from wia_security.builders import ThreatIntelBuilder
from wia_security.errors import DeliveryError

KEY = "misp-test-key"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.002, max_attempts=2)
#: a good page (no events) padded to 3,000,000 bytes: read whole, pymisp took it for an empty page
PADDED = json.dumps({"response": [], "padding": " " * 3_000_000}).encode()


@pytest.fixture
def misp():
    with MispServer(key=KEY) as server:
        server.add_event({"uuid": "5e6b3c2a-0000-4000-8000-000000000001", "info": "Emotet",
                          "Attribute": [{"type": "domain", "category": "Network activity", "value": "c2.example.net"}]})
        yield server


def test_contract_a_restsearch_answer_that_trickles_is_given_up_after_answer_seconds_and_retried(misp):
    page = json.dumps({"response": []}).encode()
    for _ in range(2):
        misp.faults.append(Fault(200, page, trickle=0.5, give_up=8.0, path_prefix="/events/restSearch"))
    source = MispSource(misp.url, KEY, retry=FAST, sleep=lambda s: None, answer_seconds=1.0)
    with pytest.raises(DeliveryError, match=r"MISP /events/restSearch: the answer was still arriving after 1 s") as err:
        list(source.events())
    assert err.value.retryable and len(misp.calls("/events/restSearch")) == 2      # tried again, then given up
    assert KEY not in str(err.value)


@pytest.mark.parametrize("gzip_body", [False, True], ids=["plain", "gzip-bomb"])
def test_contract_a_restsearch_answer_over_the_byte_limit_is_refused_not_read_into_memory(misp, gzip_body):
    misp.faults.append(Fault(200, PADDED, gzip=gzip_body, path_prefix="/attributes/restSearch"))
    source = MispSource(misp.url, KEY, retry=FAST, sleep=lambda s: None, max_answer_bytes=1_000_000)
    with pytest.raises(DeliveryError, match="MISP /attributes/restSearch: the answer is over the 1,000,000-byte "
                                            "limit") as err:
        list(source.attributes())
    assert not err.value.retryable and len(misp.calls("/attributes/restSearch")) == 1   # the same would come again


def test_contract_answers_within_the_bounds_are_read_as_before(misp):
    misp.faults.append(Fault(200, {"response": [{"Event": misp.events[0]}]}, gzip=True,
                             path_prefix="/events/restSearch"))
    source = MispSource(misp.url, KEY, max_answer_bytes=100_000, answer_seconds=30)
    assert [e["data"]["threat_name"] for e in source.events()] == ["Emotet"]


def test_contract_the_sink_reads_misp_answers_within_the_bounds_too(misp):
    misp.faults.append(Fault(200, PADDED, gzip=True, path_prefix="/events/add"))
    event = ThreatIntelBuilder().threat("LockBit", "ransomware").indicator("domain", "lockbit.example.net").build()
    with MispSink(misp.url, KEY, delivery=FAST, sleep=lambda s: None, max_answer_bytes=1_000_000) as sink:
        report = sink.send([event.to_dict()]).merge(sink.flush())
    assert report.delivered == 0 and len(report.failed) == 1
    assert "over the 1,000,000-byte limit" in report.failed[0].reason and not report.failed[0].retryable


def test_contract_a_pull_cut_short_by_the_bounds_is_not_complete_and_moves_no_checkpoint(misp, tmp_path):
    from wia_security.connectors.intel.misp import MispCheckpoint
    for n in range(2, 4):
        misp.add_event({"uuid": f"5e6b3c2a-0000-4000-8000-00000000000{n}", "info": f"Event {n}",
                        "timestamp": str(1767225600 + n),
                        "Attribute": [{"type": "domain", "category": "Network activity", "value": f"e{n}.example.net"}]})
    path = str(tmp_path / "misp.json")
    checkpoint = MispCheckpoint.load(path, "events", [])
    source = MispSource(misp.url, KEY, page_size=2, retry=FAST, sleep=lambda s: None, max_answer_bytes=1_000_000)
    pulled = source.events()
    assert len([next(pulled), next(pulled)]) == 2                       # page 1 read within the bounds
    misp.faults.append(Fault(200, PADDED, gzip=True, path_prefix="/events/restSearch"))   # page 2: a gzip bomb
    with pytest.raises(DeliveryError, match="over the 1,000,000-byte limit"):
        next(pulled)
    assert not source.complete and source.newest_timestamp is None      # the CLI saves only a complete pull
    assert checkpoint.timestamp is None
    assert [e["data"]["threat_name"] for e in source.events()] == ["Emotet", "Event 2", "Event 3"]
    assert source.complete and source.newest_timestamp == 1767225603
