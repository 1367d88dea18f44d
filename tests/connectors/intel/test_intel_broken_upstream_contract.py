"""Threat-intel feeds that send broken data or misbehave, driven by the real clients (pymisp, vt-py,
requests) against the MISP, VirusTotal and OTX contract servers; and a damaged enrichment cache."""
from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from misp_contract import Fault, MispServer
from otx_contract import OtxServer
from vt_contract import Fault as VtFault, VirusTotalServer
from wia_security.builders import ThreatIntelBuilder
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.cache import EnrichmentCache
from wia_security.connectors.intel.misp import MispSink, MispSource, event_to_wia
from wia_security.connectors.intel.otx import OtxSource, pulse_to_wia
from wia_security.connectors.intel.virustotal import VirusTotalEnricher
from wia_security.errors import ConfigError, ConversionError, DeliveryError
from wia_security.validation import validate_event

MISP_KEY, OTX_KEY, VT_KEY = "misp-test-key", "otx-test-key", "vt-test-key"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.002, max_attempts=3)
UUID = "5e6b3c2a-0000-4000-8000-0000000000{:02d}"


def misp_event(n: int, **extra) -> dict:
    return {"Event": {"id": str(n), "uuid": UUID.format(n), "info": f"event {n}", "threat_level_id": "2",
                      "timestamp": "1767225600",
                      "Attribute": [{"type": "ip-dst", "category": "Network activity", "value": f"198.51.100.{n}",
                                     "to_ids": True}], **extra}}


# -- MISP ------------------------------------------------------------------------------------------------

def test_misp_429_waits_as_long_as_retry_after_says():
    with MispServer(key=MISP_KEY) as server:
        server.add_event(misp_event(1)["Event"])
        server.faults.append(Fault(429, {"name": "Too many requests", "message": "Rate limit exceeded"},
                                   headers={"Retry-After": "7"}, path_prefix="/events/restSearch"))
        slept: list[float] = []
        events = list(MispSource(server.url, MISP_KEY, retry=FAST, sleep=slept.append).events())
    assert len(events) == 1 and slept == [7.0]       # FAST alone would wait about a millisecond


def test_misp_push_429_waits_as_long_as_retry_after_says():
    event = (ThreatIntelBuilder().threat("LockBit", "ransomware").indicator("domain", "lockbit-c2.example.net")
             .build().to_dict())
    with MispServer(key=MISP_KEY) as server:
        server.faults.append(Fault(429, {"name": "Too many requests", "message": "Rate limit exceeded"},
                                   headers={"Retry-After": "4"}, path_prefix="/events/add"))
        slept: list[float] = []
        with MispSink(server.url, MISP_KEY, delivery=FAST, sleep=slept.append) as sink:
            report = sink.send([event]).merge(sink.flush())
    assert report.delivered == 1 and slept == [4.0]


def test_misp_records_that_are_not_events_go_to_on_reject_with_where_and_the_record():
    page = [misp_event(1), {"Event": "not an object"}, ["a list"],
            misp_event(4, Attribute=[None, "198.51.100.9", {"type": "ip-dst", "value": ["x"]},
                                     {"type": "ip-dst", "value": "198.51.100.4",
                                      "decay_score": [{"score": 1000}], "comment": 5},
                                     {"type": "link", "value": "https://example.org/a report"}],
                       Orgc="CIRCL", Galaxy=["x", {"type": "threat-actor", "GalaxyCluster": ["c", {"value": "APT",
                                                                                              "meta": {"synonyms": "Bear"}}]}])]
    rejected = []
    with MispServer(key=MISP_KEY) as server:
        server.faults.append(Fault(200, {"response": page}, path_prefix="/events/restSearch"))
        events = list(MispSource(server.url, MISP_KEY, page_size=10, on_reject=rejected.append).events())
    assert [e["data"]["threat_name"] for e in events] == ["event 1", "event 4"]
    assert all(validate_event(e).valid for e in events)
    odd = events[1]
    assert odd["data"]["indicators"] == [{"type": "ip", "value": "198.51.100.4", "confidence": 0.5,
                                          "context": {"description": "5"}}]
    assert odd["data"]["aliases"] == ["Bear"] and "references" not in odd["data"]
    assert odd["meta"]["custom"]["misp"]["unmapped_attributes"] == 4     # None, a string, a list value, a bad link
    assert len(events) + len(rejected) == len(page)
    assert [r.where.rsplit(" ", 4)[1:] for r in rejected] == [["page", "1", "item", "1"], ["page", "1", "item", "2"]]
    assert all(r.reason.startswith("not a MISP event: misp at /") for r in rejected)
    assert json.loads(rejected[1].raw) == ["a list"]

    with MispServer(key=MISP_KEY) as server:                  # without on_reject: an error saying where, not a traceback
        server.faults.append(Fault(200, {"response": page}, path_prefix="/events/restSearch"))
        with pytest.raises(ConversionError, match=r"page 1 item 1: not a MISP event: .*not str"):
            list(MispSource(server.url, MISP_KEY, page_size=10).events())


@pytest.mark.parametrize("body, why", [
    ({"response": {"weird": 1}}, "expected a list of events, got dict"),
    ({"response": {"Event": {"id": "1"}}}, "expected a list of events, got dict"),
])
def test_misp_answers_that_are_not_a_list_of_events_are_errors(body, why):
    with MispServer(key=MISP_KEY) as server:
        server.faults.append(Fault(200, body, path_prefix="/events/restSearch"))
        with pytest.raises(DeliveryError, match=why):
            list(MispSource(server.url, MISP_KEY, retry=FAST).events())


def test_misp_that_ignores_page_is_an_error_not_an_endless_walk():
    page = [misp_event(1), misp_event(2)]
    with MispServer(key=MISP_KEY) as server:
        server.faults += [Fault(200, {"response": page}, path_prefix="/events/restSearch") for _ in range(20)]
        got = []
        with pytest.raises(DeliveryError, match="answered page 2 with page 1 again"):
            for event in MispSource(server.url, MISP_KEY, page_size=2).events():
                got.append(event)
                assert len(got) <= 10, "kept reading the same page"
    assert len(got) == 2


def test_misp_html_instead_of_json_is_retried():
    with MispServer(key=MISP_KEY) as server:
        server.add_event(misp_event(1)["Event"])
        server.faults.append(Fault(200, b"<html>gateway timeout</html>", headers={"Content-Type": "text/html"},
                                   path_prefix="/events/restSearch"))
        slept: list[float] = []
        assert len(list(MispSource(server.url, MISP_KEY, retry=FAST, sleep=slept.append).events())) == 1
    assert len(slept) == 1


def test_misp_direct_mapping_rejects_a_non_object_with_a_path():
    with pytest.raises(ConversionError) as caught:
        event_to_wia({"Event": 5})
    assert caught.value.path == "/Event"


# -- OTX -------------------------------------------------------------------------------------------------

def pulse(n: int, **extra) -> dict:
    return {"id": f"65a1b2c3d4e5f6a7b8c9d{n:03d}", "name": f"Pulse {n}", "modified": f"2026-02-{n:02d}T10:00:00",
            "created": "2026-01-01T00:00:00", "tags": [],
            "indicators": [{"indicator": f"198.51.100.{n}", "type": "IPv4"}], **extra}


def test_otx_next_that_points_back_is_an_error_and_the_cursor_stays(tmp_path):
    with OtxServer(api_key=OTX_KEY) as server:
        server.pulses = [pulse(i) for i in range(1, 4)]
        looping = {"count": 3, "next": None, "previous": None, "results": [pulse(1)]}
        looping["next"] = f"{server.url}/api/v1/pulses/subscribed?limit=1&page=2"
        server.faults += [Fault(200, looping) for _ in range(10)]
        source = OtxSource(OTX_KEY, base_url=server.url, state_path=str(tmp_path / "state.json"), page_size=1)
        got = []
        with pytest.raises(DeliveryError, match="links to a page already read"):
            for event in source.poll():
                got.append(event)
                assert len(got) <= 5, "followed the same link again and again"
        source.commit()
    assert len(got) == 2 and not (tmp_path / "state.json").exists()      # nothing committed: re-read next time


def test_otx_malformed_pulses_go_to_on_reject_and_odd_fields_do_not_break_a_pulse():
    results = [pulse(1), "not a pulse", None,
               pulse(4, indicators=[None, "198.51.100.9", {"indicator": 5, "type": "IPv4"},
                                    {"indicator": "198.51.100.4", "type": "IPv4", "description": 7}],
                     tags="ransomware", references=["https://example.org/a report", "https://example.org/r"],
                     adversary=["not", "a", "name"], industries={"a": 1}, attack_ids="T1486")]
    rejected = []
    with OtxServer(api_key=OTX_KEY) as server:
        server.faults.append(Fault(200, {"count": 4, "next": None, "previous": None, "results": results}))
        events = list(OtxSource(OTX_KEY, base_url=server.url, on_reject=rejected.append).poll())
    assert len(events) + len(rejected) == len(results)
    assert all(validate_event(e).valid for e in events)
    odd = events[1]
    assert odd["data"]["indicators"] == [{"type": "ip", "value": "198.51.100.4"}]
    assert odd["data"]["threat_type"] == "ransomware" and odd["meta"]["tags"] == ["ransomware"]
    assert odd["data"]["references"] == ["https://example.org/r"] and "aliases" not in odd["data"]
    assert odd["meta"]["custom"]["otx"]["unmapped_indicators"] == 3
    assert [r.where.rsplit(" ", 1)[1] for r in rejected] == ["1", "2"] and all("page 1 result" in r.where for r in rejected)
    assert all(r.reason.startswith("not an OTX pulse: otx at /: a pulse is a JSON object") for r in rejected)
    with pytest.raises(ConversionError, match="otx at /"):
        pulse_to_wia(["x"])


def test_otx_page_without_a_results_list_is_an_error():
    with OtxServer(api_key=OTX_KEY) as server:
        server.faults.append(Fault(200, {"count": 1, "next": None, "results": {"id": "x"}}))
        with pytest.raises(DeliveryError, match="expected an object with a `results` list, got dict"):
            list(OtxSource(OTX_KEY, base_url=server.url, retry=FAST).poll())


# -- VirusTotal ------------------------------------------------------------------------------------------

def test_virustotal_objects_it_cannot_read_do_not_open_the_breaker_and_are_named():
    event = ThreatIntelBuilder().threat("x", "malware")
    for name in ("a", "b", "c", "d", "e"):
        event = event.indicator("domain", f"{name}.example.com")
    event = event.build().to_dict()
    with VirusTotalServer(api_key=VT_KEY) as server:
        server.add("domains", "a.example.com", last_analysis_stats="garbage", reputation="high")
        server.add("domains", "b.example.com", last_analysis_stats={"malicious": "5", "harmless": True},
                   first_submission_date=10 ** 20)
        server.objects[("domains", "c.example.com")] = {"type": "domain", "id": "c.example.com", "attributes": "x"}
        server.faults.append(VtFault(200, {"data": "nope"}, path_prefix="/api/v3/domains/d.example.com"))
        server.add("domains", "e.example.com", last_analysis_stats={"malicious": 3, "harmless": 60})
        enricher = VirusTotalEnricher(VT_KEY, host=server.url)
        try:
            block = enricher.enrich(event)["meta"]["custom"]["enrichment"]["virustotal"]
            assert enricher.breaker.state == "closed"
        finally:
            enricher.close()
    found = {i["value"]: i for i in block["indicators"]}
    assert set(found) == {"a.example.com", "b.example.com", "e.example.com"}    # e is still looked up
    assert "reputation" not in found["a.example.com"] and found["b.example.com"]["malicious"] == 0
    assert "first_seen" not in found["b.example.com"] and found["e.example.com"]["detection_ratio"] == "3/63"
    assert [m["value"] for m in block["not_checked"]] == ["c.example.com", "d.example.com"]
    assert block["status"] == "partial"
    assert [n.split(":", 1)[0] for n in block["notes"]] == [
        "VirusTotal sent an unreadable domain object for c.example.com", "VirusTotal sent an unreadable domain object for d.example.com"]


# -- enrichment cache ------------------------------------------------------------------------------------

def test_a_cache_file_that_is_not_a_database_is_set_aside_and_enrichment_goes_on(tmp_path, caplog):
    path = tmp_path / "cache.db"
    path.write_bytes(b"not sqlite at all " * 100)
    with caplog.at_level(logging.WARNING):
        cache = EnrichmentCache(str(path))
    cache.put("virustotal", "ip", "8.8.8.8", {"found": True, "malicious": 0})
    assert cache.get("virustotal", "ip", "8.8.8.8") == {"found": True, "malicious": 0}
    cache.close()
    assert (tmp_path / "cache.db.corrupt").read_bytes().startswith(b"not sqlite")
    assert cache.damaged == 1 and "moved to" in caplog.text and str(path) in caplog.text
    assert EnrichmentCache(str(path)).get("virustotal", "ip", "8.8.8.8") is not None     # the new file works


def test_unreadable_cache_rows_are_misses_dropped_with_a_warning(tmp_path, caplog):
    path = str(tmp_path / "cache.db")
    EnrichmentCache(path).close()
    db = sqlite3.connect(path)
    db.executemany("INSERT INTO enrichment VALUES ('virustotal', 'ip', ?, ?, 1, ?)", [
        ("1.1.1.1", 1e12, '{"found": true}'), ("2.2.2.2", 1e12, "{not json"), ("3.3.3.3", 1e12, "[1, 2]"),
        ("4.4.4.4", "yesterday", "{}")])
    db.commit()
    db.close()
    cache = EnrichmentCache(path, clock=lambda: 1e12)
    with caplog.at_level(logging.WARNING):
        got = {ip: cache.get("virustotal", "ip", ip) for ip in ("1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4")}
    assert got == {"1.1.1.1": {"found": True}, "2.2.2.2": None, "3.3.3.3": None, "4.4.4.4": None}
    assert cache.damaged == 3 and caplog.text.count("unreadable entry") == 3
    cache.close()
    left = sqlite3.connect(path).execute("SELECT value FROM enrichment").fetchall()
    assert left == [("1.1.1.1",)]                    # dropped, so the next run looks them up again


@pytest.mark.parametrize("text", ["[1, 2]", '{"modified_since": 5}', '{"modified_since": "yesterday"}'])
def test_a_damaged_otx_state_file_is_a_config_error_not_a_guess(tmp_path, text):
    state = tmp_path / "state.json"
    state.write_text(text)
    with pytest.raises(ConfigError, match="the OTX state file must be") as caught:
        OtxSource(OTX_KEY, base_url="http://127.0.0.1:9", state_path=str(state))
    assert caught.value.source == str(state) and OTX_KEY not in str(caught.value)


def test_an_unreadable_pulse_modified_time_never_becomes_the_cursor(tmp_path):
    state = str(tmp_path / "state.json")
    with OtxServer(api_key=OTX_KEY) as server:
        page = {"count": 1, "next": None, "previous": None, "results": [pulse(3, modified="the day after tomorrow")]}
        server.faults += [Fault(200, page), Fault(200, page)]
        source = OtxSource(OTX_KEY, base_url=server.url, state_path=state)
        assert len(list(source.poll())) == 1
        source.commit()
        again = OtxSource(OTX_KEY, base_url=server.url, state_path=state)     # the state still loads
        assert again.cursor is None and len(list(again.poll())) == 1
