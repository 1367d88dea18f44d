"""ECS 9.4: every field name the converter emits (outside the documented `wia.*` namespace) exists in
ECS 9.4.0's fields.csv and holds a value of its type; the categorization fields hold allowed values
(event.type allowed for the event's categories), per ecs_flat.yml. Over all builder events and
samples; plus the mapping itself and exact round trips."""
from __future__ import annotations

import csv
import ipaddress
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import pytest

from wia_security import ConversionError, convert, parse, validate_event
from wia_security.formats.ecs import ECS_VERSION

from wia_corpus import all_events

from refdata import ECS

REFERENCE = ECS
EVENTS = all_events()
STRINGS = {"keyword", "wildcard", "match_only_text", "text", "constant_keyword"}
#: Elasticsearch's strict_date_optional_time, as its docs and DateFormatters define it: a date, optionally
#: `T` and a time (hours, then optional minutes, seconds and 1-9 fraction digits), optionally an offset.
#: Case matters: a lower-case t or z is refused (elastic/elasticsearch#77432). The offset is a Java ZoneOffset:
#: at most 18:00 either way (RFC 3339 allows up to 23:59).
ES_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}(:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?)?"
                     r"(Z|[+-](?:(?:0[0-9]|1[0-7])(:?[0-9]{2})?|18(:?00)?))?)?")


@lru_cache(maxsize=None)
def ecs_fields() -> dict[str, str]:
    with open(REFERENCE / "fields.csv", newline="") as fh:
        return {row["Field"]: row["Type"] for row in csv.DictReader(fh)}


@lru_cache(maxsize=None)
def ecs_flat() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="pyyaml is in the test extra")
    with open(REFERENCE / "ecs_flat.yml") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted ECS name, value) pairs; lists of objects are walked under the same name; geo_points kept whole."""
    if isinstance(value, dict) and ecs_fields().get(prefix) not in ("geo_point", "object", "flattened"):
        for k, v in value.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value) \
            and ecs_fields().get(prefix) not in ("flattened",):
        yield prefix, value
        for v in value:
            yield from leaves(v, prefix)
    else:
        yield prefix, value


def type_ok(ecs_type: str, value: Any) -> bool:
    if ecs_type == "nested" or (ecs_type == "object" and isinstance(value, list)):
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if isinstance(value, list):
        return all(type_ok(ecs_type, v) for v in value)
    if ecs_type in STRINGS:
        return isinstance(value, str)
    if ecs_type in ("long", "integer"):
        return isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63
    if ecs_type in ("float", "double", "scaled_float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ecs_type == "boolean":
        return isinstance(value, bool)
    if ecs_type == "ip":
        try:
            ipaddress.ip_address(value)
            return True
        except (ValueError, TypeError):
            return False
    if ecs_type == "date":
        # what Elasticsearch's default date format reads (strict_date_optional_time; epoch_millis aside)
        return isinstance(value, str) and ES_DATE.fullmatch(value) is not None
    if ecs_type == "geo_point":
        return isinstance(value, dict) and set(value) == {"lat", "lon"} and all(isinstance(v, (int, float)) for v in value.values())
    if ecs_type in ("object", "flattened"):
        return isinstance(value, dict)
    if ecs_type == "nested":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    raise AssertionError(f"unhandled ECS type {ecs_type}")


def allowed(name: str) -> dict[str, Any]:
    spec = ecs_flat()[name]
    return {a["name"]: a for a in spec.get("allowed_values", [])} or {v: {} for v in spec.get("expected_values", [])}


def ecs_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    fields = ecs_fields()
    for name, value in leaves({k: v for k, v in doc.items() if k != "wia"}):
        parent = name.rsplit(".", 1)[0]
        if name not in fields:
            if fields.get(parent) == "object" and isinstance(value, str):        # labels.<key>
                continue
            problems.append(f"{name}: not an ECS {ECS_VERSION} field")
            continue
        if not type_ok(fields[name], value):
            problems.append(f"{name}: {value!r} is not a {fields[name]}")
        spec = ecs_flat().get(name, {})
        if spec.get("allowed_values") or spec.get("expected_values"):
            values = allowed(name)
            for v in value if isinstance(value, list) else [value]:
                if v not in values:
                    problems.append(f"{name}: {v!r} not in {sorted(values)}")
    event = doc.get("event", {})
    categories = event.get("category", [])
    cat_values = allowed("event.category")
    for t in event.get("type", []):
        if not any(t in cat_values.get(c, {}).get("expected_event_types", []) for c in categories):
            problems.append(f"event.type {t!r} is not expected for categories {categories}")
    for required in ("@timestamp", "ecs.version", "event.kind", "event.category", "event.type"):
        node: Any = doc
        for part in required.split(".") if required != "@timestamp" else [required]:
            node = node.get(part) if isinstance(node, dict) else None
        if node in (None, [], ""):
            problems.append(f"{required} missing")
    return problems


@pytest.mark.parametrize("name,event", EVENTS, ids=[n for n, _ in EVENTS])
def test_every_field_exists_in_ecs_with_a_value_of_its_type(name, event):
    doc = convert(event, to="ecs")
    assert ecs_problems(doc) == []
    assert doc["ecs"]["version"] == "9.4.0"


def test_the_checker_catches_unknown_fields_wrong_types_and_disallowed_values():
    doc = convert(EVENTS[0][1], to="ecs")
    doc["event"]["kind"] = "finding"
    doc["source"]["port"] = "443"
    doc["source"]["ip"] = "not-an-ip"
    doc["event"]["category"] = ["library"]
    doc["made_up"] = {"field": 1}
    problems = "\n".join(ecs_problems(doc))
    for needle in ("event.kind: 'finding'", "source.port: '443'", "source.ip: 'not-an-ip'", "made_up.field",
                   "event.type 'info' is not expected"):
        assert needle in problems


@pytest.mark.parametrize("name,event", EVENTS, ids=[n for n, _ in EVENTS])
def test_round_trip_is_exact(name, event):
    back = parse(convert(event, to="ecs"), from_="ecs")[0].to_dict()
    assert back == event


CATEGORIZATION = {
    "network_event/dns/allowed": ("event", ["network"], ["connection", "protocol", "allowed"], "success"),
    "network_event/connection/blocked": ("event", ["network"], ["connection", "denied"], None),
    "auth_event/login_failure": ("event", ["authentication"], ["start"], "failure"),
    "auth_event/logout": ("event", ["authentication"], ["end"], "success"),
    "auth_event/password_change": ("event", ["iam"], ["change", "user"], "success"),
    "endpoint_event/process_creation": ("event", ["process"], ["start"], None),
    "endpoint_event/file_delete": ("event", ["file"], ["deletion"], None),
    "endpoint_event/registry_modify": ("event", ["registry"], ["change"], None),
    "endpoint_event/dll_load": ("event", ["library"], ["start"], None),
    "alert/malware/new": ("alert", ["malware"], ["info"], None),
    "alert/intrusion/new": ("alert", ["intrusion_detection"], ["info"], None),
    "threat_intel/apt": ("enrichment", ["threat"], ["indicator"], None),
    "vulnerability/3.1": ("state", ["vulnerability"], ["info"], None),
}


@pytest.mark.parametrize("name", sorted(CATEGORIZATION))
def test_categorization(name):
    event = convert(dict(EVENTS)[name], to="ecs")["event"]
    assert (event["kind"], event["category"], event["type"], event.get("outcome")) == CATEGORIZATION[name]


def test_event_specific_data_is_mapped_not_only_the_context():
    doc = convert(dict(EVENTS)["endpoint_event/registry_modify"], to="ecs")
    assert doc["process"]["pid"] == 4242 and doc["process"]["parent"]["name"] == "winword.exe"
    assert doc["process"]["hash"]["sha256"].startswith("e3b0") and doc["process"]["code_signature"]["trusted"] is True
    assert doc["registry"] == {"value": "evil", "data": {"strings": ["C:\\x.exe"], "type": "REG_SZ"}, "hive": "HKLM",
                               "key": "Software\\Microsoft\\Windows\\CurrentVersion\\Run",
                               "path": "HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\evil"}
    assert doc["host"]["hostname"] == "WORKSTATION-7" and doc["agent"]["id"] == "agent-1"
    assert doc["threat"]["technique"] == {"id": ["T1055"], "name": ["Process Injection"],
                                          "reference": ["https://attack.mitre.org/techniques/T1055/"]}
    tls = convert(dict(EVENTS)["network_event/tls/allowed"], to="ecs")
    assert tls["tls"]["version"] == "1.3" and tls["tls"]["version_protocol"] == "tls"
    assert tls["tls"]["client"]["server_name"] == "server.example" and tls["event"]["duration"] == 250_000_000
    http = convert(dict(EVENTS)["network_event/http/blocked"], to="ecs")
    assert http["http"]["request"]["method"] == "POST" and http["http"]["response"]["status_code"] == 403
    assert http["event"]["outcome"] == "failure" and http["user_agent"]["original"] == "curl/8.0"
    auth = convert(dict(EVENTS)["auth_event/login_failure"], to="ecs")
    assert auth["user"]["roles"] == ["dba"] and auth["source"]["ip"] == "198.51.100.20"
    assert auth["event"]["reason"] == "invalid_credentials" and auth["destination"]["address"] == "vpn.example.com"


def test_attack_and_indicators_in_threat_fields():
    doc = convert(dict(EVENTS)["sample/alert-sample"], to="ecs")
    t = doc["threat"]
    assert t["framework"] == "MITRE ATT&CK"
    assert t["tactic"] == {"id": ["TA0002"], "name": ["Execution"], "reference": ["https://attack.mitre.org/tactics/TA0002/"]}
    assert t["technique"]["subtechnique"] == {"id": ["T1059.001"], "name": ["PowerShell"],
                                              "reference": ["https://attack.mitre.org/techniques/T1059/001/"]}
    ip = t["enrichments"][1]
    assert ip["indicator"]["type"] == "ipv4-addr" and ip["indicator"]["ip"] == "185.220.101.45"
    assert ip["matched"] == {"atomic": "185.220.101.45", "type": "indicator_match_rule"}
    assert t["enrichments"][0]["indicator"]["file"]["hash"]["md5"] == "d41d8cd98f00b204e9800998ecf8427e"
    assert doc["rule"] == {"id": "RULE-PS-001", "name": "Encoded PowerShell from Office Application", "version": "2.1"}
    intel = convert(dict(EVENTS)["threat_intel/apt"], to="ecs")
    assert intel["threat"]["group"] == {"name": "apt one", "alias": ["a1", "a2"]}
    assert intel["threat"]["indicator"]["type"] == "ipv4-addr"
    vuln = convert(dict(EVENTS)["vulnerability/3.1"], to="ecs")["vulnerability"]
    assert (vuln["id"], vuln["score"]["base"], vuln["score"]["version"], vuln["severity"]) == ("CVE-2021-44228", 9.8, "3.1", "critical")


def test_values_ecs_cannot_hold_stay_in_the_custom_namespace():
    event = dict(dict(EVENTS)["network_event/connection/allowed"])
    event = json.loads(json.dumps(event))
    event["data"]["source"]["ip"] = "not an ip"           # the schema allows any string
    doc = convert(event, to="ecs")
    assert "ip" not in doc["source"] and doc["wia"]["data"]["source"]["ip"] == "not an ip"
    assert ecs_problems(doc) == []
    assert parse(doc, from_="ecs")[0].to_dict() == event


def test_dotted_and_foreign_documents_parse():
    flat = {"@timestamp": "2024-05-01T10:00:00Z", "event.kind": "event", "event.category": ["authentication"],
            "event.type": ["start"], "event.outcome": "failure", "event.action": "login_failure",
            "user.name": "bob", "source.ip": "192.0.2.1", "destination.address": "sshd", "host.name": "srv1"}
    event = parse(flat, from_="ecs")[0].to_dict()
    assert validate_event(event).valid, validate_event(event).errors
    assert (event["type"], event["data"]["event_type"], event["data"]["result"]) == ("auth_event", "login_failure", "failure")
    assert event["data"]["user"]["name"] == "bob" and event["data"]["source"]["ip"] == "192.0.2.1"
    beat = {"@timestamp": "2024-05-01T10:00:00Z", "event": {"kind": "event", "category": ["network"], "type": ["connection"]},
            "source": {"ip": "10.0.0.1", "port": 5000}, "destination": {"ip": "10.0.0.2", "port": 443},
            "network": {"transport": "tcp"}}
    net = parse(beat, from_="ecs")[0].to_dict()
    assert validate_event(net).valid and net["data"]["destination"] == {"ip": "10.0.0.2", "port": 443}
    with pytest.raises(ConversionError):
        parse({"@timestamp": "2024-05-01T10:00:00Z", "event": {"kind": "metric"}}, from_="ecs")


def test_an_integrations_namespace_is_kept_with_its_nulls_and_empty_values():
    # Winlogbeat and Zeek write nulls and empty objects; meta.custom takes any JSON, so they stay as sent
    zeek = {"uid": "C1", "history": None, "tunnel_parents": [], "service": [None, "dns"], "extra": {}}
    doc = {"@timestamp": "2024-05-01T10:00:00+02:00", "message": "conn",
           "event": {"kind": "event", "category": ["network"], "type": ["connection"]},
           "source": {"ip": "10.0.0.1", "port": None}, "destination": {"ip": "10.0.0.2"}, "zeek": zeek}
    (event,) = parse(doc, from_="ecs")
    event = event.to_dict()
    assert validate_event(event).valid, validate_event(event).errors
    assert event["meta"]["custom"]["ecs"]["zeek"] == zeek
    assert "port" not in event["data"]["source"]                 # a null in an ECS field WIA maps is still cleaned
    assert event["timestamp"] == "2024-05-01T08:00:00.000Z"
    assert event["meta"]["custom"]["ecs"]["@timestamp"] == "2024-05-01T10:00:00+02:00"


_CONNECTION = {"event": {"kind": "event", "category": ["network"], "type": ["connection"]},
               "source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2"}}


@pytest.mark.parametrize("stamp", [1714557600000, "1714557600000", 1714557600000.25])
def test_timestamp_in_epoch_milliseconds_is_read_and_the_original_kept(stamp):
    (event,) = parse({**_CONNECTION, "@timestamp": stamp}, from_="ecs")
    event = event.to_dict()
    assert validate_event(event).valid
    assert event["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert event["meta"]["custom"]["ecs"]["@timestamp"] == stamp


@pytest.mark.parametrize("stamp, reason", [
    (True, "neither an RFC 3339 time nor epoch milliseconds"), (1e20, "neither"),
    (999999999999999, "outside years 1-9999"), ("yesterday", "is not an ISO 8601 time")])
def test_a_timestamp_that_is_no_time_is_refused_at_its_path(stamp, reason):
    with pytest.raises(ConversionError, match=reason) as caught:
        parse({**_CONNECTION, "@timestamp": stamp}, from_="ecs")
    assert caught.value.path == "/@timestamp"


def test_a_whole_search_response_gives_one_event_per_hit():
    hits = [{"_index": "logs", "_id": str(n), "_source": {**_CONNECTION, "@timestamp": f"2024-05-01T10:00:0{n}Z"}}
            for n in range(3)]
    response = {"took": 2, "timed_out": False, "hits": {"total": {"value": 3}, "hits": hits}}
    events = [e.to_dict() for e in parse(response, from_="ecs")]
    assert [e["timestamp"] for e in events] == [f"2024-05-01T10:00:0{n}.000Z" for n in range(3)]
    assert all(validate_event(e).valid for e in events)
    assert parse({"hits": {"hits": []}}, from_="ecs") == []


def test_a_bad_hit_is_named_by_its_path_in_the_response():
    hits = [{"_index": "logs", "_source": {**_CONNECTION, "@timestamp": "2024-05-01T10:00:00Z"}},
            {"_index": "logs", "_source": {**_CONNECTION, "@timestamp": "late"}}]
    with pytest.raises(ConversionError) as caught:
        parse({"hits": {"hits": hits}}, from_="ecs")
    assert caught.value.path == "/hits/hits/1/_source/@timestamp"
    with pytest.raises(ConversionError) as caught:
        parse({"hits": {"hits": [hits[0], {"_index": "logs"}]}}, from_="ecs")
    assert caught.value.path == "/hits/hits/1" and "_source" in caught.value.reason
    with pytest.raises(ConversionError) as caught:
        parse({"_index": "logs", "_source": dict(_CONNECTION)}, from_="ecs")
    assert caught.value.path == "/_source/@timestamp"
