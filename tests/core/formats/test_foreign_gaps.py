"""Four gaps the format docs named, closed: each document from another product reads as a valid event."""
from __future__ import annotations

import json
from pathlib import Path

from wia_security import validate_event
from wia_security.formats.asff import AsffFormat
from wia_security.formats.ecs import EcsFormat
from wia_security.formats.leef import LeefFormat
from wia_security.formats.stix import StixFormat

FOREIGN = Path(__file__).parent / "foreign"
TS = "2024-01-01T00:00:00.000Z"


def test_ecs_alert_with_an_observer_direction_is_valid_and_translated():
    # ingress/egress (the observer's view) landed in context.network.direction unchanged: an invalid alert
    for ecs, wia in (("ingress", "inbound"), ("egress", "outbound")):
        doc = {"@timestamp": "2024-01-01T10:00:00Z", "event": {"kind": "alert", "category": ["network"]},
               "source": {"ip": "192.0.2.1"}, "destination": {"ip": "192.0.2.2"}, "network": {"direction": ecs},
               "message": "m"}
        (event,) = EcsFormat().to_wia(doc)
        assert validate_event(event).valid, validate_event(event).errors
        assert event["context"]["network"]["direction"] == wia
        assert event["meta"]["custom"]["ecs"]["network.direction"] == ecs


def _guardduty(action: dict) -> dict:
    finding = json.loads((FOREIGN / "asff" / "guardduty-ssh-bruteforce.json").read_text())
    finding = dict(finding["Findings"][0] if "Findings" in finding else finding)
    finding.pop("Network", None)
    finding["Action"] = action
    return finding


def test_asff_port_probe_remote_address_is_read_from_each_probe():
    # ASFF puts RemoteIpDetails under PortProbeAction.PortProbeDetails[], not on PortProbeAction itself
    action = {"ActionType": "PORT_PROBE", "PortProbeAction": {"Blocked": False, "PortProbeDetails": [
        {"LocalPortDetails": {"Port": 22}, "RemoteIpDetails": {"IpAddressV4": "198.51.100.7"}}]}}
    (event,) = AsffFormat().to_wia(_guardduty(action))
    assert validate_event(event).valid and event["context"]["network"]["source"] == {"ip": "198.51.100.7"}


def test_asff_outbound_connection_puts_the_remote_side_in_destination():
    for direction in ("OUT", "OUTBOUND"):
        action = {"ActionType": "NETWORK_CONNECTION", "NetworkConnectionAction": {
            "ConnectionDirection": direction, "RemoteIpDetails": {"IpAddressV4": "203.0.113.9"},
            "RemotePortDetails": {"Port": 443}}}
        (event,) = AsffFormat().to_wia(_guardduty(action))
        network = event["context"]["network"]
        assert validate_event(event).valid
        assert network["destination"] == {"ip": "203.0.113.9", "port": 443} and network["direction"] == "outbound"
        assert "source" not in network


def test_leef_dev_time_format_ending_in_a_zone_name_is_honoured():
    line = "LEEF:1.0|V|P|1.0|E|devTime=15/01/2024 10:23:45 EST\tdevTimeFormat=dd/MM/yyyy HH:mm:ss zzz"
    (event,) = LeefFormat().to_wia(line)
    assert event["timestamp"] == "2024-01-15T15:23:45.000Z"          # was the time of parsing


def test_stix_rule_indicator_of_a_malware_is_kept_not_a_failed_bundle():
    ids = {k: f"{k}--{n * 8}-{n * 4}-4{n * 3}-8{n * 3}-{n * 12}" for k, n in
           (("malware", "2"), ("indicator", "3"), ("relationship", "5"))}
    bundle = {"type": "bundle", "id": "bundle--11111111-1111-4111-8111-111111111111", "objects": [
        {"type": "malware", "spec_version": "2.1", "id": ids["malware"], "created": TS, "modified": TS,
         "name": "Emotet", "is_family": True},
        {"type": "indicator", "spec_version": "2.1", "id": ids["indicator"], "created": TS, "modified": TS,
         "valid_from": TS, "pattern_type": "yara", "pattern": "rule x { condition: true }"},
        {"type": "relationship", "spec_version": "2.1", "id": ids["relationship"], "created": TS, "modified": TS,
         "relationship_type": "indicates", "source_ref": ids["indicator"], "target_ref": ids["malware"]}]}
    (event,) = StixFormat().to_wia(bundle)                                # was ConversionError for the bundle
    assert validate_event(event).valid and event["data"]["threat_name"] == "Emotet"
    assert event["meta"]["custom"]["stix"]["rules"] == [
        {"id": ids["indicator"], "pattern_type": "yara", "pattern": "rule x { condition: true }"}]
