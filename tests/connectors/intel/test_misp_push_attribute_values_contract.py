"""MISP push: every indicator is either stored as an attribute MISP accepts, or the event says which were not.

MISP saves an event and then each attribute on its own; an attribute whose value fails MISP's validation
(AttributeValidationTool: an md5 of 64 digits, ip-dst "203.0.113.5:443" or with a zone, an e-mail without a domain,
a CIDR prefix past 32) is dropped with a log entry only, and /events/add answers success. The sink sent such values
and counted the event delivered; values its own checks disliked (a hash of another length, a single-label name, an
incident's file path) it left out without a word. Now each value is checked as MISP checks it, the answer is
compared with what was sent, and an event created without some of its indicators fails with each one named (the
dead letter keeps it), as a Splunk SOAR container created without its artifacts does. Values MISP takes that the
old checks refused (an internationalized name, a defanged URL, an underscore label, a file path) are now pushed.
Against the MISP contract server (which drops attributes as MISP does), driven by pymisp."""
from __future__ import annotations

import pytest

from misp_contract import MispServer
from wia_security.builders import IncidentBuilder, ThreatIntelBuilder
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.misp import MispSink, wia_to_misp
from wia_security.validation import validate_event

KEY = "misp-test-key"
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.002, max_attempts=3)
GOOD = ("domain", "c2.example.net")


@pytest.fixture
def misp():
    with MispServer(key=KEY) as server:
        yield server


def _intel(*indicators: tuple[str, str]) -> dict:
    """A valid WIA event with these indicators. The builder checks values, the schema does not: events from files,
    feeds and other tools carry whatever their producer wrote, so the values are set after building."""
    event = ThreatIntelBuilder().threat("Campaign", "campaign").indicator("domain", "x.example.org").build().to_dict()
    event["data"]["indicators"] = [{"type": kind, "value": value} for kind, value in indicators]
    assert validate_event(event).valid, validate_event(event).errors
    return event


def _push(misp: MispServer, events: list[dict]):
    with MispSink(misp.url, KEY, delivery=FAST) as sink:
        return sink.send(events).merge(sink.flush())


@pytest.mark.parametrize("kind, value, why", [
    ("file_hash_md5", SHA256, "md5 is 32 hexadecimal digits, not 64"),         # was sent: MISP dropped it
    ("file_hash_sha1", "z" * 40, "sha1 is 40 hexadecimal digits"),             # was left out silently
    ("ip", "203.0.113.5:443", "not an IP address"),                            # was sent: dropped
    ("ip", "fe80::1%eth0", "not an IP address"),                               # was sent: dropped
    ("ip", "198.51.100.0/33", "not an IP address"),                            # was sent: dropped
    ("email", "not-an-address", "not an e-mail address"),                      # was sent: dropped
    ("domain", "localhost", "not a domain name MISP reads"),                   # was left out silently
    ("url", "http://example.org/a\nb", "no line break"),                       # was left out silently
])
def test_contract_an_indicator_misp_would_drop_fails_the_event_naming_it(misp, kind, value, why):
    event = _intel(GOOD, (kind, value))
    report = _push(misp, [event])
    assert report.delivered == 0 and len(report.failed) == 1, report
    reason = report.failed[0].reason
    assert f"MISP event {event['id']} created without 1 of its indicators" in reason
    assert f"/data/indicators/1 ({kind} " in reason and why in reason, reason
    assert not report.failed[0].retryable
    (stored,) = misp.events                                  # the event is there with what MISP could store
    assert [(a["type"], a["value"]) for a in stored["Attribute"]] == [("domain", "c2.example.net")]
    assert misp.dropped == []                                # nothing was sent for MISP to drop
    assert _push(misp, [event]).duplicates == 1             # a re-send (a dead-letter replay) is a duplicate


def test_contract_an_attribute_misp_drops_after_saving_the_event_fails_it(misp):
    """Whatever MISP drops (here a uuid another event holds) is found in its answer, not only what the sink checks."""
    event = _intel(GOOD, ("ip", "203.0.113.66"))
    taken = next(a for a in wia_to_misp(event)["Event"]["Attribute"] if a["type"] == "ip-dst")
    misp.add_event({"info": "older", "Attribute": [dict(taken)]})
    report = _push(misp, [event])
    assert report.delivered == 0 and len(report.failed) == 1
    assert "created without 1 of its indicators: ip-dst '203.0.113.66': dropped by MISP's validation" in \
        report.failed[0].reason
    assert [d["why"] for d in misp.dropped] == ["An attribute with this uuid already exists."]


def test_contract_values_misp_accepts_are_pushed(misp):
    event = _intel(("domain", "bücher.example.de"), ("domain", "_dmarc.example.org"), ("url", "hxxp://evil[.]example/x"),
                   ("file_hash_md5", "44D88612FEA8A8F36DE82E1278ABB02F"), ("ip", "10.0.0.5"), ("ip", "198.51.100.0/24"),
                   ("email", "ops@example.org"), ("mutex", "Global\\x"))
    incident = (IncidentBuilder().title("Dropper").category("malware").severity(7)
                .ioc("hash", SHA256).ioc("ip", "2001:db8::5").build().to_dict())
    report = _push(misp, [event, incident])
    assert (report.delivered, report.failed) == (2, []), report.failed
    assert misp.dropped == []
    by_uuid = {e["uuid"]: e for e in misp.events}
    assert len(by_uuid[event["id"]]["Attribute"]) == 8
    assert {(a["type"], a["value"]) for a in by_uuid[incident["id"]]["Attribute"]} == {
        ("sha256", SHA256), ("ip-dst", "2001:db8::5")}


def test_contract_an_indicator_listed_twice_is_one_attribute(misp):
    """Both became one uuid (uuid5 of type and value): MISP drops the second as a taken uuid."""
    event = _intel(GOOD, ("ip", "203.0.113.7"), ("ip", "203.0.113.7"))
    report = _push(misp, [event])
    assert (report.delivered, report.failed) == (1, [])
    assert len(misp.events[0]["Attribute"]) == 2 and misp.dropped == []


def test_contract_an_event_with_nothing_storable_names_why(misp):
    report = _push(misp, [_intel(("file_hash_md5", SHA256))])
    assert len(report.failed) == 1 and misp.events == []
    assert "no indicator MISP can store: /data/indicators/0 (file_hash_md5 " in report.failed[0].reason


def test_contract_two_spellings_of_one_value_are_one_attribute(misp):
    """MISP stores hashes, e-mail addresses and domains in lower case (a domain without its end dot), IPv6 compressed
    and a /32 as its address, and drops a second attribute of one value ("A similar attribute already exists for
    this event"): sent as two, the event would fail for a value MISP holds."""
    event = _intel(("file_hash_md5", "44D88612FEA8A8F36DE82E1278ABB02F"), ("file_hash_md5", "44d88612fea8a8f36de82e1278abb02f"),
                   ("domain", "Evil.Example.NET."), ("domain", "evil.example.net"), ("email", "Ops@Example.org"),
                   ("email", "ops@example.org"), ("ip", "2001:DB8:0:0::5"), ("ip", "2001:db8::5"),
                   ("ip", "203.0.113.9/32"), ("ip", "203.0.113.9"))
    report = _push(misp, [event])
    assert (report.delivered, report.failed) == (1, []), report.failed
    assert misp.dropped == []
    assert sorted(a["value"] for a in misp.events[0]["Attribute"]) == [
        "2001:db8::5", "203.0.113.9", "44d88612fea8a8f36de82e1278abb02f", "evil.example.net", "ops@example.org"]


def test_contract_to_ids_only_for_confident_live_intelligence(misp):
    """MISP turns to_ids attributes into IDS rules and blocklists. Every pushed attribute had to_ids, so intelligence
    marked inactive, or an indicator its producer gave confidence 0.1, was exported for blocking. Now those go without
    it; an indicator pulled from a MISP attribute without to_ids (confidence 0.5) goes back without it too."""
    live = _intel(("domain", "sure.example.net"), ("domain", "unsure.example.net"), ("domain", "context.example.net"),
                  ("domain", "unrated.example.net"))
    for indicator, confidence in zip(live["data"]["indicators"], (0.9, 0.1, 0.5)):
        indicator["confidence"] = confidence
    stale = _intel(("domain", "old.example.net"))
    stale["data"]["status"] = "inactive"
    stale["data"]["indicators"][0]["confidence"] = 1.0
    assert validate_event(live).valid and validate_event(stale).valid
    report = _push(misp, [live, stale])
    assert (report.delivered, report.failed) == (2, [])
    flags = {a["value"]: a["to_ids"] for e in misp.events for a in e["Attribute"]}
    assert flags == {"sure.example.net": True, "unsure.example.net": False, "context.example.net": False,
                     "unrated.example.net": True, "old.example.net": False}


def test_contract_an_untyped_sha2_hash_of_another_length_is_pushed(misp):
    """An incident's `hash` IOC of 56, 96 or 128 hex digits (SHA-224/384/512, as some EDRs report) was left out without
    a word; MISP has those types."""
    hashes = {"sha224": "a" * 56, "sha384": "b" * 96, "sha512": "c" * 128}
    builder = IncidentBuilder().title("Dropper").category("malware").severity(7)
    for value in hashes.values():
        builder = builder.ioc("hash", value)
    report = _push(misp, [builder.build().to_dict()])
    assert (report.delivered, report.failed) == (1, [])
    assert {a["type"]: a["value"] for a in misp.events[0]["Attribute"]} == hashes
