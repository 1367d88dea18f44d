"""Findings other products wrote: the Inspector advisory vendor (`Vulnerabilities[].Vendor`) lands in
references/published/modified, not in affected_products[].vendor; the kept members keep their nulls;
a member of the wrong JSON type is refused with its path."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reader_checks import mutated_corpus_outcomes
from wia_security import validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format

ASFF = get_format("asff")
FOREIGN = Path(__file__).parent / "foreign" / "asff"
INSPECTOR = json.loads((FOREIGN / "inspector2-package-vulnerability.json").read_text())
GUARDDUTY = json.loads((FOREIGN / "guardduty-ssh-bruteforce.json").read_text())


def one(doc) -> dict:
    [event] = ASFF.to_wia(doc)
    result = validate_event(event)
    assert result.valid and not result.warnings, [(i.path, i.message) for i in result.errors + result.warnings]
    return event


def test_the_advisory_vendor_is_not_the_package_maker() -> None:
    data = one(INSPECTOR)["data"]
    # VulnerablePackages name no maker: "unknown" (NVD is who wrote the advisory, not log4j's vendor)
    assert data["affected_products"] == [{"vendor": "unknown", "product": "log4j-core", "versions": ["2.14.1"]}]
    assert "https://nvd.nist.gov/vuln/detail/CVE-2021-44228" in data["references"]      # Vendor.Url: the advisory
    assert data["published"] == "2021-12-10T10:15:00.000Z"                                # Vendor.VendorCreatedAt
    assert data["patch_details"] == {"fixed_versions": ["2.17.1"]}                        # FixedInVersion
    kept = one(INSPECTOR)["meta"]["custom"]["asff"]["Vulnerabilities"][0]["Vendor"]
    assert kept["Name"] == "NVD"                                                          # kept as it came


def test_a_package_without_a_vendor_entry_is_no_longer_dropped() -> None:
    doc = copy.deepcopy(INSPECTOR)
    del doc["Vulnerabilities"][0]["Vendor"]
    assert one(doc)["data"]["affected_products"][0]["product"] == "log4j-core"


def test_bad_advisory_values_are_not_copied_into_wia_fields() -> None:
    doc = copy.deepcopy(INSPECTOR)
    doc["Vulnerabilities"][0]["Vendor"] = {"Name": "NVD", "Url": "not a uri", "VendorUpdatedAt": "soon"}
    doc["Vulnerabilities"][0]["ReferenceUrls"] = ["not a uri", None, "https://example.org/a"]
    data = one(doc)["data"]
    assert data["references"] == ["https://example.org/a"] and "modified" not in data
    assert one(doc)["meta"]["custom"]["asff"]["Vulnerabilities"][0]["ReferenceUrls"][:2] == ["not a uri", None]


def test_nulls_and_empty_members_are_kept_in_meta_custom() -> None:
    doc = copy.deepcopy(GUARDDUTY)
    doc["Action"] = {"ActionType": None, "X": [None, {}], "Y": {}}
    doc["Remediation"] = {}
    doc["Compliance"] = None
    kept = one(doc)["meta"]["custom"]["asff"]
    assert kept["Action"] == {"ActionType": None, "X": [None, {}], "Y": {}}
    assert kept["Remediation"] == {} and kept["Compliance"] is None
    assert "Malware" not in kept                    # absent stays absent


def test_the_kept_members_are_copies() -> None:
    doc = copy.deepcopy(GUARDDUTY)
    event = one(doc)
    event["meta"]["custom"]["asff"]["Resources"].append("changed")
    assert doc["Resources"] == GUARDDUTY["Resources"]


@pytest.mark.parametrize("member,value,path", [
    ("Severity", "HIGH", "Severity"), ("Network", ["x"], "Network"), ("Workflow", "NEW", "Workflow"),
    ("FindingProviderFields", "x", "FindingProviderFields"), ("ProductFields", ["a"], "ProductFields"),
    ("Types", "TTPs", "Types"), ("Resources", "r", "Resources"), ("Vulnerabilities", {"Id": "CVE-2021-1"}, "Vulnerabilities"),
    ("Title", 5, "Title"), ("Description", {"a": 1}, "Description"), ("Confidence", "90", "Confidence"),
    ("CreatedAt", "yesterday", "CreatedAt"), ("FirstObservedAt", "not a time", "FirstObservedAt"),
    ("Network", {"SourceIpV4": "999.1.1.1"}, "Network/SourceIpV4"), ("Network", {"SourcePort": "22"}, "Network/SourcePort"),
    ("Severity", {"Label": ["HIGH"]}, "Severity/Label"),
])
def test_a_member_of_the_wrong_shape_is_refused_with_its_path(member: str, value, path: str) -> None:
    doc = copy.deepcopy(GUARDDUTY)
    doc[member] = value
    with pytest.raises(ConversionError) as info:
        ASFF.to_wia({"Findings": [GUARDDUTY, doc]})
    assert info.value.path == f"/Findings/1/{path}", str(info.value)


@pytest.mark.parametrize("score", ["10", 11, -1, True])
def test_a_cvss_score_outside_0_10_is_refused(score) -> None:
    doc = copy.deepcopy(INSPECTOR)
    doc["Vulnerabilities"][0]["Cvss"][0]["BaseScore"] = score
    with pytest.raises(ConversionError) as info:
        ASFF.to_wia(doc)
    assert info.value.path == "/Vulnerabilities/0/Cvss/0/BaseScore"


def test_a_ten_megabyte_title_is_kept() -> None:
    doc = copy.deepcopy(GUARDDUTY)
    doc["Title"] = "t" * 10_000_000
    assert len(one(doc)["data"]["title"]) == 10_000_000


@pytest.mark.parametrize("member,value,path", [
    ("CreatedAt", "20240701T00:00:01.000Z", "CreatedAt"),            # ISO basic format: not Security Hub's syntax
    ("CreatedAt", "2024-07-01T00:05:00.000Z\n", "CreatedAt"),         # `$` used to let a final newline through
    ("LastObservedAt", " 2024-01-15T10:00:00.000Z", "LastObservedAt"),
    ("Workflow", {"Status": {"a": 1}}, "Workflow/Status"),
    ("ThreatIntelIndicators", [{"Type": ["DOMAIN"], "Value": "x.example"}], "ThreatIntelIndicators/0/Type"),
])
def test_values_the_reader_would_pass_on_invalid_are_refused(member: str, value, path: str) -> None:
    doc = copy.deepcopy(GUARDDUTY)
    doc[member] = value
    with pytest.raises(ConversionError) as info:
        ASFF.to_wia(doc)
    assert info.value.path == f"/{path}", str(info.value)


def test_odd_nested_values_are_not_copied_into_wia_fields() -> None:
    doc = copy.deepcopy(INSPECTOR)
    doc["Vulnerabilities"][0]["Cvss"][0]["BaseVector"] = {"v": 1}
    doc["Resources"][0]["Details"] = {"AwsEc2Instance": {"IpV4Addresses": ["10.0.0.5", 11, {"a": 1}]}}
    event = one(doc)
    assert "vector" not in event["data"]["cvss"]
    assert event["context"]["host"]["ip"] == ["10.0.0.5"]
    assert event["meta"]["custom"]["asff"]["Resources"][0]["Details"]["AwsEc2Instance"]["IpV4Addresses"][1] == 11
    doc["Resources"][0]["Details"] = "not an object"
    doc["Vulnerabilities"][0]["Cvss"] = 5
    assert one(doc)["data"]["cvss"]["score"] == one(doc)["severity"]       # no Cvss entry: the severity


def test_a_cve_id_with_a_final_newline_is_no_vulnerability() -> None:
    doc = copy.deepcopy(INSPECTOR)
    doc["Vulnerabilities"][0]["Id"] = "CVE-2021-44228\n"
    assert one(doc)["type"] == "alert"


def test_seeded_mutations_of_the_corpus_give_valid_events_or_errors_with_a_path() -> None:
    seen = mutated_corpus_outcomes("asff", FOREIGN)
    assert seen["read"] > 500 and seen["refused"] > 50, seen          # both paths are exercised
