"""Splunk search results: meta.custom.cim keeps every field as it came (nulls and empty lists too);
odd values give valid events or a ConversionError naming the field."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reader_checks import mutated_corpus_outcomes
from wia_security import validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format

CIM = get_format("cim")
FOREIGN = Path(__file__).parent / "foreign" / "cim"
EXPORT = json.loads((FOREIGN / "export-authentication-failure.json").read_text())
NOTABLE = json.loads((FOREIGN / "es-notable-alert.json").read_text())


def fields(doc: dict) -> dict:
    return doc.get("result") or doc.get("fields") or doc


def one(doc) -> dict:
    [event] = CIM.to_wia(doc)
    result = validate_event(event)
    assert result.valid and not result.warnings, [(i.path, i.message) for i in result.errors + result.warnings]
    return event


def test_nulls_and_empty_values_are_kept_in_meta_custom() -> None:
    doc = copy.deepcopy(EXPORT)
    fields(doc).update({"reason": None, "dest_nt_domain": [], "extra": {}, "blank": ""})
    kept = one(doc)["meta"]["custom"]["cim"]
    assert kept["reason"] is None and kept["dest_nt_domain"] == [] and kept["extra"] == {} and kept["blank"] == ""
    assert kept == fields(doc)                       # every field exactly as it came


@pytest.mark.parametrize("value", [1e20, -1e12])
def test_a_time_out_of_range_is_refused_at_time(value: float) -> None:
    doc = copy.deepcopy(EXPORT)
    fields(doc)["_time"] = value
    with pytest.raises(ConversionError) as info:
        CIM.to_wia(doc)
    assert info.value.path == "/result/_time"           # an export row: the fields are under `result`


@pytest.mark.parametrize("doc", [[1], "x", 5])
def test_a_document_that_is_no_object_is_refused_with_a_path(doc) -> None:
    with pytest.raises(ConversionError) as info:
        CIM.to_wia(doc)
    assert info.value.path == "/"


def test_a_multivalue_address_is_not_put_where_one_address_belongs() -> None:
    doc = copy.deepcopy(NOTABLE)
    fields(doc)["dest_ip"] = ["192.0.2.1", "192.0.2.2"]
    event = one(doc)
    assert "ip" not in event.get("context", {}).get("network", {}).get("destination", {})
    assert event["meta"]["custom"]["cim"]["dest_ip"] == ["192.0.2.1", "192.0.2.2"]


def test_an_annotated_tactic_the_technique_is_not_in_is_not_paired_with_it() -> None:
    doc = copy.deepcopy(NOTABLE)
    f = fields(doc)
    f["annotations.mitre_attack"] = ["T1059.001"]
    f["annotations.mitre_attack.mitre_tactic_id"] = ["TA0006", "TA0002"]     # Credential Access, Execution
    assert one(doc)["mitre"] == {"tactic": "TA0002", "technique": "T1059", "sub_technique": "T1059.001"}
    f["annotations.mitre_attack.mitre_tactic_id"] = ["TA0006"]
    assert "tactic" not in one(doc)["mitre"]


def test_a_number_where_text_belongs_becomes_text() -> None:
    doc = json.loads((FOREIGN / "vulnerabilities-scan.json").read_text())
    fields(doc)["signature"] = 5
    assert one(doc)["data"]["title"] == "5"


def test_values_splunk_never_writes_are_not_mapped_but_kept() -> None:
    doc = copy.deepcopy(NOTABLE)
    f = fields(doc)
    f.update({"rule_name": True, "dest": {"host": "x"}, "count": 412, "severity": ["high", "low"]})
    event = one(doc)
    assert event["data"].get("detection_rule", {}).get("name") is None
    assert event["data"]["count"] == 412                                  # a number is read as its text, then as a count
    kept = event["meta"]["custom"]["cim"]
    assert kept["rule_name"] is True and kept["dest"] == {"host": "x"} and kept["severity"] == ["high", "low"]


def test_identifiers_with_a_final_newline_are_not_taken() -> None:
    doc = copy.deepcopy(NOTABLE)
    fields(doc)["annotations.mitre_attack"] = ["T1110.001\n"]
    assert "mitre" not in one(doc)                     # the only annotation is no ATT&CK id as written
    vuln = json.loads((FOREIGN / "vulnerabilities-scan.json").read_text())
    fields(vuln)["xref"] = ["https://nvd.nist.gov/vuln/detail/CVE-2021-44228 ", "https://example.org/a"]
    assert one(vuln)["data"]["references"] == ["https://example.org/a"]


def test_an_auth_source_address_that_is_no_ip_is_not_mapped() -> None:
    doc = copy.deepcopy(EXPORT)
    fields(doc)["src_ip"] = "-1"
    assert one(doc)["data"]["source"]["ip"] == fields(doc)["src"]        # `src` instead of the bad src_ip
    assert one(doc)["meta"]["custom"]["cim"]["src_ip"] == "-1"


def test_seeded_mutations_of_the_corpus_give_valid_events_or_errors_with_a_path() -> None:
    seen = mutated_corpus_outcomes("cim", FOREIGN)
    assert seen["read"] > 500 and seen["refused"] > 50, seen          # both paths are exercised
