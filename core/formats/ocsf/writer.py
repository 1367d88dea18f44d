"""WIA event -> one OCSF 1.8.0 event: a class per event type, native attributes where OCSF has a home,
`unmapped.wia` (a WIA-shaped patch) for the rest, so the reader restores the event exactly.

Spec: OCSF 1.8.0 (schema.ocsf.io/1.8.0), the pinned compiled schema in ../shared/reference/ocsf.
The mapping table with the reason for every choice is docs/formats/ocsf.md. Class per event type:
alert -> Detection Finding (2004); vulnerability -> Vulnerability Finding (2002); incident ->
Incident Finding (2005); threat_intel -> OSINT Inventory Info (5021, `osint[]`); network_event ->
Network (4001) / HTTP (4002) / DNS (4003) / RDP (4005) / SSH (4007) / FTP (4008) Activity by
`event_type`; endpoint_event -> Process (1007), File System (1001), Registry Key/Value (201001 /
201002), Module (1005), Kernel Extension (1002), Windows Service (201004) or Network (4001)
Activity; auth_event -> Authentication (3002) or Account Change (3001).

The `unmapped.wia` patch holds, in WIA's own shape, every value the OCSF attributes do not give back
exactly: `null` means "absent in the WIA event" (the schema never allows null, so it is free as a
marker), a dict patches a dict, a dict over a list patches its elements by index ("0", "1", ...),
anything else replaces. The input event is trusted to be schema-valid (the pipeline validates
first); values OCSF constrains further (ip_t, mac_t, email_t, port_t, datetime_t) are checked.

Built for throughput: tables and class headers are prebuilt at import, values are read with direct
lookups, nothing is deep-copied. The returned document may share leftover sub-objects (and nothing
else) with the input event: serialize it, or copy before mutating it.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable

from ..._version import WIA_SCHEMA_URI, WIA_VERSION
from ...errors import ConversionError
from ...timeutil import parse_iso
from .tables import CLASSES, ENUMS, HEADERS, OCSF_VERSION, TYPES, header, is_email, is_ip, is_mac, is_port

Doc = dict[str, Any]

# --- enum choices (the mapping; captions come from the tables) ---------------------------------
SEVERITY_CAPTION = ENUMS["severity_id"]
#: OCSF severity_id -> the WIA severity it reads back as (the lower bound of WIA's band, PHASE-1 doc section 7)
SEVERITY_BACK = {0: 5, 1: 0, 2: 1, 3: 3, 4: 5, 5: 7, 6: 9, 99: 5}

ALERT_STATUS = {"new": 1, "investigating": 2, "false_positive": 3, "resolved": 4, "closed": 5}
INCIDENT_STATUS = {"new": 1, "triaging": 2, "investigating": 2, "containing": 2, "eradicating": 2,
                   "recovering": 2, "closed": 5}
PRIORITY = {"info": 99, "low": 1, "medium": 2, "high": 3, "critical": 4}
ACTION = {"allowed": (1, 1), "blocked": (2, 2), "dropped": (2, 6), "reset": (2, 21)}     # (action_id, disposition_id)
DIRECTION = {"inbound": 1, "outbound": 2, "internal": 3}
PROTOCOL_NUMBER = {"TCP": 6, "UDP": 17, "ICMP": 1, "GRE": 47, "ESP": 50}
RCODE = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "REFUSED": 5}
HTTP_ACTIVITY = {"CONNECT": 1, "DELETE": 2, "GET": 3, "HEAD": 4, "OPTIONS": 5, "POST": 6, "PUT": 7, "TRACE": 8,
                 "PATCH": 9}
INTEGRITY = {"low": 2, "medium": 3, "high": 4, "system": 5}
HASHES = (("md5", 1), ("sha1", 2), ("sha256", 3))
#: WIA value_type -> reg_value.type_id: the OCSF captions are the Windows names themselves
REG_TYPE = {name: ident for ident, name in ENUMS["reg_value.type_id"].items() if name.startswith("REG_")}
LOGON_TYPE = {"interactive": 2, "network": 3, "batch": 4, "service": 5, "remote_interactive": 10}
MFA_FACTOR = {"sms": 1, "biometric": 4, "push": 5, "hardware_token": 6, "totp": 7}
DEVICE_TYPE = {"unknown": 0, "desktop": 2, "tablet": 4, "mobile": 5}
OS_TYPE = (("windows", 100), ("linux", 200), ("mac", 300))
KILL_CHAIN = {"reconnaissance": 1, "weaponization": 2, "delivery": 3, "exploitation": 4, "installation": 5,
              "command-and-control": 6, "command and control": 6, "command & control": 6, "c2": 6,
              "actions-on-objectives": 7, "actions on objectives": 7}
#: WIA indicator / IOC type -> (osint.type_id, observable.type_id or None)
INDICATOR = {"ip": (1, 2), "domain": (2, 1), "url": (5, 6), "hash": (4, 8), "file_hash_md5": (4, 8),
             "file_hash_sha1": (4, 8), "file_hash_sha256": (4, 8), "email": (9, 5), "file": (11, 7),
             "mutex": (99, None), "registry": (12, 46)}
INDICATOR_BACK = {1: "ip", 2: "domain", 5: "url", 9: "email", 11: "file", 12: "registry"}
HASH_BY_LENGTH = {32: "file_hash_md5", 40: "file_hash_sha1", 64: "file_hash_sha256"}
MALWARE_CLASS = {"malware": 0, "ransomware": 10, "botnet": 3}
THREAT_PLACEHOLDER = "Threat"      # osint.type of the entry that stands for the threat itself (no indicators)
UNKNOWN_SERVICE = "Unknown"        # win_service.name is required; WIA does not carry the service name

NETWORK_CLASS = {"connection": 4001, "dns": 4003, "http": 4002, "tls": 4001, "smtp": 4001, "ftp": 4008,
                 "ssh": 4007, "rdp": 4005, "custom": 4001}
FILE_ACTIVITY = {"file_create": 1, "file_modify": 3, "file_delete": 4}
REG_KEY_ACTIVITY = {"registry_create": 1, "registry_modify": 3, "registry_delete": 4}
REG_VALUE_ACTIVITY = {"registry_create": 2, "registry_modify": 3, "registry_delete": 4}
AUTH_CLASS = {"login_success": (3002, 1), "login_failure": (3002, 1), "logout": (3002, 2),
              "mfa_success": (3002, 99), "mfa_failure": (3002, 99), "privilege_escalation": (3002, 7),
              "password_change": (3001, 3), "account_locked": (3001, 9), "account_unlocked": (3001, 12)}

CLASS_STATUS = {uid: info["status"] for uid, info in CLASSES.items()}
_TOP = frozenset(("$schema", "version", "id", "type", "timestamp", "severity", "source", "data", "context", "mitre", "meta"))
#: the keys each `_rest` call treats as mapped
_SIGNATURE_KEYS = frozenset(("signed", "valid"))
_TI_CONTEXT_KEYS = frozenset(("description", "kill_chain_phase"))
_SOURCE_KEYS = frozenset(("type", "name", "vendor", "version"))
_CLOUD_KEYS = frozenset(("provider", "account_id", "region"))
_RULE_KEYS = frozenset(("id", "name", "version"))
_EXPLOIT_KEYS = frozenset(("type", "url"))
_PATCH_KEYS = frozenset(("workarounds", "vendor_url"))
_TLS_KEYS = frozenset(("version", "cipher", "sni"))
_HTTP_KEYS = frozenset(("method", "user_agent", "referer", "status_code", "content_type"))
_DNS_KEYS = frozenset(("query", "query_type", "response", "response_code"))
_REG_VALUE_KEYS = frozenset(("key", "value_name", "value_type", "value_data", "previous_data"))
_REG_KEY_KEYS = frozenset(("key",))
_DLL_KEYS = frozenset(("path", "name", "hash", "signed"))
_TARGET_KEYS = frozenset(("type", "name", "ip", "url"))
_DT = re.compile(TYPES["datetime_t"]["regex"]).search
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_fromisoformat = datetime.fromisoformat
_MS = timedelta(milliseconds=1)


@lru_cache(maxsize=1)
def attack_version() -> str:
    """The ATT&CK version the bundled table has (attack.version of every attacks[] item)."""
    from ...attack import table
    return table().version


def epoch_ms(value: str) -> int | None:
    """Milliseconds since the epoch of an RFC 3339 date-time (None when it is not one)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = parse_iso(value)
        except (ValueError, OverflowError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return round((moment - _EPOCH) / _MS)
    except OverflowError:
        return None


def severity_id(score: float) -> int:
    """WIA 0-10 -> OCSF: 0 Informational, 1-2 Low, 3-4 Medium, 5-6 High, 7-10 Critical (WIA's "emergency"
    9-10 is Critical too: OCSF's Fatal means "an error, too late to act", not a worse threat)."""
    return 1 if score < 1 else 2 if score < 3 else 3 if score < 5 else 4 if score < 7 else 5


def band_id(value: float, bands: tuple[tuple[float, int], ...]) -> int:
    for lower, ident in bands:
        if value >= lower:
            return ident
    return bands[-1][1]


CONFIDENCE_BANDS = ((0.7, 3), (0.4, 2), (0.0, 1))
CONFIDENCE_CAPTION = ENUMS["confidence_id"]                      # confidence_id High / Medium / Low
RISK_BANDS = ((0.9, 4), (0.7, 3), (0.4, 2), (0.000001, 1), (0.0, 0))    # risk_level_id Critical .. Info


def _put(lo: Doc, key: str, sub: Doc, native: bool) -> None:
    """Record a sub-object's leftover: always when the reader will not recreate it (not `native`), else
    only if non-empty (`if sub: lo[key] = sub` where the object is always native)."""
    if sub or not native:
        lo[key] = sub


def _rest(src: Doc, known: frozenset[str], lo: Doc) -> None:
    """Keys of `src` outside `known` go to the leftover. Callers first test whether there can be any: with
    `known.issuperset(src)` (one C-level call), or, cheaper where the mapping knows how many keys of `src`
    it read, with `len(src) > mapped` (a set test costs ~300 instructions a key)."""
    for k in src:
        if k not in known:
            lo[k] = src[k]


#: OCSF profiles as bits (set per event with `|=`); the sorted name list per bit mask is prebuilt
PROFILE_BITS = {"cloud": 1, "datetime": 2, "host": 4, "incident": 8, "osint": 16, "security_control": 32}
CLOUD, DATETIME, HOST, INCIDENT, OSINT, SECURITY_CONTROL = PROFILE_BITS.values()
_PROFILE_NAMES = tuple(tuple(sorted(name for name, bit in PROFILE_BITS.items() if mask & bit))
                       for mask in range(1 << len(PROFILE_BITS)))


class _Ctx:
    """One conversion: the event, its leftover patch, observables, profiles and the actor being built."""

    __slots__ = ("event", "lo", "obs", "profiles", "actor")

    def __init__(self, event: Doc) -> None:
        self.event = event
        self.lo: Doc = {}
        self.obs: list[Doc] = []
        self.profiles = DATETIME              # a mask of PROFILE_BITS
        self.actor: Doc = {}

    def ob(self, name: str, type_id: int, value: Any) -> None:
        """One observable (the hot mappings append the dict themselves where the value is a checked string)."""
        self.obs.append({"name": name, "type_id": type_id, "value": value if type(value) is str else str(value)})


def _time(out: Doc, key: str, value: Any, lo: Doc, wia_key: str) -> bool:
    """out[key] = epoch ms (nearest) and out[key_dt] = the RFC 3339 text (datetime profile); else the
    leftover keeps the value."""
    try:                                  # fast path: the common spellings, offset included
        moment = _fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(value)
        ms = round(moment.timestamp() * 1000)
    except (ValueError, TypeError, OverflowError, OSError):
        ms = epoch_ms(value) if type(value) is str else None
        if ms is None or _DT(value) is None:
            lo[wia_key] = value
            return False
    out[key] = ms
    out[_DT_KEY[key]] = value
    return True


_DT_KEY = {k: k + "_dt" for k in ("time", "start_time", "end_time", "created_time", "modified_time", "accessed_time",
                                  "first_seen_time", "last_seen_time")}


# --- shared objects -------------------------------------------------------------------------------
_OS_KEYS = frozenset(("name", "version", "build"))
OS_TYPE_CAPTION = ENUMS["os.type_id"]


def _os(o: Doc, lo: Doc) -> Doc | None:
    name = o.get("name")
    if type(name) is not str:
        return None
    low = name.lower()
    for prefix, type_id in OS_TYPE:
        if low.startswith(prefix):
            break
    else:
        type_id = 99
    out = {"name": name, "type_id": type_id, "type": OS_TYPE_CAPTION[type_id]}
    if "version" in o:
        out["version"] = o["version"]
    if "build" in o:
        out["build"] = o["build"]
    if len(o) > len(out) - 2:                 # out: type_id and type besides one attribute per mapped key
        _rest(o, _OS_KEYS, lo)
    return out


_HOST_KEYS = frozenset(("hostname", "ip", "mac", "os", "domain", "agent_id"))


def _device(c: _Ctx, h: Doc, lo: Doc) -> Doc | None:
    """WIA host (context.host or endpoint data.host) -> OCSF device; None when it has neither name nor address."""
    dev: Doc = {"type_id": 0}
    hostname = h.get("hostname")
    if type(hostname) is str:
        dev["hostname"] = dev["name"] = hostname
        c.obs.append({"name": "device.hostname", "type_id": 1, "value": hostname})
    ips = h.get("ip")
    if ips is not None:
        if type(ips) is list and ips and is_ip(ips[0]):
            dev["ip"] = ip = ips[0]
            c.obs.append({"name": "device.ip", "type_id": 2, "value": ip})
            if len(ips) != 1:
                lo["ip"] = ips
        else:
            lo["ip"] = ips
    macs = h.get("mac")
    if macs is not None:
        if type(macs) is list and macs and is_mac(macs[0]):
            dev["mac"] = macs[0]
            if len(macs) != 1:
                lo["mac"] = macs
        else:
            lo["mac"] = macs
    if "name" not in dev:
        if "ip" not in dev:
            return None
        dev["name"] = dev["ip"]
    os_in = h.get("os")
    if os_in is not None:
        lo_os: Doc = {}
        os_ = _os(os_in, lo_os)
        if os_ is not None:
            dev["os"] = os_
            if lo_os:
                lo["os"] = lo_os
        else:
            lo["os"] = os_in
    domain = h.get("domain")
    if domain is not None:
        dev["domain"] = domain
    agent = h.get("agent_id")
    if agent is not None:
        dev["agent_list"] = [{"uid": agent}]
    if len(h) > (hostname is not None) + (ips is not None) + (macs is not None) + (os_in is not None) + \
            (domain is not None) + (agent is not None):
        _rest(h, _HOST_KEYS, lo)
    return dev


_USER_KEYS = frozenset(("name", "domain", "email", "employee_id", "groups"))


def _user(c: _Ctx, u: Doc, lo: Doc, path: str) -> Doc | None:
    name = u.get("name")
    if type(name) is not str:
        return None
    user: Doc = {"name": name}
    c.obs.append({"name": path + ".name", "type_id": 4, "value": name})
    if "domain" in u:
        user["domain"] = u["domain"]
    if "email" in u:
        email = u["email"]
        if is_email(email):
            user["email_addr"] = email
            c.obs.append({"name": path + ".email_addr", "type_id": 5, "value": email})
        else:
            lo["email"] = email
    if "employee_id" in u:
        user["ldap_person"] = {"employee_uid": u["employee_id"]}
    if "groups" in u:
        groups = u["groups"]
        if groups:
            user["groups"] = [{"name": g} for g in groups]
        else:
            lo["groups"] = groups
    if not _USER_KEYS.issuperset(u):
        _rest(u, _USER_KEYS, lo)
    return user


_GEO_KEYS = frozenset(("country", "city", "latitude", "longitude", "asn", "org"))


def _geo(g: Doc, out: Doc, lo: Doc) -> bool:
    """WIA geo -> endpoint `location` (needs a country or city) and `autonomous_system`."""
    native = False
    if "country" in g or "city" in g:
        loc = {}
        if "country" in g:
            loc["country"] = g["country"]
        if "city" in g:
            loc["city"] = g["city"]
        if "latitude" in g:
            loc["lat"] = g["latitude"]
        if "longitude" in g:
            loc["long"] = g["longitude"]
        out["location"] = loc
        native = True
    else:
        if "latitude" in g:
            lo["latitude"] = g["latitude"]
        if "longitude" in g:
            lo["longitude"] = g["longitude"]
    if "asn" in g or "org" in g:
        asys = {}
        if "asn" in g:
            asys["number"] = g["asn"]
        if "org" in g:
            asys["name"] = g["org"]
        out["autonomous_system"] = asys
        native = True
    if not _GEO_KEYS.issuperset(g):
        _rest(g, _GEO_KEYS, lo)
    return native


_ENDPOINT_KEYS = frozenset(("ip", "port", "hostname", "mac", "geo"))


def _endpoint(c: _Ctx, ep: Doc, lo: Doc, path: str) -> Doc | None:
    """WIA network endpoint -> OCSF network_endpoint. The compiled 1.8.0 schema wants `name` or `uid`
    on every endpoint: `name` restates the hostname, else the address (the reader ignores it)."""
    out: Doc = {}
    ip = ep.get("ip")
    if ip is not None:
        if is_ip(ip):
            out["ip"] = ip
            c.obs.append({"name": path + ".ip", "type_id": 2, "value": ip})
        else:
            lo["ip"] = ip
    if "port" in ep:
        port = ep["port"]
        if type(port) is int and 0 <= port <= 65535:          # is_port()
            out["port"] = port
        else:
            lo["port"] = port
    hostname = ep.get("hostname")
    if hostname is not None:
        out["hostname"] = hostname
        c.ob(path + ".hostname", 1, hostname)
    name = hostname if type(hostname) is str else ip if type(ip) is str else None
    if name is None:
        return None
    out["name"] = name
    if "mac" in ep:
        if is_mac(ep["mac"]):
            out["mac"] = ep["mac"]
        else:
            lo["mac"] = ep["mac"]
    if "geo" in ep:
        lo_g: Doc = {}
        _put(lo, "geo", lo_g, _geo(ep["geo"], out, lo_g))
    if not _ENDPOINT_KEYS.issuperset(ep):
        _rest(ep, _ENDPOINT_KEYS, lo)
    return out


_HASH_KEYS = frozenset(name for name, _ in HASHES)
ALGORITHM_CAPTION = ENUMS["fingerprint.algorithm_id"]


def _hashes(h: Doc, lo: Doc) -> list[Doc] | None:
    out = []
    for name, ident in HASHES:
        if name in h:
            out.append({"algorithm_id": ident, "algorithm": ALGORITHM_CAPTION[ident], "value": h[name]})
    if not _HASH_KEYS.issuperset(h):
        _rest(h, _HASH_KEYS, lo)
    return out or None


def _basename(path: str) -> str:
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[cut + 1:] or path


_FILE_KEYS = frozenset(("path", "name", "extension", "size", "hash", "created", "modified", "accessed", "owner"))


def _file(c: _Ctx, f: Doc, lo: Doc, path: str) -> Doc | None:
    """WIA file -> OCSF file (name required: the WIA name, else the path's last segment)."""
    name, fpath = f.get("name"), f.get("path")
    if type(name) is not str:
        if type(fpath) is not str:
            return None
        name = _basename(fpath)
        lo["name"] = None                        # derived: the reader must not invent data.file.name
    out: Doc = {"name": name, "type_id": 0}
    c.obs.append({"name": path + ".name", "type_id": 7, "value": name})
    if fpath is not None:
        out["path"] = fpath
        c.ob(path + ".path", 45, fpath)
    if "extension" in f:
        out["ext"] = f["extension"]
    if "size" in f:
        out["size"] = f["size"]
    if "hash" in f:
        lo_h: Doc = {}
        hashes = _hashes(f["hash"], lo_h)
        if hashes:
            out["hashes"] = hashes
            for h in hashes:
                c.ob(path + ".hashes.value", 8, h["value"])
        _put(lo, "hash", lo_h, hashes is not None)
    if "created" in f:
        _time(out, "created_time", f["created"], lo, "created")
    if "modified" in f:
        _time(out, "modified_time", f["modified"], lo, "modified")
    if "accessed" in f:
        _time(out, "accessed_time", f["accessed"], lo, "accessed")
    if "owner" in f:
        out["owner"] = {"name": f["owner"]}
    if not _FILE_KEYS.issuperset(f):
        _rest(f, _FILE_KEYS, lo)
    return out


_PARENT_KEYS = frozenset(("pid", "name", "path", "command_line"))
_PROCESS_KEYS = frozenset(("pid", "ppid", "name", "path", "command_line", "user", "integrity_level", "start_time",
                           "hash", "signature", "parent"))
INTEGRITY_CAPTION = ENUMS["process.integrity_id"]


def _process(c: _Ctx, p: Doc, lo: Doc, path: str) -> Doc | None:
    """WIA process -> OCSF process (needs a pid: OCSF wants pid, uid or cpid)."""
    pid = p.get("pid")
    if type(pid) is not int:
        return None
    out: Doc = {"pid": pid}
    name = p.get("name")
    if name is not None:
        out["name"] = name
        c.ob(path + ".name", 9, name)
    if "path" in p:
        out["path"] = p["path"]
    if "command_line" in p:
        out["cmd_line"] = p["command_line"]
    if "user" in p:
        out["user"] = {"name": p["user"]}
        c.ob(path + ".user.name", 4, p["user"])
    if "integrity_level" in p:
        ident = INTEGRITY[p["integrity_level"]]
        out["integrity_id"] = ident
        out["integrity"] = INTEGRITY_CAPTION[ident]
    if "start_time" in p:
        _time(out, "created_time", p["start_time"], lo, "start_time")
    file: Doc = {}
    if "hash" in p:
        lo_h: Doc = {}
        hashes = _hashes(p["hash"], lo_h)
        if hashes:
            file["hashes"] = hashes
        _put(lo, "hash", lo_h, hashes is not None)
    if "signature" in p:
        sig, lo_s = p["signature"], {}
        if sig.get("signed") is True:
            signature: Doc = {"algorithm_id": 0}
            if sig.get("valid") is True:
                signature["state_id"] = 1
                signature["state"] = ENUMS["digital_signature.state_id"][1]
            elif "valid" in sig:
                lo_s["valid"] = sig["valid"]
            file["signature"] = signature
            if not _SIGNATURE_KEYS.issuperset(sig):
                _rest(sig, _SIGNATURE_KEYS, lo_s)
            if lo_s:
                lo["signature"] = lo_s
        else:
            lo["signature"] = sig
    if file:
        fpath = p.get("path")
        file["name"] = _basename(fpath) if type(fpath) is str else name if type(name) is str else "Unknown"
        file["type_id"] = 0
        if type(fpath) is str:
            file["path"] = fpath
        out["file"] = file
        for h in file.get("hashes", ()):
            c.ob(path + ".file.hashes.value", 8, h["value"])
    parent, ppid = p.get("parent"), p.get("ppid")
    parent_pid = ppid if ppid is not None else parent.get("pid") if parent is not None else None
    if type(parent_pid) is int:
        pp: Doc = {"pid": parent_pid}
        if ppid is None:
            lo["ppid"] = None                    # the reader writes the parent pid to `ppid`
        if parent is not None:
            lo_p: Doc = {}
            if "name" in parent:
                pp["name"] = parent["name"]
            if "path" in parent:
                pp["path"] = parent["path"]
            if "command_line" in parent:
                pp["cmd_line"] = parent["command_line"]
            if "pid" in parent:
                lo_p["pid"] = parent["pid"]
            if not _PARENT_KEYS.issuperset(parent):
                _rest(parent, _PARENT_KEYS, lo_p)
            _put(lo, "parent", lo_p, len(pp) > 1)
        out["parent_process"] = pp
    else:
        if ppid is not None:
            lo["ppid"] = ppid
        if parent is not None:
            lo["parent"] = parent
    if not _PROCESS_KEYS.issuperset(p):
        _rest(p, _PROCESS_KEYS, lo)
    return out


_ATTACK_KEYS = frozenset(("tactic", "tactic_name", "technique", "technique_name", "sub_technique", "sub_technique_name"))
#: attack attribute <- the WIA (uid key, name key) pair
_ATTACK_PARTS = (("tactic", "tactic", "tactic_name"), ("technique", "technique", "technique_name"),
                 ("sub_technique", "sub_technique", "sub_technique_name"))


_attack_version: list[str] = []


def _attack(m: Doc, lo: Doc) -> Doc | None:
    """WIA mitre block (or a threat-intel TTP) -> an OCSF attack (tactic / technique / sub_technique)."""
    out: Doc = {}
    mapped = 0
    get = m.get
    for attr, uid_key, name_key in _ATTACK_PARTS:
        uid, name = get(uid_key), get(name_key)
        if uid is not None:
            out[attr] = part = {"uid": uid} if name is None else {"uid": uid, "name": name}
        elif name is not None:
            out[attr] = part = {"name": name}
        else:
            continue
        mapped += len(part)                   # one key per mapped WIA key
    if len(m) > mapped:
        _rest(m, _ATTACK_KEYS, lo)
    if not out:
        return None
    if not _attack_version:
        _attack_version.append(attack_version())
    out["version"] = _attack_version[0]
    return out


_INDICATOR_KEYS = {"alert": frozenset(("type", "value", "context", "confidence")),
                   "threat_intel": frozenset(("type", "value", "context", "confidence")),
                   "incident": frozenset(("type", "value", "description"))}
OSINT_TYPE_CAPTION = ENUMS["osint.type_id"]


def indicator_kind(type_id: int, osint_type: Any, value: Any, event_type: str) -> str | None:
    """The WIA indicator type an osint entry reads back as (the writer checks it gives the original)."""
    if type_id == 4:
        if event_type == "threat_intel":
            return HASH_BY_LENGTH.get(len(value) if type(value) is str else 0, "file_hash_sha256")
        return "hash"
    if type_id == 99:
        return osint_type.lower() if type(osint_type) is str and osint_type.lower() == "mutex" else None
    return INDICATOR_BACK.get(type_id)


#: indicator types that read back as themselves whatever the value and event type (no check per entry)
_KIND_READS_BACK = frozenset(kind for kind, (type_id, _) in INDICATOR.items() if type_id != 4 and indicator_kind(
    type_id, kind.capitalize() if type_id == 99 else OSINT_TYPE_CAPTION[type_id], None, "alert") == kind)


def _osint(c: _Ctx, item: Doc, lo: Doc, i: int, extra: Doc | None, event_type: str) -> Doc:
    """A WIA indicator / IOC -> one `osint` entry. Confidence and first/last seen have no osint home."""
    kind, value = item["type"], item["value"]
    type_id, observable = INDICATOR.get(kind, (99, None))
    osint_type = kind.capitalize() if type_id == 99 else OSINT_TYPE_CAPTION[type_id]
    out: Doc = {"type_id": type_id, "type": osint_type, "value": value}
    if kind not in _KIND_READS_BACK and indicator_kind(type_id, osint_type, value, event_type) != kind:
        lo["type"] = kind
    if observable is not None:
        c.ob(f"osint[{i}].value", observable, value)
    if event_type == "incident":
        if "description" in item:
            out["desc"] = item["description"]
    elif "context" in item:
        context = item["context"]
        if event_type == "alert":                             # alert indicators: a string
            out["desc"] = context
        else:                                                 # threat-intel indicators: an object
            lo_ctx: Doc = {}
            if "description" in context:
                out["desc"] = context["description"]
            if "kill_chain_phase" in context:
                phase = context["kill_chain_phase"]
                ident = KILL_CHAIN.get(phase.lower(), 99)
                out["kill_chain"] = [{"phase": phase, "phase_id": ident}]
            if not _TI_CONTEXT_KEYS.issuperset(context):
                _rest(context, _TI_CONTEXT_KEYS, lo_ctx)
            _put(lo, "context", lo_ctx, "desc" in out or "kill_chain" in out)
    if "confidence" in item:
        conf = item["confidence"]
        ident = 3 if conf >= 0.7 else 2 if conf >= 0.4 else 1          # CONFIDENCE_BANDS
        out["confidence_id"] = ident
        out["confidence"] = CONFIDENCE_CAPTION[ident]
        lo["confidence"] = conf
    known = _INDICATOR_KEYS[event_type]
    if not known.issuperset(item):
        _rest(item, known, lo)
    if extra:
        out.update(extra)
    return out


def _osint_list(c: _Ctx, items: list[Doc], lo: Doc, key: str, extra: Doc | None = None) -> list[Doc]:
    entries = []
    patches: Doc = {}
    event_type = c.event["type"]
    for i, item in enumerate(items):
        lo_i: Doc = {}
        entries.append(_osint(c, item, lo_i, i, extra, event_type))
        if lo_i:
            patches[str(i)] = lo_i
    if patches:
        lo[key] = patches
    return entries


# --- envelope ---------------------------------------------------------------------------------------
def _envelope(c: _Ctx, doc: Doc, data_lo: Doc, *, host: bool = True, network: str | None = None,
              event_code: str | None = None) -> Doc:
    """The attributes every class shares: time, severity, metadata, meta, context, and the unmapped patch."""
    e, lo = c.event, c.lo
    version, schema = e.get("version"), e.get("$schema")
    if version != WIA_VERSION:
        lo["version"] = version                # absent reads as None: the patch's "absent" marker
    if schema != WIA_SCHEMA_URI:
        lo["$schema"] = schema
    # The keys of `e` mapped here or by the builder: the six required ones and the optional ones
    # present. Fewer than len(e) means leftovers (a length test: a set test costs ~300 instructions a key).
    mapped = 6 + (version is not None) + (schema is not None) + ("meta" in e) + ("context" in e) + ("mitre" in e)
    _time(doc, "time", e["timestamp"], lo, "timestamp")
    score = e["severity"]
    sid = severity_id(score)
    doc["severity_id"] = sid
    doc["severity"] = SEVERITY_CAPTION[sid]
    if SEVERITY_BACK[sid] != score:
        lo["severity"] = score
    src = e["source"]
    product: Doc = {"name": src["name"]}
    if "vendor" in src:
        product["vendor_name"] = src["vendor"]
    if "version" in src:
        product["version"] = src["version"]
    lo_src: Doc = {"type": src["type"]}
    if len(src) > len(product) + 1:            # one key per product attribute, and `type`
        _rest(src, _SOURCE_KEYS, lo_src)
    lo["source"] = lo_src
    metadata: Doc = {"version": OCSF_VERSION, "product": product, "uid": e["id"]}
    if event_code is not None:
        metadata["event_code"] = event_code
    doc["metadata"] = metadata
    if "meta" in e:
        _meta(c, doc, metadata, e["meta"])
    if "context" in e:
        _context(c, doc, e["context"], host, network)
    if data_lo:
        lo["data"] = data_lo
    if len(e) > mapped:
        _rest(e, _TOP, lo)
    actor = c.actor
    if actor:
        doc["actor"] = actor
        c.profiles |= HOST
    if c.obs:
        doc["observables"] = c.obs
    metadata["profiles"] = list(_PROFILE_NAMES[c.profiles])
    if lo:
        doc["unmapped"] = {"wia": lo}
    return doc


_META_KEYS = frozenset(("confidence", "tags", "labels", "raw", "correlation_id"))


def _all_str(values: Any) -> bool:
    for value in values:
        if type(value) is not str:
            return False
    return True


def _meta(c: _Ctx, doc: Doc, metadata: Doc, m: Doc) -> None:
    lo: Doc = {}
    native = False
    conf = m.get("confidence")
    if conf is not None:
        score = round(conf * 100)
        ident = 3 if conf >= 0.7 else 2 if conf >= 0.4 else 1          # CONFIDENCE_BANDS
        doc["confidence_score"] = score
        doc["confidence_id"] = ident
        doc["confidence"] = CONFIDENCE_CAPTION[ident]
        c.profiles |= SECURITY_CONTROL
        native = True
        if score / 100 != conf:
            lo["confidence"] = conf
    tags = m.get("tags")
    if tags is not None:
        if tags and _all_str(tags):
            metadata["labels"] = list(tags)
            native = True
        else:
            lo["tags"] = tags
    labels = m.get("labels")
    if labels is not None:
        if labels and _all_str(labels.values()):
            metadata["tags"] = [{"name": n, "value": x} for n, x in labels.items()]
            native = True
        else:
            lo["labels"] = labels
    raw = m.get("raw")
    if raw is not None:
        doc["raw_data"] = raw
        native = True
    correlation = m.get("correlation_id")
    if correlation is not None:
        metadata["correlation_uid"] = correlation
        native = True
    if len(m) > (conf is not None) + (tags is not None) + (labels is not None) + (raw is not None) + \
            (correlation is not None):
        _rest(m, _META_KEYS, lo)
    if lo or not native:
        c.lo["meta"] = lo


_NET_CONTEXT_KEYS = frozenset(("source", "destination", "protocol", "direction"))
_CONTEXT_KEYS = frozenset(("host", "user", "cloud", "network"))


def _context(c: _Ctx, doc: Doc, ctx: Doc, host: bool, network: str | None) -> None:
    lo: Doc = {}
    native = False
    h = ctx.get("host")
    if h is not None:
        dev = _device(c, h, lo_h := {}) if host else None
        if dev is None:
            lo["host"] = h
        else:
            doc["device"] = dev
            c.profiles |= HOST
            native = True
            if lo_h:
                lo["host"] = lo_h
    u = ctx.get("user")
    if u is not None:
        user = _user(c, u, lo_u := {}, "actor.user")
        if user is None:
            lo["user"] = u
        else:
            c.actor["user"] = user
            native = True
            if lo_u:
                lo["user"] = lo_u
    cl = ctx.get("cloud")
    if cl is not None:
        provider = cl.get("provider")
        if provider is None:
            lo["cloud"] = cl
        else:
            cloud: Doc = {"provider": provider}
            account = cl.get("account_id")
            if account is not None:
                cloud["account"] = {"uid": account}
            region = cl.get("region")
            if region is not None:
                cloud["region"] = region
            doc["cloud"] = cloud
            c.profiles |= CLOUD
            native = True
            if not _CLOUD_KEYS.issuperset(cl):
                _rest(cl, _CLOUD_KEYS, lo_cl := {})
                if lo_cl:
                    lo["cloud"] = lo_cl
    n = ctx.get("network")
    if n is not None:
        evidence = _net_context(c, n, lo_n := {}) if network == "evidences" else None
        if evidence is None:
            lo["network"] = n
        else:
            doc["evidences"] = [evidence]
            native = True
            if lo_n:
                lo["network"] = lo_n
    if len(ctx) > (h is not None) + (u is not None) + (cl is not None) + (n is not None):
        _rest(ctx, _CONTEXT_KEYS, lo)
    if lo or not native:
        c.lo["context"] = lo


def _endpoints(c: _Ctx, src: Doc, out: Doc, lo: Doc, at: str) -> None:
    """src.source / src.destination -> out.src_endpoint / dst_endpoint (`at` prefixes the observable
    names); what an endpoint cannot hold stays in `lo`."""
    for key, attr in (("source", "src_endpoint"), ("destination", "dst_endpoint")):
        if key in src:
            lo_e: Doc = {}
            ep = _endpoint(c, src[key], lo_e, at + attr)
            if ep is None:
                lo[key] = src[key]
            else:
                out[attr] = ep
                if lo_e:
                    lo[key] = lo_e


def _net_context(c: _Ctx, n: Doc, lo: Doc) -> Doc | None:
    """context.network -> one Detection Finding evidence (src/dst endpoint, connection_info)."""
    out: Doc = {}
    _endpoints(c, n, out, lo, "evidences[0].")
    if "protocol" in n or "direction" in n:
        ci: Doc = _connection_info(n.get("direction"))
        if "protocol" in n:
            proto = n["protocol"]
            ci["protocol_name"] = low = proto.lower()
            if proto != low:
                lo["protocol"] = proto
        out["connection_info"] = ci
    if not _NET_CONTEXT_KEYS.issuperset(n):
        _rest(n, _NET_CONTEXT_KEYS, lo)
    return out or None


DIRECTION_CAPTION = ENUMS["connection_info.direction_id"]


def _connection_info(direction: str | None) -> Doc:
    ident = DIRECTION.get(direction, 0) if direction is not None else 0
    return {"direction_id": ident, "direction": DIRECTION_CAPTION[ident]}


def _set_attacks(c: _Ctx, doc: Doc, target: Doc | None = None) -> None:
    """Envelope `mitre` -> attacks[0]: in finding_info for findings (`target`), else the class's own
    `attacks` (security_control profile)."""
    m = c.event.get("mitre")
    if m is None:
        return
    lo: Doc = {}
    attack = _attack(m, lo)
    if attack is None:
        c.lo["mitre"] = m
        return
    if target is not None:
        target["attacks"] = [attack]
    else:
        doc["attacks"] = [attack]
        c.profiles |= SECURITY_CONTROL
    if lo:
        c.lo["mitre"] = lo


# --- per event type --------------------------------------------------------------------------------
_ALERT_KEYS = frozenset(("alert_id", "title", "description", "category", "status", "priority", "assignee",
                         "detection_rule", "indicators", "first_seen", "last_seen", "count"))
ALERT_STATUS_CAPTION = CLASS_STATUS[2004]


def _alert(c: _Ctx, d: Doc) -> Doc:
    doc = dict(HEADERS[2004, 1])
    lo: Doc = {}
    title = d["title"]
    fi: Doc = {"uid": d["alert_id"], "title": title, "types": [d["category"]]}
    doc["message"] = title
    if "description" in d:
        fi["desc"] = d["description"]
    if "first_seen" in d:
        _time(fi, "first_seen_time", d["first_seen"], lo, "first_seen")
    if "last_seen" in d:
        _time(fi, "last_seen_time", d["last_seen"], lo, "last_seen")
    if "detection_rule" in d:
        rule, lo_r = d["detection_rule"], {}
        if "id" in rule or "name" in rule:
            analytic: Doc = {"type_id": 1, "type": ENUMS["analytic.type_id"][1]}
            if "id" in rule:
                analytic["uid"] = rule["id"]
            if "name" in rule:
                analytic["name"] = rule["name"]
            if "version" in rule:
                analytic["version"] = rule["version"]
            fi["analytic"] = analytic
            if not _RULE_KEYS.issuperset(rule):
                _rest(rule, _RULE_KEYS, lo_r)
            if lo_r:
                lo["detection_rule"] = lo_r
        else:
            lo["detection_rule"] = rule
    _set_attacks(c, doc, fi)
    doc["finding_info"] = fi
    status = ALERT_STATUS[d["status"]]
    doc["status_id"] = status
    doc["status"] = ALERT_STATUS_CAPTION[status]
    if status == 3:
        doc["verdict_id"] = 1
        doc["verdict"] = ENUMS["verdict_id"][1]
    priority = PRIORITY[d["priority"]]
    doc["priority_id"] = priority
    doc["priority"] = "Info" if priority == 99 else ENUMS["priority_id"][priority]
    c.profiles |= INCIDENT
    if "assignee" in d:
        doc["assignee"] = {"name": d["assignee"]}
    if "count" in d:
        doc["count"] = d["count"]
    if "indicators" in d:
        items = d["indicators"]
        if items:
            doc["osint"] = _osint_list(c, items, lo, "indicators")
            c.profiles |= OSINT
        else:
            lo["indicators"] = items
    if not _ALERT_KEYS.issuperset(d):
        _rest(d, _ALERT_KEYS, lo)
    return _envelope(c, doc, lo, network="evidences")


_TI_KEYS = frozenset(("threat_type", "threat_name", "indicators", "ttps", "references", "first_seen", "last_seen"))
MALWARE_CLASS_CAPTION = ENUMS["malware.classification_ids"]


def _threat_intel(c: _Ctx, d: Doc) -> Doc:
    doc = dict(HEADERS[5021, 2])
    lo: Doc = {}
    kind, name = d["threat_type"], d["threat_name"]
    shared: Doc = {"category": kind}
    if kind in MALWARE_CLASS:
        ident = MALWARE_CLASS[kind]
        shared["malware"] = [{"name": name, "classification_ids": [ident],
                              "classifications": [MALWARE_CLASS_CAPTION[ident]]}]
    elif kind == "apt":
        shared["threat_actor"] = {"name": name}
    else:
        shared["campaign"] = {"name": name}
    if "ttps" in d:
        ttps, attacks = d["ttps"], []
        exact = bool(ttps)
        for ttp in ttps:
            lo_i: Doc = {}
            attack = _attack(ttp, lo_i)
            if attack is None or lo_i:
                exact = False
            if attack is not None:
                attacks.append(attack)
        if attacks:
            shared["attacks"] = attacks
        if not exact:
            lo["ttps"] = ttps
    if "references" in d:
        refs = d["references"]
        if refs:
            shared["references"] = list(refs)
        else:
            lo["references"] = refs
    items = d.get("indicators")
    if items:
        doc["osint"] = _osint_list(c, items, lo, "indicators", shared)
    else:
        if items is not None:
            lo["indicators"] = items
        doc["osint"] = [{"type_id": 99, "type": THREAT_PLACEHOLDER, "value": name, **shared}]
    c.profiles |= OSINT
    if "first_seen" in d:
        _time(doc, "start_time", d["first_seen"], lo, "first_seen")
    if "last_seen" in d:
        _time(doc, "end_time", d["last_seen"], lo, "last_seen")
    doc["message"] = name
    if not _TI_KEYS.issuperset(d):
        _rest(d, _TI_KEYS, lo)
    _set_attacks(c, doc)
    return _envelope(c, doc, lo)


_CVSS_KEYS = frozenset(("version", "score", "vector", "severity", "base_score", "temporal_score", "environmental_score"))
_VULN_KEYS = frozenset(("vuln_id", "title", "description", "cvss", "cwe", "affected_products", "exploit_available",
                        "exploit_details", "patch_available", "patch_details", "references", "published", "modified"))
_PRODUCT_KEYS = frozenset(("vendor", "product", "versions", "cpe"))


def _vulnerability(c: _Ctx, d: Doc) -> Doc:
    doc = dict(HEADERS[2002, 1])
    lo: Doc = {}
    title, vuln_id = d["title"], d["vuln_id"]
    fi: Doc = {"uid": c.event["id"], "title": title}
    doc["finding_info"] = fi
    doc["message"] = title
    cve: Doc = {"uid": vuln_id}
    c.ob("vulnerabilities[0].cve.uid", 18, vuln_id)
    vuln: Doc = {"cve": cve, "title": title}
    cvss, lo_cv = d["cvss"], {}
    score, version = cvss["score"], cvss["version"]
    base = cvss.get("base_score", score)
    first = {"version": version, "base_score": base, "overall_score": score, "depth": "Base",
             "severity": cvss["severity"].capitalize()}
    entries = [first]
    if "vector" in cvss:
        first["vector_string"] = cvss["vector"]
    if "base_score" in cvss and base == score:
        lo_cv["base_score"] = base               # the reader writes base_score only when it differs from the score
    if "temporal_score" in cvss:
        entries.append({"version": version, "base_score": base, "overall_score": cvss["temporal_score"],
                        "depth": "Temporal"})
    if "environmental_score" in cvss:
        entries.append({"version": version, "base_score": base, "overall_score": cvss["environmental_score"],
                        "depth": "Environmental"})
    cve["cvss"] = entries
    if not _CVSS_KEYS.issuperset(cvss):
        _rest(cvss, _CVSS_KEYS, lo_cv)
    if lo_cv:
        lo["cvss"] = lo_cv
    if "cwe" in d:
        if d["cwe"]:
            cve["related_cwes"] = [{"uid": w} for w in d["cwe"]]
        else:
            lo["cwe"] = d["cwe"]
    if "published" in d:
        _time(cve, "created_time", d["published"], lo, "published")
    if "modified" in d:
        _time(cve, "modified_time", d["modified"], lo, "modified")
    if "description" in d:
        vuln["desc"] = d["description"]
    if "affected_products" in d:
        products = d["affected_products"]
        packages, exact, last = [], bool(products), None
        for p in products:
            key = (p.get("product"), p.get("vendor"), p.get("cpe"))
            versions = p.get("versions") or []
            if not versions or key == last or not _PRODUCT_KEYS.issuperset(p):
                exact = False
            last = key
            for v in versions:
                pkg = {"name": p["product"], "version": v, "vendor_name": p["vendor"]}
                if "cpe" in p:
                    pkg["cpe_name"] = p["cpe"]
                packages.append(pkg)
        if packages:
            vuln["affected_packages"] = packages
        else:
            exact = False
        if not exact:
            lo["affected_products"] = products
    if "exploit_available" in d:
        vuln["is_exploit_available"] = d["exploit_available"]
    if "exploit_details" in d:
        x, lo_x = d["exploit_details"], {}
        if "type" in x:
            vuln["exploit_type"] = x["type"]
        if "url" in x:
            vuln["exploit_ref_url"] = x["url"]
        if not _EXPLOIT_KEYS.issuperset(x):
            _rest(x, _EXPLOIT_KEYS, lo_x)
        _put(lo, "exploit_details", lo_x, "type" in x or "url" in x)
    if "patch_available" in d:
        vuln["is_fix_available"] = d["patch_available"]
    if "patch_details" in d:
        pd, lo_p = d["patch_details"], {}
        workarounds = pd.get("workarounds")
        if workarounds:
            remediation: Doc = {"desc": "\n".join(workarounds)}
            for w in workarounds:
                if "\n" in w:
                    lo_p["workarounds"] = workarounds
                    break
            if "vendor_url" in pd:
                remediation["references"] = [pd["vendor_url"]]
            vuln["remediation"] = remediation
            if not _PATCH_KEYS.issuperset(pd):
                _rest(pd, _PATCH_KEYS, lo_p)
            if lo_p:
                lo["patch_details"] = lo_p
        else:
            lo["patch_details"] = pd
    if "references" in d:
        if d["references"]:
            vuln["references"] = list(d["references"])
        else:
            lo["references"] = d["references"]
    doc["vulnerabilities"] = [vuln]
    if not _VULN_KEYS.issuperset(d):
        _rest(d, _VULN_KEYS, lo)
    _set_attacks(c, doc, fi)
    return _envelope(c, doc, lo)


_INCIDENT_KEYS = frozenset(("incident_id", "title", "description", "category", "status", "priority", "iocs",
                            "created_at", "updated_at", "closed_at", "lead_analyst"))
_IMPACT_LEVEL = {"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
INCIDENT_STATUS_CAPTION = CLASS_STATUS[2005]


def _incident(c: _Ctx, d: Doc) -> Doc:
    doc = dict(HEADERS[2005, 1])
    lo: Doc = {}
    title = d["title"]
    fi: Doc = {"uid": d["incident_id"], "title": title, "types": [d["category"]]}
    doc["message"] = title
    if "description" in d:
        fi["desc"] = d["description"]
    if "created_at" in d:
        _time(fi, "created_time", d["created_at"], lo, "created_at")
    if "updated_at" in d:
        _time(fi, "modified_time", d["updated_at"], lo, "updated_at")
    if "closed_at" in d:
        _time(doc, "end_time", d["closed_at"], lo, "closed_at")
    _set_attacks(c, doc, fi)
    doc["finding_info_list"] = [fi]
    wia_status = d["status"]
    status = INCIDENT_STATUS[wia_status]
    doc["status_id"] = status
    doc["status"] = INCIDENT_STATUS_CAPTION[status]
    doc["status_detail"] = wia_status
    priority = PRIORITY[d["priority"]]
    doc["priority_id"] = priority
    doc["priority"] = ENUMS["priority_id"][priority]
    impact = d.get("impact")
    if impact:
        levels = [_IMPACT_LEVEL[impact[k]] for k in ("availability", "confidentiality", "integrity") if k in impact]
        if levels and max(levels):
            doc["impact_id"] = max(levels)
            doc["impact"] = ENUMS["impact_id"][max(levels)]
    if "lead_analyst" in d:
        doc["assignee"] = {"name": d["lead_analyst"]}
        c.ob("assignee.name", 4, d["lead_analyst"])
    else:
        doc["assignee_group"] = {"name": "Unassigned"}    # Incident Finding needs an assignee or a group
    if "iocs" in d:
        if d["iocs"]:
            doc["osint"] = _osint_list(c, d["iocs"], lo, "iocs")
            c.profiles |= OSINT
        else:
            lo["iocs"] = d["iocs"]
    if not _INCIDENT_KEYS.issuperset(d):
        _rest(d, _INCIDENT_KEYS, lo)
    return _envelope(c, doc, lo)


_NET_KEYS = frozenset(("event_type", "protocol", "direction", "action", "source", "destination", "bytes_sent",
                       "bytes_received", "packets_sent", "packets_received", "duration_ms", "rule_matched",
                       "application"))
_NET_ALL_KEYS = _NET_KEYS | {"url", "http", "dns", "tls"}       # the keys _network_event reads


_CONNECTION_ACTIVITY = {None: 6, "allowed": 1, "blocked": 5, "dropped": 5, "reset": 3}   # Traffic / Open / Refuse / Reset


def _network_activity(uid: int, d: Doc) -> int:
    if uid == 4002:
        return HTTP_ACTIVITY.get((d.get("http") or {}).get("method"), 0)
    if uid == 4003:
        dns = d.get("dns")
        if dns is None:
            return 0
        return 2 if "response" in dns or "response_code" in dns else 1
    if uid == 4008:                       # FTP activities are commands WIA does not report
        return 0
    if uid == 4005:                       # RDP activities are protocol steps WIA does not report
        return 6
    return _CONNECTION_ACTIVITY[d.get("action")]


ACTION_CAPTION = ENUMS["action_id"]
DISPOSITION_CAPTION = ENUMS["disposition_id"]


def _network_event(c: _Ctx, d: Doc) -> Doc:
    kind = d["event_type"]
    uid = NETWORK_CLASS[kind]
    doc = dict(HEADERS[uid, _network_activity(uid, d)])
    lo: Doc = {}
    _endpoints(c, d, doc, lo, "")
    ci = _connection_info(d.get("direction"))
    proto = d["protocol"]
    ci["protocol_name"] = proto.lower()
    if proto in PROTOCOL_NUMBER:
        ci["protocol_num"] = PROTOCOL_NUMBER[proto]
    doc["connection_info"] = ci
    if "action" in d:
        action_id, disposition_id = ACTION[d["action"]]
        doc["action_id"] = action_id
        doc["action"] = ACTION_CAPTION[action_id]
        doc["disposition_id"] = disposition_id
        doc["disposition"] = DISPOSITION_CAPTION[disposition_id]
        c.profiles |= SECURITY_CONTROL
    traffic: Doc = {}
    if "bytes_sent" in d:
        traffic["bytes_out"] = d["bytes_sent"]
    if "bytes_received" in d:
        traffic["bytes_in"] = d["bytes_received"]
    if "packets_sent" in d:
        traffic["packets_out"] = d["packets_sent"]
    if "packets_received" in d:
        traffic["packets_in"] = d["packets_received"]
    if traffic:
        if "bytes_out" in traffic and "bytes_in" in traffic:
            traffic["bytes"] = traffic["bytes_out"] + traffic["bytes_in"]
        if "packets_out" in traffic and "packets_in" in traffic:
            traffic["packets"] = traffic["packets_out"] + traffic["packets_in"]
        doc["traffic"] = traffic
    if "duration_ms" in d:
        doc["duration"] = d["duration_ms"]
    if "rule_matched" in d:
        doc["firewall_rule"] = {"name": d["rule_matched"]}
        c.profiles |= SECURITY_CONTROL
    if "application" in d:
        doc["app_name"] = d["application"]
    if kind == "smtp":
        doc["app_protocol_name"] = "smtp"
    url = d.get("url")
    http = d.get("http")
    if uid == 4002:
        request: Doc = {}
        if url is not None:
            request["url"] = {"url_string": url}
            c.ob("http_request.url.url_string", 6, url)
        if http is not None:
            lo_h: Doc = {}
            native = _http(c, http, doc, request, lo_h)
            _put(lo, "http", lo_h, native)
        if request:
            doc["http_request"] = request
    else:
        if url is not None:
            if uid == 4001:
                doc["url"] = {"url_string": url}
                c.ob("url.url_string", 6, url)
            else:
                lo["url"] = url
        if http is not None:
            lo["http"] = http
    if "dns" in d:
        if uid == 4003:
            lo_d: Doc = {}
            _put(lo, "dns", lo_d, _dns(c, d["dns"], doc, lo_d))
        else:
            lo["dns"] = d["dns"]
    if "tls" in d:
        tls, lo_t = d["tls"], {}
        if "version" in tls:
            out = {"version": tls["version"]}
            if "cipher" in tls:
                out["cipher"] = tls["cipher"]
            if "sni" in tls:
                out["sni"] = tls["sni"]
                c.ob("tls.sni", 1, tls["sni"])
            doc["tls"] = out
            if not _TLS_KEYS.issuperset(tls):
                _rest(tls, _TLS_KEYS, lo_t)    # certificate: OCSF needs a serial number
            if lo_t:
                lo["tls"] = lo_t
        else:
            lo["tls"] = tls
    if not _NET_ALL_KEYS.issuperset(d):
        _rest(d, _NET_ALL_KEYS, lo)
    _set_attacks(c, doc)
    return _envelope(c, doc, lo, event_code=kind)


def _http(c: _Ctx, h: Doc, doc: Doc, request: Doc, lo: Doc) -> bool:
    native = False
    if "method" in h:
        request["http_method"] = h["method"]
        native = True
    if "user_agent" in h:
        request["user_agent"] = h["user_agent"]
        native = True
    if "referer" in h:
        request["referrer"] = h["referer"]
        native = True
    if "user_agent" in h:
        c.ob("http_request.user_agent", 16, h["user_agent"])
    if "status_code" in h:
        response = {"code": h["status_code"]}
        if "content_type" in h:
            response["content_type"] = h["content_type"]
        doc["http_response"] = response
        doc["http_status"] = h["status_code"]
        native = True
    elif "content_type" in h:
        lo["content_type"] = h["content_type"]
    if not _HTTP_KEYS.issuperset(h):
        _rest(h, _HTTP_KEYS, lo)
    return native


def _dns(c: _Ctx, dns: Doc, doc: Doc, lo: Doc) -> bool:
    native = False
    if "query" in dns:
        query = {"hostname": dns["query"]}
        c.ob("query.hostname", 1, dns["query"])
        if "query_type" in dns:
            query["type"] = dns["query_type"]
        doc["query"] = query
        native = True
    elif "query_type" in dns:
        lo["query_type"] = dns["query_type"]
    if "response" in dns:
        if dns["response"]:
            doc["answers"] = [{"rdata": r} for r in dns["response"]]
            native = True
        else:
            lo["response"] = dns["response"]
    if "response_code" in dns:
        rcode = RCODE[dns["response_code"]]
        doc["rcode_id"] = rcode
        doc["rcode"] = ENUMS["rcode_id"][rcode]
        native = True
    if not _DNS_KEYS.issuperset(dns):
        _rest(dns, _DNS_KEYS, lo)
    return native


_ENDPOINT_EVENT_KEYS = frozenset(("event_type", "host", "process"))
_CONNECTION_KEYS = frozenset(("direction", "protocol", "local_ip", "local_port", "remote_ip", "remote_port"))


def _endpoint_event(c: _Ctx, d: Doc) -> Doc:
    kind = d["event_type"]
    lo: Doc = {}
    lo_h: Doc = {}
    device = _device(c, d["host"], lo_h)
    lo_p: Doc = {}
    process = _process(c, d["process"], lo_p, "process" if kind.startswith("process") else "actor.process") \
        if "process" in d else None
    taken: set[str] = set()               # the data keys the chosen class holds natively
    doc: Doc | None = None
    if kind in ("process_creation", "process_termination") and process is not None:
        doc = dict(HEADERS[1007, 1 if kind == "process_creation" else 2])
        doc["process"] = process
        parent = process.get("parent_process")
        if parent is not None:
            c.actor["process"] = parent
    elif kind in FILE_ACTIVITY and "file" in d:
        lo_f: Doc = {}
        file = _file(c, d["file"], lo_f, "file")
        if file is not None:
            doc = dict(HEADERS[1001, FILE_ACTIVITY[kind]])
            doc["file"] = file
            taken.add("file")
            if lo_f:
                lo["file"] = lo_f
    elif kind in REG_KEY_ACTIVITY and "registry" in d and type(d["registry"].get("key")) is str:
        doc = _registry(c, kind, d["registry"], lo)
        taken.add("registry")
    elif kind == "network_connection" and "network_connection" in d:
        doc = _connection(c, d["network_connection"], lo)
        if doc is not None:
            taken.add("network_connection")
    elif kind == "dll_load":
        doc = dict(HEADERS[1005, 1])
        module: Doc = {"load_type_id": 0}
        if "dll" in d:
            lo_dl: Doc = {}
            file = _dll(c, d["dll"], lo_dl)
            if file is None:
                lo["dll"] = d["dll"]
            else:
                module["file"] = file
                if lo_dl:
                    lo["dll"] = lo_dl
            taken.add("dll")
        doc["module"] = module
    elif kind == "driver_load" and "file" in d:
        lo_f = {}
        file = _file(c, d["file"], lo_f, "driver.file")
        if file is not None:
            doc = dict(HEADERS[1002, 1])
            doc["driver"] = {"file": file}
            taken.add("file")
            if lo_f:
                lo["file"] = lo_f
    elif kind == "service_install":
        doc = dict(HEADERS[201004, 1])
        service: Doc = {"name": UNKNOWN_SERVICE}
        if "file" in d:
            lo_f = {}
            file = _file(c, d["file"], lo_f, "win_service.service_file")
            if file is not None:
                service["service_file"] = file
                taken.add("file")
                if lo_f:
                    lo["file"] = lo_f
        doc["win_service"] = service
    if doc is None:
        # The event type's class needs an object this event does not carry: Process Activity "Other"
        # when the process is known, else Device Inventory Info "Other" (activity_name = the WIA event type).
        doc = header(1007, 99, kind) if process is not None else header(5001, 99, kind)
        if process is not None:
            doc["process"] = process
    if process is not None:
        if "process" not in doc:
            c.actor["process"] = process
        if lo_p:
            lo["process"] = lo_p
    elif "process" in d:
        lo["process"] = d["process"]
    if device is None:                    # cannot happen for a valid event (hostname is required)
        raise ConversionError("ocsf", "endpoint_event data.host needs a hostname", path="/data/host/hostname")
    doc["device"] = device
    c.profiles |= HOST
    if lo_h:
        lo["host"] = lo_h
    if not _ENDPOINT_EVENT_KEYS.issuperset(d):
        for k in d:
            if k not in _ENDPOINT_EVENT_KEYS and k not in taken and k not in lo:
                lo[k] = d[k]
    _set_attacks(c, doc)
    out = _envelope(c, doc, lo, host=False, event_code=kind)
    if "actor" not in out:              # System Activity classes require an actor; WIA names no acting process or user
        out["actor"] = {"app_name": c.event["source"]["name"]}
    if "process" in out and process is not None and not kind.startswith("process"):
        for ob in c.obs:                # the fallback class holds the process itself, not as the actor
            if ob["name"].startswith("actor.process."):
                ob["name"] = ob["name"][6:]
    return out


def _registry(c: _Ctx, kind: str, reg: Doc, lo: Doc) -> Doc:
    lo_r: Doc = {}
    key = reg["key"]
    c.ob("reg_key.path" if "value_name" not in reg else "reg_value.path", 46, key)
    if "value_name" in reg:
        doc = dict(HEADERS[201002, REG_VALUE_ACTIVITY[kind]])
        value: Doc = {"path": key, "name": reg["value_name"]}
        if "value_type" in reg:
            ident = REG_TYPE[reg["value_type"]]
            value["type_id"] = ident
            value["type"] = ENUMS["reg_value.type_id"][ident]
        if "value_data" in reg:
            value["data"] = reg["value_data"]
        doc["reg_value"] = value
        if "previous_data" in reg:
            doc["prev_reg_value"] = {"path": key, "name": reg["value_name"], "data": reg["previous_data"]}
        if not _REG_VALUE_KEYS.issuperset(reg):
            _rest(reg, _REG_VALUE_KEYS, lo_r)
    else:
        doc = dict(HEADERS[201001, REG_KEY_ACTIVITY[kind]])
        doc["reg_key"] = {"path": key}
        if not _REG_KEY_KEYS.issuperset(reg):
            _rest(reg, _REG_KEY_KEYS, lo_r)
    if lo_r:
        lo["registry"] = lo_r
    return doc


def _connection(c: _Ctx, n: Doc, lo: Doc) -> Doc | None:
    """endpoint network_connection -> Network Activity: local is the source unless the direction is inbound."""
    inbound = n.get("direction") == "inbound"
    lo_n: Doc = {}
    sides = {}
    for side, ip_key, port_key in (("local", "local_ip", "local_port"), ("remote", "remote_ip", "remote_port")):
        ip, port = n.get(ip_key), n.get(port_key)
        ep: Doc = {}
        if ip is not None:
            if is_ip(ip):
                ep["ip"] = ep["name"] = ip
            else:
                lo_n[ip_key] = ip
        if port is not None:
            if ep and is_port(port):
                ep["port"] = port
            else:
                lo_n[port_key] = port
        if ep:
            sides[side] = ep
    if not sides:
        return None
    doc = dict(HEADERS[4001, 1])
    for side, attr in (("local", "dst_endpoint" if inbound else "src_endpoint"),
                       ("remote", "src_endpoint" if inbound else "dst_endpoint")):
        if side in sides:
            doc[attr] = sides[side]
            c.ob(attr + ".ip", 2, sides[side]["ip"])
    ci = _connection_info(n.get("direction"))
    if "protocol" in n:
        ci["protocol_name"] = n["protocol"].lower()
        ci["protocol_num"] = PROTOCOL_NUMBER[n["protocol"]]
    doc["connection_info"] = ci
    if not _CONNECTION_KEYS.issuperset(n):
        _rest(n, _CONNECTION_KEYS, lo_n)
    if lo_n:
        lo["network_connection"] = lo_n
    return doc


def _dll(c: _Ctx, dll: Doc, lo: Doc) -> Doc | None:
    lo_f: Doc = {}
    file = _file(c, {k: v for k, v in dll.items() if k in ("path", "name", "hash")}, lo_f, "module.file")
    if file is None:
        return None
    lo.update(lo_f)
    if dll.get("signed") is True:
        file["signature"] = {"algorithm_id": 0}
    elif "signed" in dll:
        lo["signed"] = dll["signed"]
    if not _DLL_KEYS.issuperset(dll):
        _rest(dll, _DLL_KEYS, lo)
    return file


_AUTH_KEYS = frozenset(("event_type", "result", "failure_reason", "user", "source", "target", "auth_method",
                        "mfa_used", "mfa_method", "session_id", "logon_type", "attempt_count", "risk_score"))
_3002_ONLY = ("target", "auth_method", "mfa_used", "session_id", "logon_type")
_AUTH_ENDPOINT_KEYS = frozenset(("ip", "hostname", "geo"))          # of data.source: the src_endpoint
_AUTH_SOURCE_KEYS = _AUTH_ENDPOINT_KEYS | {"user_agent", "device_type"}


def _auth_event(c: _Ctx, d: Doc) -> Doc:
    kind = d["event_type"]
    uid, activity = AUTH_CLASS[kind]
    doc = dict(HEADERS[uid, activity]) if activity != 99 else header(uid, activity, kind)
    lo: Doc = {}
    lo_u: Doc = {}
    user = _user(c, d["user"], lo_u, "user")
    if user is None:
        lo["user"] = d["user"]
        user = {"name": "Unknown"}                # unreachable for a valid event (user.name is required)
    else:
        if lo_u:
            lo["user"] = lo_u
    doc["user"] = user
    status = 1 if d["result"] == "success" else 2
    doc["status_id"] = status
    doc["status"] = CLASS_STATUS[uid][status]
    if "failure_reason" in d:
        doc["status_detail"] = d["failure_reason"]
    request: Doc = {}
    if "source" in d:
        src, lo_s = d["source"], {}
        on_endpoint = src if _AUTH_ENDPOINT_KEYS.issuperset(src) else \
            {k: v for k, v in src.items() if k in _AUTH_ENDPOINT_KEYS}
        ep = _endpoint(c, on_endpoint, lo_s, "src_endpoint")
        if not _AUTH_SOURCE_KEYS.issuperset(src):
            _rest(src, _AUTH_SOURCE_KEYS, lo_s)
        if "user_agent" in src:
            request["user_agent"] = src["user_agent"]
            c.ob("http_request.user_agent", 16, src["user_agent"])
        if ep is not None:
            if "device_type" in src:
                ident = DEVICE_TYPE[src["device_type"]]
                ep["type_id"] = ident
                ep["type"] = ENUMS["network_endpoint.type_id"][ident]
            doc["src_endpoint"] = ep
            if lo_s:
                lo["source"] = lo_s
        else:
            lo_s = {k: v for k, v in src.items() if k != "user_agent"}
            _put(lo, "source", lo_s, "user_agent" in src)
    if uid == 3002:
        target, lo_t = d["target"], {}
        ip = target.get("ip")
        target_type, target_name = target["type"], target["name"]
        if target_type == "host":
            dst: Doc = {"hostname": target_name, "name": target_name}
            c.ob("dst_endpoint.hostname", 1, target_name)
        else:
            doc["service"] = {"name": target_name}
            dst = {}
            if target_type != "application":
                lo_t["type"] = target_type
        if ip is not None:
            if is_ip(ip):
                dst["ip"] = ip
                dst.setdefault("name", ip)
                c.ob("dst_endpoint.ip", 2, ip)
            else:
                lo_t["ip"] = ip
        if dst:
            doc["dst_endpoint"] = dst
        if "url" in target:
            request["url"] = {"url_string": target["url"]}
            c.ob("http_request.url.url_string", 6, target["url"])
        if not _TARGET_KEYS.issuperset(target):
            _rest(target, _TARGET_KEYS, lo_t)
        if lo_t:
            lo["target"] = lo_t
        if "auth_method" in d:
            method = d["auth_method"]
            ident = 6 if method == "oauth" else 99
            doc["auth_protocol_id"] = ident
            doc["auth_protocol"] = ENUMS["auth_protocol_id"][6] if ident == 6 else method
        if "mfa_used" in d:
            doc["is_mfa"] = d["mfa_used"]
        if "session_id" in d:
            doc["session"] = {"uid": d["session_id"]}
        if "logon_type" in d:
            ident = LOGON_TYPE[d["logon_type"]]
            doc["logon_type_id"] = ident
            doc["logon_type"] = ENUMS["logon_type_id"][ident]
    else:
        for k in _3002_ONLY:
            if k in d:
                lo[k] = d[k]
    if "attempt_count" in d:
        doc["count"] = d["attempt_count"]
    if request:
        doc["http_request"] = request
    if "mfa_method" in d:
        ident = MFA_FACTOR[d["mfa_method"]]
        factor: Doc = {"factor_type_id": ident, "factor_type": ENUMS["auth_factor.factor_type_id"][ident]}
        if ident == 7:
            factor["is_totp"] = True
        doc["auth_factors"] = [factor]
    if "risk_score" in d:
        risk = d["risk_score"]
        ident = band_id(risk, RISK_BANDS)
        doc["risk_level_id"] = ident
        doc["risk_level"] = ENUMS["risk_level_id"][ident]
        doc["risk_score"] = score = round(risk * 100)
        if score / 100 != risk:
            lo["risk_score"] = risk
        c.profiles |= SECURITY_CONTROL
    if not _AUTH_KEYS.issuperset(d):
        _rest(d, _AUTH_KEYS, lo)
    _set_attacks(c, doc)
    return _envelope(c, doc, lo, event_code=kind)


BUILDERS: dict[str, Callable[[_Ctx, Doc], Doc]] = {
    "alert": _alert, "threat_intel": _threat_intel, "vulnerability": _vulnerability, "incident": _incident,
    "network_event": _network_event, "endpoint_event": _endpoint_event, "auth_event": _auth_event,
}


def to_ocsf(event: Doc, *, unmapped: bool = True) -> Doc:
    """One OCSF 1.8.0 event for a (schema-valid) WIA event dict. `unmapped=False` leaves out the
    `unmapped.wia` patch: plain OCSF, from which only the documented fields come back."""
    try:
        build = BUILDERS[event["type"]]
    except (KeyError, TypeError, IndexError):        # no type, a type OCSF has no class for, or not a dict
        build = None
    if build is None or not isinstance(event, dict):
        raise ConversionError("ocsf", f"no OCSF mapping for event type {event.get('type') if isinstance(event, dict) else event!r}",
                              path="/type")
    try:
        doc = build(_Ctx(event), event["data"])
    except ConversionError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ConversionError("ocsf", f"not a valid WIA {event['type']} event ({type(exc).__name__}: {exc}); "
                              "validate it first") from None
    if not unmapped:
        doc.pop("unmapped", None)
    return doc
