"""Soft-deleted MISP attributes and objects are withdrawn intelligence: never indicators. MISP sends them when a
search asks with `deleted` (1 or [0, 1]), as a caller auditing withdrawals or mirroring a feed does; they were
mapped as live indicators (confidence 0.8 when to_ids), so a store or SIEM fed from the pull blocked or
alerted on what the analyst had withdrawn. Now left out and counted in meta.custom.misp.deleted_attributes.
The real pymisp against the MISP contract server."""
from __future__ import annotations

import pytest

from misp_contract import MispServer
from wia_security.connectors.intel.misp import MispSource
from wia_security.validation import validate_event

KEY = "misp-test-key"


@pytest.fixture
def misp():
    with MispServer(key=KEY) as server:
        server.add_event({
            "uuid": "5e6b3c2a-0000-4000-8000-000000000001", "info": "Mixed",
            "Attribute": [
                {"type": "domain", "category": "Network activity", "value": "live.example.net", "to_ids": True},
                {"type": "domain", "category": "Network activity", "value": "withdrawn.example.net", "to_ids": True,
                 "deleted": True},
                {"type": "link", "category": "External analysis", "value": "https://withdrawn.example.org/x",
                 "deleted": "1"}],
            "Object": [{"name": "domain-ip", "deleted": True, "Attribute": [
                {"type": "ip-dst", "category": "Network activity", "value": "203.0.113.9", "to_ids": True}]}]})
        yield server


def test_contract_soft_deleted_attributes_and_objects_are_counted_not_mapped(misp):
    [event] = MispSource(misp.url, KEY).events(deleted=[0, 1])
    assert misp.calls("/events/restSearch")[0].body["deleted"] == [0, 1]
    assert [i["value"] for i in event["data"]["indicators"]] == ["live.example.net"]
    assert "references" not in event["data"]
    assert event["meta"]["custom"]["misp"]["deleted_attributes"] == 3
    assert validate_event(event).valid


def test_contract_an_attribute_search_for_deleted_ones_gives_no_indicator(misp):
    events = list(MispSource(misp.url, KEY).attributes(deleted=1))
    assert [e["data"].get("indicators") for e in events] == [None]
    assert events[0]["meta"]["custom"]["misp"]["deleted_attributes"] == 2


def test_contract_a_default_search_is_unchanged(misp):
    [event] = MispSource(misp.url, KEY).events()
    assert [i["value"] for i in event["data"]["indicators"]] == ["live.example.net"]
    assert "deleted_attributes" not in event["meta"]["custom"]["misp"]
