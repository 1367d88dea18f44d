"""MISP pull: a `domain|ip` attribute (a domain and the address it resolved to) gives both indicators. Composite
attributes kept their first part only, so the address of every domain|ip was dropped without a count: an IOC MISP
holds, missing from the threat_intel event. The second parts of the other composites (a port, a file name beside
its hash, a registry value) are no indicators and stay out. Against the MISP contract server, driven by pymisp."""
from __future__ import annotations

import pytest

from misp_contract import MispServer
from wia_security.connectors.intel.misp import MispSource
from wia_security.validation import validate_event

KEY = "misp-test-key"
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


@pytest.fixture
def misp():
    with MispServer(key=KEY) as server:
        yield server


def test_contract_domain_ip_gives_the_domain_and_the_address(misp):
    misp.add_event({"info": "Resolutions", "Attribute": [
        {"type": "domain|ip", "category": "Network activity", "value": "c2.example.net|198.51.100.7", "to_ids": True,
         "comment": "resolved 2026-01-02"},
        {"type": "domain|ip", "category": "Network activity", "value": "cdn.example.net|2001:db8::7", "to_ids": False},
        {"type": "ip-dst|port", "category": "Network activity", "value": "203.0.113.9|443", "to_ids": True},
        {"type": "filename|sha256", "category": "Payload delivery", "value": f"invoice.doc|{SHA256}", "to_ids": True},
        {"type": "hostname|port", "category": "Network activity", "value": "mail.example.org|25", "to_ids": True}]})
    (event,) = list(MispSource(misp.url, KEY).events())
    assert validate_event(event).valid, validate_event(event).errors
    found = [(i["type"], i["value"], i["confidence"], i.get("context", {}).get("description"))
             for i in event["data"]["indicators"]]
    assert found == [("domain", "c2.example.net", 0.8, "resolved 2026-01-02"),
                     ("ip", "198.51.100.7", 0.8, "resolved 2026-01-02"),
                     ("domain", "cdn.example.net", 0.5, None), ("ip", "2001:db8::7", 0.5, None),
                     ("ip", "203.0.113.9", 0.8, None), ("file_hash_sha256", SHA256, 0.8, None),
                     ("domain", "mail.example.org", 0.8, None)]
    assert "unmapped_attributes" not in event["meta"]["custom"]["misp"]


def test_contract_an_address_also_listed_alone_is_one_indicator(misp):
    misp.add_event({"info": "Twice", "Attribute": [
        {"type": "ip-dst", "category": "Network activity", "value": "198.51.100.7", "to_ids": True},
        {"type": "domain|ip", "category": "Network activity", "value": "c2.example.net|198.51.100.7", "to_ids": True}]})
    (event,) = list(MispSource(misp.url, KEY).events())
    assert [(i["type"], i["value"]) for i in event["data"]["indicators"]] == [
        ("ip", "198.51.100.7"), ("domain", "c2.example.net")]
