"""STIX 2.1 bundles from other products, hostile and edge cases: every error names a JSON pointer into
the document, every date-time comes out as WIA writes them (UTC, milliseconds, "Z"), values a WIA field
cannot hold are kept in `meta.custom.stix.kept`, and any mutated document gives strictly valid WIA
events or a ConversionError with a path. The project's own bundles (WIA extension) stay exact."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from strategies import event_dicts, replace_values
from wia_security import convert, validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format

STIX = get_format("stix")
FOREIGN = Path(__file__).parent / "foreign" / "stix"
T = "2024-01-15T12:00:00.000Z"


def oid(kind: str, n: int) -> str:
    return f"{kind}--{n:08d}-0000-4000-8000-000000000000"


def indicator(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": oid("indicator", n), "created": T, "modified": T,
            "name": f"ind {n}", "pattern_type": "stix", "valid_from": "2024-01-15T12:00:00Z",
            "pattern": "[ipv4-addr:value = '198.51.100.7']", **extra}


def bundle(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bundle", "id": oid("bundle", 9), "objects": list(objects)}


def valid_events(doc: Any) -> list[dict[str, Any]]:
    events = STIX.to_wia(doc)
    for event in events:
        result = validate_event(event)
        assert result.valid and not result.warnings, (result.errors, result.warnings)
    return events


def error_path(doc: Any) -> str:
    with pytest.raises(ConversionError) as info:
        STIX.to_wia(doc)
    return info.value.path


# --- errors name JSON pointers ----------------------------------------------------------------------
SIGHTING = {"type": "sighting", "spec_version": "2.1", "id": oid("sighting", 2), "created": T, "modified": T,
            "sighting_of_ref": oid("indicator", 1)}
VULN = {"type": "vulnerability", "spec_version": "2.1", "id": oid("vulnerability", 3), "created": T, "modified": T,
        "name": "log4shell"}
OBSERVED = {"type": "observed-data", "spec_version": "2.1", "id": oid("observed-data", 4), "created": T, "modified": T,
            "first_observed": T, "last_observed": T, "number_observed": 1,
            "object_refs": [oid("ipv4-addr", 5), oid("network-traffic", 6)]}
ADDR = {"type": "ipv4-addr", "spec_version": "2.1", "id": oid("ipv4-addr", 5), "value": "192.0.2.1"}
TRAFFIC = {"type": "network-traffic", "spec_version": "2.1", "id": oid("network-traffic", 6),
           "src_ref": oid("ipv4-addr", 5), "dst_ref": oid("ipv4-addr", 5), "protocols": ["ipv4", "tcp"]}


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


ERRORS = {
    "pattern with nothing WIA reads": (bundle(indicator(1), indicator(2), indicator(3),
                                              indicator(4, pattern="[process:pid = 4]")), "/objects/3/pattern"),
    "missing created": (bundle(without(indicator(), "created")), "/objects/0/created"),
    "created not RFC 3339": (bundle(indicator(created="yesterday")), "/objects/0/created"),
    "created on a day that does not exist": (bundle(indicator(created="2023-02-29T00:00:00Z")), "/objects/0/created"),
    "created beyond year 9999 in UTC": (bundle(indicator(created="9999-12-31T23:59:59-23:59")), "/objects/0/created"),
    "created before year 1 in UTC": (bundle(indicator(created="0001-01-01T00:00:00+01:00")), "/objects/0/created"),
    "valid_from not a time": (bundle(indicator(valid_from=1700000000)), "/objects/0/valid_from"),
    "sighting first_seen": (bundle(indicator(), {**SIGHTING, "first_seen": "2024-01-15"}), "/objects/1/first_seen"),
    "vulnerability without a CVE": (bundle(VULN), "/objects/0/external_references"),
    "CVE id malformed": (bundle({**VULN, "external_references": [{"source_name": "cve", "external_id": "CVE-21-1"}]}),
                         "/objects/0/external_references/0/external_id"),
    "network traffic ref not a string": (bundle(OBSERVED, ADDR, {**TRAFFIC, "dst_ref": 5}), "/objects/2/dst_ref"),
    "name not a string": (bundle(indicator(name=5)), "/objects/0/name"),
    "labels not strings": (bundle(indicator(labels=["a", 1])), "/objects/0/labels"),
    "confidence out of range": (bundle(indicator(confidence=101)), "/objects/0/confidence"),
    "confidence not an integer": (bundle(indicator(confidence=50.5)), "/objects/0/confidence"),
    "null property": (bundle(indicator(description=None)), "/objects/0/description"),
    "sighting count negative": (bundle(indicator(), {**SIGHTING, "count": -1}), "/objects/1/count"),
    "external reference url": (bundle(indicator(external_references=[{"source_name": "x", "url": "not a url"}])),
                               "/objects/0/external_references/0/url"),
    "kill chain phase member": (bundle(indicator(kill_chain_phases=[{"kill_chain_name": "k", "phase_name": 3}])),
                                "/objects/0/kill_chain_phases/0/phase_name"),
    "object that is not an object": (bundle(indicator(), 5), "/objects/1"),
    "object without type": (bundle(without(indicator(), "type")), "/objects/0/type"),
    "id that is not type--UUID": (bundle(indicator(id="indicator-1")), "/objects/0/id"),
    "address without value": (bundle(OBSERVED, without(ADDR, "value"), TRAFFIC), "/objects/1/value"),
    "email that is no address": (bundle({**OBSERVED, "object_refs": [oid("user-account", 7), oid("email-addr", 8)]},
                                        {"type": "user-account", "id": oid("user-account", 7), "account_login": "bob"},
                                        {"type": "email-addr", "id": oid("email-addr", 8), "value": "bob at example"}),
                                 "/objects/2/value"),
    "incident core extension member": (bundle({"type": "incident", "spec_version": "2.1", "id": oid("incident", 10),
                                               "created": T, "modified": T, "name": "i", "extensions": {
                                                   "extension-definition--ef765651-680c-498d-9894-99799f2fa126": {
                                                       "extension_type": "property-extension",
                                                       "incident_types": "ransomware"}}}),
                                       "/objects/0/extensions/extension-definition--ef765651-680c-498d-9894-99799f2fa126"
                                       "/incident_types"),
    "nothing convertible in a bundle": (bundle({"type": "identity", "id": oid("identity", 1), "name": "x"}), "/objects"),
    "a list of objects (no bundle)": ([indicator(1), indicator(2, pattern="[process:pid = 4]")], "/1/pattern"),
    "a lone object": (indicator(pattern="[process:pid = 4]"), "/pattern"),
    "a lone object WIA does not read": ({"type": "identity", "id": oid("identity", 1), "name": "x"}, "/type"),
    "a lone object with a type that is no string": ({"type": ["bundle"], "id": oid("bundle", 1)}, "/type"),
    "a bundle without objects": ({"type": "bundle", "id": oid("bundle", 1), "objects": {}}, "/objects"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_name_the_json_pointer(name: str) -> None:
    doc, path = ERRORS[name]
    assert error_path(doc) == path


def test_the_reason_still_names_the_object_id() -> None:
    with pytest.raises(ConversionError) as info:
        STIX.to_wia(bundle(indicator(pattern="[process:pid = 4]")))
    assert oid("indicator", 1) in str(info.value) and str(info.value).startswith("stix at /objects/0/pattern:")


# --- times --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("2024-01-15T12:00:00Z", "2024-01-15T12:00:00.000Z"),                   # no fraction
    ("2024-01-15T12:00:00.5Z", "2024-01-15T12:00:00.500Z"),
    ("2024-01-15T12:00:00.123456789Z", "2024-01-15T12:00:00.123Z"),         # beyond the millisecond: dropped
    ("2024-01-15T17:30:00+05:30", "2024-01-15T12:00:00.000Z"),              # an offset (not STIX, but seen)
    ("2024-01-15T12:00:00-00:00", "2024-01-15T12:00:00.000Z"),              # RFC 3339 "unknown local offset"
    ("2024-01-15t12:00:00.250z", "2024-01-15T12:00:00.250Z"),               # lower-case t and z
    ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999Z"),                   # a leap second
    ("2016-12-31T23:59:60.5Z", "2016-12-31T23:59:59.999Z"),
    ("2017-01-01T05:29:60+05:30", "2016-12-31T23:59:59.999Z"),              # the same leap second, local time
    ("2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00.000Z"),              # across a leap day
])
def test_times_are_written_as_wia_writes_them(text: str, expected: str) -> None:
    [event] = valid_events(bundle(indicator(created=text, valid_from=text)))
    assert event["timestamp"] == expected
    assert event["data"]["indicators"][0]["first_seen"] == expected


def test_every_time_field_is_rewritten() -> None:
    odd = "2024-01-15T17:30:00.1234+05:30"
    want = "2024-01-15T12:00:00.123Z"
    threat = {"type": "malware", "spec_version": "2.1", "id": oid("malware", 20), "created": odd, "modified": odd,
              "name": "Emotet", "is_family": True, "first_seen": odd, "last_seen": odd}
    rel = {"type": "relationship", "spec_version": "2.1", "id": oid("relationship", 21), "created": T, "modified": T,
           "relationship_type": "indicates", "source_ref": oid("indicator", 1), "target_ref": threat["id"]}
    [event] = valid_events(bundle(indicator(valid_from=odd), threat, rel))
    data = event["data"]
    assert (event["timestamp"], data["first_seen"], data["last_seen"], data["indicators"][0]["first_seen"]) == (want,) * 4
    sighting = {**SIGHTING, "created": odd, "first_seen": odd, "last_seen": odd, "count": 2}
    [alert] = valid_events(bundle(indicator(), sighting))
    assert (alert["timestamp"], alert["data"]["first_seen"], alert["data"]["last_seen"]) == (want,) * 3
    proc = {"type": "process", "id": oid("process", 30), "pid": 4, "created_time": odd, "image_ref": oid("file", 31)}
    image = {"type": "file", "id": oid("file", 31), "name": "a.exe"}
    dropped = {"type": "file", "id": oid("file", 32), "name": "b.dll", "ctime": odd, "mtime": odd, "atime": odd}
    od = {**OBSERVED, "created": odd, "object_refs": [proc["id"], image["id"], dropped["id"]]}
    [endpoint] = valid_events(bundle(od, proc, image, dropped))
    f = endpoint["data"]["file"]
    assert (endpoint["timestamp"], endpoint["data"]["process"]["start_time"], f["created"], f["modified"],
            f["accessed"]) == (want,) * 5
    cert = {"type": "x509-certificate", "id": oid("x509-certificate", 40), "issuer": "CN=x",
            "validity_not_before": odd, "validity_not_after": "2025-01-15T12:00:00Z"}
    od = {**OBSERVED, "object_refs": [ADDR["id"], TRAFFIC["id"], cert["id"]]}
    [network] = valid_events(bundle(od, ADDR, TRAFFIC, cert))
    assert network["data"]["tls"]["certificate"]["not_before"] == want
    assert network["data"]["tls"]["certificate"]["not_after"] == "2025-01-15T12:00:00.000Z"


def test_the_corpus_of_foreign_bundles_gives_canonical_times() -> None:
    for path in sorted(FOREIGN.glob("*.json")):
        try:
            events = valid_events(json.loads(path.read_text()))
        except ConversionError as exc:
            assert exc.path.startswith("/"), path
            continue
        for event in events:
            for value in _times(event):
                assert len(value) == 24 and value.endswith("Z") and value[19] == ".", (path.name, value)


def _times(node: Any, key: str = "") -> list[str]:
    from wia_security.formats._wia_paths import TIME_KEYS
    if isinstance(node, dict):
        return [t for k, v in node.items() if k != "custom" for t in _times(v, k)]
    if isinstance(node, list):
        return [t for v in node for t in _times(v, key)]
    return [node] if key in TIME_KEYS and isinstance(node, str) else []


def test_own_bundles_keep_every_spelling_exactly() -> None:
    """The WIA extension carries the event as it was: offsets and microseconds come back untouched."""
    event = json.loads((Path(__file__).parents[3] / "samples" / "alert-sample.json").read_text())
    event["timestamp"] = "2024-01-15T17:30:00.123456+05:30"
    event["data"]["first_seen"] = "2024-01-15T12:00:00Z"
    assert STIX.to_wia(json.loads(json.dumps(convert(event, to="stix")))) == [event]
    for generated in event_dicts(300, seed=28) + event_dicts(100, seed=28, wild=True):
        assert STIX.to_wia(convert(generated, to="stix")) == [generated]


# --- values WIA cannot hold ---------------------------------------------------------------------------
def test_values_outside_wias_enums_are_kept_with_their_pointer() -> None:
    key = {"type": "windows-registry-key", "id": oid("windows-registry-key", 50), "key": "HKEY_LOCAL_MACHINE\\Software\\x",
           "values": [{"name": "v", "data": "", "data_type": "REG_NONE"}]}
    od = {**OBSERVED, "object_refs": [key["id"]]}
    [event] = valid_events(bundle(od, key))
    assert "value_type" not in event["data"]["registry"]
    assert event["meta"]["custom"]["stix"]["kept"] == {"/objects/1/values/0/data_type": "REG_NONE"}
    traffic = {**TRAFFIC, "extensions": {"http-request-ext": {"request_method": "propfind", "request_value": "/d/",
                                                              "request_header": {"User-Agent": ["curl/8", "x"]}}}}
    [event] = valid_events(bundle(OBSERVED, ADDR, traffic))
    assert event["data"]["http"] == {"user_agent": "curl/8"}
    assert event["meta"]["custom"]["stix"]["kept"] == {
        "/objects/2/extensions/http-request-ext/request_method": "propfind"}


def test_a_cve_id_is_found_in_the_name_and_upper_cased() -> None:
    [event] = valid_events(bundle({**VULN, "name": "Apache Log4j: cve-2021-44228 (Log4Shell)"}))
    assert event["data"]["vuln_id"] == "CVE-2021-44228"
    refs = [{"source_name": "cve", "external_id": "cve-2023-4863"}]
    [event] = valid_events(bundle({**VULN, "external_references": refs}))
    assert event["data"]["vuln_id"] == "CVE-2023-4863"


def test_nvd_cwe_placeholders_are_not_cwe_ids() -> None:
    vuln = {**VULN, "external_references": [{"source_name": "cve", "external_id": "CVE-2021-44228"},
                                            {"source_name": "cwe", "external_id": "NVD-CWE-Other"},
                                            {"source_name": "cwe", "external_id": "CWE-502"}]}
    [event] = valid_events(bundle(vuln))
    assert event["data"]["cwe"] == ["CWE-502"]


# --- size and hostility -------------------------------------------------------------------------------
def test_a_huge_bundle_converts_whole() -> None:
    objects = [indicator(n, pattern=f"[ipv4-addr:value = '10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}']")
               for n in range(20_000)]
    events = STIX.to_wia(bundle(*objects))
    assert len(events) == 20_000 and len({e["id"] for e in events}) == 20_000
    assert all(validate_event(e, warnings=False).valid for e in events[::997])
    assert error_path(bundle(*objects, indicator(20_000, created="never"))) == "/objects/20000/created"


HOSTILE = [42, -1, 1e300, "x", "", None, True, [], {}, [1], {"a": 1}, "2016-12-31T23:59:60Z",
           "2024-01-01T10:00:00.123456789+05:30", "9999-12-31T23:59:59-23:59", "\u202e\x00"]


def test_mutated_bundles_give_valid_events_or_an_error_with_a_path() -> None:
    """Foreign bundles and plain bundles of generated events, 1,500 random mutations (values replaced by
    numbers, strings, nulls, containers, odd times; members deleted): no other outcome is allowed."""
    docs = [json.loads(p.read_text()) for p in sorted(FOREIGN.glob("*.json"))]
    for event in event_dicts(60, seed=28):
        try:
            docs.append(convert(event, to="stix", wia_extension=False))
        except ConversionError:
            pass
    rnd = random.Random(28)
    outcomes = {"valid": 0, "error": 0}
    for _ in range(1500):
        doc = replace_values(rnd.choice(docs), rnd, HOSTILE)
        try:
            events = STIX.to_wia(doc)
        except ConversionError as exc:
            assert exc.path and exc.__cause__ is None, (str(exc), json.dumps(doc)[:400])
            outcomes["error"] += 1
            continue
        for event in events:
            assert validate_event(event, warnings=False).valid, json.dumps(doc)[:400]
        outcomes["valid"] += 1
    assert min(outcomes.values()) > 100, outcomes
