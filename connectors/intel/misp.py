"""MISP (pymisp): pull events/attributes as WIA threat_intel events; push threat intel and incident IOCs.

Pull: `MispSource(url, key).events(**filters)` / `.attributes(**filters)` page through
`/events/restSearch` and `/attributes/restSearch` (pymisp `search`, `limit`/`page`) and yield one
threat_intel event per MISP event. Push: `MispSink` (`misp+https://host`, key from `MISP_KEY` or
`key=`) adds one MISP event per WIA event through pymisp `add_event`, idempotently: the MISP event
uuid is the WIA event id, an existing one (HEAD /events/view/{uuid}) counts as a duplicate.
The mapping tables below are the contract; docs/connectors/intel.md shows them as tables.
API: https://www.misp-project.org/openapi/ ; taxonomies: https://www.misp-project.org/taxonomies.html
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from wia_security import jsonio
from wia_security.attack import table as attack_table
from wia_security.connectors.base import Rejected
from wia_security.connectors.delivery import Batch, BatchingSink, DeliveryPolicy, Outcome
from wia_security.errors import ConfigError, ConversionError, DeliveryError
from wia_security.outputs import replace_durably
from wia_security.redact import redact, remember
from wia_security.timeutil import parse_iso, to_iso

from .records import RecordRejecter, key_fingerprint, over_budget, refuse_user_info, server_key

#: Namespace of the deterministic WIA ids given to pulled MISP events (uuid5 of url, uuid and version).
WIA_MISP_NAMESPACE = uuid.UUID("5b4f2a4e-1f0e-4b7a-9a53-7f1f2f6b1c01")
DEFAULT_PAGE_SIZE = 100
#: Bounds on one MISP answer (decoded bytes, and seconds from sending the request to its last byte): a page
#: of 100 full events can be large, but a server or proxy that trickles or sends a gzip bomb must not hold a
#: pull for hours or fill memory. pymisp reads answers whole; `_BoundedAdapter` reads them within these.
MAX_ANSWER_BYTES = 256 * 1024 * 1024
ANSWER_SECONDS = 300.0
#: Seconds a record's `timestamp` may be ahead of this machine's clock and still move an incremental pull's
#: checkpoint (clocks differ a little; a cursor in the far future would skip everything until then).
CURSOR_FUTURE_SLACK = 86400

# -- MISP -> WIA -----------------------------------------------------------------------------------------
#: MISP attribute type -> WIA threat-intel indicator type (composite types keep their first part).
MISP_TO_WIA_TYPE = {
    "ip-src": "ip", "ip-dst": "ip", "ip-src|port": "ip", "ip-dst|port": "ip",
    "domain": "domain", "hostname": "domain", "domain|ip": "domain", "hostname|port": "domain",
    "url": "url",
    "md5": "file_hash_md5", "sha1": "file_hash_sha1", "sha256": "file_hash_sha256",
    "filename|md5": "file_hash_md5", "filename|sha1": "file_hash_sha1", "filename|sha256": "file_hash_sha256",
    "email": "email", "email-src": "email", "email-dst": "email",
    "mutex": "mutex", "regkey": "registry", "regkey|value": "registry",
}
#: `misp:confidence-level` taxonomy -> 0..1 (attribute tag first, then event tag).
CONFIDENCE_LEVELS = {"completely-confident": 1.0, "usually-confident": 0.75, "fairly-confident": 0.5,
                     "rarely-confident": 0.25, "unconfident": 0.0}
#: `admiralty-scale:information-credibility` 1 (confirmed) .. 5 (improbable); 6 = cannot be judged.
ADMIRALTY_CREDIBILITY = {"1": 1.0, "2": 0.8, "3": 0.6, "4": 0.4, "5": 0.2}
#: Without a confidence tag: an IDS-flagged attribute is trusted more than context-only data.
CONFIDENCE_TO_IDS, CONFIDENCE_CONTEXT = 0.8, 0.5
#: MISP threat_level_id -> WIA severity (1 High, 2 Medium, 3 Low, 4 Undefined).
THREAT_LEVEL_SEVERITY = {"1": 8.0, "2": 5.0, "3": 3.0, "4": 1.0}
#: MISP galaxy type -> WIA threat_type, in priority order; anything else -> "campaign".
GALAXY_THREAT_TYPE = (("ransomware", "ransomware"), ("threat-actor", "apt"), ("mitre-intrusion-set", "apt"),
                      ("botnet", "botnet"), ("malpedia", "malware"), ("mitre-malware", "malware"),
                      ("mitre-tool", "malware"), ("tool", "malware"), ("rat", "malware"), ("stealer", "malware"),
                      ("banker", "malware"))
_ATTACK_ID = re.compile(r"\bT\d{4}(?:\.\d{3})?\b")
#: A reference link the standard's `uri` format accepts (no spaces or control characters).
_URI = re.compile(r"https?://[^\s\x00-\x1f\x7f]+")

# -- WIA -> MISP -----------------------------------------------------------------------------------------
#: WIA indicator / ioc type -> (MISP type, category). "hash" is resolved by length.
WIA_TO_MISP_TYPE = {
    "ip": ("ip-dst", "Network activity"), "domain": ("domain", "Network activity"),
    "url": ("url", "Network activity"), "email": ("email-src", "Payload delivery"),
    "file_hash_md5": ("md5", "Payload delivery"), "file_hash_sha1": ("sha1", "Payload delivery"),
    "file_hash_sha256": ("sha256", "Payload delivery"), "mutex": ("mutex", "Artifacts dropped"),
    "registry": ("regkey", "Persistence mechanism"),
}
HASH_BY_LENGTH = {32: "file_hash_md5", 40: "file_hash_sha1", 64: "file_hash_sha256"}
#: distribution 0 = "Your organisation only": sharing wider is a deliberate setting, not a default.
DEFAULT_DISTRIBUTION = 0
#: TLP markings (tags, any case) whose events may not leave the organisation (TLP 2.0: RED is for the named
#: recipients only, AMBER+STRICT for the recipient's organisation only): pushed only at distribution 0.
ORG_ONLY_TLP = frozenset({"tlp:red", "tlp:amber+strict"})
#: analysis: 0 initial, 1 ongoing, 2 completed.
ANALYSIS_FOR_STATUS = {"active": 1, "inactive": 2, "unknown": 0}


def _epoch_seconds(value: Any) -> int | None:
    """A MISP `timestamp` (epoch seconds, sent as a string or a number) as an int; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        return int(value)
    return None


def _epoch_iso(value: Any) -> str | None:
    try:
        return to_iso(datetime.fromtimestamp(int(value), tz=timezone.utc))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _any_iso(value: Any) -> str | None:
    """MISP dates come as epoch strings, ISO date-times or plain dates."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return _epoch_iso(value)
    try:
        if isinstance(value, str) and len(value) == 10:
            return to_iso(datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=timezone.utc))
        return to_iso(parse_iso(str(value)))
    except ValueError:
        return None


def _deleted(obj: dict[str, Any]) -> bool:
    """MISP's soft-delete flag (true, 1, "1"; false, 0, "0" or absent when live)."""
    return obj.get("deleted") in (True, 1, "1", "true", "True")


def _tag_names(obj: dict[str, Any]) -> list[str]:
    return [t["name"] for t in _dicts(obj.get("Tag")) if isinstance(t.get("name"), str)]


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of a list member (MISP's Attribute, Object, Galaxy, Tag...); anything else is none."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    """A list of names, also when MISP sent a single string."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(v) for v in value if isinstance(v, (str, int, float)) and str(v).strip()] if isinstance(value, list) else []


def confidence_from_tags(tags: Sequence[str]) -> float | None:
    for tag in tags:
        m = re.fullmatch(r'misp:confidence-level="([^"]+)"', tag)
        if m and m[1] in CONFIDENCE_LEVELS:
            return CONFIDENCE_LEVELS[m[1]]
        m = re.fullmatch(r'admiralty-scale:information-credibility="(\d)"', tag)
        if m and m[1] in ADMIRALTY_CREDIBILITY:
            return ADMIRALTY_CREDIBILITY[m[1]]
    return None


def _galaxy_clusters(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(galaxy type, cluster) pairs from the event's Galaxy list and from misp-galaxy tags."""
    out = []
    for galaxy in _dicts(event.get("Galaxy")):
        for cluster in _dicts(galaxy.get("GalaxyCluster")):
            out.append((str(galaxy.get("type") or cluster.get("type") or ""), cluster))
    seen = {c.get("tag_name") for _, c in out if isinstance(c.get("tag_name"), str)}
    for tag in _tag_names(event):
        m = re.fullmatch(r'misp-galaxy:([\w-]+)="(.*)"', tag)
        if m and tag not in seen:
            out.append((m[1], {"value": m[2], "tag_name": tag}))
    return out


def attack_ids(cluster: dict[str, Any]) -> list[str]:
    """ATT&CK ids a cluster carries (meta.external_id, else its value/tag), resolved against v18.1."""
    meta = cluster.get("meta") if isinstance(cluster.get("meta"), dict) else {}
    candidates = _strings(meta.get("external_id"))
    if not candidates:
        candidates = _ATTACK_ID.findall(f"{cluster.get('value', '')} {cluster.get('tag_name', '')}")
    attack = attack_table()
    out = []
    for raw in candidates:
        tech = attack.technique(str(raw))
        if tech is not None and tech.status == "revoked":
            tech = attack.replacement(tech.id)
        if tech is not None and tech.id not in out:
            out.append(tech.id)
    return out


def _ttp(technique_id: str) -> dict[str, str]:
    attack = attack_table()
    tech = attack.technique(technique_id)
    ttp = {"technique": technique_id}
    if tech is not None:
        ttp["technique_name"] = tech.name
        if len(tech.tactic_ids) >= 1:
            order = {t.id: i for i, t in enumerate(attack.tactics)}
            tactic = attack.tactic(min(tech.tactic_ids, key=order.__getitem__))
            if tactic is not None:
                ttp.update(tactic=tactic.id, tactic_name=tactic.name)
    return ttp


def attribute_to_indicators(attr: dict[str, Any], event_tags: Sequence[str]) -> list[dict[str, Any]]:
    """The indicators of one attribute: one, or two for a `domain|ip` (the domain and the address it resolved to,
    both indicators; the other composites' second parts, a port, a file name, a registry value, are not); none
    when its type is not mapped or its value is not a string."""
    indicator = attribute_to_indicator(attr, event_tags)
    if indicator is None:
        return []
    if attr.get("type") != "domain|ip":
        return [indicator]
    address = str(attr["value"]).partition("|")[2].strip()
    return [indicator, {**indicator, "type": "ip", "value": address}] if address else [indicator]


def attribute_to_indicator(attr: dict[str, Any], event_tags: Sequence[str]) -> dict[str, Any] | None:
    wia_type = MISP_TO_WIA_TYPE.get(str(attr.get("type")))
    if wia_type is None:
        return None
    value = attr.get("value")
    if not isinstance(value, str):
        return None
    if "|" in str(attr.get("type")):
        first, _, second = value.partition("|")
        value = second if str(attr["type"]).startswith("filename|") else first
    if not value:
        return None
    confidence = confidence_from_tags(_tag_names(attr))
    scores = _dicts(attr.get("decay_score"))
    if confidence is None and scores:
        score = scores[0].get("score")
        if isinstance(score, (int, float)) and not isinstance(score, bool) and 0 <= score <= 100:
            confidence = round(float(score) / 100, 3)        # MISP decay scores are 0-100; others are not one
    if confidence is None:
        confidence = confidence_from_tags(event_tags)
    if confidence is None:
        confidence = CONFIDENCE_TO_IDS if attr.get("to_ids") in (True, 1, "1") else CONFIDENCE_CONTEXT
    indicator: dict[str, Any] = {"type": wia_type, "value": value, "confidence": confidence}
    context = {k: str(v)[:1000] for k, v in (("description", attr.get("comment")), ("kill_chain_phase", attr.get("category")))
               if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).strip()}
    if context:
        indicator["context"] = context
    for key in ("first_seen", "last_seen"):
        if iso := _any_iso(attr.get(key)):
            indicator[key] = iso
    return indicator


def event_to_wia(event: dict[str, Any], *, base_url: str = "", attributes: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One MISP event (the inner "Event" object) as a WIA threat_intel event dict (not yet validated)."""
    ev = event.get("Event", event) if isinstance(event, dict) else event
    if not isinstance(ev, dict):
        raise ConversionError("misp", f"a MISP event is a JSON object, not {type(ev).__name__}",
                              path="/Event" if isinstance(event, dict) else "/")
    tags = _tag_names(ev)
    raw_attrs = list(attributes) if attributes is not None else \
        (ev.get("Attribute") if isinstance(ev.get("Attribute"), list) else
         [] if ev.get("Attribute") in (None, {}) else [ev["Attribute"]])      # a lone non-list: one unmapped
    deleted = 0
    for obj in _dicts(ev.get("Object")):
        inner = obj.get("Attribute") if isinstance(obj.get("Attribute"), list) else []
        if _deleted(obj):                     # a soft-deleted object takes its attributes with it
            deleted += len(inner)
        else:
            raw_attrs += inner
    attrs = [a for a in raw_attrs if isinstance(a, dict)]
    # entries that are not objects are counted with the unmapped ones (meta.custom.misp), never dropped unseen
    indicators, references, unmapped = [], [], len(raw_attrs) - len(attrs)
    # Soft-deleted attributes (MISP sends them when asked with `deleted`, and in some sync exports) are
    # withdrawn intelligence: never an indicator or reference, counted in meta.custom.misp.deleted_attributes.
    deleted += sum(1 for a in attrs if _deleted(a))
    attrs = [a for a in attrs if not _deleted(a)]
    seen: set[tuple[str, str]] = set()        # (type, value) already taken: a set, as events hold 100,000s
    for attr in attrs:
        link = attr.get("value")
        if attr.get("type") == "link" and isinstance(link, str) and _URI.fullmatch(link):
            references.append(link)
            continue
        found = attribute_to_indicators(attr, tags)
        unmapped += not found
        for ind in found:
            if (ind["type"], ind["value"]) not in seen:
                seen.add((ind["type"], ind["value"]))
                indicators.append(ind)
    clusters = _galaxy_clusters(ev)
    threat_type, family, aliases, sectors, countries, ttps = "campaign", None, [], [], [], []
    for gtype, _ in clusters:
        for key, wia in GALAXY_THREAT_TYPE:
            if gtype == key:
                threat_type = wia if threat_type == "campaign" else threat_type
    for gtype, cluster in clusters:
        if gtype in ("malpedia", "mitre-malware", "ransomware", "tool", "mitre-tool", "rat", "botnet", "stealer", "banker") \
                and not family and isinstance(cluster.get("value"), str) and cluster["value"].strip():
            family = cluster["value"]
        if gtype in ("threat-actor", "mitre-intrusion-set"):
            meta = cluster.get("meta") if isinstance(cluster.get("meta"), dict) else {}
            aliases.extend(_strings(meta.get("synonyms")))
        if gtype == "sector" and isinstance(cluster.get("value"), str):
            sectors.append(cluster["value"])
        if gtype in ("country", "target-information") and isinstance(cluster.get("value"), str):
            countries.append(cluster["value"])
        if gtype.startswith("mitre-") and "attack-pattern" in gtype or gtype == "mitre-attack-pattern":
            for tid in attack_ids(cluster):
                if not any(t["technique"] == tid for t in ttps):
                    ttps.append(_ttp(tid))
    if any("phishing" in t.lower() for t in tags) and threat_type == "campaign":
        threat_type = "phishing"
    times = [i[k] for i in indicators for k in ("first_seen", "last_seen") if k in i]
    version = ev.get("timestamp")
    event_time = _epoch_iso(version) or _any_iso(ev.get("date")) or to_iso(datetime.now(timezone.utc))
    if attributes is not None:
        # A group from an attribute search (one page's attributes of one event): its version and time come
        # from the attributes it holds, so a re-read group keeps its id and a group with a new or edited
        # attribute is another event (the event summary's timestamp, when MISP sends one, is not enough).
        stamps = sorted(f"{a.get('uuid')}@{a.get('timestamp')}" for a in attrs)
        version = "attributes:" + hashlib.sha256("\n".join(stamps).encode()).hexdigest()
        newest = max((_epoch_seconds(a.get("timestamp")) or 0 for a in attrs), default=0)
        event_time = _epoch_iso(newest) if newest else event_time
    data: dict[str, Any] = {
        "threat_type": threat_type, "threat_name": str(ev.get("info") or f"MISP event {ev.get('uuid')}")[:1000],
        "status": "active", "report_id": f"misp:{ev.get('uuid')}",
    }
    if family:
        data["threat_family"] = family
    if aliases:
        data["aliases"] = sorted(set(aliases))
    data["first_seen"] = min(times) if times else (_any_iso(ev.get("date")) or event_time)
    data["last_seen"] = max(times) if times else event_time
    if indicators:
        data["indicators"] = indicators
    if ttps:
        data["ttps"] = ttps
    if sectors:
        data["target_sectors"] = sectors
    if countries:
        data["target_countries"] = countries
    if references:
        data["references"] = references
    host = urlsplit(base_url).netloc or "misp"
    wia: dict[str, Any] = {
        "$schema": "https://wia.live/security/v1/schema.json", "version": "1.0.0",
        "id": str(uuid.uuid5(WIA_MISP_NAMESPACE, f"{host}|{ev.get('uuid')}|{version}")),
        "type": "threat_intel", "timestamp": event_time,
        "severity": THREAT_LEVEL_SEVERITY.get(str(ev.get("threat_level_id")), 5.0),
        "source": {"type": "custom", "name": "MISP", "vendor": "MISP Project"},
        "data": data,
    }
    if ttps:
        wia["mitre"] = {k: ttps[0][k] for k in ("tactic", "tactic_name", "technique", "technique_name") if k in ttps[0]}
        if "." in wia["mitre"]["technique"]:
            sub = wia["mitre"]["technique"]
            parent = attack_table().technique(sub.split(".")[0])
            wia["mitre"].update(sub_technique=sub, sub_technique_name=wia["mitre"].get("technique_name", ""),
                                technique=sub.split(".")[0])
            if parent is not None:
                wia["mitre"]["technique_name"] = parent.name
    plain_tags = [t for t in tags if not t.startswith("misp-galaxy:")]
    meta: dict[str, Any] = {"custom": {"misp": {k: v for k, v in {
        "event_uuid": ev.get("uuid"), "event_id": ev.get("id"),
        "url": f"{base_url.rstrip('/')}/events/view/{ev.get('id')}" if base_url and ev.get("id") else None,
        "org": ev["Orgc"].get("name") if isinstance(ev.get("Orgc"), dict) else None,
        "unmapped_attributes": unmapped or None, "deleted_attributes": deleted or None}.items() if v is not None}}}
    if plain_tags:
        meta["tags"] = plain_tags
    if (conf := confidence_from_tags(tags)) is not None:
        meta["confidence"] = conf
    wia["meta"] = meta
    return wia


# -- WIA -> MISP -----------------------------------------------------------------------------------------
def threat_level(severity: Any) -> int:
    """WIA severity -> MISP threat_level_id: >= 7 High (1), >= 4 Medium (2), >= 1 Low (3), else Undefined (4)."""
    sev = float(severity) if isinstance(severity, (int, float)) and not isinstance(severity, bool) else 0.0
    return 1 if sev >= 7 else 2 if sev >= 4 else 3 if sev >= 1 else 4


#: Hex digits of each hash type pushed (MISP's AttributeValidationTool::HASH_HEX_LENGTH).
MISP_HASH_LENGTH = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
#: An untyped `hash` IOC of a length no WIA file_hash type has goes as the SHA-2 hash of that length.
OTHER_HASH_BY_LENGTH = {56: "sha224", 96: "sha384", 128: "sha512"}
_MISP_DOMAIN = re.compile(r"[A-Z0-9.\-_]+\.[A-Z0-9\-]{2,}", re.IGNORECASE)
_MISP_EMAIL = re.compile(r"^.[^\s]*@.*\..*$")          # MISP's own pattern (partial addresses allowed)
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")


def misp_value_problem(misp_type: str, value: str) -> str | None:
    """Why MISP would refuse `value` for `misp_type`, or None. MISP saves an event and then each attribute, and
    drops one that fails its validation with only a log entry (AttributeValidationTool::validate, after
    modifyBeforeValidation): the event is created without it and the answer is a success."""
    if not value.strip():
        return "the value is empty"
    if misp_type in MISP_HASH_LENGTH:
        if len(value) != MISP_HASH_LENGTH[misp_type] or not _HEX_DIGITS.fullmatch(value):
            return f"{misp_type} is {MISP_HASH_LENGTH[misp_type]} hexadecimal digits, not {len(value)} characters"
        return None
    if misp_type == "ip-dst":
        return None if _misp_ip(value) else "not an IP address or CIDR range MISP reads"
    if misp_type == "domain":
        return None if _MISP_DOMAIN.fullmatch(misp_stored_value("domain", value)) else \
            "not a domain name MISP reads (labels, then a dot and a top-level name of 2 or more letters, digits or dashes)"
    if misp_type == "email-src":
        return None if _MISP_EMAIL.match(value.lower()) else "not an e-mail address (name@domain.tld)"
    if misp_type == "link":
        parts = urlsplit(value) if value.isascii() and value.isprintable() and " " not in value else None
        return None if parts and parts.scheme and (parts.netloc or parts.scheme not in ("http", "https")) \
            else "not an absolute URL MISP reads (ASCII, a scheme, a host)"
    if misp_type in ("url", "regkey") and "\n" in value:
        return "MISP takes no line break in this type"
    return None



def misp_stored_value(misp_type: str, value: str) -> str:
    """`value` as MISP stores it (AttributeValidationTool::modifyBeforeValidation, for the types pushed): hashes and
    e-mail addresses lower case, a domain lower case without end dots (in punycode when only that reads), an IPv6
    address compressed, a /32 or /128 range as its address. Sent so, two spellings of one value are one attribute:
    MISP drops the second ("A similar attribute already exists for this event")."""
    import ipaddress
    if misp_type in MISP_HASH_LENGTH or misp_type == "email-src":
        return value.lower()
    if misp_type == "domain":
        name = value.lower().strip(".")
        if not _MISP_DOMAIN.fullmatch(name):
            try:
                name = name.encode("idna").decode("ascii")
            except UnicodeError:
                pass
        return name
    if misp_type == "ip-dst":
        address, slash, prefix = value.partition("/")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return value                        # refused by misp_value_problem
        if "%" in address:
            return value                        # a zone: refused by misp_value_problem
        text = str(ip) if ip.version == 6 else address
        return text if not slash or prefix == str(ip.max_prefixlen) else f"{text}/{prefix}"
    return value


def _misp_ip(value: str) -> bool:
    """An address PHP's FILTER_VALIDATE_IP takes (no zone, no leading zeros), or one with a /prefix in range."""
    import ipaddress
    address, slash, prefix = value.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if "%" in address:
        return False
    return not slash or (prefix.isascii() and prefix.isdigit() and int(prefix) <= ip.max_prefixlen)


def _attribute(event_id: str, wia_type: str, value: str, comment: str | None = None,
               first_seen: str | None = None, last_seen: str | None = None, to_ids: bool = True) -> dict[str, Any] | str:
    """The MISP attribute for one indicator or IOC, or why MISP cannot store it."""
    if wia_type == "hash" and len(value) in OTHER_HASH_BY_LENGTH:
        misp_type, category = OTHER_HASH_BY_LENGTH[len(value)], "Payload delivery"
    else:
        if wia_type == "hash":
            wia_type = HASH_BY_LENGTH.get(len(value), "")
            if not wia_type:
                return f"a hash of {len(value)} characters is none of md5, sha1, sha224, sha256, sha384, sha512"
        if wia_type not in WIA_TO_MISP_TYPE:
            return f"type {wia_type!r} has no MISP attribute type"
        misp_type, category = WIA_TO_MISP_TYPE[wia_type]
    value = misp_stored_value(misp_type, value)
    if problem := misp_value_problem(misp_type, value):
        return f"{misp_type}: {problem}"
    attr: dict[str, Any] = {"uuid": str(uuid.uuid5(uuid.UUID(event_id), f"{misp_type}|{value}")), "type": misp_type,
                            "category": category, "value": value, "to_ids": to_ids}
    if comment:
        attr["comment"] = comment[:1000]
    for key, val in (("first_seen", first_seen), ("last_seen", last_seen)):
        if val:
            attr[key] = val
    return attr


def galaxy_tag(technique_id: str) -> str | None:
    tech = attack_table().technique(technique_id)
    return f'misp-galaxy:mitre-attack-pattern="{tech.name} - {tech.id}"' if tech else None


def misp_attributes(event: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The MISP attributes of a threat_intel or incident event (indicators or IOCs, then references as links), each
    once, and what MISP cannot store, each as "<WIA path> (<type> <value>): why"."""
    eid, data = str(event["id"]), event.get("data") or {}
    attributes: dict[str, dict[str, Any]] = {}          # by uuid: one indicator listed twice is one attribute
    left_out: list[str] = []
    key = "indicators" if event.get("type") == "threat_intel" else "iocs"
    for n, item in enumerate(data.get(key) or []):
        ctx = item.get("context") if isinstance(item.get("context"), dict) else {}
        comment = ctx.get("description") if key == "indicators" else item.get("description")
        value = str(item.get("value", ""))
        attr = _attribute(eid, item.get("type", ""), value, comment, item.get("first_seen"),
                          item.get("last_seen") if key == "indicators" else None, to_ids=_for_ids(event, item))
        if isinstance(attr, str):
            left_out.append(f"/data/{key}/{n} ({item.get('type')} {value[:80]!r}): {attr}")
        else:
            attributes.setdefault(attr["uuid"], attr)
    for n, ref in enumerate(data.get("references") or [] if key == "indicators" else []):
        if problem := misp_value_problem("link", str(ref)):
            left_out.append(f"/data/references/{n} ({str(ref)[:80]!r}): link: {problem}")
            continue
        link = {"uuid": str(uuid.uuid5(uuid.UUID(eid), f"link|{ref}")), "type": "link",
                "category": "External analysis", "value": ref, "to_ids": False}
        attributes.setdefault(link["uuid"], link)
    return list(attributes.values()), left_out


def _for_ids(event: dict[str, Any], item: dict[str, Any]) -> bool:
    """Whether an indicator goes to MISP with `to_ids` (MISP exports those as IDS rules and blocklists): not one of
    intelligence marked inactive, nor one whose confidence is at most CONFIDENCE_CONTEXT (what the pull gives an
    attribute without to_ids), so that a pushed and pulled indicator keeps its flag."""
    if event.get("type") == "threat_intel" and (event.get("data") or {}).get("status") == "inactive":
        return False
    confidence = item.get("confidence")
    return not (isinstance(confidence, (int, float)) and not isinstance(confidence, bool)
                and confidence <= CONFIDENCE_CONTEXT)


def wia_to_misp(event: dict[str, Any], *, distribution: int = DEFAULT_DISTRIBUTION,
                extra_tags: Sequence[str] = ()) -> dict[str, Any]:
    """A WIA threat_intel or incident event as a MISP event body for /events/add (`{"Event": {...}}`).
    ValueError for other types or when there is nothing to share."""
    etype, data = event.get("type"), event.get("data") or {}
    if etype not in ("threat_intel", "incident"):
        raise ValueError(f"MISP push takes threat_intel and incident events, not {etype!r}")
    attributes, left_out = misp_attributes(event)
    techniques: list[str] = []
    if etype == "threat_intel":
        info = data.get("threat_name") or "WIA threat intelligence"
        if data.get("threat_family") and data["threat_family"] not in info:
            info = f"{info} ({data['threat_family']})"
        techniques += [t["technique"] for t in data.get("ttps") or [] if isinstance(t, dict) and t.get("technique")]
        analysis = ANALYSIS_FOR_STATUS.get(str(data.get("status")), 0)
        first = data.get("first_seen")
    else:
        info = f"{data.get('incident_id', '')} {data.get('title', '')}".strip() or "WIA incident"
        analysis = 2 if data.get("status") == "closed" else 1
        first = data.get("created_at")
    mitre = event.get("mitre") or {}
    if mitre.get("sub_technique") or mitre.get("technique"):
        techniques.insert(0, mitre.get("sub_technique") or mitre["technique"])
    if not attributes:
        raise ValueError("the event has no indicator MISP can store" + (": " + "; ".join(left_out[:20]) if left_out else ""))
    tags = [f'wia-security:event-type="{etype}"', *extra_tags, *((event.get("meta") or {}).get("tags") or [])]
    restricted = next((t for t in tags if isinstance(t, str) and t.strip().lower() in ORG_ONLY_TLP), None)
    if restricted is not None and distribution != 0:
        raise ValueError(f"the event is marked {restricted}: MISP distribution {distribution} would share it beyond "
                         "your organisation; push it with distribution=0")
    if etype == "incident":
        tags += [f'wia-security:incident-category="{data.get("category")}"']
    tags += [t for t in (galaxy_tag(tid) for tid in dict.fromkeys(techniques)) if t]
    when = first or event["timestamp"]
    body = {"uuid": str(event["id"]), "info": info[:1000], "date": parse_iso(when).date().isoformat(),
            "threat_level_id": str(threat_level(event.get("severity"))), "analysis": str(analysis),
            "distribution": str(distribution), "published": False,
            "Attribute": attributes, "Tag": [{"name": t} for t in dict.fromkeys(tags)]}
    return {"Event": body}


# -- client plumbing -------------------------------------------------------------------------------------
def _bounded_adapter(max_bytes: int, seconds: float) -> Any:
    """A requests transport adapter that reads each answer within `max_bytes` (decoded) and `seconds` counted
    from sending the request. pymisp sends through its own requests.Session without `stream`, so requests
    would read any body whole, bounding only each socket read; the adapter reads it first (read_body) and
    hands requests the body already read. Over the bytes: a permanent DeliveryError; over the time: a
    retryable one; both name the path (never the key, which travels in a header)."""
    from requests.adapters import HTTPAdapter

    from ..delivery.http_body import read_body

    class _BoundedAdapter(HTTPAdapter):
        def send(self, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
                 cert: Any = None, proxies: Any = None) -> Any:
            started = time.monotonic()
            response = super().send(request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
            read_body(response, max_bytes=max_bytes, seconds=seconds, started=started,
                      what=f"MISP {urlsplit(request.url).path}", sink="misp")
            return response

    return _BoundedAdapter(max_retries=0)


def _client(url: str, key: str, tls: Mapping[str, Any], timeout: float | None, *,
            max_answer_bytes: int = MAX_ANSWER_BYTES, answer_seconds: float = ANSWER_SECONDS) -> Any:
    """pymisp's client; `tls`: tls_verify / ca_file under any of their spellings (delivery.urls.tls_options).
    Every answer is read within `max_answer_bytes` and `answer_seconds` (`_bounded_adapter`)."""
    remember(key)                            # masked if MISP ever echoes it in an error
    from ..delivery.urls import tls_options, tls_verification, warn_plain_http_secret
    warn_plain_http_secret(f"misp:{urlsplit(url).netloc}", url, "MISP API key")
    verify_tls = tls_verification(f"misp:{urlsplit(url).netloc}", *tls_options(tls))
    from pymisp import PyMISP
    from pymisp.exceptions import PyMISPError
    adapter = _bounded_adapter(max_answer_bytes, answer_seconds)
    try:
        # https_adapter is mounted before pymisp's connection checks; plain http is mounted just after them
        misp = PyMISP(url, key, ssl=verify_tls, timeout=timeout, tool="wia-security", https_adapter=adapter)
    except PyMISPError as exc:
        # pymisp quotes the server's answer, which may echo the key (a login page, an error body)
        raise ConfigError(f"cannot connect to MISP: {redact(str(exc))[:300]}", key="url", source=url) from None
    session = getattr(misp, "_PyMISP__session", None)      # pymisp keeps its requests.Session private
    if session is None:
        raise ConfigError("this pymisp keeps no requests session where wia-security can bound its answers; "
                          "use pymisp 2.5", key="url", source=url)
    session.mount("http://", adapter)
    return misp


def _raise_for(result: Any, what: str, retry_after: float | None = None) -> None:
    if isinstance(result, dict) and "errors" in result:
        status, body = result["errors"] if isinstance(result["errors"], tuple) else (None, result["errors"])
        retryable = isinstance(status, int) and (status == 429 or status >= 500)
        raise DeliveryError(f"MISP {what} failed: HTTP {status}: {_message(body)}", sink="misp",
                            retryable=retryable, status=status if isinstance(status, int) else None, details=body,
                            retry_after=retry_after if retryable else None)


class _RetryAfter:
    """The Retry-After of the last response pymisp received (pymisp returns bodies only), taken by a
    response hook on its requests session."""

    def __init__(self, misp: Any) -> None:
        self.value: str | None = None
        session = getattr(misp, "_PyMISP__session", None)      # pymisp keeps its requests.Session private
        if session is not None:
            session.hooks["response"].append(self._remember)

    def _remember(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.value = response.headers.get("Retry-After")

    def seconds(self) -> float | None:
        from wia_security.connectors.delivery.policy import parse_retry_after
        return parse_retry_after(self.value)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("name") or body)[:300]
    return str(body)[:300]


class MispSource:
    """Pulls threat intelligence from MISP through pymisp; every page request is retried on 429/5xx/connection
    errors with the delivery backoff policy (honouring Retry-After).

    Each MISP event becomes one validated WIA event. A record that cannot be one (not a JSON object, or
    mapped to an invalid event) goes to `on_reject` as a `Rejected` naming where (`misp:events page P
    item I`) and why, with the record; without `on_reject` it raises ConversionError saying the same."""

    def __init__(self, url: str, key: str, *, tls_verify: bool | None = None, ca_file: str | None = None,
                 verify_tls: bool | str | None = None, page_size: int = DEFAULT_PAGE_SIZE, timeout: float | None = 30.0,
                 retry: DeliveryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_reject: Callable[[Rejected], None] | None = None, max_answer_bytes: int = MAX_ANSWER_BYTES,
                 answer_seconds: float = ANSWER_SECONDS) -> None:
        if not key:
            raise ConfigError("a MISP API key is required", key="key")
        refuse_user_info(url, "MISP")
        self.url = url.rstrip("/")
        self.page_size = page_size
        self.retry = retry or DeliveryPolicy(max_attempts=4, initial_backoff=1.0)
        self._sleep = sleep
        self._records = RecordRejecter("misp", on_reject)
        # verify_tls (True, False or a CA bundle's path): the older spelling of tls_verify / ca_file
        self.misp = _client(self.url, key, {"tls_verify": tls_verify, "ca_file": ca_file, "verify_tls": verify_tls},
                            timeout, max_answer_bytes=max_answer_bytes, answer_seconds=answer_seconds)
        self._retry_after = _RetryAfter(self.misp)
        self._newest: int | None = None
        #: after a pull that read every page: True, and the newest record `timestamp` it saw (or None)
        self.complete, self.newest_timestamp = False, None

    def __repr__(self) -> str:
        return f"<MispSource {self.url}>"

    def _search(self, controller: str, page: int, filters: dict[str, Any]) -> Any:
        from pymisp.exceptions import MISPServerError, PyMISPUnexpectedResponse
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            self._retry_after.value = None
            try:
                result = self.misp.search(controller=controller, return_format="json", limit=self.page_size,
                                          page=page, **filters)
                _raise_for(result, f"{controller}/restSearch", self._retry_after.seconds())
                return result
            except (MISPServerError, PyMISPUnexpectedResponse, DeliveryError, OSError) as exc:
                retryable = getattr(exc, "retryable", True)       # pymisp's: 5xx, a 4xx or 200 that is not JSON
                if not retryable or attempt >= self.retry.max_attempts:
                    if isinstance(exc, DeliveryError):
                        raise
                    raise DeliveryError(f"MISP {controller}/restSearch page {page} failed: {str(exc)[:300]}",
                                        sink="misp", retryable=True) from None
                delay = self.retry.delay(attempt, getattr(exc, "retry_after", None) or self._retry_after.seconds())
                over_budget(self.retry, started, delay, f"MISP {controller}/restSearch page {page}", "misp", exc)
                self._sleep(delay)

    def _page(self, controller: str, page: int, filters: dict[str, Any], previous: Any) -> list[Any]:
        """One page of search results, checked: a list (attributes: under "Attribute"), not the previous
        page again (a server that ignores `page` would be read for ever)."""
        result = self._search(controller, page, filters)
        if controller == "attributes":
            result = result.get("Attribute", []) if isinstance(result, dict) else result
        if not isinstance(result, list):
            raise DeliveryError(f"MISP {controller}/restSearch page {page}: expected a list of "
                                f"{'attributes' if controller == 'attributes' else 'events'}, got {type(result).__name__}",
                                sink="misp", retryable=False)
        if result and len(result) >= self.page_size and result == previous:
            raise DeliveryError(f"MISP {controller}/restSearch answered page {page} with page {page - 1} again: "
                                "the server ignores `page`", sink="misp", retryable=False)
        return result

    def _emit(self, record: Any, where: str, **options: Any) -> dict[str, Any] | None:
        """The validated WIA event of one record, or None once the record was handed to `on_reject`."""
        try:
            event = event_to_wia(record, base_url=self.url, **options)
        except ConversionError as exc:
            self._records.reject(f"not a MISP event: {exc}", where, record)
            return None
        return self._records.checked(event, where, record)

    def _saw(self, timestamp: Any) -> None:
        """Remember the newest MISP `timestamp` (last change) among the records read: the cursor a
        complete pull leaves (`newest_timestamp`). A time further ahead of this machine's clock than
        CURSOR_FUTURE_SLACK (milliseconds taken for seconds, a MISP clock years ahead) is not taken: as the
        cursor it would skip every record until then."""
        stamp = _epoch_seconds(timestamp)
        if stamp is None or stamp > time.time() + CURSOR_FUTURE_SLACK:
            return
        if self._newest is None or stamp > self._newest:
            self._newest = stamp

    def _finished(self) -> None:
        self.newest_timestamp, self.complete = self._newest, True

    def _starting(self) -> None:
        self._newest, self.newest_timestamp, self.complete = None, None, False

    def events(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """WIA threat_intel events for the MISP events matching pymisp `search` filters (tags, timestamp,
        last, published, to_ids, eventid, ...), page by page. Once every page was read, `complete` is True
        and `newest_timestamp` the newest event `timestamp` seen (the next pull's `timestamp`)."""
        filters.setdefault("include_event_tags", True)
        self._starting()
        page, previous = 1, None
        while True:
            result = self._page("events", page, filters, previous)
            for index, item in enumerate(result):
                inner = item.get("Event", item) if isinstance(item, dict) else None
                self._saw(inner.get("timestamp") if isinstance(inner, dict) else None)
                event = self._emit(item, f"misp:{self.url}/events/restSearch page {page} item {index}")
                if event is not None:
                    yield event
            if len(result) < self.page_size:
                self._finished()
                return
            page, previous = page + 1, result

    def attributes(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Attribute search (type_attribute, value, tags, to_ids, timestamp, ...), page by page: each page's
        attributes grouped into one WIA threat_intel event per MISP event, yielded before the next page is
        asked for, so memory holds one page (and the previous one, for the loop check) however long the
        feed. An event whose attributes span pages gives one WIA event per page, each with its own id
        (from the attributes it holds: see event_to_wia)."""
        filters.setdefault("include_event_tags", True)
        self._starting()
        page, previous = 1, None
        while True:
            batch = self._page("attributes", page, filters, previous)
            groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]], str]] = {}
            for index, attr in enumerate(batch):
                where = f"misp:{self.url}/attributes/restSearch page {page} item {index}"
                if not isinstance(attr, dict):
                    self._records.reject(f"an attribute is a JSON object, not {type(attr).__name__}", where, attr)
                    continue
                self._saw(attr.get("timestamp"))
                ev = attr.get("Event") if isinstance(attr.get("Event"), dict) else \
                    {"uuid": attr.get("event_uuid") or attr.get("event_id"), "info": None}
                key = str(ev.get("uuid") or attr.get("event_id"))
                groups.setdefault(key, (ev, [], where))[1].append(attr)
            for ev, attrs, where in groups.values():
                event = self._emit(ev, where, attributes=attrs)
                if event is not None:
                    yield event
            if len(batch) < self.page_size:
                self._finished()
                return
            page, previous = page + 1, batch


# -- checkpoint ------------------------------------------------------------------------------------------
@dataclass
class MispCheckpoint:
    """Where an incremental MISP pull (`wia-security intel pull misp --state PATH`) starts next: the newest
    `timestamp` (MISP's last-change time, epoch seconds) of the records of the last pull that read every
    page and delivered (or dead-lettered) everything, for one search (events or attributes) and tag set.

    The next pull asks for `timestamp` >= it. MISP compares inclusively, so records that share the newest
    second are read again (their ids are the same: duplicates in a store), never skipped, however many
    share it. MISP pages by offset with no documented order, so no page-by-page position is safe to keep:
    the cursor moves only after a whole pull, and a crash part-way re-reads the window (at-least-once)."""

    search: str
    tags: list[str]
    timestamp: int | None = None
    #: the MISP base URL the position belongs to (None in a checkpoint written before it was recorded)
    server: str | None = None
    #: a fingerprint of the API key (`account_fingerprint`): MISP shows each organisation and user its own events
    #: (distribution, sharing groups), so another key's position would skip what only that key can see
    account: str | None = None

    @classmethod
    def load(cls, path: str, search: str, tags: Sequence[str], server: str | None = None,
             account: str | None = None) -> "MispCheckpoint":
        """The checkpoint at `path` for this search and tags (and MISP `server` and API key fingerprint `account`,
        when given); a new one when there is no file. A file that is not a checkpoint, or belongs to another
        search, tag set, server or key, is a ConfigError naming it (using it would skip what this search has not
        read, or read everything again). A checkpoint that names no server or key (written before they were
        recorded) is taken."""
        tags = sorted(tags)
        if not os.path.exists(path):
            return cls(search, tags, None, server, account)
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"unreadable MISP checkpoint: {exc}", key="state", source=path) from None
        stamp = doc.get("timestamp") if isinstance(doc, dict) else None
        stored_server = doc.get("server") if isinstance(doc, dict) else None
        stored_account = doc.get("account") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or not isinstance(doc.get("search"), str) or \
                not isinstance(doc.get("tags"), list) or not all(isinstance(t, str) for t in doc["tags"]) or \
                not (stamp is None or (type(stamp) is int and stamp >= 0)) or \
                not all(v is None or (isinstance(v, str) and v) for v in (stored_server, stored_account)):
            raise ConfigError('a MISP checkpoint is {"search": "events"|"attributes", "tags": [...], '
                              '"timestamp": <epoch seconds>, "server": <MISP URL>, "account": <key fingerprint>}',
                              key="state", source=path)
        if doc["search"] != search or sorted(doc["tags"]) != tags:
            raise ConfigError(f"the checkpoint belongs to another pull ({doc['search']}, tags {sorted(doc['tags'])}), "
                              f"not ({search}, tags {tags}); give another --state file", key="state", source=path)
        if server is not None and stored_server is not None and server_key(stored_server) != server_key(server):
            raise ConfigError(f"the checkpoint belongs to another MISP ({stored_server}), not {server}: its timestamp "
                              f"would skip what that MISP changed before it; give another --state file", key="state",
                              source=path)
        if account is not None and stored_account is not None and stored_account != account:
            raise ConfigError(f"the checkpoint belongs to another MISP API key (account {stored_account}, this key is "
                              f"{account}): MISP shows each key's user its own events, and its timestamp would skip "
                              "what this key sees from before it; give another --state file (for the same user with "
                              'a new key, remove its "account" member)', key="state", source=path)
        return cls(search, tags, stamp, server or stored_server, account or stored_account)

    def advance(self, newest: int | None) -> None:
        if newest is not None and (self.timestamp is None or newest > self.timestamp):
            self.timestamp = newest

    def save(self, path: str) -> None:
        """Crash-safe: the old or the new checkpoint survives a power cut, never half of one."""
        replace_durably(path, json.dumps({"search": self.search, "tags": self.tags, "timestamp": self.timestamp}
                                         | ({"server": self.server} if self.server else {})
                                         | ({"account": self.account} if self.account else {})))


def account_fingerprint(api_key: str) -> str:
    """What the checkpoint records of the API key (`records.key_fingerprint`), never the key."""
    return key_fingerprint(api_key.strip(), b"wia-security MISP checkpoint account")


# -- sink ------------------------------------------------------------------------------------------------
class MispSink(BatchingSink):
    """Pushes threat_intel and incident events as MISP events (one request per event; idempotent by uuid)."""

    max_batch_events = 1        # /events/add takes one event per request
    pipelined = False           # callers read the ids a post learned right after send()

    def __init__(self, url: str, key: str, *, tls_verify: bool | None = None, ca_file: str | None = None,
                 verify_tls: bool | str | None = None, verify: bool | str | None = None,
                 distribution: int = DEFAULT_DISTRIBUTION, tags: Sequence[str] = (), timeout: float | None = 30.0,
                 max_answer_bytes: int = MAX_ANSWER_BYTES, answer_seconds: float = ANSWER_SECONDS,
                 **options: Any) -> None:
        if not key:
            raise ConfigError("a MISP API key is required (MISP_KEY or key=)", key="key")
        if distribution not in range(0, 6):
            raise ConfigError("distribution must be 0..5 (0 = your organisation only)", key="distribution")
        super().__init__(name=f"misp:{urlsplit(url).netloc}", **options)
        self.url = url.rstrip("/")
        self.distribution = distribution
        self.tags = list(tags)
        # verify_tls (a config key) and verify (a URL key), True, False or a CA bundle's path: the older
        # spellings of tls_verify / ca_file
        self.misp = _client(self.url, key, {"tls_verify": tls_verify, "ca_file": ca_file, "verify_tls": verify_tls,
                                            "verify": verify}, timeout,
                            max_answer_bytes=max_answer_bytes, answer_seconds=answer_seconds)
        self._retry_after = _RetryAfter(self.misp)

    #: URL query keys and config-table keys besides the delivery policy's (`tag` may repeat in the URL)
    URL_OPTIONS = ("distribution", "tag", "tls_verify", "ca_file", "verify", "verify_tls", "timeout")
    OPTIONS = ("key", "distribution", "tags", "tls_verify", "ca_file", "verify", "verify_tls", "timeout",
               "max_answer_bytes", "answer_seconds", "delivery", "dead_letter", "sleep", "clock")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "MispSink":
        """misp+https://host[:port][/path][?distribution=0&tag=tlp:amber&verify=false&max_events=...]; the key
        from the `key` option (a config file's key_env/key_file) or the MISP_KEY environment variable, never
        from the URL. Unknown keys are refused, naming the known ones."""
        from ..config import reveal
        from ..delivery.urls import refuse_repeated_keys, seconds

        parts = urlsplit(url)
        where = f"{parts.scheme}://{parts.hostname or ''}"
        if "@" in parts.netloc:
            raise ConfigError("put the MISP key in MISP_KEY, not in the URL", key="url", source=where)
        scheme = parts.scheme.split("+", 1)[1] if "+" in parts.scheme else "https"
        refuse_repeated_keys(parts.query, where, repeatable=("tag",))     # tag=a&tag=b: two tags
        query = parse_qs(parts.query, keep_blank_values=True)
        policy = {k: query.pop(k)[-1] for k in list(query) if k in DeliveryPolicy.keys()}
        unknown = sorted(set(query) - set(cls.URL_OPTIONS)) or sorted(set(options) - set(cls.OPTIONS))
        if unknown:
            known = sorted(set(cls.URL_OPTIONS + cls.OPTIONS[:-3]) - {"verify", "verify_tls"})
            raise ConfigError(f"unknown MISP option {unknown[0]!r}; known: {', '.join(known)} and the delivery keys "
                              f"(tls_verify also as verify or verify_tls)", key=unknown[0], source=where)
        if policy:
            options["delivery"] = DeliveryPolicy.from_mapping(policy, base=options.get("delivery"), source=where)
        key = reveal(options.pop("key", None)) or os.environ.get("MISP_KEY", "")
        for name in ("tls_verify", "ca_file", "verify", "verify_tls"):
            if name in query:
                if name in options:
                    raise ConfigError(f"given in both the URL and the options: {name}", key=name, source=where)
                options[name] = query[name][-1]
        distribution = options.pop("distribution", query.get("distribution", [DEFAULT_DISTRIBUTION])[-1])
        try:
            distribution = int(distribution)
        except (TypeError, ValueError):
            raise ConfigError(f"must be a whole number 0..5, got {distribution!r}", key="distribution",
                              source=where) from None
        tags = list(options.pop("tags", ())) + query.get("tag", [])
        if "timeout" in query and "timeout" not in options:
            options["timeout"] = query["timeout"][-1]
        if "timeout" in options:
            options["timeout"] = seconds(options["timeout"], "timeout", where)
        return cls(f"{scheme}://{parts.netloc}{parts.path}", key, distribution=distribution,
                   tags=tags, **options)

    def encode(self, event: dict[str, Any]) -> bytes:
        return jsonio.dumpb(wia_to_misp(event, distribution=self.distribution, extra_tags=self.tags))

    def post(self, batch: Batch) -> Sequence[Outcome] | None:
        from pymisp.exceptions import MISPServerError, PyMISPError
        body = jsonio.loads(batch.payloads[0])
        event_uuid = body["Event"]["uuid"]
        self._retry_after.value = None
        try:
            if self.misp.event_exists(event_uuid):
                return [Outcome.duplicate()]
            result = self.misp.add_event(body, pythonify=False)
        except MISPServerError as exc:      # 5xx, or any refusal of the HEAD (a 429 too): its Retry-After counts
            raise DeliveryError(f"MISP server error: {str(exc)[:300]}", sink=self.name, retryable=True,
                                retry_after=self._retry_after.seconds()) from None
        except PyMISPError as exc:
            raise DeliveryError(f"MISP client error: {str(exc)[:300]}", sink=self.name, retryable=False) from None
        if isinstance(result, dict) and "errors" in result:
            status, detail = result["errors"] if isinstance(result["errors"], tuple) else (None, result["errors"])
            if "already exists" in jsonio.dumps(detail).lower():
                return [Outcome.duplicate()]          # a concurrent writer won the race
            if isinstance(status, int) and (status == 429 or status >= 500):
                return [Outcome.retry(f"MISP HTTP {status}: {_message(detail)}", retry_after=self._retry_after.seconds())]
            return [Outcome.failed(f"MISP refused the event: HTTP {status}: {_message(detail)}", details=detail)]
        missing = _not_stored(body["Event"]["Attribute"], result)
        left_out = misp_attributes(batch.events[0])[1] + [
            f"{a['type']} {str(a['value'])[:80]!r}: dropped by MISP's validation (its log says why)" for a in missing]
        if left_out:
            # The event is in MISP without them: failed with what is missing, so that it reaches the dead letter
            # (as a Splunk SOAR container without its artifacts does); a re-send is a duplicate.
            return [Outcome.failed(f"MISP event {event_uuid} created without {len(left_out)} of its indicators: "
                                   + "; ".join(left_out[:20]) + ("; …" if len(left_out) > 20 else ""))]
        return None

    def __repr__(self) -> str:
        return f"<MispSink {self.url}>"


def _not_stored(sent: list[dict[str, Any]], answer: Any) -> list[dict[str, Any]]:
    """The attributes sent that the /events/add answer does not hold (by uuid). An answer without an Attribute list
    says nothing about them: taken as stored."""
    event = answer.get("Event", answer) if isinstance(answer, dict) else None
    stored = event.get("Attribute") if isinstance(event, dict) else None
    if not isinstance(stored, list):
        return []
    uuids = {a.get("uuid") for a in stored if isinstance(a, dict)}
    return [a for a in sent if a["uuid"] not in uuids]
