"""The WIA Indicators incident field is filled on fetch, and the incoming mapper names only fields the pack has and
paths a WIA event has. Before, no mapper entry and no code filled WIA Indicators: an alert's or a threat_intel event's
data.indicators and an incident's data.iocs reached XSOAR only inside rawJSON, the field (on the layout) stayed empty."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from wia_security.connectors.soar.mapping import xsoar_custom_fields

from .conftest import run_command

PACK = Path(__file__).resolve().parents[2] / "xsoar_pack" / "Packs" / "WIASecurity"
INCIDENT_TYPE = "WIA Security Event"


def _gateway_params(server) -> dict:
    return {"url": server.url, "source_type": "gateway", "credentials": {"identifier": "", "password": server.token},
            "max_fetch": "50", "incidentType": INCIDENT_TYPE, "first_fetch": ""}


def _fields() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((PACK / "IncidentFields").glob("*.json"))]


def _mapping() -> dict:
    (path,) = sorted((PACK / "Classifiers").glob("classifier-mapper-incoming-*.json"))
    return json.loads(path.read_text())["mapping"][INCIDENT_TYPE]["internalMapping"]


def _fetched(integration, demisto, gateway, events: list[dict]) -> list[dict]:
    gateway.publish(events)
    run_command(integration, demisto, "fetch-incidents", params=_gateway_params(gateway))
    return demisto.incidents_out[-1]


def _lookup(event: dict, path: str):
    value = event
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def test_fetched_incidents_carry_their_indicators_as_type_value(integration, demisto, gateway, sample_events):
    by_type = {e["type"]: e for e in sample_events}
    alert, intel, incident, auth = by_type["alert"], by_type["threat_intel"], by_type["incident"], by_type["auth_event"]
    repeated = copy.deepcopy(alert)                 # the same indicator twice: one entry of the multi-select
    repeated["id"] = "00000000-0000-4000-8000-0000000000a1"
    repeated["data"]["indicators"].append(dict(repeated["data"]["indicators"][0]))
    incidents = _fetched(integration, demisto, gateway, [alert, intel, incident, auth, repeated])
    fields = {json.loads(i["rawJSON"])["id"]: (i.get("CustomFields") or {}).get("wiaindicators") for i in incidents}
    assert fields[alert["id"]] == ["hash:d41d8cd98f00b204e9800998ecf8427e", "ip:185.220.101.45",
                                   "domain:malware-c2.evil.com"]
    assert fields[intel["id"]] == [f"{i['type']}:{i['value']}" for i in intel["data"]["indicators"]]
    assert fields[incident["id"]] == [f"{i['type']}:{i['value']}" for i in incident["data"]["iocs"]]
    assert fields[repeated["id"]] == fields[alert["id"]]
    assert fields[auth["id"]] is None                # no indicators: no CustomFields at all
    assert all(json.loads(i["rawJSON"]) in (alert, intel, incident, auth, repeated) for i in incidents)  # rawJSON unchanged


def test_the_field_holds_what_the_xsoar_connector_writes(integration, sample_events):
    """connectors/soar/xsoar.py creates incidents with the pack's fields itself: one field, one spelling."""
    for event in sample_events:
        ours = (integration.event_to_incident(event, INCIDENT_TYPE).get("CustomFields") or {}).get("wiaindicators")
        assert ours == xsoar_custom_fields(event).get("wiaindicators"), event["type"]


def test_entries_without_a_string_type_and_value_are_left_out(integration, sample_events):
    alert = copy.deepcopy(next(e for e in sample_events if e["type"] == "alert"))
    alert["data"]["indicators"] = [{"type": "ip", "value": 7}, "ip:1.2.3.4", {"type": "ip", "value": "192.0.2.9"}]
    alert["data"]["iocs"] = 5                       # not defined for an alert, so free: valid, and ignored here
    assert integration.event_to_incident(alert, None)["CustomFields"] == {"wiaindicators": ["ip:192.0.2.9"]}


def test_every_pack_field_is_filled_by_the_mapper_or_the_fetch(integration, demisto, gateway, sample_events):
    """Each incident field of the incident type is mapped from rawJSON or set by fetch-incidents: a field neither
    does stays empty on every incident. Each name the mapper uses is a field of the pack associated with the type."""
    fields = [f for f in _fields() if INCIDENT_TYPE in f["associatedTypes"]]
    mapping = _mapping()
    by_name = {f["name"]: f for f in fields}
    assert sorted(set(mapping) - set(by_name)) == []                # a name XSOAR would not find
    set_by_fetch = {key for i in _fetched(integration, demisto, gateway, sample_events) for key in i.get("CustomFields") or {}}
    assert set_by_fetch <= {f["cliName"] for f in fields}
    unfilled = sorted(f["name"] for f in fields if f["name"] not in mapping and f["cliName"] not in set_by_fetch)
    assert unfilled == []
    assert not set_by_fetch & {by_name[name]["cliName"] for name in mapping}     # one place decides each field


def test_every_mapped_path_is_found_in_some_sample_event(sample_events):
    """A simple mapping is a path into rawJSON (the WIA event): each one resolves in at least one sample event, so a
    misspelt path (mitre.subtechnique) fails here instead of leaving its field empty in XSOAR."""
    missing = sorted(name for name, rule in _mapping().items()
                     if not any(_lookup(e, rule["simple"]) not in (None, "") for e in sample_events))
    assert missing == []
