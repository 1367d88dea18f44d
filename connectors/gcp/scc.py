"""Google Security Command Center (v2 API, `google-cloud-securitycenter`): WIA events as findings under
a source, and findings back as WIA events.

    scc://organizations/<org>/sources/<source>[?location=global][&resource=//cloudresourcemanager.googleapis.com/projects/<p>]
    (tests and emulators: &endpoint=host:port&ca_file=ca.pem&auth=anonymous)

Each event becomes one finding whose id is the event's UUID without dashes: 32 hex characters, which
is the API's rule for a finding id ("alphanumeric, 1 to 32 characters", CreateFindingRequest). A
re-sent event updates the same finding (at once when this sink wrote it lately, KNOWN_FINDINGS; else after
CreateFinding meets ALREADY_EXISTS), UpdateFinding replacing the fields of `UPDATED_FIELDS` (`category` and
`resource_name` are immutable and stay as created), so delivery is idempotent. v2's `Finding.state` is output only (Create and
UpdateFinding ignore it; a new finding is ACTIVE): when the finding answered is not in the event's state,
SetFindingState sets it. The mapping (`to_finding`):

| Finding field      | from the WIA event                                                            |
| ------------------ | ----------------------------------------------------------------------------- |
| category           | `WIA_<TYPE>` + `_<data.category or data.event_type>` upper-cased              |
| state              | INACTIVE when data.status is resolved/closed/false_positive/inactive, else ACTIVE (SetFindingState) |
| event_time         | timestamp; one ahead of the sender's clock is sent as now (SCC refuses a future one) |
| severity           | band: informational/low LOW, medium MEDIUM, high HIGH, critical/emergency CRITICAL |
| finding_class      | vulnerability VULNERABILITY; alert/incident/threat_intel THREAT; others OBSERVATION |
| resource_name      | `//cloudresourcemanager.googleapis.com/projects/<context.cloud.account_id>` for gcp, else the sink's `resource`, else the source's organization (`//cloudresourcemanager.googleapis.com/organizations/<org>`): SCC requires one |
| description        | data.description, else the title                                             |
| external_uri       | the first http(s) URL of data.references (a URN or mailto: is no "well formed URL") |
| mitre_attack       | mitre + threat-intel ttps, through the client's own enum table (ids in its docstrings); a sub-technique SCC lacks falls back to its parent |
| indicator          | ip / domain / url indicators and IOCs                                         |
| vulnerability.cve  | vuln_id, references, CVSS v3 score, patch (upstream fix), in-the-wild exploit |
| source_properties  | wia_event (the whole event, JSON), wia_event_id, wia_type, wia_severity, title, host, user |
"""
from __future__ import annotations

import json
import re
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterator, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from wia_security.attack import table as attack_table
from wia_security.errors import ConfigError, ConversionError, DeliveryError, ParseError, WiaError
from wia_security.reader import Item
from wia_security.redact import MASK
from wia_security.severity import band
from wia_security.timeutil import now_iso, parse_iso, to_iso

from .. import _eventview as view
from ..delivery.batching import RETRY, Batch, BatchingSink, Outcome
from ..delivery.permission_window import PermissionWindow
from ..delivery.policy import DeliveryPolicy
from ..delivery.urls import refuse_repeated_keys

#: CreateFindingRequest.finding_id: "alphanumeric and less than or equal to 32 characters".
FINDING_ID_MAX = 32
_FINDING_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
#: Findings created per batch (one RPC each, run on a few threads: SCC has no batch create).
BATCH_FINDINGS = 100
RPC_WORKERS = 8
RPC_TIMEOUT = 30.0
#: Finding ids this sink wrote lately (the last KNOWN_FINDINGS): the API has no DeleteFinding, so such a
#: finding exists and a re-sent event (a newer version, a redelivery) is updated at once, one write where a
#: CreateFinding refused ALREADY_EXISTS came first (two, of the quota's 1,000 writes a minute).
KNOWN_FINDINGS = 10_000
#: PERMISSION_DENIED on a write while the identity's role is new: IAM "changes to allow or deny policies
#: typically propagate in 2 minutes, but could potentially take 7 minutes or longer" (IAM docs, "Access change
#: propagation"). Retried until this long after the first one with no write accepted since; later ones fail at once.
PERMISSION_PROPAGATION_SECONDS = 7 * 60
PROPAGATION = f"a new IAM role binding can take {PERMISSION_PROPAGATION_SECONDS // 60} minutes or longer to propagate"
#: SCC's rate quotas are per minute ("Writes per minute 1,000" per project, Security Command Center quotas), and "rate
#: quotas reset after a predefined time interval" (Cloud Quotas, "Troubleshoot quota errors"). A RESOURCE_EXHAUSTED
#: without a RetryInfo delay is retried spread over this long (within the delivery budget), not at the machinery's
#: sub-second backoff, whose tries all fell inside the exhausted minute.
QUOTA_WINDOW_SECONDS = 60.0

SEVERITY_BY_BAND = {"informational": "LOW", "low": "LOW", "medium": "MEDIUM", "high": "HIGH",
                    "critical": "CRITICAL", "emergency": "CRITICAL", "unknown": "LOW"}
#: SCC severity -> a WIA severity inside the band it came from (for findings that were not WIA events).
WIA_SEVERITY = {"LOW": 2, "MEDIUM": 4, "HIGH": 6, "CRITICAL": 8}
CLASS_BY_TYPE = {"vulnerability": "VULNERABILITY", "alert": "THREAT", "incident": "THREAT",
                 "threat_intel": "THREAT", "network_event": "OBSERVATION", "endpoint_event": "OBSERVATION",
                 "auth_event": "OBSERVATION"}
INACTIVE_STATUSES = frozenset({"resolved", "closed", "false_positive", "inactive"})
#: gRPC codes worth another attempt (AIP-194); everything else is permanent for this event.
RETRYABLE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED",
                             "INTERNAL", "UNKNOWN"})
_SOURCE = re.compile(r"^organizations/(\d+)/sources/(\d+)$")
#: Finding.resource_name: required, "less than 256 characters and at least 1 character" (SCC's INVALID_ARGUMENT).
RESOURCE_NAME_MAX = 255
_WEB_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.I)
#: What an update of an existing finding (a re-sent event) replaces: every mutable field the mapping writes, a
#: field the event no longer carries cleared. Not `category` / `resource_name` (immutable: a changed value is
#: INVALID_ARGUMENT), not `state` (output only: SetFindingState), and not what others own: an empty mask
#: would replace every mutable field, resetting an analyst's `mute`.
UPDATED_FIELDS = ("event_time", "severity", "finding_class", "description", "external_uri", "source_properties",
                  "mitre_attack", "indicator", "vulnerability")


def finding_id_for(event: dict[str, Any]) -> str:
    """The finding id of an event: its UUID as 32 hex digits (alphanumeric, exactly the API's maximum)."""
    finding_id = uuid.UUID(str(event["id"])).hex
    assert _FINDING_ID.match(finding_id) and len(finding_id) <= FINDING_ID_MAX
    return finding_id


@lru_cache(maxsize=1)
def mitre_enums() -> tuple[dict[str, str], dict[str, str]]:
    """(ATT&CK tactic id -> SCC Tactic name, technique id -> SCC Technique name), read from the installed
    client's enum docstrings, where each value is documented with its ATT&CK id ("EXECUTION (3): TA0002")."""
    from google.cloud.securitycenter_v2 import MitreAttack
    pattern = re.compile(r"^\s*([A-Z0-9_]+) \(\d+\):\s*\n\s*(TA?\d{4}(?:\.\d{3})?)\s*$", re.M)
    tactics = {attack_id: name for name, attack_id in pattern.findall(MitreAttack.Tactic.__doc__ or "")}
    techniques = {attack_id: name for name, attack_id in pattern.findall(MitreAttack.Technique.__doc__ or "")}
    return tactics, techniques


def _mitre(event: dict[str, Any]) -> dict[str, Any] | None:
    tactics, techniques = mitre_enums()
    refs: list[tuple[str | None, str | None]] = []
    mitre = event.get("mitre") or {}
    if mitre:
        refs.append((mitre.get("tactic"), mitre.get("sub_technique") or mitre.get("technique")))
    for ttp in view.data(event).get("ttps") or [] if event.get("type") == "threat_intel" else []:
        refs.append((ttp.get("tactic"), ttp.get("technique")))
    chosen_tactics: list[str] = []
    chosen_techniques: list[str] = []
    for tactic_id, technique_id in refs:
        if tactic_id in tactics and tactics[tactic_id] not in chosen_tactics:
            chosen_tactics.append(tactics[tactic_id])
        for candidate in (technique_id, technique_id.split(".")[0] if technique_id else None):
            if candidate in techniques:
                if techniques[candidate] not in chosen_techniques:
                    chosen_techniques.append(techniques[candidate])
                break
        if tactic_id is None and technique_id:       # no tactic given: the technique's first tactic
            technique = attack_table().technique(technique_id.split(".")[0])
            for tid in (technique.tactic_ids if technique else ()):
                if tid in tactics and tactics[tid] not in chosen_tactics:
                    chosen_tactics.append(tactics[tid])
                    break
    if not chosen_tactics and not chosen_techniques:
        return None
    block: dict[str, Any] = {"version": attack_table().version}
    if chosen_tactics:
        block["primary_tactic"] = chosen_tactics[0]
        block["additional_tactics"] = chosen_tactics[1:]
    if chosen_techniques:
        block["primary_techniques"] = chosen_techniques[:1]
        block["additional_techniques"] = chosen_techniques[1:]
    return block


def _category(event: dict[str, Any]) -> str:
    d = view.data(event)
    detail = d.get("category") or d.get("event_type") or d.get("threat_type")
    text = f"WIA_{event.get('type', 'event')}" + (f"_{detail}" if isinstance(detail, str) else "")
    return re.sub(r"[^A-Z0-9_]+", "_", text.upper())


def _indicator(event: dict[str, Any]) -> dict[str, list[str]] | None:
    ips: list[str] = []
    domains: list[str] = []
    uris: list[str] = []
    for kind, value in view.indicators(event):
        target = {"ip": ips, "domain": domains, "url": uris}.get(kind)
        if target is not None and value not in target:
            target.append(value)
    block = {k: v for k, v in (("ip_addresses", ips), ("domains", domains), ("uris", uris)) if v}
    return block or None


def _vulnerability(event: dict[str, Any]) -> dict[str, Any] | None:
    cve = view.cve(event)
    if not cve:
        return None
    d = view.data(event)
    cvss = d.get("cvss") or {}
    block: dict[str, Any] = {"id": cve}
    refs = [{"source": "WIA", "uri": uri} for uri in d.get("references") or [] if isinstance(uri, str)]
    if refs:
        block["references"] = refs
    if str(cvss.get("version", "")).startswith("3"):
        block["cvssv3"] = {"base_score": float(cvss.get("base_score", cvss.get("score", 0)))}
    if "patch_available" in d:
        block["upstream_fix_available"] = bool(d["patch_available"])
    exploit = d.get("exploit_details") or {}
    if exploit.get("type") == "in_the_wild":
        block["observed_in_the_wild"] = True
    vulnerability: dict[str, Any] = {"cve": block}
    cwes = [{"id": cwe} for cwe in d.get("cwe") or [] if isinstance(cwe, str)]
    if cwes:
        vulnerability["cwes"] = cwes
    return vulnerability


def organization_resource(source: str) -> str:
    """The full resource name of a source's organization, the resource of an event that names no other."""
    return f"//cloudresourcemanager.googleapis.com/{source.split('/sources/', 1)[0]}"


def event_time(timestamp: str) -> str:
    """A WIA timestamp as Finding.event_time (a protobuf Timestamp: UTC, 0001-01-01 to 9999-12-31), to the millisecond.
    One whose UTC instant is past 9999 (the year 9999 at a negative offset) is ahead of every clock: sent as now, as
    `_upsert` sends any future time. One before 0001-01-01 UTC is a ValueError naming it (the event is dead-lettered)."""
    moment = parse_iso(timestamp)
    try:
        return to_iso(moment)
    except OverflowError:       # converting to UTC left datetime's range (Python's bare "date value out of range")
        if moment.year == 9999:
            return now_iso()
        raise ValueError(f"timestamp {timestamp[:60]!r} is before 0001-01-01T00:00:00Z in UTC, the first instant "
                         "SCC's event_time holds") from None


def to_finding(event: dict[str, Any], *, default_resource: str | None = None) -> dict[str, Any]:
    """The v2 Finding (as a dict the client accepts) for a WIA event; `name`/`parent` are set by the sink, and
    `resource_name` (which SCC requires, 1 to 255 characters) by it when neither the event nor
    `default_resource` gives one."""
    d = view.data(event)
    cloud = (event.get("context") or {}).get("cloud") or {}
    resource = default_resource
    project = f"//cloudresourcemanager.googleapis.com/projects/{cloud.get('account_id')}"
    if cloud.get("provider") == "gcp" and cloud.get("account_id") and len(project) <= RESOURCE_NAME_MAX:
        resource = project
    props: dict[str, Any] = {
        "wia_event": json.dumps(event, ensure_ascii=False, separators=(",", ":")),
        "wia_event_id": event["id"], "wia_type": event.get("type"), "wia_severity": event.get("severity"),
        "title": view.title(event), "source_name": (event.get("source") or {}).get("name"),
    }
    for key, value in (("hostname", view.hostname(event)), ("user", view.user_name(event))):
        if value:
            props[key] = value
    hashes = [v for k, v in view.indicators(event) if k.startswith("file_hash") or k == "hash"]
    if hashes:
        props["indicator_hashes"] = ", ".join(hashes)
    finding: dict[str, Any] = {
        "state": "INACTIVE" if (view.status(event) or "") in INACTIVE_STATUSES else "ACTIVE",
        "category": _category(event),
        "event_time": event_time(event["timestamp"]),
        "severity": SEVERITY_BY_BAND[band(event.get("severity"))],
        "finding_class": CLASS_BY_TYPE.get(event.get("type", ""), "OBSERVATION"),
        "description": view.description(event),
        "source_properties": {k: v for k, v in props.items() if v is not None},
    }
    if resource:
        finding["resource_name"] = resource
    # "guaranteed to be either empty or a well formed URL": the first web reference, never a URN or mailto:
    web = next((ref for ref in d.get("references") or [] if isinstance(ref, str) and _WEB_URL.match(ref)), None)
    if web:
        finding["external_uri"] = web
    for key, value in (("mitre_attack", _mitre(event)), ("indicator", _indicator(event)),
                       ("vulnerability", _vulnerability(event))):
        if value:
            finding[key] = value
    return finding


def finding_to_event(finding: Any) -> dict[str, Any]:
    """A finding as a WIA event: the stored event for findings this connector made (state changes made
    in SCC reflected in data.status where the type has one), else an alert (or a vulnerability for a
    finding with a CVE) built from the finding's fields."""
    from google.cloud.securitycenter_v2 import Finding
    if not isinstance(finding, Finding):
        finding = Finding(finding)
    props = dict(finding.source_properties)
    stored = props.get("wia_event")
    state = finding.state.name if finding.state else "STATE_UNSPECIFIED"
    if isinstance(stored, str):
        try:
            event = json.loads(stored)
        except ValueError as exc:
            raise ConversionError("scc", f"not JSON ({exc})", path="/source_properties/wia_event") from None
        if not isinstance(event, dict):
            raise ConversionError("scc", f"a JSON {type(event).__name__}, not a WIA event object",
                                  path="/source_properties/wia_event")
        data = event.get("data")
        if state == "INACTIVE" and event.get("type") in ("alert",) and isinstance(data, dict) \
                and data.get("status") not in INACTIVE_STATUSES:
            data["status"] = "resolved"
        return event
    return _foreign_finding_to_event(finding, state)


def _foreign_finding_to_event(finding: Any, state: str) -> dict[str, Any]:
    tactics, techniques = mitre_enums()
    by_tactic = {v: k for k, v in tactics.items()}
    by_technique = {v: k for k, v in techniques.items()}
    severity_name = finding.severity.name if finding.severity else "SEVERITY_UNSPECIFIED"
    severity = WIA_SEVERITY.get(severity_name, 0)
    timestamp = to_iso(finding.event_time) if finding.event_time else now_iso()
    base: dict[str, Any] = {
        "$schema": "https://wia.live/security/v1/schema.json", "version": "1.0.0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, finding.name or finding.canonical_name)),
        "timestamp": timestamp, "severity": severity,
        "source": {"type": "custom", "name": "Google Security Command Center", "vendor": "Google"},
    }
    project = re.search(r"projects/([^/]+)", finding.resource_name or "")
    if project:
        base["context"] = {"cloud": {"provider": "gcp", "account_id": project.group(1)}}
    base["meta"] = {"labels": {"scc_finding": finding.name, "scc_category": finding.category}}
    cve = finding.vulnerability.cve.id if finding.vulnerability and finding.vulnerability.cve else ""
    if re.fullmatch(r"CVE-\d{4}-\d{4,}", cve or ""):
        score = finding.vulnerability.cve.cvssv3.base_score if finding.vulnerability.cve.cvssv3 else float(severity)
        return {**base, "type": "vulnerability", "data": {
            "vuln_id": cve, "title": finding.category or cve,
            "cvss": {"version": "3.1", "score": score, "severity": _cvss_band(score)},
            **({"description": finding.description} if finding.description else {}),
        }}
    indicators = [{"type": "ip", "value": v} for v in finding.indicator.ip_addresses] + \
                 [{"type": "domain", "value": v} for v in finding.indicator.domains] + \
                 [{"type": "url", "value": v} for v in finding.indicator.uris]
    data: dict[str, Any] = {
        "alert_id": (finding.name or "").rsplit("/", 1)[-1] or "scc",
        "title": finding.category or "Security Command Center finding",
        "category": "malware" if "malware" in (finding.category or "").lower() else "other",
        "status": "resolved" if state == "INACTIVE" else "new",
        "priority": {"CRITICAL": "critical", "HIGH": "high", "MEDIUM": "medium"}.get(severity_name, "low"),
    }
    if finding.description:
        data["description"] = finding.description
    if indicators:
        data["indicators"] = indicators
    event = {**base, "type": "alert", "data": data}
    mitre = finding.mitre_attack
    if mitre and (mitre.primary_tactic or mitre.primary_techniques):
        block = {}
        if mitre.primary_tactic and mitre.primary_tactic.name in by_tactic:
            block["tactic"] = by_tactic[mitre.primary_tactic.name]
        names = [t.name for t in mitre.primary_techniques if t.name in by_technique]
        if names:
            technique_id = by_technique[names[0]]
            block["technique" if "." not in technique_id else "sub_technique"] = technique_id
            if "." in technique_id:
                block["technique"] = technique_id.split(".")[0]
        if block:
            event["mitre"] = block
    return event


def _state_name(finding: Any) -> str:
    """The state of a finding as the server answered it ("ACTIVE", "INACTIVE"; "" when not told)."""
    state = getattr(finding, "state", None)
    return getattr(state, "name", "") or ""


def _finding_bytes(finding: Any) -> bytes:
    """A finding as JSON (the proto's JSON mapping), for the dead-letter record."""
    try:
        return type(finding).to_json(finding).encode("utf-8")
    except Exception:  # noqa: BLE001 - keep something readable
        return repr(finding).encode("utf-8")


def _cvss_band(score: float) -> str:
    return "critical" if score >= 9 else "high" if score >= 7 else "medium" if score >= 4 else "low" if score > 0 else "none"


#: An OAuth bearer token as an error message may quote it: the `authorization` metadata echoed ("Bearer ...")
#: or a Google access token alone ("ya29." ...). Application Default Credentials obtain these inside
#: google-auth, out of this module's sight, so they cannot be registered for masking as Sentinel's are.
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}|\bya29\.[A-Za-z0-9._-]+")


def _without_tokens(text: str) -> str:
    return _BEARER.sub(lambda m: (m.group(1) or "") + MASK, text)


def _grpc_error(exc: Exception) -> DeliveryError:
    """A google.api_core error as a DeliveryError: retryable by gRPC code, RetryInfo delay kept, an access
    token the message quotes (a proxy or server echoing the request's metadata) masked."""
    from google.api_core import exceptions as gexc
    if not isinstance(exc, gexc.GoogleAPICallError):
        raise exc
    code = exc.grpc_status_code.name if exc.grpc_status_code is not None else str(exc.code)
    retry_after = None
    for detail in getattr(exc, "details", None) or []:
        delay = getattr(detail, "retry_delay", None)
        if delay is not None and hasattr(delay, "seconds"):
            retry_after = delay.seconds + delay.nanos / 1e9
    return DeliveryError(f"SCC {code}: {_without_tokens(str(exc.message))}", retryable=code in RETRYABLE_CODES,
                         retry_after=retry_after, details={"grpc_code": code})


def make_client(*, endpoint: str | None = None, ca_file: str | None = None, credentials: Any = None) -> Any:
    """A SecurityCenterClient (v2, gRPC): Application Default Credentials unless `credentials` is given
    (a google.auth credentials object, or "anonymous" for emulators); `endpoint` to reach a private endpoint,
    `ca_file` to trust its CA (or, without `endpoint`, the CA of a TLS-inspecting proxy before the public one)."""
    import grpc
    from google.cloud import securitycenter_v2
    from google.cloud.securitycenter_v2.services.security_center.transports.grpc import SecurityCenterGrpcTransport
    if credentials == "anonymous":
        from google.auth.credentials import AnonymousCredentials
        credentials = AnonymousCredentials()
    elif isinstance(credentials, str):
        raise ConfigError("credentials must be 'anonymous' or a google.auth credentials object", key="credentials")
    if not endpoint and not ca_file:
        return securitycenter_v2.SecurityCenterClient(credentials=credentials)
    ssl = None
    if ca_file:     # also for the public endpoint (a TLS-inspecting proxy's CA): it used to be ignored there
        try:
            with open(ca_file, "rb") as fh:
                ssl = grpc.ssl_channel_credentials(root_certificates=fh.read())
        except OSError as exc:
            raise ConfigError(f"cannot read the CA file {ca_file!r}: {exc.strerror or exc}", key="ca_file") from None
    host = endpoint or securitycenter_v2.SecurityCenterClient.DEFAULT_ENDPOINT
    transport = SecurityCenterGrpcTransport(host=host, credentials=credentials, ssl_channel_credentials=ssl)
    return securitycenter_v2.SecurityCenterClient(transport=transport)


class SccSink(BatchingSink):
    """WIA events as findings under one SCC source (`organizations/<org>/sources/<id>`, a location)."""

    max_batch_events = BATCH_FINDINGS

    def __init__(self, source: str, *, location: str = "global", resource: str | None = None,
                 client: Any = None, endpoint: str | None = None, ca_file: str | None = None,
                 credentials: Any = None, auth: str = "adc", timeout: float = RPC_TIMEOUT,
                 delivery: DeliveryPolicy | None = None, dead_letter: Any = None, name: str | None = None,
                 **machinery: Any) -> None:
        if not _SOURCE.match(source):
            raise ConfigError("the source is organizations/<numeric org id>/sources/<numeric source id> "
                              "(create one with `gcloud scc sources create` or CreateSource)", key="source")
        if not re.fullmatch(r"[a-z0-9-]+", location):
            raise ConfigError("the location is a region name such as 'global'", key="location")
        super().__init__(name=name or f"scc:{source}/locations/{location}", delivery=delivery,
                         dead_letter=dead_letter, **machinery)
        if resource is not None and not 1 <= len(str(resource)) <= RESOURCE_NAME_MAX:
            raise ConfigError(f"must be a full resource name of 1 to {RESOURCE_NAME_MAX} characters (SCC refuses a "
                              f"finding's resource_name otherwise), got {len(str(resource))}", key="resource")
        # SCC requires a resource_name: an event that names no GCP project is a finding on the source's organization
        resource = resource or organization_resource(source)
        self.source, self.location, self.resource = source, location, resource
        try:
            self.timeout = float(timeout)
        except (TypeError, ValueError):
            raise ConfigError(f"must be a number of seconds, got {timeout!r}", key="timeout") from None
        if not self.timeout > 0:
            raise ConfigError(f"must be a number of seconds > 0, got {timeout!r}", key="timeout")
        self.parent = f"{source}/locations/{location}"
        if auth not in ("adc", "anonymous"):
            raise ConfigError("auth is 'adc' (Application Default Credentials) or 'anonymous' (emulators)", key="auth")
        if credentials is None and auth == "anonymous":
            credentials = "anonymous"
        self._client = client or make_client(endpoint=endpoint, ca_file=ca_file, credentials=credentials)
        self._pool = ThreadPoolExecutor(max_workers=RPC_WORKERS, thread_name_prefix="scc")
        self._known: OrderedDict[str, None] = OrderedDict()     # finding ids written lately (KNOWN_FINDINGS)
        self._known_lock = threading.Lock()
        self._write_window = PermissionWindow(PERMISSION_PROPAGATION_SECONDS)     # PERMISSION_DENIED on writes
        self._list_window = PermissionWindow(PERMISSION_PROPAGATION_SECONDS)     # ListFindings: another permission

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SccSink":
        parts = urlsplit(url)
        source = unquote((parts.netloc + parts.path).strip("/"))
        refuse_repeated_keys(parts.query, f"scc://{source}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        policy = {k: query.pop(k) for k in list(query) if k in DeliveryPolicy.keys()}
        delivery = options.pop("delivery", None)
        if policy:
            delivery = DeliveryPolicy.from_mapping(policy, base=delivery, source="scc URL")
        for key in ("location", "resource", "endpoint", "ca_file", "auth", "timeout"):
            if key in query and key not in options:
                options[key] = query.pop(key)
        if query:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(query))}", key=sorted(query)[0], source="scc URL")
        return cls(source, delivery=delivery, **options)

    def encode(self, event: dict[str, Any]) -> bytes:
        finding_id_for(event)                      # a non-UUID id cannot become a finding id: fails alone
        return json.dumps(to_finding(event, default_resource=self.resource), ensure_ascii=False).encode()

    def post(self, batch: Batch) -> Sequence[Outcome] | None:
        # Findings are written on RPC_WORKERS threads, but the versions of one event (one finding id) one
        # after the other, in the order sent: written at the same time, an older version could land last and
        # SCC keep it, every version reported delivered. After a version to be retried, the later ones wait
        # for that retry (the machinery retries the pending items in their order).
        versions: dict[str, list[int]] = {}
        for index, item in enumerate(batch.items):
            versions.setdefault(finding_id_for(item.event), []).append(index)
        outcomes: list[Outcome | None] = [None] * len(batch.items)

        def write(finding_id: str, indexes: list[int]) -> None:
            held: Outcome | None = None
            for index in indexes:
                if held is not None:
                    # an earlier version is to be retried: written now, this one would be overwritten by it
                    outcomes[index] = Outcome.retry(f"held back until an earlier version of the event is written "
                                                    f"({held.reason})", retry_after=held.retry_after)
                    continue
                outcomes[index] = self._upsert(finding_id, json.loads(batch.items[index].payload))
                if outcomes[index].status == RETRY:
                    held = outcomes[index]

        list(self._pool.map(lambda group: write(*group), versions.items()))
        return [outcome or Outcome.failed("connector bug: no outcome") for outcome in outcomes]

    def _upsert(self, finding_id: str, finding: dict[str, Any]) -> Outcome:
        from google.api_core import exceptions as gexc
        # v2's Finding.state is output only: Create/UpdateFinding ignore it (a new finding is ACTIVE, an
        # updated one keeps its state); SetFindingState is the one way to set it.
        wanted = finding.pop("state", "ACTIVE")
        # "must not be set to a value greater than the current timestamp": an event stamped ahead of
        # SCC's clock (a source's clock skew) is INVALID_ARGUMENT; the event keeps its own in wia_event.
        if parse_iso(finding["event_time"]) > datetime.now(timezone.utc):
            finding["event_time"] = now_iso()
        name = f"{self.parent}/findings/{finding_id}"
        step = "CreateFinding"

        def update() -> Any:
            return self._client.update_finding(request={"finding": {**finding, "name": name}, "update_mask": {
                "paths": list(UPDATED_FIELDS)}}, retry=None, timeout=self.timeout)

        try:
            written = None
            if self._written_before(finding_id):
                step = "UpdateFinding"
                try:
                    written = update()
                except gexc.NotFound:       # not expected (no DeleteFinding): create it after all
                    step = "CreateFinding"
            if written is None:
                try:
                    written = self._client.create_finding(request={"parent": self.parent, "finding_id": finding_id,
                                                                   "finding": finding}, retry=None, timeout=self.timeout)
                except gexc.AlreadyExists:
                    step = "UpdateFinding"
                    written = update()
            self._remember_written(finding_id)
            with self._known_lock:
                self._write_window.accepted()
            if _state_name(written) != wanted:
                step = f"SetFindingState {wanted}"
                self._client.set_finding_state(request={"name": name, "state": wanted}, retry=None,
                                               timeout=self.timeout)
            return Outcome.delivered()
        except gexc.GoogleAPICallError as exc:
            error = _grpc_error(exc)
            if isinstance(exc, gexc.PermissionDenied) and step in ("CreateFinding", "UpdateFinding"):
                error = self._denied(error, step)
            if isinstance(exc, gexc.ResourceExhausted) and error.retry_after is None:
                error = self._exhausted(error)
            if step.startswith("SetFindingState"):
                # the finding is written but shows the wrong state: a retry updates it and sets the state again
                error = DeliveryError(f"finding {name} written, but its state not set to {wanted} "
                                      f"({step} needs securitycenter.findings.setState): {error.reason}",
                                      retryable=error.retryable, retry_after=error.retry_after, details=error.details)
            return Outcome.from_error(error)
        except Exception as exc:  # noqa: BLE001 - one finding's failure must not take its batch-mates' outcomes
            from ..delivery.batching import classify_exception
            return Outcome.from_error(classify_exception(exc))

    def _denied(self, error: DeliveryError, step: str) -> DeliveryError:
        """PERMISSION_DENIED on CreateFinding/UpdateFinding is retried while a new role binding may still be
        propagating (PERMISSION_PROPAGATION_SECONDS from the first one with no write accepted since), the reason
        naming the permission; it used to be dead-lettered at once, so the first minutes of events after a
        deployment (the function's role bound with it) went to the dead letter."""
        permission = f"securitycenter.findings.{'create' if step == 'CreateFinding' else 'update'}"
        with self._known_lock:      # writes run on the pool's threads
            return self._write_window.refused(error, self._clock(), need=f"{step} needs {permission} on {self.source}",
                                              grant="a role binding", propagation=PROPAGATION)

    def _exhausted(self, error: DeliveryError) -> DeliveryError:
        """RESOURCE_EXHAUSTED with no RetryInfo: its retries wait at least `quota_backoff()` each, so they reach past
        the quota's minute within the delivery budget, and when the budget is spent the dead letter says why."""
        delay = self.quota_backoff()
        return DeliveryError(f"{error.reason} (a quota: SCC allows {1000:,} writes a minute per project and 500 MB of "
                             f"findings a day; no retry delay was given, so retries wait {delay:.1f}s each, spread over "
                             "the quota's minute within the delivery budget)", retryable=True, retry_after=delay,
                             details=error.details)

    def quota_backoff(self) -> float:
        """Seconds between tries of a write refused for a quota without a delay: the retries of one batch spread
        over QUOTA_WINDOW_SECONDS (the last one a minute after the first), or over 9/10 of the delivery policy's
        `max_elapsed` when that is shorter (leaving the calls their time), never below `initial_backoff`."""
        retries = max(1, self.policy.max_attempts - 1)
        span = QUOTA_WINDOW_SECONDS if not self.policy.max_elapsed else min(QUOTA_WINDOW_SECONDS,
                                                                            0.9 * self.policy.max_elapsed)
        return max(self.policy.initial_backoff, span / retries)

    def _written_before(self, finding_id: str) -> bool:
        with self._known_lock:
            return finding_id in self._known

    def _remember_written(self, finding_id: str) -> None:
        with self._known_lock:
            self._known[finding_id] = None
            self._known.move_to_end(finding_id)
            if len(self._known) > KNOWN_FINDINGS:
                self._known.popitem(last=False)

    def list_events(self, *, filter: str = "", page_size: int = 100, all_sources: bool = False) -> Iterator[dict[str, Any]]:
        """The findings of this source (or every source of the organization) as WIA events, following
        page tokens. `filter` is SCC's filter syntax, e.g. `state="ACTIVE" AND severity="HIGH"`. A finding
        that cannot be read raises ParseError naming it (use `items()` to go on past it and dead-letter it)."""
        for item in self.items(filter=filter, page_size=page_size, all_sources=all_sources):
            if item.error is not None:
                raise item.error
            yield item.value

    def items(self, *, filter: str = "", page_size: int = 100, all_sources: bool = False) -> Iterator[Item]:
        """`list_events` as reader Items, numbered from 1 in ListFindings order: the WIA event of each
        finding, or an error naming the finding (number, name, JSON path) and why, which the Forwarder
        dead-letters. A failed page is a DeliveryError naming how many findings came before it."""
        from google.api_core import exceptions as gexc
        parent = f"{self.source.rsplit('/', 1)[0]}/-/locations/{self.location}" if all_sources else self.parent
        where = f"{self.name}/ListFindings"
        count = 0
        attempt, started = 0, self._clock()
        while True:
            attempt += 1
            try:
                pager = self._client.list_findings(request={"parent": parent, "filter": filter, "page_size": page_size},
                                                   retry=None, timeout=self.timeout)
                for result in pager:
                    count += 1
                    finding = result.finding
                    try:
                        event = finding_to_event(finding)
                    except (WiaError, ValueError, TypeError, KeyError, AttributeError) as exc:
                        yield Item(where, count, error=ParseError(f"finding {count} ({finding.name or 'no name'}): "
                                                                  f"{exc}", source=where, line=count),
                                   raw=_finding_bytes(finding))
                        continue
                    yield Item(where, count, value=event)
            except gexc.GoogleAPICallError as exc:
                error = _grpc_error(exc)
                if isinstance(exc, gexc.PermissionDenied):
                    error = self._list_denied(error, parent)
                    # listed again from its start only while nothing was handed over (no finding twice)
                    delay = self.policy.delay(attempt, error.retry_after)
                    budget = self.policy.max_elapsed - (self._clock() - started) if self.policy.max_elapsed else delay
                    if error.retryable and count == 0 and attempt < self.policy.max_attempts and delay <= budget:
                        self._sleep(delay)
                        continue
                raise DeliveryError(f"ListFindings failed after {count} finding(s): {error.reason}", sink=self.name,
                                    retryable=error.retryable, retry_after=error.retry_after) from None
            self._list_window.accepted()
            return

    def _list_denied(self, error: DeliveryError, parent: str) -> DeliveryError:
        """PERMISSION_DENIED on ListFindings, retryable while a new role binding may still be propagating
        (PERMISSION_PROPAGATION_SECONDS from the first one with no listing accepted since), as the writes' is."""
        return self._list_window.refused(error, self._clock(), need=f"ListFindings needs securitycenter.findings.list on {parent}",
                                         grant="a role binding", propagation=PROPAGATION,
                                         afterwards="grant the role, then list again")

    def set_state(self, event_id: str, state: str) -> None:
        """Mark the finding of an event ACTIVE or INACTIVE (SetFindingState)."""
        self._client.set_finding_state(request={
            "name": f"{self.parent}/findings/{finding_id_for({'id': event_id})}", "state": state},
            retry=None, timeout=self.timeout)

    def close_transport(self) -> None:
        self._pool.shutdown(wait=True)
        transport = getattr(self._client, "transport", None)
        if transport is not None:
            transport.close()
