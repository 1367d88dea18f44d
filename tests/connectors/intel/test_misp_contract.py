"""MISP pull and push driven by the real pymisp client against the MISP REST contract server."""
from __future__ import annotations

import pytest

from misp_contract import Fault, MispServer
from wia_security.builders import AlertBuilder, IncidentBuilder, ThreatIntelBuilder
from wia_security.connectors import open_sink
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.misp import MispSink, MispSource, event_to_wia, threat_level
from wia_security.errors import ConfigError, DeliveryError
from wia_security.validation import validate_event

KEY = "misp-test-key"
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.002, max_attempts=3)


def seed(server: MispServer) -> None:
    server.add_event({
        "uuid": "5e6b3c2a-0000-4000-8000-000000000001", "info": "Emotet spam wave", "threat_level_id": "1",
        "timestamp": "1767225600", "date": "2026-01-01",
        "Tag": [{"name": "tlp:amber"}, {"name": 'misp:confidence-level="usually-confident"'},
                {"name": 'misp-galaxy:mitre-attack-pattern="Spearphishing Attachment - T1566.001"'}],
        "Galaxy": [
            {"type": "mitre-attack-pattern", "GalaxyCluster": [
                {"value": "Spearphishing Attachment - T1566.001", "meta": {"external_id": ["T1566.001"]},
                 "tag_name": 'misp-galaxy:mitre-attack-pattern="Spearphishing Attachment - T1566.001"'},
                {"value": "Web Protocols - T1071.001", "meta": {"external_id": ["T1071.001"]}}]},
            {"type": "malpedia", "GalaxyCluster": [{"value": "Emotet", "meta": {}}]},
            {"type": "sector", "GalaxyCluster": [{"value": "Finance"}]}],
        "Attribute": [
            {"type": "ip-dst|port", "category": "Network activity", "value": "198.51.100.7|443", "to_ids": True,
             "first_seen": "2025-12-30T10:00:00.000000+00:00"},
            {"type": "domain", "category": "Network activity", "value": "c2.example.net", "to_ids": True,
             "comment": "C2", "Tag": [{"name": 'misp:confidence-level="completely-confident"'}]},
            {"type": "filename|sha256", "category": "Payload delivery", "value": f"invoice.doc|{SHA256}", "to_ids": True},
            {"type": "text", "category": "Other", "value": "free text"},
            {"type": "link", "category": "External analysis", "value": "https://blog.example.org/emotet"}],
        "Object": [{"name": "email", "Attribute": [
            {"type": "email-src", "category": "Payload delivery", "value": "billing@example.net", "to_ids": False}]}],
    })
    server.add_event({
        "uuid": "5e6b3c2a-0000-4000-8000-000000000002", "info": "APT29 infrastructure", "threat_level_id": "2",
        "timestamp": "1767312000",
        "Galaxy": [{"type": "threat-actor", "GalaxyCluster": [
            {"value": "APT29", "meta": {"synonyms": ["Cozy Bear", "NOBELIUM"]}}]}],
        "Attribute": [{"type": "hostname", "category": "Network activity", "value": "login.example.com", "to_ids": True}],
    })
    server.add_event({
        "uuid": "5e6b3c2a-0000-4000-8000-000000000003", "info": "Old revoked technique", "threat_level_id": "4",
        "timestamp": "1767398400",
        "Tag": [{"name": 'misp-galaxy:mitre-attack-pattern="DLL Side-Loading - T1574.002"'}],
        "Attribute": [{"type": "md5", "category": "Payload delivery", "value": "44d88612fea8a8f36de82e1278abb02f",
                       "to_ids": True}],
    })


@pytest.fixture
def misp():
    with MispServer(key=KEY) as server:
        seed(server)
        yield server


def test_pull_events_pages_and_maps_to_threat_intel(misp):
    source = MispSource(misp.url, KEY, page_size=2)
    events = list(source.events())
    assert len(events) == 3
    searches = [r.body for r in misp.calls("/events/restSearch")]
    assert [(s["page"], s["limit"], s["returnFormat"], s["includeEventTags"]) for s in searches] == [
        (1, 2, "json", 1), (2, 2, "json", 1)]
    for e in events:
        result = validate_event(e)
        assert result.valid, result.errors
    emotet, apt, revoked = events
    d = emotet["data"]
    assert (d["threat_name"], d["threat_type"], d["threat_family"]) == ("Emotet spam wave", "malware", "Emotet")
    assert emotet["severity"] == 8 and emotet["timestamp"] == "2026-01-01T00:00:00.000Z"
    by_type = {(i["type"], i["value"]): i for i in d["indicators"]}
    assert set(by_type) == {("ip", "198.51.100.7"), ("domain", "c2.example.net"), ("file_hash_sha256", SHA256),
                            ("email", "billing@example.net")}
    assert by_type[("domain", "c2.example.net")]["confidence"] == 1.0        # attribute tag wins
    assert by_type[("ip", "198.51.100.7")]["confidence"] == 0.75             # event confidence tag
    assert by_type[("ip", "198.51.100.7")]["first_seen"] == "2025-12-30T10:00:00.000Z"
    assert by_type[("domain", "c2.example.net")]["context"] == {"description": "C2", "kill_chain_phase": "Network activity"}
    assert [t["technique"] for t in d["ttps"]] == ["T1566.001", "T1071.001"]
    assert d["ttps"][0]["tactic"] == "TA0001" and d["ttps"][0]["technique_name"] == "Spearphishing Attachment"
    assert emotet["mitre"] == {"tactic": "TA0001", "tactic_name": "Initial Access", "technique": "T1566",
                               "technique_name": "Phishing", "sub_technique": "T1566.001",
                               "sub_technique_name": "Spearphishing Attachment"}
    assert d["target_sectors"] == ["Finance"] and d["references"] == ["https://blog.example.org/emotet"]
    assert emotet["meta"]["tags"] == ["tlp:amber", 'misp:confidence-level="usually-confident"']
    assert emotet["meta"]["custom"]["misp"] == {"event_uuid": "5e6b3c2a-0000-4000-8000-000000000001", "event_id": "1",
                                                "url": f"{misp.url}/events/view/1", "org": "CIRCL",
                                                "unmapped_attributes": 1}
    assert (apt["data"]["threat_type"], apt["data"]["aliases"]) == ("apt", ["Cozy Bear", "NOBELIUM"])
    assert apt["severity"] == 5
    assert revoked["data"]["ttps"][0]["technique"] == "T1574.001"           # revoked T1574.002 -> replacement
    # pulling again gives the same ids: the embedded store de-duplicates re-pulls
    assert [e["id"] for e in MispSource(misp.url, KEY).events()] == [e["id"] for e in events]


def test_pull_attributes_grouped_by_event(misp):
    source = MispSource(misp.url, KEY, page_size=1)
    events = list(source.attributes(type_attribute=["domain", "hostname"], to_ids=1))
    assert [e["data"]["threat_name"] for e in events] == ["Emotet spam wave", "APT29 infrastructure"]
    assert [[i["value"] for i in e["data"]["indicators"]] for e in events] == [["c2.example.net"], ["login.example.com"]]
    bodies = [r.body for r in misp.calls("/attributes/restSearch")]
    assert [b["page"] for b in bodies] == [1, 2, 3] and bodies[0]["type"] == ["domain", "hostname"]
    assert all(validate_event(e).valid for e in events)


def test_pull_retries_server_errors_and_reports_auth_failures(misp):
    misp.faults.append(Fault(500, {"name": "An Internal Error Has Occurred."}, path_prefix="/events/restSearch"))
    slept: list[float] = []
    source = MispSource(misp.url, KEY, retry=FAST, sleep=slept.append)
    assert len(list(source.events())) == 3 and len(slept) == 1
    with pytest.raises(ConfigError) as err:
        MispSource(misp.url, "wrong-key")
    assert "wrong-key" not in str(err.value)
    misp.faults.extend([Fault(403, {"name": "Forbidden", "message": "no access"}, path_prefix="/events/restSearch")])
    with pytest.raises(DeliveryError, match="HTTP 403: no access") as err2:
        list(MispSource(misp.url, KEY).events())
    assert not err2.value.retryable


def _threat_intel() -> dict:
    return (ThreatIntelBuilder().threat("LockBit", "ransomware", family="LockBit 3.0").severity(9)
            .indicator("domain", "lockbit-c2.example.net", confidence=0.9, description="C2 panel")
            .indicator("file_hash_sha256", SHA256).indicator("ip", "203.0.113.66")
            .indicator("registry", r"HKCU\Software\LockBit").ttp("T1486").reference("https://example.org/lockbit")
            .tags("tlp:amber").build().to_dict())


def test_push_threat_intel_and_incident_iocs(misp):
    ti = _threat_intel()
    inc = (IncidentBuilder().title("Ransomware on finance hosts").category("ransomware").severity(8)
           .mitre("T1486").ioc("hash", "44d88612fea8a8f36de82e1278abb02f").ioc("url", "http://x.example.net/a.exe")
           .build().to_dict())
    with open_sink(misp.url.replace("http://", "misp+http://") + "?tag=wia:pushed", key=KEY, delivery=FAST) as sink:
        assert isinstance(sink, MispSink)
        report = sink.send([ti, inc])
        report.merge(sink.flush())
    assert report.delivered == 2 and not report.failed
    stored = {e["uuid"]: e for e in misp.events}
    pushed = stored[ti["id"]]                                        # MISP event uuid = WIA event id
    assert pushed["info"] == "LockBit (LockBit 3.0)"
    assert (pushed["threat_level_id"], pushed["distribution"], pushed["analysis"]) == ("1", "0", "1")
    assert {(a["type"], a["category"], a["value"]) for a in pushed["Attribute"]} == {
        ("domain", "Network activity", "lockbit-c2.example.net"), ("sha256", "Payload delivery", SHA256),
        ("ip-dst", "Network activity", "203.0.113.66"), ("regkey", "Persistence mechanism", r"HKCU\Software\LockBit"),
        ("link", "External analysis", "https://example.org/lockbit")}
    tags = {t["name"] for t in pushed["Tag"]}
    assert {'wia-security:event-type="threat_intel"', "wia:pushed", "tlp:amber",
            'misp-galaxy:mitre-attack-pattern="Data Encrypted for Impact - T1486"'} <= tags
    incident = stored[inc["id"]]
    assert {(a["type"], a["value"]) for a in incident["Attribute"]} == {
        ("md5", "44d88612fea8a8f36de82e1278abb02f"), ("url", "http://x.example.net/a.exe")}
    assert 'wia-security:incident-category="ransomware"' in {t["name"] for t in incident["Tag"]}
    # round trip: what we pushed comes back as the same indicators
    back = next(e for e in MispSource(misp.url, KEY).events() if e["data"]["report_id"] == f"misp:{ti['id']}")
    assert {(i["type"], i["value"]) for i in back["data"]["indicators"]} == {
        (i["type"], i["value"]) for i in ti["data"]["indicators"]}
    assert back["data"]["ttps"][0]["technique"] == "T1486"


def test_push_is_idempotent_and_rejects_what_misp_cannot_hold(misp):
    ti = _threat_intel()
    no_iocs = ThreatIntelBuilder().threat("Nothing", "campaign").build().to_dict()
    alert = AlertBuilder().title("x").indicator("ip", "203.0.113.1").build().to_dict()
    with MispSink(misp.url, KEY, delivery=FAST) as sink:
        first = sink.send([ti]).merge(sink.flush())
        again = sink.send([ti, no_iocs, alert]).merge(sink.flush())
    assert first.delivered == 1
    assert again.delivered == 0 and again.duplicates == 1
    reasons = sorted(r.reason for r in again.failed)
    assert len(reasons) == 2 and all(not r.retryable for r in again.failed)
    assert any("no indicator MISP can store" in r for r in reasons)
    assert any("threat_intel and incident events, not 'alert'" in r for r in reasons)
    assert len([e for e in misp.events if e["uuid"] == ti["id"]]) == 1


def test_push_retries_5xx_and_reports_refusals(misp):
    misp.faults.append(Fault(503, {"name": "Service Unavailable"}, path_prefix="/events/add"))
    slept: list[float] = []
    with MispSink(misp.url, KEY, delivery=FAST, sleep=slept.append) as sink:
        report = sink.send([_threat_intel()]).merge(sink.flush())
    assert report.delivered == 1 and len(slept) == 1
    misp.faults.append(Fault(403, {"saved": False, "name": "Could not add Event", "message": "Could not add Event",
                                   "url": "/events/add", "errors": {"Event": {"info": ["Info cannot be empty."]}}},
                             path_prefix="/events/add"))
    with MispSink(misp.url, KEY, delivery=FAST) as sink:
        report = sink.send([_threat_intel()]).merge(sink.flush())
    assert report.delivered == 0 and len(report.failed) == 1
    assert "MISP refused the event: HTTP 403: Could not add Event" in report.failed[0].reason
    assert not report.failed[0].retryable


def test_sink_url_and_secret_handling(misp, monkeypatch):
    monkeypatch.setenv("MISP_KEY", KEY)
    sink = open_sink(misp.url.replace("http://", "misp+http://") + "?distribution=1")
    assert sink.distribution == 1 and KEY not in repr(sink)
    sink.close()
    with pytest.raises(ConfigError, match="not in the URL"):
        open_sink(misp.url.replace("http://", f"misp+http://user:{KEY}@"))
    monkeypatch.delenv("MISP_KEY")
    with pytest.raises(ConfigError, match="API key is required"):
        open_sink(misp.url.replace("http://", "misp+http://"))
    assert all(r.headers.get("authorization") == "***" for r in misp.calls())


def test_sink_from_a_config_file_with_key_env_and_typed_values(misp, monkeypatch):
    # A config table's key_env arrives as a Secret (PyMISP crashed on it), an integer distribution was
    # given twice (TypeError), and misspelt or delivery keys in the URL were silently ignored.
    from wia_security.connectors.config import parse_config
    monkeypatch.setenv("MY_MISP_KEY", KEY)
    url = misp.url.replace("http://", "misp+http://")
    config = parse_config({"destinations": {"m": {"url": url + "?max_events=1&max_wait=0", "key_env": "MY_MISP_KEY",
                                                  "distribution": 1, "tags": ["tlp:amber"]}}})
    with config.destinations[0].open() as sink:
        assert (sink.distribution, sink.tags, sink.policy.max_events) == (1, ["tlp:amber"], 1)
        report = sink.send([_threat_intel()])
        report.merge(sink.flush())
    assert report.delivered == 1 and KEY not in repr(sink)
    for query, says in (("?distrbution=3", "unknown MISP option 'distrbution'"), ("?verify=maybe", "true or false"),
                        ("?distribution=x", "whole number 0..5")):
        with pytest.raises(ConfigError, match=says):
            open_sink(url + query, key=KEY)
    with pytest.raises(ConfigError, match="unknown MISP option 'distrbution'"):
        open_sink(url, key=KEY, distrbution=3)
    # the unknown-option message listed timeout as known, yet refused it in the URL
    with open_sink(url + "?timeout=7", key=KEY) as sink:
        assert sink.misp.timeout == 7.0
    with pytest.raises(ConfigError, match="timeout"):
        open_sink(url + "?timeout=soon", key=KEY)


def test_threat_level_and_direct_mapping():
    assert [threat_level(s) for s in (10, 7, 6.9, 4, 1, 0.5)] == [1, 1, 2, 2, 3, 4]
    e = event_to_wia({"Event": {"uuid": "u", "info": "", "timestamp": "1767225600", "Attribute": []}})
    assert e["data"]["threat_name"] == "MISP event u" and e["data"]["threat_type"] == "campaign"
    assert validate_event(e).valid


def test_relative_timestamp_filter(misp):
    misp.events[0]["timestamp"] = str(int(__import__("time").time()) - 3600)       # changed an hour ago
    recent = list(MispSource(misp.url, KEY).events(timestamp="1d"))
    assert [e["data"]["threat_name"] for e in recent] == ["Emotet spam wave"]
    assert misp.calls("/events/restSearch")[-1].body["timestamp"] == "1d"
