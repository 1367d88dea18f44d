"""ASFF: every builder event and sample becomes a finding that botocore's own parameter validation of a
Security Hub BatchImportFindings request accepts, that keeps the documented limits, and that parses back."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

botocore_session = pytest.importorskip("botocore.session", reason="botocore is in the test extra")
from botocore.validate import ParamValidationError, validate_parameters  # noqa: E402

from wia_security import AlertBuilder, ConversionError, convert, parse, validate_event  # noqa: E402
from wia_security.formats import asff  # noqa: E402

from wia_corpus import all_events  # noqa: E402

ACCOUNT = "111111111111"
from refdata import ASFF

REFERENCE = ASFF
EVENTS = all_events()
TAXONOMY_NAMESPACES = {"Software and Configuration Checks", "TTPs", "Effects", "Unusual Behaviors",
                       "Sensitive Data Identifications"}


@pytest.fixture(scope="module")
def import_shape() -> Any:
    model = botocore_session.get_session().get_service_model("securityhub")
    return model.operation_model("BatchImportFindings").input_shape


def taxonomy() -> set[str]:
    """namespace, namespace/category and namespace/category/classifier paths from the AWS taxonomy page."""
    text = (REFERENCE / "docs" / "securityhub-findings-format-type-taxonomy.md").read_text()
    paths: set[str] = set()
    stack: list[str] = []
    for line in text.splitlines():
        m = re.match(r"^( *)\+ (.+?)\s*$", line)
        if not m or m.group(2) in ("Namespaces", "Categories", "Classifiers"):
            continue
        depth = len(m.group(1)) // 2
        name = m.group(2).replace("\\", "")
        stack = stack[:depth] + [name]
        paths.add("/".join(stack))
    return paths


def model_problems(value: Any, shape: Any, path: str = "") -> list[str]:
    """What botocore's validator leaves out: enums, min/max of numbers and lengths, NonEmptyString."""
    problems: list[str] = []
    meta = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                problems += model_problems(value[name], member, f"{path}.{name}")
    elif shape.type_name == "list":
        if "min" in meta and len(value) < meta["min"] or "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} items outside {meta}")
        for i, item in enumerate(value):
            problems += model_problems(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map":
        for k, v in value.items():
            problems += model_problems(k, shape.key, f"{path} key {k!r}")
            problems += model_problems(v, shape.value, f"{path}[{k!r}]")
    elif shape.type_name == "string":
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} not in {shape.enum}")
        if meta.get("pattern") == ".*\\S.*" and not re.search(r"\S", value):
            problems.append(f"{path}: blank string")
    elif shape.type_name in ("integer", "double", "long"):
        if "min" in meta and value < meta["min"] or "max" in meta and value > meta["max"]:
            problems.append(f"{path}: {value} outside {meta}")
    return problems


def documented_limits(finding: dict[str, Any]) -> list[str]:
    """The limits the API reference states in prose (the model does not carry them)."""
    problems = []
    size = len(json.dumps(finding).encode())
    if size > asff.MAX_FINDING_BYTES:
        problems.append(f"finding is {size} bytes")
    for member, limit in (("Id", 512), ("GeneratorId", 512), ("Title", 256), ("Description", 1024)):
        if len(finding[member]) > limit:
            problems.append(f"{member} longer than {limit}")
    if not re.fullmatch(r"\d{12}", finding["AwsAccountId"]):
        problems.append("AwsAccountId is not 12 digits")
    if not 12 <= len(finding["ProductArn"]) <= 2048:
        problems.append("ProductArn length")
    fields = finding.get("ProductFields", {})
    if len(fields) > 50:
        problems.append(f"{len(fields)} ProductFields")
    for k, v in fields.items():
        if len(k) > 128 or len(v) > 2048:
            problems.append(f"ProductFields {k!r} too long")
        if k.startswith("aws/"):
            problems.append(f"ProductFields {k!r} in the reserved aws/ namespace")
    for member, limit in (("Resources", 32), ("Types", 50), ("ThreatIntelIndicators", 5), ("Malware", 5),
                          ("Threats", 32), ("RelatedFindings", 10)):
        if len(finding.get(member, [])) > limit:
            problems.append(f"{member} has more than {limit} entries")
    if not finding["Resources"]:
        problems.append("no Resources")
    for m in finding.get("Malware", []):
        if len(m["Name"]) > 64:
            problems.append("Malware name longer than 64")
    for member in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"):
        if member in finding and not asff.TIMESTAMP.match(finding[member]):
            problems.append(f"{member} {finding[member]!r} is not a Security Hub timestamp")
    if finding["CreatedAt"] > finding["UpdatedAt"] and finding["CreatedAt"][:19] != finding["UpdatedAt"][:19]:
        problems.append("UpdatedAt before CreatedAt")
    return problems


@pytest.mark.parametrize("name,event", EVENTS, ids=[n for n, _ in EVENTS])
def test_every_event_passes_botocore_validation_and_documented_limits(name, event, import_shape):
    finding = convert(event, to="asff", account_id=ACCOUNT)
    validate_parameters({"Findings": [finding]}, import_shape)        # raises ParamValidationError
    assert model_problems({"Findings": [finding]}, import_shape) == []
    assert documented_limits(finding) == []
    paths = taxonomy()
    for t in finding["Types"]:
        assert t in paths, t
    assert finding["FindingProviderFields"]["Types"] == finding["Types"]
    assert finding["Severity"]["Label"] == finding["FindingProviderFields"]["Severity"]["Label"]


def test_the_validators_would_catch_a_broken_finding(import_shape):
    finding = convert(EVENTS[0][1], to="asff", account_id=ACCOUNT)
    broken = dict(finding, Resources=None)
    del broken["Resources"]
    with pytest.raises(ParamValidationError):
        validate_parameters({"Findings": [broken]}, import_shape)
    bad = dict(finding, Severity={"Label": "SEVERE"}, Title=" ")
    assert len(model_problems({"Findings": [bad]}, import_shape)) == 2


@pytest.mark.parametrize("name,event", EVENTS, ids=[n for n, _ in EVENTS])
def test_round_trip_restores_the_event(name, event):
    finding = convert(event, to="asff", account_id=ACCOUNT)
    assert "wia.omitted" not in " ".join(finding.get("ProductFields", {}))
    back = parse(finding, from_="asff")
    assert len(back) == 1
    assert back[0].to_dict() == event
    assert validate_event(back[0].to_dict()).valid


def test_mapping_of_an_alert():
    event = next(e for n, e in EVENTS if n == "sample/alert-sample")
    f = convert(event, to="asff", account_id=ACCOUNT, region="eu-central-1")
    assert f["SchemaVersion"] == "2018-10-08"
    assert f["Id"] == event["id"]
    assert f["ProductArn"] == f"arn:aws:securityhub:eu-central-1:{ACCOUNT}:product/{ACCOUNT}/default"
    assert f["GeneratorId"] == "RULE-PS-001"
    assert f["Severity"] == {"Label": "HIGH", "Normalized": 70, "Original": "7"}
    assert f["Types"] == ["TTPs/Execution"]
    assert f["Title"] == event["data"]["title"] and f["Description"] == event["data"]["description"]
    assert f["CreatedAt"] == f["UpdatedAt"] == event["timestamp"]
    assert f["FirstObservedAt"] == "2025-12-14T09:25:00.000Z"
    assert f["Confidence"] == 92
    assert f["Network"] == {"SourceIpV4": "192.168.1.100", "SourcePort": 49152, "SourceDomain": "WORKSTATION-001",
                            "DestinationIpV4": "185.220.101.45", "DestinationPort": 443,
                            "DestinationDomain": "malware-c2.evil.com", "Protocol": "HTTPS", "Direction": "OUT"}
    assert {(i["Type"], i["Value"]) for i in f["ThreatIntelIndicators"]} == {
        ("HASH_MD5", "d41d8cd98f00b204e9800998ecf8427e"), ("IPV4_ADDRESS", "185.220.101.45"),
        ("DOMAIN", "malware-c2.evil.com")}
    assert f["Resources"][0]["Type"] == "Other" and f["Resources"][0]["Id"] == "WORKSTATION-001"
    assert f["Workflow"] == {"Status": "NEW"} and f["RecordState"] == "ACTIVE"
    assert json.loads(f["ProductFields"][f"{ACCOUNT}/default/wia.data.alert_id"]) == "ALERT-2025-001234"


def test_vulnerability_members():
    event = next(e for n, e in EVENTS if n == "vulnerability/3.1")
    f = convert(event, to="asff", account_id=ACCOUNT)
    assert f["Types"] == ["Software and Configuration Checks/Vulnerabilities/CVE"]
    v = f["Vulnerabilities"][0]
    assert v["Id"] == "CVE-2021-44228"
    assert v["Cvss"] == [{"Version": "3.1", "BaseScore": 9.8, "BaseVector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}]
    assert v["ReferenceUrls"] == ["https://nvd.nist.gov/vuln/detail/CVE-2021-44228"]
    assert {(p["Name"], p["Version"]) for p in v["VulnerablePackages"]} == {("log4j-core", "2.14.1"), ("log4j-core", "2.13.0")}
    assert v["VulnerablePackages"][0]["FixedInVersion"] == "2.17.1"
    assert v["FixAvailable"] == "YES" and v["ExploitAvailable"] == "YES"
    assert v["Vendor"]["Name"] == "Apache"
    assert f["Remediation"]["Recommendation"]["Url"] == "https://logging.apache.org/security.html"
    assert f["Severity"]["Label"] == "CRITICAL"


def test_ec2_instance_only_when_an_instance_id_is_known():
    incident = next(e for n, e in EVENTS if n == "incident/malware")
    f = convert(incident, to="asff", account_id=ACCOUNT)
    ec2 = [r for r in f["Resources"] if r["Type"] == "AwsEc2Instance"]
    assert [r["Id"] for r in ec2] == [f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0abcd1234ef567890"]
    assert ec2[0]["Details"]["AwsEc2Instance"]["IpV4Addresses"] == ["10.0.0.5"]
    assert f["Criticality"] == 90
    host_only = convert(next(e for n, e in EVENTS if n == "auth_event/login_success"), to="asff", account_id=ACCOUNT)
    assert {r["Type"] for r in host_only["Resources"]} == {"Other"}


def test_account_comes_from_the_event_or_an_error_names_it():
    aws = next(e for n, e in EVENTS if n == "alert/intrusion/new")            # context.cloud: aws 123456789012
    assert convert(aws, to="asff")["AwsAccountId"] == "123456789012"
    assert convert(aws, to="asff")["ProductArn"].startswith("arn:aws:securityhub:eu-west-1:123456789012:")
    bare = AlertBuilder().title("x").build().to_dict()
    with pytest.raises(ConversionError) as info:
        convert(bare, to="asff")
    assert info.value.path == "/context/cloud/account_id" and "account_id" in str(info.value)
    custom = convert(bare, to="asff", account_id=ACCOUNT, product_arn="arn:aws:securityhub:us-west-2::product/acme/guard")
    assert custom["ProductArn"].endswith("product/acme/guard")
    assert all(k.startswith("acme/guard/wia.") for k in custom["ProductFields"])


def test_product_fields_overflow_is_listed_not_dropped():
    b = AlertBuilder().title("big").description("d")
    for i in range(60):
        b.label(f"k{i}", "v" * 100)
        b.indicator("domain", f"d{i}.example", context="x" * 200)
    event = b.build().to_dict()
    event["meta"]["custom"] = {"blob": "y" * 5000}
    f = convert(event, to="asff", account_id=ACCOUNT)
    fields = f["ProductFields"]
    assert len(fields) <= 50 and all(len(v) <= 2048 for v in fields.values())
    omitted = json.loads(fields[f"{ACCOUNT}/default/wia.omitted"])
    assert "meta.custom.blob" in omitted
    assert len(json.dumps(f).encode()) <= asff.MAX_FINDING_BYTES
    back = parse(f, from_="asff")[0].to_dict()
    assert validate_event(back).valid
    assert back["data"]["title"] == "big" and "blob" not in back.get("meta", {}).get("custom", {})


@pytest.mark.parametrize("builder", ["alert", "incident"])
def test_product_fields_overflow_keeps_required_fields_whatever_the_key_order(builder: str):
    """An incoming dict (not built here) may list its custom fields before the required ones: what is left
    out for the 50-pair limit must be the optional fields, so the event read back is still valid."""
    from wia_security import IncidentBuilder
    built = (AlertBuilder() if builder == "alert" else IncidentBuilder()).title("t").build().to_dict()
    event: dict[str, Any] = {"meta": {"custom": {f"c{i:02}": "v" * 100 for i in range(60)}}}
    event.update(reversed(list(built.items())))             # envelope members after meta, in reverse order
    event["data"] = dict(reversed(list(built["data"].items())))
    f = convert(event, to="asff", account_id=ACCOUNT)
    fields = f["ProductFields"]
    assert len(fields) <= asff.MAX_PRODUCT_FIELDS
    omitted = json.loads(fields[f"{ACCOUNT}/default/wia.omitted"])
    assert omitted and all(path.startswith("meta.custom.") for path in omitted)
    back = parse(f, from_="asff")[0].to_dict()
    assert validate_event(back).valid
    assert back["type"] == builder and back["data"] == built["data"] and back["source"] == built["source"]
    kept = back["meta"]["custom"]
    assert len(kept) + len(omitted) == 60 and not set(kept) & {p.rsplit(".", 1)[1] for p in omitted}


def test_text_limits_truncate_but_keep_the_full_text():
    event = AlertBuilder().title("T" * 300).description("D" * 2000).build().to_dict()
    f = convert(event, to="asff", account_id=ACCOUNT)
    assert len(f["Title"]) == 256 and len(f["Description"]) == 1024
    back = parse(f, from_="asff")[0].to_dict()
    assert back["data"]["title"] == "T" * 300 and back["data"]["description"] == "D" * 2000


def _doc_findings() -> list[dict[str, Any]]:
    text = (REFERENCE / "docs" / "sample-control-findings.md").read_text()
    found = []
    for block in re.findall(r"```\n(\{.*?\})\n```", text, re.S):
        try:
            found.append(json.loads(block))
        except ValueError:            # two of the page's seven samples are not valid JSON (stray commas)
            continue
    return found


def test_aws_sample_findings_parse_into_valid_alerts():
    findings = _doc_findings()
    assert len(findings) >= 5
    events = parse({"Findings": findings}, from_="asff")
    for finding, event in zip(findings, events):
        d = event.to_dict()
        assert validate_event(d).valid, validate_event(d).errors
        assert d["type"] == "alert" and d["data"]["alert_id"] == finding["Id"]
        assert d["meta"]["custom"]["asff"]["Id"] == finding["Id"]
        assert d["data"]["title"] == finding["Title"]
        assert d["data"]["category"] == "policy"          # Software and Configuration Checks/...
        assert d["context"]["cloud"]["account_id"] == finding["AwsAccountId"]
    assert parse(findings[0], from_="asff")[0].id == events[0].id       # the same finding, the same event id


def test_foreign_threat_and_vulnerability_findings_parse():
    guardduty = {
        "SchemaVersion": "2018-10-08", "Id": "gd-1", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        "GeneratorId": "arn:aws:guardduty:us-east-1:123456789012:detector/abc", "AwsAccountId": "123456789012",
        "Types": ["TTPs/Command and Control/Backdoor:EC2-C&CActivity.B!DNS"], "CreatedAt": "2024-01-01T00:00:00Z",
        "UpdatedAt": "2024-01-01T00:00:00Z", "Severity": {"Label": "HIGH", "Normalized": 80}, "Title": "C2 DNS",
        "Description": "An instance queries a C2 domain.", "Workflow": {"Status": "NOTIFIED"},
        "Network": {"Direction": "OUT", "Protocol": "UDP", "DestinationDomain": "c2.example", "DestinationPort": 53,
                    "SourceIpV4": "10.0.0.5"},
        "ThreatIntelIndicators": [{"Type": "DOMAIN", "Value": "c2.example"}],
        "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0",
                       "Details": {"AwsEc2Instance": {"IpV4Addresses": ["10.0.0.5"]}}}],
    }
    inspector = {
        "SchemaVersion": "2018-10-08", "Id": "insp-1", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/inspector",
        "GeneratorId": "AWSInspector", "AwsAccountId": "123456789012", "Types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
        "CreatedAt": "2024-01-01T00:00:00Z", "UpdatedAt": "2024-01-01T00:00:00Z", "Severity": {"Label": "CRITICAL"},
        "Title": "CVE-2021-44228 - log4j", "Description": "Log4Shell", "Resources": [{"Type": "Other", "Id": "x"}],
        "Vulnerabilities": [{"Id": "CVE-2021-44228", "Cvss": [{"Version": "3.1", "BaseScore": 10.0}],
                             "ReferenceUrls": ["https://nvd.nist.gov/vuln/detail/CVE-2021-44228"]}],
    }
    alert, vuln = (e.to_dict() for e in parse([guardduty, inspector], from_="asff"))
    assert validate_event(alert).valid and validate_event(vuln).valid
    assert alert["severity"] == 8 and alert["data"]["status"] == "investigating"
    assert alert["mitre"]["tactic"] == "TA0011" and alert["data"]["category"] == "intrusion"
    assert alert["context"]["network"]["destination"] == {"hostname": "c2.example", "port": 53}
    assert alert["data"]["indicators"] == [{"type": "domain", "value": "c2.example"}]
    assert alert["context"]["host"] == {"hostname": "i-0123456789abcdef0", "ip": ["10.0.0.5"]}
    assert vuln["type"] == "vulnerability" and vuln["data"]["vuln_id"] == "CVE-2021-44228"
    assert vuln["data"]["cvss"] == {"version": "3.1", "score": 10.0, "severity": "critical"}


def test_a_finding_without_required_members_is_refused_with_its_path():
    with pytest.raises(ConversionError) as info:
        parse({"Findings": [{"Id": "x"}]}, from_="asff")
    assert info.value.path == "/Findings/0/CreatedAt"


def test_a_bad_option_value_is_named_not_taken_for_a_missing_account():
    """The library refuses the option itself: 'pass account_id=...' was the message when one was passed."""
    bare = AlertBuilder().title("x").build().to_dict()
    with pytest.raises(ConversionError, match=r"option account_id must be an AWS account id: 12 digits.*'12345'"):
        convert(bare, to="asff", account_id="12345")
    with pytest.raises(ConversionError, match=r"option region must be an AWS Region name"):
        convert(bare, to="asff", account_id=ACCOUNT, region="Frankfurt")
    with pytest.raises(ConversionError, match="option account_id"):
        convert(bare, to="asff", account_id="١٢٣٤٥٦٧٨٩٠١٢")                 # Unicode digits are not an account id
    finding = convert(bare, to="asff", account_id=ACCOUNT, region="us-gov-west-1")
    assert finding["AwsAccountId"] == ACCOUNT and finding["Resources"][0]["Region"] == "us-gov-west-1"
