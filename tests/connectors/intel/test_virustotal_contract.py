"""VirusTotal enrichment driven by the real vt-py client against the VirusTotal v3 contract server."""
from __future__ import annotations

import time

import pytest

from vt_contract import Fault, VirusTotalServer
from wia_security.builders import AlertBuilder, EndpointEventBuilder, NetworkEventBuilder
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.intel.cache import EnrichmentCache
from wia_security.connectors.intel.virustotal import CircuitBreaker, EnrichingSink, VirusTotalEnricher
from wia_security.connectors.sqlite import SqliteSink
from wia_security.validation import validate_event

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
MD5 = "44d88612fea8a8f36de82e1278abb02f"
URL = "http://malware.example.com/payload.exe"
KEY = "vt-test-key"


@pytest.fixture
def vt_server():
    with VirusTotalServer(api_key=KEY) as server:
        server.add_file(SHA256, md5=MD5, reputation=-90, first_submission_date=1148301722, last_analysis_date=1735689600,
                        last_analysis_stats={"malicious": 61, "suspicious": 0, "undetected": 9, "harmless": 0})
        server.add("urls", URL, reputation=-12, first_submission_date=1700000000, last_analysis_date=1730000000,
                   last_analysis_stats={"malicious": 9, "harmless": 60, "undetected": 20})
        server.add("domains", "malware.example.com", reputation=-30, creation_date=1500000000,
                   last_analysis_stats={"malicious": 7, "harmless": 70})
        server.add("ip_addresses", "8.8.8.8", reputation=540, last_analysis_stats={"malicious": 0, "harmless": 88})
        yield server


def make(server, **kw) -> VirusTotalEnricher:
    kw.setdefault("quota_policy", DeliveryPolicy(initial_backoff=0.01, max_backoff=0.02, max_attempts=3))
    return VirusTotalEnricher(kw.pop("api_key", KEY), host=server.url, **kw)


def alert() -> dict:
    return (AlertBuilder().title("Dropper seen").indicator("file_hash_sha256", SHA256).indicator("url", URL)
            .indicator("domain", "malware.example.com").indicator("ip", "8.8.8.8")
            .indicator("ip", "10.1.2.3").indicator("domain", "unknown.example.org").build().to_dict())


def test_enriches_hashes_urls_domains_and_ips(vt_server):
    enricher = make(vt_server)
    try:
        [out] = enricher.enrich_all([alert()])
    finally:
        enricher.close()
    block = out["meta"]["custom"]["enrichment"]["virustotal"]
    assert block["status"] == "complete"
    by_value = {i["value"]: i for i in block["indicators"]}
    assert set(by_value) == {SHA256, URL, "malware.example.com", "8.8.8.8", "unknown.example.org"}   # 10.1.2.3 is private
    f = by_value[SHA256]
    assert (f["malicious"], f["engines"], f["detection_ratio"], f["reputation"]) == (61, 70, "61/70", -90)
    assert f["first_seen"] == "2006-05-22T12:42:02.000Z" and f["last_seen"] == "2025-01-01T00:00:00.000Z"
    assert f["link"].endswith(f"/gui/file/{SHA256}")
    assert by_value[URL]["malicious"] == 9 and by_value["malware.example.com"]["first_seen"] == "2017-07-14T02:40:00.000Z"
    assert by_value["unknown.example.org"] == {"type": "domain", "value": "unknown.example.org", "found": False}
    assert validate_event(out).valid                    # meta.custom is the schema's extension point
    paths = [r.path for r in vt_server.calls()]
    assert f"/api/v3/files/{SHA256}" in paths and "/api/v3/ip_addresses/8.8.8.8" in paths
    assert "/api/v3/urls/aHR0cDovL21hbHdhcmUuZXhhbXBsZS5jb20vcGF5bG9hZC5leGU" in paths   # vt.url_id: no padding
    assert all(r.headers["x-apikey"] == "***" for r in vt_server.calls())
    assert all(r.method == "GET" for r in vt_server.calls())


def test_observables_of_network_and_endpoint_events(vt_server):
    net = NetworkEventBuilder().src("10.0.0.5", 50000).dst("8.8.8.8", 53).protocol("UDP").kind("dns") \
        .dns(query="malware.example.com").build().to_dict()
    ep = EndpointEventBuilder().endpoint("WS-1").process(name="x.exe", md5=MD5).build().to_dict()
    enricher = make(vt_server)
    try:
        out_net, out_ep = enricher.enrich_all([net, ep])
    finally:
        enricher.close()
    assert {i["value"] for i in out_net["meta"]["custom"]["enrichment"]["virustotal"]["indicators"]} == {
        "8.8.8.8", "malware.example.com"}
    [file_result] = out_ep["meta"]["custom"]["enrichment"]["virustotal"]["indicators"]
    assert file_result["value"] == MD5 and file_result["malicious"] == 61


def test_cache_one_lookup_per_indicator_per_ttl(vt_server, tmp_path):
    now = [1000.0]
    cache = EnrichmentCache(str(tmp_path / "vt-cache.db"), ttl=3600, negative_ttl=60, clock=lambda: now[0])
    enricher = make(vt_server, cache=cache)
    try:
        enricher.enrich_all([alert(), alert()])            # two events, same indicators
        first = len(vt_server.calls())
        assert first == 5
        out = enricher.enrich_all([alert()])
        assert len(vt_server.calls()) == first             # all cached
        assert all(i.get("cached") for i in out[0]["meta"]["custom"]["enrichment"]["virustotal"]["indicators"])
        now[0] += 120                                      # negative TTL passed, positive not
        enricher.enrich_all([alert()])
        assert [r.path for r in vt_server.calls()[first:]] == ["/api/v3/domains/unknown.example.org"]
    finally:
        enricher.close()
    # the SQLite cache survives the process: a new enricher asks nothing
    again = make(vt_server, cache=EnrichmentCache(str(tmp_path / "vt-cache.db"), clock=lambda: now[0]))
    try:
        before = len(vt_server.calls())
        again.enrich_all([alert()])
        assert len(vt_server.calls()) == before
    finally:
        again.close()


def test_quota_exceeded_backs_off_and_retries(vt_server):
    vt_server.faults.append(Fault(429, {"error": {"code": "QuotaExceededError", "message": "Quota exceeded"}}))
    slept: list[float] = []
    enricher = make(vt_server, sleep=slept.append)
    try:
        [out] = enricher.enrich_all([alert()])
    finally:
        enricher.close()
    assert out["meta"]["custom"]["enrichment"]["virustotal"]["status"] == "complete"
    assert len(slept) == 1 and 0.005 <= slept[0] <= 0.01    # between half the first ceiling and the ceiling
    assert len(vt_server.calls()) == 6                       # 5 lookups + the one 429


def test_persistent_quota_blocks_lookups_until_backoff_ends(vt_server):
    vt_server.quota_per_minute = 2
    policy = DeliveryPolicy(initial_backoff=30, max_backoff=60, max_attempts=3)
    enricher = make(vt_server, quota_policy=policy, time_budget=5)
    try:
        [out] = enricher.enrich_all([alert()])
        block = out["meta"]["custom"]["enrichment"]["virustotal"]
        assert block["status"] == "partial" and "VirusTotal quota exceeded; backing off" in block["notes"]
        assert len(block["indicators"]) == 2 and len(block["not_checked"]) == 3
        calls = len(vt_server.calls())
        assert calls == 3                                     # 2 allowed, 1 refused, then no more asking
        enricher.enrich_all([alert()])
        assert len(vt_server.calls()) == calls                # still inside the backoff: nothing sent
    finally:
        enricher.close()


def test_virustotal_down_never_blocks_delivery(vt_server, tmp_path):
    vt_server.down = True
    clock = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=60, clock=lambda: clock[0])
    enricher = make(vt_server, breaker=breaker)
    sink = EnrichingSink(SqliteSink(str(tmp_path / "events.db")), enricher)
    events = [alert() for _ in range(4)]
    report = sink.send(events)
    assert report.delivered == 4 and not report.failed
    assert breaker.state == "open"
    assert len(vt_server.calls()) == 3                        # the breaker opened after 3 failures
    stored = [row.event for row in sink.inner.store.query(limit=None)]
    blocks = [e["meta"]["custom"]["enrichment"]["virustotal"] for e in stored]
    assert {b["status"] for b in blocks} == {"unavailable"}
    assert all("VirusTotal error ServerError" in b["notes"] for b in blocks)
    assert all(len(b["not_checked"]) == 5 and b["indicators"] == [] for b in blocks)
    # after the cooldown one trial call goes through; VirusTotal is back, so the circuit closes
    vt_server.down = False
    clock[0] += 61
    assert breaker.state == "half-open"
    [out] = enricher.enrich_all([alert()])
    assert breaker.state == "closed" and out["meta"]["custom"]["enrichment"]["virustotal"]["status"] == "complete"
    sink.close()


def test_a_hung_virustotal_is_abandoned_within_the_budget(vt_server):
    vt_server.faults.append(Fault(200, {"data": {}}, delay=5.0))
    enricher = make(vt_server, request_timeout=0.5, time_budget=1.0)
    try:
        started = time.monotonic()
        [out] = enricher.enrich_all([alert()])
        elapsed = time.monotonic() - started
    finally:
        enricher.close()
    block = out["meta"]["custom"]["enrichment"]["virustotal"]
    assert block["status"] == "partial" and "VirusTotal did not answer in time" in block["notes"]
    assert elapsed < 4.0                                      # did not wait for the 5 s reply


def test_wrong_key_opens_the_circuit_and_is_never_logged(vt_server):
    enricher = make(vt_server, api_key="not-the-key")
    try:
        [out] = enricher.enrich_all([alert()])
        assert "not-the-key" not in repr(enricher)
    finally:
        enricher.close()
    block = out["meta"]["custom"]["enrichment"]["virustotal"]
    assert block["status"] == "unavailable"
    assert block["notes"][0] == "VirusTotal refused the API key (WrongCredentialsError)"
    assert len(vt_server.calls()) == 1
    assert "not-the-key" not in str(out)


def test_events_without_observables_pass_unchanged(vt_server):
    e = AlertBuilder().title("no iocs").build().to_dict()
    enricher = make(vt_server)
    try:
        assert enricher.enrich_all([e]) == [e]
    finally:
        enricher.close()
    assert vt_server.calls() == []
