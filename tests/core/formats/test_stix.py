"""STIX 2.1 out: every builder event and sample passes the OASIS validator in strict mode, with the
objects, patterns, references and deterministic ids docs/formats/stix.md promises."""
from __future__ import annotations

import copy
import random
import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings

from strategies import events
from wia_security import ConversionError, ThreatIntelBuilder, convert, parse
from wia_security.formats.stix import to_bundle
from wia_security.formats.stix.ids import SCO_NAMESPACE, WIA_NAMESPACE, derived_id, derived_uuid, sco_id, uuid5_str
from wia_security.formats.stix.writer import INCIDENT_CORE_EXTENSION, WIA_EXTENSION

from stix_validator import findings
from wia_corpus import all_events

CORPUS = all_events()
UUID4 = re.compile(r"--[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def by_type(bundle: dict, stix_type: str) -> list[dict]:
    return [o for o in bundle["objects"] if o["type"] == stix_type]


def one(bundle: dict, stix_type: str) -> dict:
    found = by_type(bundle, stix_type)
    assert len(found) == 1, (stix_type, [o["type"] for o in bundle["objects"]])
    return found[0]


@pytest.mark.parametrize("name,event", CORPUS, ids=[n for n, _ in CORPUS])
def test_every_corpus_event_passes_the_oasis_validator_strictly(name: str, event: dict) -> None:
    bundle = convert(event, to="stix")
    assert findings(bundle) == []
    ids = [o["id"] for o in bundle["objects"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name,event", CORPUS, ids=[n for n, _ in CORPUS])
def test_plain_stix_without_the_wia_extension_is_valid_too(name: str, event: dict) -> None:
    try:
        bundle = convert(event, to="stix", wia_extension=False)
    except ConversionError as exc:
        # Only the upstream network sample holds a value STIX cannot carry (a fingerprint "abc123def456789...").
        assert name == "sample/network-event-sample" and exc.path == "/data/tls/certificate/fingerprint_sha256"
        return
    assert findings(bundle) == []
    assert not any(WIA_EXTENSION in o.get("extensions", {}) for o in bundle["objects"])
    assert not by_type(bundle, "extension-definition")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_generated_events_pass_the_oasis_validator_strictly(event: dict) -> None:
    assert findings(convert(event, to="stix")) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events("threat_intel", wild=True))
def test_wild_indicator_values_are_escaped_into_valid_patterns(event: dict) -> None:
    for ind in event["data"].get("indicators", []):
        if ind["type"] in ("domain", "mutex", "file"):
            ind["value"] = ind["value"] + "'\\' OR [x:y = 'z']"
    try:
        bundle = convert(event, to="stix")
    except ConversionError:
        pytest.fail("the WIA extension keeps unrepresentable values; nothing should raise")
    assert findings(bundle) == []


def test_conversion_is_deterministic_and_ids_follow_the_spec() -> None:
    for _, event in CORPUS:
        a, b = convert(event, to="stix"), convert(copy.deepcopy(event), to="stix")
        assert a == b
        for obj in a["objects"]:
            if obj["type"] in ("process",) or "spec_version" in obj and obj["type"] not in (
                    "ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr", "file", "directory",
                    "network-traffic", "user-account", "windows-registry-key", "mutex", "x509-certificate"):
                assert UUID4.search(obj["id"]), obj["id"]
            else:
                assert obj["id"] == sco_id(obj), obj


def test_sco_ids_equal_the_stix2_librarys_deterministic_ids() -> None:
    stix2 = pytest.importorskip("stix2")
    assert str(SCO_NAMESPACE) == "00abedb4-aa42-466c-9c01-fed23315a9b7"
    checked = 0
    for _, event in CORPUS[:60]:
        for obj in convert(event, to="stix")["objects"]:
            if obj["type"] in ("ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr", "file",
                               "directory", "network-traffic", "user-account", "windows-registry-key",
                               "x509-certificate"):
                props = {k: v for k, v in obj.items() if k != "id"}
                assert stix2.parse(props, allow_custom=False).id == obj["id"], obj
                checked += 1
    assert checked > 100


def test_ids_are_what_the_uuid_module_gives() -> None:
    # ids.py formats UUIDs itself (UUID objects cost most of an id); they must stay uuid.uuid5's.
    rnd = random.Random(1)
    for _ in range(2000):
        namespace = uuid.UUID(int=rnd.getrandbits(128))
        name = "".join(rnd.choice("ab|-:{}\"é日\U0001F600") for _ in range(rnd.randrange(40)))
        assert uuid5_str(namespace.bytes, name) == str(uuid.uuid5(namespace, name))
        raw = bytearray(uuid.uuid5(WIA_NAMESPACE, name).bytes)
        raw[6] = (raw[6] & 0x0F) | 0x40         # the derived form: version 4
        assert derived_uuid(*name.split("|")) == str(uuid.UUID(bytes=bytes(raw)))


def test_threat_intel_maps_indicators_threat_object_and_ttps() -> None:
    event = dict(next(e for n, e in CORPUS if n == "sample/threat-intel-sample"))
    bundle = convert(event, to="stix")
    group = one(bundle, "intrusion-set")          # apt -> intrusion-set (ATT&CK's model of groups)
    assert group["name"] == "APT-SHADOW-TIGER" and group["aliases"] == ["Lazarus Group", "Hidden Cobra", "Zinc"]
    patterns = sorted(i["pattern"] for i in by_type(bundle, "indicator"))
    assert patterns == ["[domain-name:value = 'update-service.shadow-infra.net']",
                        "[email-addr:value = 'support@legitimate-looking-domain.com']",
                        "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
                        "[ipv4-addr:value = '198.51.100.50']"]
    ind = next(i for i in by_type(bundle, "indicator") if "ipv4" in i["pattern"])
    assert ind["confidence"] == 95 and ind["valid_from"] == "2025-11-01T00:00:00.000Z"
    assert ind["kill_chain_phases"] == [{"kill_chain_name": "lockheed-martin-cyber-kill-chain",
                                         "phase_name": "command-and-control"}]
    rels = {(r["relationship_type"], r["source_ref"].split("--")[0], r["target_ref"].split("--")[0])
            for r in by_type(bundle, "relationship")}
    assert rels == {("indicates", "indicator", "intrusion-set"), ("uses", "intrusion-set", "attack-pattern")}
    refs = {r["external_references"][0]["external_id"]: r for r in by_type(bundle, "attack-pattern")}
    assert sorted(refs) == ["T1041", "T1059.001", "T1071.001", "T1547.001", "T1566.001"]
    ps = refs["T1059.001"]
    assert ps["name"] == "PowerShell"
    assert ps["external_references"] == [{"source_name": "mitre-attack", "external_id": "T1059.001",
                                          "url": "https://attack.mitre.org/techniques/T1059/001"}]
    assert ps["kill_chain_phases"] == [{"kill_chain_name": "mitre-attack", "phase_name": "execution"}]


@pytest.mark.parametrize("threat_type,stix_type,malware_types", [
    ("malware", "malware", ["unknown"]), ("ransomware", "malware", ["ransomware"]), ("botnet", "malware", ["bot"]),
    ("apt", "intrusion-set", None), ("campaign", "campaign", None), ("phishing", "campaign", None)])
def test_threat_type_picks_the_sdo(threat_type: str, stix_type: str, malware_types: list | None) -> None:
    event = ThreatIntelBuilder().threat("X", threat_type).indicator("ip", "2001:db8::1").build().to_dict()
    bundle = convert(event, to="stix")
    threat = one(bundle, stix_type)
    assert threat.get("malware_types") == malware_types
    assert one(bundle, "indicator")["pattern"] == "[ipv6-addr:value = '2001:db8::1']"
    assert findings(bundle) == []


@pytest.mark.parametrize("wia_type,value,pattern", [
    ("ip", "10.0.0.0/8", "[ipv4-addr:value = '10.0.0.0/8']"),
    ("ip", "2001:db8::/32", "[ipv6-addr:value = '2001:db8::/32']"),
    ("hash", "d41d8cd98f00b204e9800998ecf8427e", "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"),
    ("hash", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
     "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']"),
    ("file_hash_sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
     "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']"),
    ("url", "https://x.example/a'b", "[url:value = 'https://x.example/a\\'b']"),
    ("email", "a@b.example", "[email-addr:value = 'a@b.example']"),
    ("mutex", "Global\\m", "[mutex:name = 'Global\\\\m']"),
    ("registry", "HKLM\\Software\\Run", "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\Software\\\\Run']"),
    ("file", "C:\\x.exe", "[file:name = 'C:\\\\x.exe']"),
])
def test_indicator_patterns_per_type(wia_type: str, value: str, pattern: str) -> None:
    from wia_security import AlertBuilder
    event = AlertBuilder().title("t").indicator(wia_type, value).build().to_dict()
    bundle = convert(event, to="stix")
    assert one(bundle, "indicator")["pattern"] == pattern
    assert findings(bundle) == []


@pytest.mark.parametrize("wia_type,value", [("ip", "not-an-ip"), ("file_hash_md5", "xyz"), ("hash", "abc")])
def test_values_stix_cannot_carry_raise_without_the_extension(wia_type: str, value: str) -> None:
    from wia_security import AlertBuilder
    # set(), since indicator() refuses an ip or file_hash_* value that is not one; the schema takes them
    event = AlertBuilder().title("t").set("data.indicators", [{"type": wia_type, "value": value}]).build().to_dict()
    with pytest.raises(ConversionError) as info:
        convert(event, to="stix", wia_extension=False)
    assert info.value.path == "/data/indicators/0/value"
    bundle = convert(event, to="stix")       # the extension keeps it; no indicator object is made
    assert by_type(bundle, "indicator") == [] and findings(bundle) == []


def test_alert_becomes_a_sighting_of_the_attack_pattern_with_observed_data() -> None:
    event = next(e for n, e in CORPUS if n == "sample/alert-sample")
    bundle = convert(event, to="stix")
    objects = {o["id"]: o for o in bundle["objects"]}
    sighting = one(bundle, "sighting")
    sighted = objects[sighting["sighting_of_ref"]]
    assert sighted["type"] == "attack-pattern"
    assert sighted["external_references"][0]["external_id"] == "T1059.001"
    assert sighting["count"] == 3 and sighting["first_seen"] == "2025-12-14T09:25:00.000Z"
    assert objects[sighting["where_sighted_refs"][0]]["name"] == "Splunk Enterprise Security"
    od = objects[sighting["observed_data_refs"][0]]
    types = sorted(objects[r]["type"] for r in od["object_refs"])
    assert types == ["domain-name", "email-addr", "ipv4-addr", "ipv4-addr", "mac-addr", "network-traffic",
                     "user-account"]
    traffic = next(objects[r] for r in od["object_refs"] if objects[r]["type"] == "network-traffic")
    assert traffic["protocols"] == ["ipv4", "https"] and traffic["dst_port"] == 443
    assert {(r["source_ref"].split("--")[0], r["relationship_type"], r["target_ref"]) for r in by_type(bundle, "relationship")} \
        == {("indicator", "indicates", sighted["id"])}
    assert sighting["confidence"] == 92 and sighting["labels"] == ["powershell", "encoded", "macro", "office"]
    assert sighting["extensions"][WIA_EXTENSION]["event"] == event


def test_alert_without_attack_technique_sights_an_attack_pattern_for_its_detection() -> None:
    from wia_security import AlertBuilder
    event = AlertBuilder().title("Odd login").detection_rule("R-9", "Odd logins").build().to_dict()
    bundle = convert(event, to="stix")
    pattern = one(bundle, "attack-pattern")
    assert one(bundle, "sighting")["sighting_of_ref"] == pattern["id"]
    assert pattern["name"] == "Odd logins"
    assert pattern["external_references"] == [{"source_name": "wia-security", "external_id": "R-9"}]
    assert findings(bundle) == []


def test_vulnerability_has_cve_and_cwe_references() -> None:
    event = next(e for n, e in CORPUS if n == "sample/vulnerability-sample")
    vuln = one(convert(event, to="stix", wia_extension=False), "vulnerability")
    assert vuln["name"] == "CVE-2025-12345"
    assert vuln["external_references"][:3] == [{"source_name": "cve", "external_id": "CVE-2025-12345"},
                                               {"source_name": "cwe", "external_id": "CWE-78"},
                                               {"source_name": "cwe", "external_id": "CWE-94"}]
    assert [r["url"] for r in vuln["external_references"][3:]] == event["data"]["references"]


def test_incident_uses_the_incident_core_extension() -> None:
    event = next(e for n, e in CORPUS if n == "sample/incident-sample")
    bundle = convert(event, to="stix")
    inc = one(bundle, "incident")
    core = inc["extensions"][INCIDENT_CORE_EXTENSION]
    assert core == {"extension_type": "property-extension", "determination": "suspected",
                    "investigation_status": "open", "incident_types": ["ransomware"], "criticality": 100,
                    "detection_methods": ["WIA Incident Response System"],
                    "scores": [{"name": "wia-severity", "value": 9,
                                "description": "WIA Security severity, 0 (informational) to 10"}]}
    assert len(by_type(bundle, "indicator")) == 4
    assert {r["relationship_type"] for r in by_type(bundle, "relationship")} == {"related-to"}


def test_endpoint_event_builds_process_tree_files_and_registry() -> None:
    event = next(e for n, e in CORPUS if n == "endpoint_event/registry_modify")
    bundle = convert(event, to="stix")
    objects = {o["id"]: o for o in bundle["objects"]}
    procs = by_type(bundle, "process")
    child = next(p for p in procs if "parent_ref" in p)
    assert child["pid"] == 4242 and objects[child["parent_ref"]]["pid"] == 1000
    image = objects[child["image_ref"]]
    assert image["name"] == "powershell.exe" and set(image["hashes"]) == {"MD5", "SHA-1", "SHA-256"}
    assert objects[image["parent_directory_ref"]]["path"] == "C:\\Windows\\System32"
    assert objects[child["creator_user_ref"]]["account_login"] == "CORP\\jsmith"
    key = one(bundle, "windows-registry-key")
    assert key["key"].startswith("HKEY_LOCAL_MACHINE\\") and key["values"][0]["data_type"] == "REG_SZ"
    od = one(bundle, "observed-data")
    assert set(od["object_refs"]) == {o["id"] for o in bundle["objects"]
                                      if o["type"] not in ("identity", "observed-data", "extension-definition")}


def test_network_event_http_extension_and_dns_resolution() -> None:
    http = convert(next(e for n, e in CORPUS if n == "network_event/http/allowed"), to="stix")
    traffic = one(http, "network-traffic")
    assert traffic["extensions"]["http-request-ext"] == {
        "request_method": "post", "request_value": "/path?q=1",
        "request_header": {"User-Agent": ["curl/8.0"], "Referer": ["https://ref.example/"]}}
    assert traffic["protocols"] == ["ipv4", "tcp", "http"] and traffic["src_byte_count"] == 1200
    dns = convert(next(e for n, e in CORPUS if n == "network_event/dns/allowed"), to="stix")
    objects = {o["id"]: o for o in dns["objects"]}
    query = next(o for o in by_type(dns, "domain-name") if o["value"] == "evil.example")
    assert sorted(objects[r]["value"] for r in query["resolves_to_refs"]) == ["203.0.113.10", "203.0.113.9"]


def test_many_events_share_one_bundle() -> None:
    evs = [e for _, e in CORPUS[::7]]
    bundle = to_bundle(evs)
    ids = [o["id"] for o in bundle["objects"]]
    assert len(ids) == len(set(ids))
    assert sum(WIA_EXTENSION in o.get("extensions", {}) for o in bundle["objects"]) == len(evs)
    assert len(by_type(bundle, "extension-definition")) == 1
    assert bundle["id"] == derived_id("bundle", *(e["id"] for e in evs))
    assert findings(bundle) == []


def _host_only_endpoint(hostname: str) -> dict:
    return {"$schema": "https://wia.live/security/v1/schema.json", "version": "1.0.0",
            "id": "00000000-0000-4000-8000-000000000000", "type": "endpoint_event",
            "timestamp": "2015-01-01T00:00:00+00:00", "severity": 0, "source": {"type": "siem", "name": "edr"},
            "data": {"event_type": "service_install", "host": {"hostname": hostname, "mac": [], "agent_id": "0"}}}


def test_an_endpoint_event_with_only_a_host_name_observes_that_name() -> None:
    # Found by Hypothesis: nothing else to observe left observed-data with empty object_refs (invalid).
    event = _host_only_endpoint("ws01.corp.example")
    for extension in (True, False):
        bundle = convert(event, to="stix", wia_extension=extension)
        assert findings(bundle) == []
        (od,) = by_type(bundle, "observed-data")
        (name,) = by_type(bundle, "domain-name")
        assert od["object_refs"] == [name["id"]] and name["value"] == "ws01.corp.example"
    (back,) = parse(bundle, from_="stix")           # plain STIX: the name comes back as the host
    assert back.type == "endpoint_event" and back.data.host.hostname == "ws01.corp.example"


def test_an_endpoint_host_name_that_is_no_dns_name_becomes_an_infrastructure_object() -> None:
    event = _host_only_endpoint("HOST_01 (lab)")
    bundle = convert(event, to="stix")
    assert findings(bundle) == [] and not by_type(bundle, "observed-data")
    (infra,) = by_type(bundle, "infrastructure")
    assert infra["name"] == "HOST_01 (lab)" and WIA_EXTENSION in infra["extensions"]
    assert parse(bundle, from_="stix")[0].to_dict() == event
    with pytest.raises(ConversionError) as exc:
        convert(event, to="stix", wia_extension=False)
    assert exc.value.path == "/data/host/hostname"
