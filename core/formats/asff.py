"""AWS Security Finding Format (ASFF, SchemaVersion 2018-10-08): one finding per WIA event, and back.

Spec: Security Hub `BatchImportFindings` / `AwsSecurityFinding` (botocore securityhub model) and the
ASFF pages of the Security Hub user guide ("Required top-level attributes", "Types taxonomy",
"ProductFields"). Every required member is always present; each WIA value goes to its ASFF home.
What ASFF has no member for is kept in `ProductFields` as `<company>/<product>/wia.<path>` (JSON
values), within the documented limits (50 pairs, keys <= 128 and values <= 2048 characters); what
still does not fit is listed under `.../wia.omitted`, never dropped silently.

Options: `account_id` (12 digits; default: `context.cloud.account_id` of an AWS event),
`region` (default: the event's AWS region, else us-east-1), `partition` (one of PARTITIONS; default: the
Region's, e.g. aws-cn for cn-north-1, else aws), `product_arn`
(default `arn:{partition}:securityhub:{region}:{account}:product/{account}/default`, the private
"default" product every account may import into), `generator_id`.
The mapping table: docs/formats/asff.md.
"""
from __future__ import annotations

import copy
import functools
import json
import re
import uuid
from typing import Any

from .._version import WIA_SCHEMA_URI, WIA_VERSION
from ..errors import ConversionError
from ..schemas import EVENT_SCHEMA_FILES, load_schema
from ..severity import BAND_PRIORITY, band
from ..timeutil import at_own_offset, parse_iso, to_iso
from ._own_event import checked, holds
from ._wia_paths import Remainder, canonical_times, clean, compact_json, ip_version, is_int, is_mac, is_number, merge, nonblank
from ..validation.formats import is_uri
from .base import Format, MemberOutcome, all_or_nothing, guarded_members, read_member

SCHEMA_VERSION = "2018-10-08"
DEFAULT_REGION = "us-east-1"
DEFAULT_PARTITION = "aws"
#: The AWS partitions (the first element of every ARN) and how their Region names begin, as botocore's
#: data/partitions.json (1.44) lists them; a Region matching none is in the commercial partition, `aws`.
PARTITION_REGION_PREFIXES: dict[str, tuple[str, ...]] = {
    "aws": (), "aws-cn": ("cn-",), "aws-us-gov": ("us-gov-",), "aws-iso": ("us-iso-",),
    "aws-iso-b": ("us-isob-",), "aws-iso-e": ("eu-isoe-",), "aws-iso-f": ("us-isof-",), "aws-eusc": ("eusc-",),
}
PARTITIONS = tuple(PARTITION_REGION_PREFIXES)

# Documented limits (AwsSecurityFinding in the Security Hub API reference / botocore model docs).
MAX_FINDING_BYTES = 240 * 1024          # one finding in a BatchImportFindings request
MAX_BATCH_FINDINGS = 100
MAX_ID = 512
MAX_GENERATOR_ID = 512
MAX_TITLE = 256
MAX_DESCRIPTION = 1024
MAX_PRODUCT_FIELDS = 50
MAX_PRODUCT_FIELD_KEY = 128
MAX_PRODUCT_FIELD_VALUE = 2048
MAX_RESOURCES = 32
MAX_TYPES = 50
MAX_THREAT_INTEL_INDICATORS = 5
MAX_MALWARE = 5
MAX_THREATS = 32
MAX_RELATED_FINDINGS = 10

#: Security Hub timestamp syntax (Z or +-hh[:mm] offset, at most 9 fraction digits).
TIMESTAMP = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
                       r"(\.\d{1,9})?(Z|[+-]\d\d(:?\d\d)?)$")
ACCOUNT_ID = re.compile(r"[0-9]{12}")                        # fullmatch: \d would take any Unicode digit
#: An AWS Region name (us-east-1, us-gov-west-1, cn-north-1, us-isob-east-1, eusc-de-east-1): a pattern, so
#: new Regions pass.
REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}")
INSTANCE_ID = re.compile(r"^i-([0-9a-f]{8}|[0-9a-f]{17})$")
_PRODUCT_ARN = re.compile(r"^arn:[^:]+:securityhub:[^:]*:[^:]*:product/([^/]+)/([^/]+)$")

#: What the options with a fixed shape must look like (checked before any event, and in `from_wia`).
_OPTION_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    "account_id": (ACCOUNT_ID, "an AWS account id: 12 digits, e.g. 123456789012"),
    "region": (REGION, "an AWS Region name such as us-east-1, us-gov-west-1 or cn-north-1"),
    "product_arn": (_PRODUCT_ARN, "a Security Hub product ARN: "
                                  "arn:<partition>:securityhub:<region>:<account id>:product/<company>/<product>"),
}

#: ATT&CK tactic -> ASFF Types entry (the TTPs categories follow ATT&CK; the taxonomy has no TTPs
#: category for the other tactics, so they map to the Effects category that fits or to "TTPs").
TACTIC_TYPES = {
    "TA0001": "TTPs/Initial Access", "TA0002": "TTPs/Execution", "TA0003": "TTPs/Persistence",
    "TA0004": "TTPs/Privilege Escalation", "TA0005": "TTPs/Defense Evasion", "TA0006": "TTPs/Credential Access",
    "TA0007": "TTPs/Discovery", "TA0008": "TTPs/Lateral Movement", "TA0009": "TTPs/Collection",
    "TA0011": "TTPs/Command and Control", "TA0010": "Effects/Data Exfiltration", "TA0040": "Effects",
    "TA0043": "TTPs", "TA0042": "TTPs",
}
_TYPE_TACTIC = {v: k for k, v in TACTIC_TYPES.items() if v.startswith("TTPs/") or v == "Effects/Data Exfiltration"}

ALERT_TYPES = {"malware": "TTPs/Execution", "intrusion": "TTPs", "reconnaissance": "TTPs/Discovery",
               "policy": "Software and Configuration Checks", "other": "Unusual Behaviors"}
INCIDENT_TYPES = {"malware": "TTPs/Execution", "phishing": "TTPs/Initial Access", "ransomware": "Effects/Data Destruction",
                  "data_breach": "Effects/Data Exposure", "ddos": "Effects/Denial of Service",
                  "unauthorized_access": "TTPs/Initial Access", "insider_threat": "Unusual Behaviors/User",
                  "apt": "TTPs", "other": "Unusual Behaviors"}
ENDPOINT_TYPES = {"network_connection": "Unusual Behaviors/Network Flow", "file_create": "Unusual Behaviors/VM",
                  "file_modify": "Unusual Behaviors/VM", "file_delete": "Unusual Behaviors/VM",
                  "registry_create": "Unusual Behaviors/VM", "registry_modify": "Unusual Behaviors/VM",
                  "registry_delete": "Unusual Behaviors/VM"}          # the rest: Unusual Behaviors/Process
VULNERABILITY_TYPE = "Software and Configuration Checks/Vulnerabilities/CVE"

ALERT_WORKFLOW = {"new": "NEW", "investigating": "NOTIFIED", "resolved": "RESOLVED", "closed": "RESOLVED",
                  "false_positive": "SUPPRESSED"}
INCIDENT_WORKFLOW = {"new": "NEW", "triaging": "NEW", "investigating": "NOTIFIED", "containing": "NOTIFIED",
                     "eradicating": "NOTIFIED", "recovering": "NOTIFIED", "closed": "RESOLVED"}
_WORKFLOW_ALERT = {"NEW": "new", "NOTIFIED": "investigating", "RESOLVED": "resolved", "SUPPRESSED": "false_positive"}

INDICATOR_TYPES = {"domain": "DOMAIN", "url": "URL", "email": "EMAIL_ADDRESS", "file_hash_md5": "HASH_MD5",
                   "file_hash_sha1": "HASH_SHA1", "file_hash_sha256": "HASH_SHA256", "mutex": "MUTEX"}
_HASH_BY_LENGTH = {32: "HASH_MD5", 40: "HASH_SHA1", 64: "HASH_SHA256", 128: "HASH_SHA512"}
_INDICATOR_BACK = {"DOMAIN": "domain", "URL": "url", "EMAIL_ADDRESS": "email", "HASH_MD5": "file_hash_md5",
                   "HASH_SHA1": "file_hash_sha1", "HASH_SHA256": "file_hash_sha256", "HASH_SHA512": "hash",
                   "MUTEX": "mutex", "IPV4_ADDRESS": "ip", "IPV6_ADDRESS": "ip", "PROCESS": "file"}
MALWARE_TYPES = {"ransomware": "RANSOMWARE", "botnet": "BOTNET_AGENT"}
CRITICALITY = {"critical": 90, "high": 70, "medium": 50, "low": 30}


def severity_label(severity: float) -> str:
    """Security Hub's Normalized -> Label ranges (0 INFORMATIONAL, 1-39 LOW, 40-69 MEDIUM, 70-89 HIGH, 90-100 CRITICAL)."""
    normalized = normalized_severity(severity)
    if normalized == 0:
        return "INFORMATIONAL"
    if normalized < 40:
        return "LOW"
    if normalized < 70:
        return "MEDIUM"
    if normalized < 90:
        return "HIGH"
    return "CRITICAL"


def normalized_severity(severity: float) -> int:
    """WIA 0..10 -> ASFF 0..100."""
    return max(0, min(100, int(round(severity * 10))))


_LABEL_SEVERITY = {"INFORMATIONAL": 0, "LOW": 3, "MEDIUM": 5, "HIGH": 8, "CRITICAL": 9.5}


def partition_of(region: str) -> str:
    """The partition a Region is in (cn-north-1: aws-cn); `aws` for any other name."""
    for partition, prefixes in PARTITION_REGION_PREFIXES.items():
        if region.startswith(prefixes):
            return partition
    return DEFAULT_PARTITION


def _partition_problem(partition: str, region: str, *, from_arn: bool = False, region_from: str = "") -> str | None:
    """Why `partition` (the partition option's, or the product ARN's when `from_arn`) cannot take a finding in
    `region` (`region_from`: where that Region came from, when no option gave it); None when it can."""
    home = partition_of(region)
    if partition == home:
        return None
    whence = f"; {region_from}" if region_from else ""
    if from_arn:
        return (f"product_arn is in partition {partition}, which does not hold Region {region} (its partition is "
                f"{home}{whence}): give a Region of {partition} (region=...) or a product ARN of {home}")
    return (f"partition {partition} does not hold Region {region} (its partition is {home}{whence}): give a Region "
            f"of {partition} (region=...) or leave partition out")


def _arn_place(product_arn: Any) -> tuple[str | None, str | None]:
    """(partition, Region) of a product ARN option of the right shape; (None, None) when there is none."""
    if not isinstance(product_arn, str) or not _PRODUCT_ARN.match(product_arn):
        return None, None
    parts = product_arn.split(":")
    return parts[1], parts[3] or None


def _placement_problem(partition_option: Any, arn_partition: str | None, region: str,
                       region_from: str = "") -> str | None:
    """Why the partition option, the product ARN's partition and the Region do not go together, or None."""
    if isinstance(partition_option, str) and arn_partition and partition_option != arn_partition:
        return (f"partition {partition_option} is not the partition of option product_arn ({arn_partition}): "
                "leave partition out (the product ARN's is used)")
    if isinstance(partition_option, str):
        return _partition_problem(partition_option, region, region_from=region_from)
    if arn_partition:
        return _partition_problem(arn_partition, region, from_arn=True, region_from=region_from)
    return None


def default_product_arn(account_id: str, region: str, partition: str = DEFAULT_PARTITION) -> str:
    return f"arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default"


def _text(value: Any, limit: int) -> str | None:
    if not nonblank(value):
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


#: Envelope members the reader takes from ProductFields when present; the rest of the envelope's required
#: members (id, timestamp, severity) have ASFF homes.
_ENVELOPE_KEPT_FIRST = frozenset({"$schema", "version", "type", "source", "id", "timestamp", "severity"})
_FIRST_STEPS = re.compile(r"^([^.\[]+)(?:\.([^.\[]+))?")


@functools.lru_cache(maxsize=16)
def _required_data_fields(event_type: str) -> frozenset[str]:
    """The `data` members the event type's schema requires (empty for an unknown type)."""
    filename = EVENT_SCHEMA_FILES.get(event_type)
    if filename is None:
        return frozenset()
    definitions = load_schema(filename).get("definitions") or {}
    return frozenset(req for name, node in definitions.items() if name.endswith("Data")
                     for req in node.get("required") or ())


def _drop_rank(path: str, event_type: Any) -> int:
    """How late the ProductFields pair at this WIA path goes when not all fit: 0 for (part of) a member a
    valid event requires, 2 for the producer's free-form meta.custom, 1 for the rest."""
    m = _FIRST_STEPS.match(path)
    top, second = m.groups() if m else (path, None)
    if top in _ENVELOPE_KEPT_FIRST or top == "data" and (
            second is None or isinstance(event_type, str) and second in _required_data_fields(event_type)):
        return 0
    return 2 if top == "meta" and second == "custom" else 1


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if TIMESTAMP.fullmatch(value):     # not match: `$` takes a trailing newline, which Security Hub does not
        return value
    try:
        return to_iso(parse_iso(value))
    except ValueError:
        return None
    except OverflowError:
        # in UTC before year 1 or after 9999 (9999-12-31t23:30:00-01:00): the same instant at its own offset, in
        # Security Hub's syntax (upper-case T and Z, at most nine fraction digits, no newline)
        kept = at_own_offset(value)
        return kept if TIMESTAMP.fullmatch(kept) else None


def _event_id(finding: dict[str, Any]) -> str:
    """The finding Id when it is a UUID (ours are); otherwise a UUIDv5 of ProductArn + Id, so that
    parsing the same finding twice gives the same event id."""
    if type(finding["Id"]) is str and _CANONICAL_UUID.fullmatch(finding["Id"]):
        return finding["Id"]                        # what str(uuid.UUID(...)) would give back
    try:
        return str(uuid.UUID(finding["Id"])) if len(finding["Id"]) == 36 else _uuid5(finding)
    except ValueError:
        return _uuid5(finding)


def _uuid5(finding: dict[str, Any]) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{finding.get('ProductArn', '')}/{finding['Id']}"))


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "" and value != [] and value != {}:
        target[key] = value




def _list(value: Any) -> list[Any]:
    """A member that ASFF defines as a list; anything else (a stray object or string) as no items."""
    return value if isinstance(value, list) else []


def _as_is(value: Any) -> Any:
    """For `merge` of values built from parsed ProductFields and used nowhere else: no copy needed."""
    return value


def _nest(steps: tuple[str | int, ...], value: Any) -> Any:
    """`value` under `steps`: ("data", "tags", 1) -> {"data": {"tags": [{}, value]}}."""
    for step in reversed(steps):
        value = [{} for _ in range(step)] + [value] if isinstance(step, int) else {step: value}
    return value


def _place(node: Any, steps: tuple[str | int, ...], value: Any) -> Any:
    """`merge(node, _nest(steps, value), _as_is)`, changing `node`'s containers in place instead of copying
    them on the way: the parser owns them and each sits in one place (list gaps get a new {} each)."""
    if not steps:
        return merge(node, value, _as_is)
    step, tail = steps[0], steps[1:]
    if isinstance(step, int):
        if not isinstance(node, list):
            return _nest(steps, value)
        for i in range(min(step, len(node))):   # merged with a {} filler: a dict stays, the rest becomes {}
            if not isinstance(node[i], dict):
                node[i] = {}
        if step < len(node):
            node[step] = _place(node[step], tail, value)
        else:
            node += [{} for _ in range(step - len(node))] + [_nest(tail, value)]
        return node
    if not isinstance(node, dict) or not node:
        return _nest(steps, value)
    node[step] = _place(node[step], tail, value) if step in node else _nest(tail, value)
    return node


_WIA_FIELD = re.compile(r"^[^/]+/[^/]+/wia\.(.+)$")
_PATH_STEP = re.compile(r"[^.\[\]]+|\[\d+\]")
_CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PLAIN_JSON_STRING = re.compile(r'"[^"\\\x00-\x1f]*"')     # no escapes, nothing json rejects
_decode = json.JSONDecoder().decode       # json.loads of a str, without its per-call checks


def _json_value(text: Any) -> Any:
    """`json.loads(text)`; most ProductFields values are JSON strings without escapes, taken as they are."""
    if type(text) is not str:
        return json.loads(text)
    return text[1:-1] if _PLAIN_JSON_STRING.fullmatch(text) else _decode(text)


@functools.lru_cache(maxsize=1024)
def _wia_path(key: str) -> str | None:
    """The `data.alert_id` of a `<company>/<product>/wia.data.alert_id` key; None for other keys and
    for the omission note. Cached, like `_path_steps`: the findings of one product repeat the same keys."""
    m = _WIA_FIELD.match(key)
    return m.group(1) if m and m.group(1) != "omitted" else None


@functools.lru_cache(maxsize=1024)
def _path_steps(path: str) -> tuple[str | int, ...]:
    """`data.tags[1]` -> ("data", "tags", 1)."""
    steps = _PATH_STEP.findall(path.replace("$schema", "\x00"))
    return tuple(int(s[1:-1]) if s.startswith("[") else s.replace("\x00", "$schema") for s in steps)


#: The JSON type ASFF gives each member the reader reads (AwsSecurityFinding in the botocore
#: securityhub model); `null` counts as absent. A member of another type is refused with its path.
_MEMBER_TYPES: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys(("Severity", "Network", "Workflow", "FindingProviderFields", "ProductFields", "UserDefinedFields",
                     "Action", "Process", "Remediation", "Compliance"), dict),
    **dict.fromkeys(("Types", "Resources", "Vulnerabilities", "Malware", "ThreatIntelIndicators", "Threats"), list),
    **dict.fromkeys(("Id", "ProductArn", "GeneratorId", "AwsAccountId", "CreatedAt", "UpdatedAt", "FirstObservedAt",
                     "LastObservedAt", "Title", "Description", "SourceUrl", "Region", "CompanyName", "ProductName",
                     "RecordState", "VerificationState", "WorkflowState"), str),
    **dict.fromkeys(("Confidence", "Criticality"), (int, float)),
}
_TIME_MEMBERS = ("CreatedAt", "FirstObservedAt", "LastObservedAt")


def _check_shape(finding: dict[str, Any], where: str) -> None:
    """Refuse, with the JSON path, what the reader would otherwise trip over or turn into an invalid
    WIA value: a member of the wrong JSON type, a time that is no date-time, a Severity.Label or a
    Network address/port of the wrong kind, a CVSS base score outside 0-10."""
    def refuse(path: str, why: str) -> ConversionError:
        return ConversionError("asff", why, path=f"{where}/{path}")
    for member, kind in _MEMBER_TYPES.items():
        value = finding.get(member)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            names = {dict: "a JSON object", list: "a JSON list", str: "a string"}
            raise refuse(member, f"must be {names.get(kind, 'a number')}, got {type(value).__name__}")
    for member in _TIME_MEMBERS:
        # Security Hub's timestamp syntax (RFC 3339; not the basic `20240701T000001Z`, no blanks around)
        if finding.get(member) is not None and not TIMESTAMP.fullmatch(finding[member]):
            raise refuse(member, f"{finding[member][:60]!r} is not a date-time in Security Hub's syntax")
    for path, severity in (("Severity", finding.get("Severity")),
                           ("FindingProviderFields/Severity", (finding.get("FindingProviderFields") or {}).get("Severity"))):
        if severity is not None and not isinstance(severity, dict):
            raise refuse(path, "must be a JSON object")
        if isinstance((severity or {}).get("Label"), (dict, list)):
            raise refuse(f"{path}/Label", "must be a string")
    if isinstance((finding.get("Workflow") or {}).get("Status"), (dict, list)):
        raise refuse("Workflow/Status", "must be a string")
    for i, indicator in enumerate(finding.get("ThreatIntelIndicators") or []):
        if isinstance(indicator, dict) and isinstance(indicator.get("Type"), (dict, list)):
            raise refuse(f"ThreatIntelIndicators/{i}/Type", "must be a string")
    network = finding.get("Network") or {}
    for side in ("Source", "Destination"):
        for suffix, version in (("IpV4", 4), ("IpV6", 6)):
            ip = network.get(side + suffix)
            if ip is not None and ip_version(ip) != version:
                raise refuse(f"Network/{side}{suffix}", f"{str(ip)[:60]!r} is not an IPv{version} address")
        port = network.get(side + "Port")
        if port is not None and not (is_int(port) and 0 <= port <= 65535):
            raise refuse(f"Network/{side}Port", f"{str(port)[:20]!r} is not a port (0-65535)")
    for i, vuln in enumerate(finding.get("Vulnerabilities") or []):
        for j, cvss in enumerate(_list(vuln.get("Cvss")) if isinstance(vuln, dict) else []):
            score = cvss.get("BaseScore") if isinstance(cvss, dict) else None
            if score is not None and not (is_number(score) and 0 <= score <= 10):
                raise refuse(f"Vulnerabilities/{i}/Cvss/{j}/BaseScore", f"{str(score)[:20]!r} is not a CVSS score (0-10)")


#: Members of another product's finding that no WIA field holds, kept in `meta.custom.asff` as they came.
_FOREIGN_KEPT = ("GeneratorId", "ProductFields", "Resources", "Compliance", "Action", "Remediation", "Workflow",
                 "RecordState", "SourceUrl", "Malware", "Process", "Vulnerabilities", "FindingProviderFields", "UserDefinedFields")


def _remote_address(details: Any, member: str, event: dict[str, Any]) -> None:
    """The remote side of an ASFF action as the event's network source (or destination, for an outbound
    connection). ASFF: `RemoteIpDetails` (+ `RemotePortDetails`) on AwsApiCallAction and
    NetworkConnectionAction (with `ConnectionDirection` IN|OUT); PortProbeAction has them per probe in
    `PortProbeDetails[]`."""
    if not isinstance(details, dict):
        return
    probes = [details]
    if member == "PortProbeAction":
        probes = [p for p in details.get("PortProbeDetails") or [] if isinstance(p, dict)]
    found = next((p for p in probes if isinstance(p.get("RemoteIpDetails"), dict)
                  and ip_version(p["RemoteIpDetails"].get("IpAddressV4"))), None)
    if found is None:
        return
    endpoint: dict[str, Any] = {"ip": found["RemoteIpDetails"]["IpAddressV4"]}
    port = (found.get("RemotePortDetails") or {}).get("Port") if isinstance(found.get("RemotePortDetails"), dict) else None
    if is_int(port) and 0 <= port <= 65535:
        endpoint["port"] = port
    # ASFF says IN|OUT; GuardDuty's own findings (and some converted ones) say INBOUND|OUTBOUND
    raw = details.get("ConnectionDirection") if member == "NetworkConnectionAction" else None
    direction = {"IN": "IN", "INBOUND": "IN", "OUT": "OUT", "OUTBOUND": "OUT"}.get(str(raw).upper())
    side = "destination" if direction == "OUT" else "source"
    network = event.setdefault("context", {}).setdefault("network", {})
    if not (network.get(side) or {}).get("ip"):
        network[side] = {**(network.get(side) or {}), **endpoint}
    if direction in ("IN", "OUT"):
        network.setdefault("direction", "inbound" if direction == "IN" else "outbound")


class AsffFormat(Format):
    name = "asff"
    title = "AWS Security Finding Format"
    spec_version = SCHEMA_VERSION
    can_parse = True
    options = frozenset({"account_id", "region", "partition", "product_arn", "generator_id"})

    #: Every WIA field survives WIA -> ASFF -> WIA: mapped members are rebuilt exactly, the rest travels in
    #: ProductFields, as long as the documented ProductFields limits leave room (50 pairs of <= 2048
    #: characters; an event too big for them lists what was left out under `wia.omitted`).
    survives = ("*",)

    def option_problem(self, key: str, value: Any) -> str | None:
        if key == "partition":
            if isinstance(value, str) and value in PARTITIONS:
                return None
            return f"must be an AWS partition: {', '.join(PARTITIONS)} (got {str(value)[:80]!r})"
        shape = _OPTION_SHAPES.get(key)
        if shape is None:
            return None
        if not (isinstance(value, str) and shape[0].fullmatch(value)):
            return f"must be {shape[1]} (got {str(value)[:80]!r})"
        if key == "product_arn" and (partition := value.split(":")[1]) not in PARTITIONS:
            return f"must name an AWS partition ({', '.join(PARTITIONS)}; got {partition[:80]!r})"
        return None

    def options_problem(self, options: dict[str, Any]) -> str | None:
        partition, region = options.get("partition"), options.get("region")
        arn_partition, _ = _arn_place(options.get("product_arn"))
        if isinstance(partition, str) and arn_partition and partition != arn_partition:
            return _placement_problem(partition, arn_partition, "")
        if isinstance(region, str):       # else the Region may come from each event
            return _placement_problem(partition, arn_partition, region)
        return None

    # -- WIA -> ASFF ---------------------------------------------------------------------------
    def from_wia(self, event: dict[str, Any], **options: Any) -> dict[str, Any]:
        rest = Remainder(event)
        etype = event.get("type")
        data = event.get("data") or {}
        ctx = event.get("context") or {}
        cloud = ctx.get("cloud") or {}
        aws = cloud.get("provider") == "aws"
        for key in ("account_id", "region", "partition", "product_arn"):
            if options.get(key) is not None and (problem := self.option_problem(key, options[key])):
                # the option given is wrong, not the event: say which and how it must look
                raise ConversionError(self.name, f"option {key} {problem}")
        account = options.get("account_id") or (cloud.get("account_id") if aws else None)
        if not isinstance(account, str) or not ACCOUNT_ID.fullmatch(account):
            raise ConversionError(self.name, "an AWS account id (12 digits) is needed: pass account_id=... "
                                  "or give the event context.cloud {provider: aws, account_id}", path="/context/cloud/account_id")
        # The Region: the option's, the event's, the product ARN's (where findings are imported: a better guess
        # than us-east-1 for an event that names none), else the default; the partition: the option's, the
        # product ARN's, else the Region's.
        arn_partition, arn_region = _arn_place(options.get("product_arn"))
        event_region = (cloud["region"] if aws and isinstance(cloud.get("region"), str) and REGION.fullmatch(cloud["region"])
                        else None)
        region, region_from = next((r, whence) for r, whence in (
            (options.get("region"), ""), (event_region, "the event's context.cloud.region"),
            (arn_region, "option product_arn's Region"),
            (DEFAULT_REGION, "the default Region: neither option region nor the event's context.cloud.region "
                             "names one")) if r)
        if problem := _placement_problem(options.get("partition"), arn_partition, region, region_from):
            # a product ARN or resource ARN across partitions is refused by Security Hub, finding by finding
            raise ConversionError(self.name, f"option {problem}")
        partition = options.get("partition") or arn_partition or partition_of(region)
        product_arn = options.get("product_arn") or default_product_arn(account, region, partition)
        m = _PRODUCT_ARN.match(product_arn)
        if not m:
            raise ConversionError(self.name, f"not a Security Hub product ARN: {product_arn!r}")
        field_prefix = f"{m.group(1)}/{m.group(2)}/"

        event_id = rest.pop("id")
        severity = rest.pop("severity")
        created = _timestamp(event.get("timestamp"))
        if created == event.get("timestamp"):
            rest.pop("timestamp")
        label = severity_label(severity)
        original = compact_json(severity)        # = json.dumps(severity): a number here
        finding: dict[str, Any] = {
            "SchemaVersion": SCHEMA_VERSION,
            "Id": event_id if len(event_id) <= MAX_ID else event_id[:MAX_ID],
            "ProductArn": product_arn,
            "GeneratorId": self._generator_id(event, options),
            "AwsAccountId": account,
            "Types": self._types(event),
            "CreatedAt": created,
            "UpdatedAt": created,
            "Severity": {"Label": label, "Normalized": normalized_severity(severity), "Original": original},
            "Title": "", "Description": "",
        }
        title = data.get("title") if etype in ("alert", "vulnerability", "incident") else None
        if title is not None and _text(title, MAX_TITLE) == title:
            rest.pop("data", "title")
        finding["Title"] = _text(title, MAX_TITLE) or _text(self._summary(event), MAX_TITLE) or etype
        description = data.get("description")
        if description is not None and _text(description, MAX_DESCRIPTION) == description:
            rest.pop("data", "description")
        finding["Description"] = _text(description, MAX_DESCRIPTION) or _text(self._summary(event), MAX_DESCRIPTION) or etype

        # Observation times: when the provider first/last saw the issue; UpdatedAt must equal CreatedAt on creation.
        first, last = _timestamp(data.get("first_seen")), _timestamp(data.get("last_seen"))
        _put(finding, "FirstObservedAt", first)
        _put(finding, "LastObservedAt", last)
        updated = _timestamp(data.get("updated_at")) if etype == "incident" else None
        if updated and parse_iso(updated) > parse_iso(created):
            finding["UpdatedAt"] = updated

        provider: dict[str, Any] = {"Severity": {"Label": label, "Original": original}, "Types": finding["Types"]}
        confidence = (event.get("meta") or {}).get("confidence")
        if is_number(confidence):
            finding["Confidence"] = provider["Confidence"] = int(round(confidence * 100))
        criticality = self._criticality(data) if etype == "incident" else None
        if criticality is not None:
            finding["Criticality"] = provider["Criticality"] = criticality
        finding["FindingProviderFields"] = provider

        finding["Resources"] = self._resources(event, account, region, partition)
        network = self._network(event, rest)
        if network:
            finding["Network"] = network
        process = self._process(event, rest)
        if process:
            finding["Process"] = process
        indicators = self._indicators(event)
        if indicators:
            finding["ThreatIntelIndicators"] = indicators[:MAX_THREAT_INTEL_INDICATORS]
        if etype == "threat_intel":
            malware = self._malware(data)
            if malware:
                finding["Malware"] = malware
        threats = self._threats(event)
        if threats:
            finding["Threats"] = threats
        if etype == "vulnerability":
            finding["Vulnerabilities"] = [self._vulnerability(data, rest)]
            remediation = self._remediation(data)
            if remediation:
                finding["Remediation"] = remediation
        workflow = (ALERT_WORKFLOW if etype == "alert" else INCIDENT_WORKFLOW if etype == "incident" else {}).get(data.get("status"))
        finding["Workflow"] = {"Status": workflow or "NEW"}
        archived = (etype == "alert" and data.get("status") in ("resolved", "closed", "false_positive")) \
            or (etype == "incident" and data.get("status") == "closed") \
            or (etype == "threat_intel" and data.get("status") == "inactive")
        finding["RecordState"] = "ARCHIVED" if archived else "ACTIVE"
        if etype == "alert" and data.get("status") == "false_positive":
            finding["VerificationState"] = "FALSE_POSITIVE"
        product_fields = self._product_fields(rest.leftover(), field_prefix, etype)
        if product_fields:
            finding["ProductFields"] = product_fields
        refs = data.get("references") if etype in ("threat_intel",) else None
        if isinstance(refs, list) and refs and nonblank(refs[0]):
            finding["SourceUrl"] = refs[0]
        return finding

    def _generator_id(self, event: dict[str, Any], options: dict[str, Any]) -> str:
        if nonblank(options.get("generator_id")):
            return options["generator_id"][:MAX_GENERATOR_ID]
        data = event.get("data") or {}
        rule = data.get("detection_rule") or {}
        for candidate in (rule.get("id"), rule.get("name")):
            if nonblank(candidate):
                return candidate[:MAX_GENERATOR_ID]
        src = event.get("source") or {}
        name = src.get("name") if nonblank(src.get("name")) else "wia-security"
        return f"{name}/{event.get('type')}"[:MAX_GENERATOR_ID]

    def _types(self, event: dict[str, Any]) -> list[str]:
        etype, data = event.get("type"), event.get("data") or {}
        types: list[str] = []
        tactic = (event.get("mitre") or {}).get("tactic")
        if tactic in TACTIC_TYPES:
            types.append(TACTIC_TYPES[tactic])
        if etype == "alert":
            types.append(ALERT_TYPES.get(data.get("category"), "Unusual Behaviors"))
        elif etype == "incident":
            types.append(INCIDENT_TYPES.get(data.get("category"), "Unusual Behaviors"))
        elif etype == "vulnerability":
            types.append(VULNERABILITY_TYPE)
        elif etype == "threat_intel":
            for ttp in data.get("ttps") or []:
                if isinstance(ttp, dict) and ttp.get("tactic") in TACTIC_TYPES:
                    types.append(TACTIC_TYPES[ttp["tactic"]])
            types.append("TTPs")
        elif etype == "network_event":
            types.append("Unusual Behaviors/Network Flow")
        elif etype == "endpoint_event":
            types.append(ENDPOINT_TYPES.get(data.get("event_type"), "Unusual Behaviors/Process"))
        elif etype == "auth_event":
            types.append("TTPs/Privilege Escalation" if data.get("event_type") == "privilege_escalation"
                         else "Unusual Behaviors/User")
        return list(dict.fromkeys(types))[:MAX_TYPES]

    def _summary(self, event: dict[str, Any]) -> str:
        etype, data = event.get("type"), event.get("data") or {}
        if etype == "threat_intel":
            return f"{data.get('threat_type')} threat intelligence: {data.get('threat_name')}"
        if etype == "network_event":
            s, d = data.get("source") or {}, data.get("destination") or {}
            return (f"{data.get('event_type')} {data.get('protocol')} {s.get('ip')}:{s.get('port', '')} -> "
                    f"{d.get('ip')}:{d.get('port', '')}" + (f" ({data['action']})" if data.get("action") else ""))
        if etype == "endpoint_event":
            return f"{data.get('event_type')} on {(data.get('host') or {}).get('hostname')}"
        if etype == "auth_event":
            return (f"{data.get('event_type')} ({data.get('result')}) for {(data.get('user') or {}).get('name')} "
                    f"on {(data.get('target') or {}).get('name')}")
        return f"{etype} {event.get('id')}"

    @staticmethod
    def _criticality(data: dict[str, Any]) -> int | None:
        values = [CRITICALITY[a["criticality"]] for a in data.get("affected_assets") or []
                  if isinstance(a, dict) and a.get("criticality") in CRITICALITY]
        return max(values) if values else None

    def _resources(self, event: dict[str, Any], account: str, region: str, partition: str) -> list[dict[str, Any]]:
        etype, data, ctx = event.get("type"), event.get("data") or {}, event.get("context") or {}
        cloud = ctx.get("cloud") or {}
        resources: list[dict[str, Any]] = []

        def host(h: dict[str, Any], role: str) -> None:
            ips = h.get("ip") if isinstance(h.get("ip"), list) else [h["ip"]] if isinstance(h.get("ip"), str) else []
            ipv4 = [ip for ip in ips if ip_version(ip) == 4]
            ipv6 = [ip for ip in ips if ip_version(ip) == 6]
            instance = next((v for v in (h.get("hostname"), h.get("agent_id"), h.get("id"))
                             if isinstance(v, str) and INSTANCE_ID.match(v)), None)
            if instance and cloud.get("provider") in (None, "aws"):
                details = clean({"IpV4Addresses": ipv4, "IpV6Addresses": ipv6})
                resources.append(clean({"Type": "AwsEc2Instance", "Partition": partition, "Region": region,
                                        "Id": f"arn:{partition}:ec2:{region}:{account}:instance/{instance}",
                                        "ResourceRole": role, "Details": {"AwsEc2Instance": details} if details else None}))
                return
            ident = next((v for v in (h.get("hostname"), h.get("id"), h.get("name"), *ips) if nonblank(v)), None)
            if ident is None:
                return
            other = {k: str(v) if not isinstance(v, (list, dict)) else json.dumps(v)
                     for k, v in h.items() if nonblank(v) or is_number(v) or (isinstance(v, list) and v)}
            os_ = h.get("os")
            if isinstance(os_, dict):
                other.pop("os", None)
                other.update({f"os.{k}": v for k, v in os_.items() if nonblank(v)})
            other = {k[:128]: v[:1024] for k, v in other.items() if nonblank(v)}
            resource = clean({"Type": "Other", "Id": ident, "Partition": partition, "Region": region,
                              "ResourceRole": role})
            if other:                       # nonblank strings only: clean() would just copy it
                resource["Details"] = {"Other": other}
            resources.append(resource)

        if isinstance(ctx.get("host"), dict):
            host(ctx["host"], "Target")
        if etype == "endpoint_event" and isinstance(data.get("host"), dict):
            host(data["host"], "Target")
        if etype == "incident":
            for asset in data.get("affected_assets") or []:
                if isinstance(asset, dict):
                    host({k: asset.get(k) for k in ("id", "name", "ip", "type", "criticality") if asset.get(k) is not None},
                         "Target")
        if etype == "auth_event" and isinstance(data.get("target"), dict):
            t = data["target"]
            host({"name": t.get("name"), "ip": t.get("ip"), "type": t.get("type"), "url": t.get("url")}, "Target")
        if etype == "network_event" and isinstance(data.get("destination"), dict):
            d = data["destination"]
            host({"hostname": d.get("hostname"), "ip": d.get("ip")}, "Target")
        if not resources:
            kind = {"vulnerability": "vulnerability", "threat_intel": "threat"}.get(etype, "event")
            resources.append({"Type": "Other", "Id": f"wia:{kind}:{event.get('id')}", "Partition": partition,
                              "Region": region})
        # The same resource named twice (context host = endpoint host) is listed once.
        unique = list({r["Id"]: r for r in resources}.values())
        return unique[:MAX_RESOURCES]

    def _network(self, event: dict[str, Any], rest: Remainder) -> dict[str, Any]:
        etype, data = event.get("type"), event.get("data") or {}
        if etype == "network_event":
            base = ("data",)
            src, dst = data.get("source") or {}, data.get("destination") or {}
            proto, direction = data.get("protocol"), data.get("direction")
        else:
            net = (event.get("context") or {}).get("network") or {}
            if not net:
                return {}
            base = ("context", "network")
            src, dst = net.get("source") or {}, net.get("destination") or {}
            proto, direction = net.get("protocol"), net.get("direction")
        out: dict[str, Any] = {}
        for side, host in (("Source", src), ("Destination", dst)):
            key = "source" if side == "Source" else "destination"
            version = ip_version(host.get("ip"))
            if version:
                out[f"{side}IpV{version}"] = rest.pop(*base, key, "ip")
            if is_int(host.get("port")):
                out[f"{side}Port"] = rest.pop(*base, key, "port")
            if nonblank(host.get("hostname")):
                out[f"{side}Domain"] = rest.pop(*base, key, "hostname")
            if side == "Source" and is_mac(host.get("mac")):
                out["SourceMac"] = rest.pop(*base, key, "mac")
        if nonblank(proto):
            out["Protocol"] = rest.pop(*base, "protocol")
        if direction in ("inbound", "outbound"):
            out["Direction"] = "IN" if rest.pop(*base, "direction") == "inbound" else "OUT"
        return out

    def _process(self, event: dict[str, Any], rest: Remainder) -> dict[str, Any]:
        if event.get("type") != "endpoint_event":
            return {}
        proc = (event.get("data") or {}).get("process") or {}
        out: dict[str, Any] = {}
        for key, member in (("name", "Name"), ("path", "Path")):
            if nonblank(proc.get(key)):
                out[member] = rest.pop("data", "process", key)
        for key, member in (("pid", "Pid"), ("ppid", "ParentPid")):
            if is_int(proc.get(key)):
                out[member] = rest.pop("data", "process", key)
        started = proc.get("start_time")
        if isinstance(started, str) and _timestamp(started) == started:
            out["LaunchedAt"] = rest.pop("data", "process", "start_time")
        if out and (event.get("data") or {}).get("event_type") == "process_termination":
            out["TerminatedAt"] = _timestamp(event.get("timestamp"))
        return out

    def _indicators(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        etype, data = event.get("type"), event.get("data") or {}
        items = data.get("indicators") if etype in ("alert", "threat_intel") else data.get("iocs") if etype == "incident" else None
        out = []
        for ind in items or []:
            if not isinstance(ind, dict) or not nonblank(ind.get("value")):
                continue
            kind, value = ind.get("type"), ind["value"]
            if kind == "ip":
                version = ip_version(value)
                asff_type = f"IPV{version}_ADDRESS" if version else None
            elif kind == "hash":
                asff_type = _HASH_BY_LENGTH.get(len(value))
            else:
                asff_type = INDICATOR_TYPES.get(kind)
            if asff_type is None:
                continue
            entry = {"Type": asff_type, "Value": value}
            last = _timestamp(ind.get("last_seen"))
            if last:
                entry["LastObservedAt"] = last
            src = (event.get("source") or {}).get("name")
            if nonblank(src):
                entry["Source"] = src
            out.append(entry)
        return out

    @staticmethod
    def _malware(data: dict[str, Any]) -> list[dict[str, Any]]:
        if data.get("threat_type") not in ("malware", "ransomware", "botnet"):
            return []
        names = [n for n in [data.get("threat_name"), data.get("threat_family"), *(data.get("aliases") or [])] if nonblank(n)]
        kind = MALWARE_TYPES.get(data.get("threat_type"))
        return [clean({"Name": n[:64], "Type": kind}) for n in dict.fromkeys(names)][:MAX_MALWARE]

    def _threats(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        etype, data = event.get("type"), event.get("data") or {}
        if etype == "alert" and data.get("category") == "malware":
            name = data.get("title")
        elif etype == "threat_intel":
            name = data.get("threat_name")
        else:
            return []
        if not nonblank(name):
            return []
        threat: dict[str, Any] = {"Name": name, "Severity": severity_label(event["severity"])}
        if is_int(data.get("count")):
            threat["ItemCount"] = data["count"]
        return [threat]

    def _vulnerability(self, data: dict[str, Any], rest: Remainder) -> dict[str, Any]:
        vuln: dict[str, Any] = {"Id": rest.pop("data", "vuln_id")}
        cvss = data.get("cvss") or {}
        entry: dict[str, Any] = {}
        if nonblank(cvss.get("version")):
            entry["Version"] = rest.pop("data", "cvss", "version")
        if is_number(cvss.get("score")):
            entry["BaseScore"] = rest.pop("data", "cvss", "score")
        if nonblank(cvss.get("vector")):
            entry["BaseVector"] = rest.pop("data", "cvss", "vector")
        if entry:
            vuln["Cvss"] = [entry]
        refs = [r for r in data.get("references") or [] if nonblank(r)]
        if refs and refs == data.get("references"):
            vuln["ReferenceUrls"] = rest.pop("data", "references")
        packages = []
        fixed = (data.get("patch_details") or {}).get("fixed_versions") or []
        for product in data.get("affected_products") or []:
            if not isinstance(product, dict) or not nonblank(product.get("product")):
                continue
            versions = [v for v in product.get("versions") or [] if nonblank(v)] or [None]
            for version in versions:
                packages.append(clean({"Name": product["product"], "Version": version,
                                       "FixedInVersion": fixed[0] if fixed and nonblank(fixed[0]) else None}))
        if packages:
            vuln["VulnerablePackages"] = packages
        vendor = clean({"Name": next((p.get("vendor") for p in data.get("affected_products") or []
                                      if isinstance(p, dict) and nonblank(p.get("vendor"))), None),
                        "Url": (data.get("patch_details") or {}).get("vendor_url") if nonblank((data.get("patch_details") or {}).get("vendor_url")) else None,
                        "VendorSeverity": cvss.get("severity") if nonblank(cvss.get("severity")) else None,
                        "VendorCreatedAt": _timestamp(data.get("published")),
                        "VendorUpdatedAt": _timestamp(data.get("modified"))})
        if vendor and "Name" in vendor:
            vuln["Vendor"] = vendor
        if isinstance(data.get("patch_available"), bool):
            vuln["FixAvailable"] = "YES" if data["patch_available"] else "NO"
        if isinstance(data.get("exploit_available"), bool):
            vuln["ExploitAvailable"] = "YES" if data["exploit_available"] else "NO"
        return vuln

    @staticmethod
    def _remediation(data: dict[str, Any]) -> dict[str, Any]:
        patch = data.get("patch_details") or {}
        parts = []
        if patch.get("fixed_versions"):
            parts.append("Upgrade to " + ", ".join(v for v in patch["fixed_versions"] if isinstance(v, str)) + ".")
        if patch.get("workarounds"):
            parts.append("Workarounds: " + "; ".join(w for w in patch["workarounds"] if isinstance(w, str)))
        text = _text(" ".join(parts), 512) if parts else None
        url = patch.get("vendor_url") if nonblank(patch.get("vendor_url")) else None
        if not text and not url:
            return {}
        return {"Recommendation": clean({"Text": text or "See the vendor advisory.", "Url": url})}

    @staticmethod
    def _product_fields(leftover: dict[str, Any], prefix: str, event_type: Any = None) -> dict[str, str]:
        """Leftover WIA values as `prefix + "wia." + path` -> JSON text, coarse first, split only when too long.
        When more pairs than the limit allows remain, the ones the reader needs to restore a valid event
        (the envelope's and the event type's required fields) are kept first and meta.custom is the first left
        out (`_drop_rank`, then key order); what is left out is listed under `wia.omitted`."""
        pairs: list[tuple[str, str, str]] = []            # (path, key, JSON text) in emission order
        omitted: list[tuple[int, str]] = []               # (emission position, path): too long for one pair
        room = MAX_PRODUCT_FIELDS - 1                    # one pair is kept for the omission note

        def emit(path: str, value: Any) -> None:
            text = compact_json(value)
            key = f"{prefix}wia.{path}"
            if len(text) <= MAX_PRODUCT_FIELD_VALUE and len(key) <= MAX_PRODUCT_FIELD_KEY:
                pairs.append((path, key, text))
            elif isinstance(value, dict) and value:
                for k, v in value.items():
                    emit(f"{path}.{k}", v)
            elif isinstance(value, list) and value:
                for i, v in enumerate(value):
                    emit(f"{path}[{i}]", v)
            else:
                omitted.append((len(pairs), path))

        # Per field of each top-level block ("wia.data.alert_id") when that fits, per block otherwise.
        fine = sum(len(value) if isinstance(value, dict) and value else 1 for value in leftover.values()) <= room
        for top, value in leftover.items():
            if fine and isinstance(value, dict) and value:
                for k, v in value.items():
                    emit(f"{top}.{k}", v)
            else:
                emit(top, value)
        kept: list[int] = list(range(len(pairs)))
        if len(pairs) > room:
            # Rank before key order: an incoming dict may list data.priority after fifty custom fields.
            ranked = sorted(range(len(pairs)), key=lambda i: _drop_rank(pairs[i][0], event_type))   # stable
            kept = sorted(ranked[:room])
            omitted += [(i, pairs[i][0]) for i in sorted(set(range(len(pairs))) - set(kept))]
        fields = {pairs[i][1]: pairs[i][2] for i in kept}
        if omitted:
            note = json.dumps([path for _, path in sorted(omitted, key=lambda o: o[0])], separators=(",", ":"))
            fields[f"{prefix}wia.omitted"] = note if len(note) <= MAX_PRODUCT_FIELD_VALUE else note[: MAX_PRODUCT_FIELD_VALUE - 5] + '..."]'
        return fields

    # -- ASFF -> WIA ---------------------------------------------------------------------------
    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        """A finding, a list of findings, a `{"Findings": [...]}` request/response, or the EventBridge
        event Security Hub sends (`{"detail-type": "Security Hub Findings - Imported", "detail":
        {"findings": [...]}}`) -> WIA event dicts (the first finding that fails raises)."""
        return all_or_nothing(self.to_wia_each(doc, **options))

    @guarded_members
    def to_wia_each(self, doc: Any, *, lenient: bool = False, **options: Any) -> list[MemberOutcome]:
        """As `to_wia`, one outcome per finding, so one finding that cannot be read refuses only itself.
        Paths are JSON pointers into `doc`: `/Findings/<index>/...`, `/detail/findings/<index>/...` (the
        EventBridge event), `/<index>/...` (a list), `/...` (a single finding).
        `lenient`: an event in this project's layout may hold null for an absent optional member."""
        if isinstance(doc, dict) and isinstance(doc.get("Findings"), list):
            findings, base = doc["Findings"], "/Findings"
        elif isinstance(doc, dict) and isinstance(doc.get("detail"), dict) and isinstance(doc["detail"].get("findings"), list):
            findings, base = doc["detail"]["findings"], "/detail/findings"
        elif isinstance(doc, list):
            findings, base = doc, ""
        else:
            return [read_member(self, "", None, functools.partial(self._finding_events, doc, "", lenient))]
        return [read_member(self, f"{base}/{i}", f, functools.partial(self._finding_events, f, f"{base}/{i}", lenient))
                for i, f in enumerate(findings)]

    def _finding_events(self, finding: Any, where: str, lenient: bool) -> list[dict[str, Any]]:
        return [self._finding_to_wia(finding, where, lenient)]

    def _finding_to_wia(self, finding: Any, where: str, lenient: bool = False) -> dict[str, Any]:
        """`where`: the finding's JSON pointer in the document ("" when the document is the finding)."""
        if not isinstance(finding, dict):
            raise ConversionError(self.name, "a finding must be a JSON object", path=where or "/")
        for member in ("Id", "CreatedAt"):
            if not nonblank(finding.get(member)):
                raise ConversionError(self.name, f"required member {member} is missing", path=f"{where}/{member}")
        _check_shape(finding, where)
        leftover = self._leftover(finding.get("ProductFields") or {})
        etype = leftover.get("type")
        vulns = [v for v in finding.get("Vulnerabilities") or [] if isinstance(v, dict)]
        if etype is None:
            etype = "vulnerability" if any(_CVE_ID.fullmatch(str(v.get("Id", ""))) for v in vulns) else "alert"
        event: dict[str, Any] = {
            "$schema": WIA_SCHEMA_URI, "version": WIA_VERSION, "id": _event_id(finding), "type": etype,
            "timestamp": finding["CreatedAt"], "severity": self._severity_back(finding),
            "source": leftover.pop("source", None) or self._source_back(finding), "data": {},
        }
        data = event["data"]
        title, description = finding.get("Title"), finding.get("Description")
        if etype in ("alert", "vulnerability", "incident") and nonblank(title):
            data["title"] = title
        own = bool(leftover)
        if nonblank(description) and etype in ("alert", "vulnerability", "incident"):
            data["description"] = description
        net = self._network_back(finding.get("Network") or {})
        if net:
            if etype == "network_event":
                data.update(net)
            else:
                event.setdefault("context", {})["network"] = net
        if etype == "endpoint_event":
            proc = clean({"name": (finding.get("Process") or {}).get("Name"), "path": (finding.get("Process") or {}).get("Path"),
                          "pid": (finding.get("Process") or {}).get("Pid"), "ppid": (finding.get("Process") or {}).get("ParentPid"),
                          "start_time": (finding.get("Process") or {}).get("LaunchedAt")})
            if proc:
                data["process"] = proc
        if etype == "vulnerability" and vulns:
            v = next((v for v in vulns if _CVE_ID.fullmatch(str(v.get("Id", "")))), vulns[0])
            data["vuln_id"] = v.get("Id")
            cvss = next((c for c in _list(v.get("Cvss")) if isinstance(c, dict)), {})
            data["cvss"] = clean({"version": cvss.get("Version"), "score": cvss.get("BaseScore"),
                                  "vector": cvss.get("BaseVector") if isinstance(cvss.get("BaseVector"), str) else None}) or {}
            urls = [u for u in _list(v.get("ReferenceUrls")) if isinstance(u, str) and is_uri(u)]
            if urls:
                data["references"] = urls     # anything else stays in meta.custom.asff.Vulnerabilities
        event = merge(event, leftover, _as_is)
        if own:
            # A description this converter generated (the event had none) is not part of the event.
            if data.get("description") == self._summary(event) and "description" not in (leftover.get("data") or {}):
                event["data"].pop("description", None)
            # this project's layout: the event as written, so checked as the other readers do
            return checked(event, self.name, lambda pointer: f"{where}/ProductFields" if holds(leftover, pointer)
                           else where or "/", "the event restored from this project's ASFF layout (ProductFields wia.*)",
                           lenient=lenient)
        return self._complete_foreign(event, finding)

    @staticmethod
    def _leftover(product_fields: dict[str, Any]) -> dict[str, Any]:
        """The `.../wia.<path>` ProductFields rebuilt into a nested WIA fragment."""
        out: Any = {}
        for key, text in product_fields.items():
            path = _wia_path(key) if isinstance(key, str) else None
            if path is None:
                continue
            try:
                value = _json_value(text)
            except (TypeError, ValueError):
                continue
            out = _place(out, _path_steps(path), value)
        return out

    @staticmethod
    def _severity_back(finding: dict[str, Any]) -> float:
        sev = finding.get("Severity") or {}
        provider = (finding.get("FindingProviderFields") or {}).get("Severity") or {}
        label = sev.get("Label") or provider.get("Label")
        # `Label` is the preferred attribute (ASFF required attributes, Severity): a finer number
        # (a 0-10 `Original` such as GuardDuty's, else `Normalized` / 10) counts only when it
        # agrees with the label, so a partner's CRITICAL with Normalized 0 stays critical.
        agrees = (lambda v: severity_label(v) == label) if label in _LABEL_SEVERITY else (lambda v: True)
        for original in (sev.get("Original"), provider.get("Original")):
            try:
                value = json.loads(original) if isinstance(original, str) else None
            except ValueError:
                value = None
            if is_number(value) and 0 <= value <= 10 and agrees(value):
                return value
        normalized = sev.get("Normalized")
        if isinstance(normalized, str) and normalized.strip().isdigit():
            normalized = int(normalized)          # AWS's own sample control findings write "40"
        if is_number(normalized) and 0 <= normalized <= 100 and agrees(normalized / 10):
            return normalized / 10
        return _LABEL_SEVERITY.get(label, 5)

    @staticmethod
    def _source_back(finding: dict[str, Any]) -> dict[str, Any]:
        m = _PRODUCT_ARN.match(str(finding.get("ProductArn", "")))
        name = finding.get("ProductName") if nonblank(finding.get("ProductName")) else (m.group(2) if m else "security-hub")
        source = {"type": "custom", "name": name}
        vendor = finding.get("CompanyName") if nonblank(finding.get("CompanyName")) else (m.group(1) if m else None)
        if vendor:
            source["vendor"] = vendor
        return source

    @staticmethod
    def _network_back(net: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for side, key in (("Source", "source"), ("Destination", "destination")):
            host = clean({"ip": net.get(f"{side}IpV4") or net.get(f"{side}IpV6"), "port": net.get(f"{side}Port"),
                          "hostname": net.get(f"{side}Domain"), "mac": net.get("SourceMac") if side == "Source" else None})
            if host:
                out[key] = host
        if nonblank(net.get("Protocol")):
            out["protocol"] = net["Protocol"]
        if net.get("Direction") in ("IN", "OUT"):
            out["direction"] = "inbound" if net["Direction"] == "IN" else "outbound"
        return out

    def _complete_foreign(self, event: dict[str, Any], finding: dict[str, Any]) -> dict[str, Any]:
        """A finding from another product (GuardDuty, Inspector, ...): fill what the WIA schema requires."""
        data = event["data"]
        if event["type"] == "vulnerability":
            cvss = data.setdefault("cvss", {})
            cvss.setdefault("version", "3.1")
            if cvss.get("version") not in ("2.0", "3.0", "3.1", "4.0"):
                cvss["version"] = "3.1" if str(cvss["version"]).startswith("3") else "2.0" if str(cvss["version"]).startswith("2") else "4.0"
            cvss.setdefault("score", event["severity"])
            score = cvss["score"]
            cvss["severity"] = ("none" if score == 0 else "low" if score < 4 else "medium" if score < 7
                                else "high" if score < 9 else "critical")
            data.setdefault("title", finding.get("Title") or data["vuln_id"])
            vuln = next((v for v in finding.get("Vulnerabilities") or [] if isinstance(v, dict) and v.get("Id") == data["vuln_id"]), {})
            packages = [p for p in _list(vuln.get("VulnerablePackages")) if isinstance(p, dict) and nonblank(p.get("Name"))]
            # A package names no maker (`Vendor` is the advisory's source, e.g. NVD): "unknown", as the
            # OCSF reader writes for a package without vendor_name; the schema requires a vendor.
            products = [clean({"vendor": "unknown", "product": p["Name"],
                               "versions": [p["Version"]] if nonblank(p.get("Version")) else None}) for p in packages]
            if products and "affected_products" not in data:
                data["affected_products"] = products
            fixed = list(dict.fromkeys(p["FixedInVersion"] for p in packages if nonblank(p.get("FixedInVersion"))))
            if fixed and "patch_details" not in data:
                data["patch_details"] = {"fixed_versions": fixed}
            advisory = vuln.get("Vendor") if isinstance(vuln.get("Vendor"), dict) else {}
            # VulnerabilityVendor is "a vendor that generates a vulnerability report": its Url is the
            # advisory (a reference), its dates the advisory's; its Name has no WIA field and stays
            # in meta.custom.asff.Vulnerabilities.
            url = advisory.get("Url")
            if isinstance(url, str) and is_uri(url) and url not in data.get("references", []):
                data["references"] = [*data.get("references", []), url]
            for member, key in (("VendorCreatedAt", "published"), ("VendorUpdatedAt", "modified")):
                if key not in data and (moment := _timestamp(advisory.get(member))) is not None:
                    data[key] = moment
            for member, key in (("ExploitAvailable", "exploit_available"), ("FixAvailable", "patch_available")):
                if vuln.get(member) in ("YES", "NO") and key not in data:
                    data[key] = vuln[member] == "YES"
            self._context_foreign(event, finding)
            return canonical_times(event)
        types = [t for t in finding.get("Types") or [] if isinstance(t, str)]
        data.setdefault("alert_id", finding["Id"])
        data.setdefault("title", finding.get("Title") or finding.get("GeneratorId") or finding["Id"])
        data["category"] = ("malware" if finding.get("Malware") else
                            "reconnaissance" if any(t.startswith("TTPs/Discovery") for t in types) else
                            "policy" if any(t.startswith("Software and Configuration Checks") for t in types) else
                            "intrusion" if any(t.startswith(("TTPs", "Effects")) for t in types) else "other")
        status = _WORKFLOW_ALERT.get((finding.get("Workflow") or {}).get("Status") or finding.get("WorkflowState"), "new")
        if finding.get("VerificationState") == "FALSE_POSITIVE":
            status = "false_positive"
        elif finding.get("RecordState") == "ARCHIVED" and status == "new":
            status = "closed"
        data["status"] = status
        data["priority"] = BAND_PRIORITY.get(band(event["severity"]), "medium")
        data["detection_rule"] = {"id": finding["GeneratorId"]} if nonblank(finding.get("GeneratorId")) else None
        if not data["detection_rule"]:
            del data["detection_rule"]
        for member, key in (("FirstObservedAt", "first_seen"), ("LastObservedAt", "last_seen")):
            if nonblank(finding.get(member)):
                data[key] = finding[member]
        indicators = []
        for ind in finding.get("ThreatIntelIndicators") or []:
            if isinstance(ind, dict) and nonblank(ind.get("Value")) and ind.get("Type") in _INDICATOR_BACK:
                indicators.append(clean({"type": _INDICATOR_BACK[ind["Type"]], "value": ind["Value"],
                                         "last_seen": ind.get("LastObservedAt")}))
        if indicators:
            data["indicators"] = indicators
        for t in types:
            for prefix, tactic in _TYPE_TACTIC.items():
                if t == prefix or t.startswith(prefix + "/"):
                    from ..attack import table
                    tac = table().tactic(tactic)
                    event["mitre"] = {"tactic": tactic, **({"tactic_name": tac.name} if tac else {})}
                    break
            if "mitre" in event:
                break
        if "mitre" not in event:
            # GuardDuty also writes tactics the ASFF taxonomy does not list (TTPs/Impact/...): an
            # ATT&CK tactic name as the second level still names the tactic.
            from ..attack import table
            for t in types:
                parts = t.split("/")
                tac = table().tactic(parts[1]) if len(parts) > 1 and parts[0] == "TTPs" else None
                if tac is not None:
                    event["mitre"] = {"tactic": tac.id, "tactic_name": tac.name}
                    break
        confidence = finding.get("Confidence")
        if is_int(confidence) and 0 <= confidence <= 100:
            event.setdefault("meta", {})["confidence"] = confidence / 100
        action = finding.get("Action") if isinstance(finding.get("Action"), dict) else {}
        dns = action.get("DnsRequestAction") if isinstance(action.get("DnsRequestAction"), dict) else {}
        if nonblank(dns.get("Domain")) and "indicators" not in data:
            data["indicators"] = [{"type": "domain", "value": dns["Domain"]}]
        self._context_foreign(event, finding)
        return canonical_times(event)

    @staticmethod
    def _context_foreign(event: dict[str, Any], finding: dict[str, Any]) -> None:
        """Account, host and remote address of another product's finding, and in `meta.custom.asff`
        what has no WIA field (Id, ProductArn, Types, ProductFields, Resources, Compliance, Action...)."""
        m = re.match(r"^\d{12}\Z", str(finding.get("AwsAccountId", "")))
        if m:
            cloud = {"provider": "aws", "account_id": finding["AwsAccountId"]}
            if nonblank(finding.get("Region")):
                cloud["region"] = finding["Region"]
            event.setdefault("context", {})["cloud"] = cloud
        for res in finding.get("Resources") or []:
            if isinstance(res, dict) and res.get("Type") == "AwsEc2Instance":
                details = res.get("Details") if isinstance(res.get("Details"), dict) else {}
                details = details.get("AwsEc2Instance") if isinstance(details.get("AwsEc2Instance"), dict) else {}
                ips = [ip for ip in (*_list(details.get("IpV4Addresses")), *_list(details.get("IpV6Addresses")))
                       if ip_version(ip)]             # anything else stays in meta.custom.asff.Resources
                event.setdefault("context", {})["host"] = clean({"hostname": str(res.get("Id", "")).rsplit("/", 1)[-1], "ip": ips})
                break
        action = finding.get("Action") if isinstance(finding.get("Action"), dict) else {}
        for member in ("AwsApiCallAction", "NetworkConnectionAction", "PortProbeAction"):
            _remote_address(action.get(member), member, event)
        if not event.get("context"):
            event.pop("context", None)
        # as they came: nulls and empty members included (meta.custom allows any JSON value)
        kept = {member: copy.deepcopy(finding[member]) for member in ("Id", "ProductArn", "Types", *_FOREIGN_KEPT)
                if member in finding}
        event.setdefault("meta", {})["custom"] = {"asff": kept}
