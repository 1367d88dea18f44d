"""WIA event -> STIX 2.1 objects, one function per event type; every object passes the OASIS validator in strict mode.

The mapping table, with the reason for every choice, is docs/formats/stix.md. In short:
threat_intel -> malware | intrusion-set | campaign + indicators (`indicates`) + attack-patterns
(`uses`); alert -> sighting of an attack-pattern (ATT&CK, else one describing the detection) +
indicators (`indicates`) + observed-data; vulnerability -> vulnerability; incident -> incident with
the OASIS Incident Core extension; network/endpoint/auth events -> observed-data with SCOs. The
source becomes an `identity` that creates (and, for sightings, saw) the objects.

Values STIX cannot carry (a hash that is not hex, an e-mail address that is not one, ...) are left
out of the native objects; the WIA property extension then keeps them, and without it
(`wia_extension=False`) they raise ConversionError, so nothing is lost silently.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ...attack import table as attack_table
from ...errors import ConversionError
from .._wia_paths import out_of_range_error
from .ids import derived_id, later, stix_time, typed_sco_id
from .patterns import PatternValueError, expand_hive, hash_algorithm, ip_kind, pattern_for

#: Incident Core Extension (OASIS cti-stix-common-objects, extension-definition-specifications/incident-core)
INCIDENT_CORE_EXTENSION = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
#: This project's property extension that carries the whole WIA event on its primary STIX object.
WIA_EXTENSION = "extension-definition--cc81bf2d-d69a-473c-8d32-22ce2f8edc70"
#: `created`/`modified` of the objects shared between events (identities, the extension definition):
#: a constant, so the same id always names the same content.
SHARED_TIME = "2025-12-16T00:00:00.000Z"

WIA_IDENTITY_ID = derived_id("identity", "wia-security")
WIA_IDENTITY = {
    "type": "identity", "spec_version": "2.1", "id": WIA_IDENTITY_ID, "created": SHARED_TIME,
    "modified": SHARED_TIME, "name": "wia-security", "identity_class": "organization",
    "description": "The wia-security project, which defines the WIA Security event property extension.",
}
WIA_EXTENSION_DEFINITION = {
    "type": "extension-definition", "spec_version": "2.1", "id": WIA_EXTENSION,
    "created_by_ref": WIA_IDENTITY_ID, "created": SHARED_TIME, "modified": SHARED_TIME,
    "name": "WIA Security event",
    "description": "The WIA Security 1.0.0 event this object was converted from, kept whole under the "
                   "property `event` so that converting back loses nothing.",
    "schema": "https://wia.live/security/v1/schema.json", "version": "1.0.0",
    "extension_types": ["property-extension"],
}

ATTACK_SOURCE = "mitre-attack"
LOCKHEED_PHASES = frozenset({"reconnaissance", "weaponization", "delivery", "exploitation", "installation",
                             "command-and-control", "actions-on-objectives"})
#: threat_type -> (SDO type, malware_types)
THREAT_OBJECTS = {
    "malware": ("malware", ["unknown"]), "ransomware": ("malware", ["ransomware"]), "botnet": ("malware", ["bot"]),
    "apt": ("intrusion-set", None), "campaign": ("campaign", None), "phishing": ("campaign", None),
}
#: network_event.event_type -> application protocol name (IANA service names)
APP_PROTOCOLS = {"http": "http", "dns": "dns", "tls": "tls", "smtp": "smtp", "ftp": "ftp", "ssh": "ssh", "rdp": "rdp"}
#: Protocol names that are IANA service names (what network-traffic `protocols` SHOULD hold).
IANA_PROTOCOLS = frozenset({"ipv4", "ipv6", "tcp", "udp", "icmp", "esp", "sctp", "http", "https", "dns", "tls",
                            "ssl", "ssh", "ftp", "smtp", "rdp", "smb", "ldap", "ldaps", "kerberos", "ntp", "snmp",
                            "imap", "imaps", "pop3", "pop3s", "sip", "telnet", "syslog", "mqtt", "submission",
                            "domain", "bgp", "dhcp", "tftp", "nfs", "vnc", "irc", "xmpp", "socks"})
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
_NOT_HEX = re.compile(r"[^0-9a-f]")
_PRIORITY_CRITICALITY = {"critical": 100, "high": 75, "medium": 50, "low": 25}
_INVESTIGATION_STATUS = {"new": "new", "closed": "closed"}   # everything else is "open"


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _is_hostname(value: str) -> bool:
    name = value.rstrip(".")
    if name.isascii():
        # What the idna codec does with an ASCII name (it refuses labels of 64 characters or more,
        # which _LABEL can let through when they end in a newline), without the codec's overhead.
        return 0 < len(name) <= 253 and all(len(label) < 64 and _LABEL.match(label) for label in name.split("."))
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return 0 < len(ascii_name) <= 253 and all(_LABEL.match(label) for label in ascii_name.split("."))


class Writer:
    """Builds the STIX objects of one WIA event (one instance per event; not reused)."""

    def __init__(self, event: dict[str, Any], *, wia_extension: bool = True) -> None:
        self.event = event
        self.data: dict[str, Any] = event.get("data") or {}
        self.event_id: str = event["id"]
        self.time = stix_time(event["timestamp"])
        self.wia_extension = wia_extension
        self.objects: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self.identity = self._source_identity()

    # -- plumbing ---------------------------------------------------------------------------------
    def fail(self, path: str, reason: str) -> None:
        """A value STIX cannot carry: fine when the WIA extension keeps it, an error otherwise."""
        if not self.wia_extension:
            raise ConversionError("stix", f"{reason} (the WIA extension, off here, would keep it)", path=path)

    def add(self, obj: dict[str, Any]) -> str:
        oid = obj["id"]
        if oid not in self._seen:
            self._seen.add(oid)
            self.objects.append(obj)
        return oid

    def sdo(self, stix_type: str, role: str, **props: Any) -> dict[str, Any]:
        obj = {"type": stix_type, "spec_version": "2.1", "id": derived_id(stix_type, self.event_id, role),
               "created_by_ref": self.identity, "created": self.time, "modified": self.time}
        for key, value in props.items():
            if value is not None:
                obj[key] = value
        return obj

    def sco(self, sco_type: str, **props: Any) -> str:
        props = {k: v for k, v in props.items() if v is not None}
        return self.add({"type": sco_type, "spec_version": "2.1", "id": typed_sco_id(sco_type, props), **props})

    def relate(self, source: str, rel: str, target: str) -> str:
        return self.add(self.sdo("relationship", f"{rel}|{source}|{target}", relationship_type=rel,
                                 source_ref=source, target_ref=target))

    def finish(self, primary: dict[str, Any]) -> list[dict[str, Any]]:
        """Adds envelope-level properties to the primary object and returns all objects, primary last."""
        meta = self.event.get("meta") or {}
        if isinstance(meta.get("confidence"), (int, float)):
            primary["confidence"] = round(meta["confidence"] * 100)
        if meta.get("tags"):
            primary["labels"] = list(meta["tags"])
        if self.wia_extension:
            self.add(WIA_IDENTITY)
            self.add(WIA_EXTENSION_DEFINITION)
            primary.setdefault("extensions", {})[WIA_EXTENSION] = {
                "extension_type": "property-extension", "event": self.event}
        self.add(primary)
        return self.objects

    def _source_identity(self) -> str:
        src = self.event.get("source") or {}
        name = src.get("name") or "unknown"
        ident = {"type": "identity", "spec_version": "2.1",
                 "id": derived_id("identity", "source", src.get("type", ""), name, src.get("vendor", ""),
                                  src.get("version", "")),
                 "created": SHARED_TIME, "modified": SHARED_TIME, "name": name, "identity_class": "system"}
        described = " ".join([p for p in (src.get("vendor"), name, src.get("version")) if p])
        if described != name:
            ident["description"] = described
        return self.add(ident)

    # -- shared pieces --------------------------------------------------------------------------------
    def attack_pattern(self, technique_id: str, name: str | None = None, tactic: str | None = None,
                       role: str = "mitre") -> str:
        """An ATT&CK technique as an attack-pattern (name and tactics from ATT&CK v18.1 when it knows the id).

        Its id derives from the event id like every SDO's: shared attack-patterns would tie the
        indicators of different events together and make a bundle of many events ambiguous."""
        tech = attack_table().technique(technique_id)
        if tech is not None:
            name, tactics = tech.name, list(tech.tactic_ids)
            url = tech.url
        else:
            tactics = [tactic] if tactic else []
            url = f"https://attack.mitre.org/techniques/{technique_id.replace('.', '/')}"
        phases = []
        for tactic_id in tactics:
            tac = attack_table().tactic(tactic_id)
            if tac is not None:
                phases.append({"kill_chain_name": ATTACK_SOURCE, "phase_name": tac.shortname})
        obj = self.sdo("attack-pattern", f"technique|{role}|{technique_id.upper()}", name=name or technique_id,
                       external_references=[{"source_name": ATTACK_SOURCE, "external_id": technique_id.upper(),
                                             "url": url}])
        if phases:
            obj["kill_chain_phases"] = phases
        return self.add(obj)

    def mitre_pattern(self) -> str | None:
        mitre = self.event.get("mitre") or {}
        tech = mitre.get("sub_technique") or mitre.get("technique")
        if not tech:
            return None
        name = mitre.get("sub_technique_name") if mitre.get("sub_technique") else mitre.get("technique_name")
        return self.attack_pattern(tech, name, mitre.get("tactic"))

    def kill_chain_phase(self, phase: str) -> dict[str, str] | None:
        # Lockheed Martin's names first: "command-and-control" is both a phase there and an ATT&CK
        # tactic, and the WIA samples use the Lockheed chain (delivery, installation, ...).
        name = re.sub(r"[\s_]+", "-", phase.strip().lower())
        if name in LOCKHEED_PHASES:
            return {"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": name}
        tac = attack_table().tactic(name)
        if tac is not None:
            return {"kill_chain_name": ATTACK_SOURCE, "phase_name": tac.shortname}
        if not name.islower():      # section 3.3: lower case with hyphens (needs at least one letter)
            return None
        return {"kill_chain_name": "wia-security", "phase_name": name}

    def indicator(self, index: int, path: str, ind: dict[str, Any], description: str | None,
                  phase: str | None) -> str | None:
        wia_type, value = ind.get("type"), ind.get("value")
        try:
            pattern = pattern_for(wia_type, value)
        except PatternValueError as exc:
            self.fail(f"{path}/value", str(exc))
            return None
        valid_from = stix_time(ind["first_seen"]) if ind.get("first_seen") else self.time
        obj = self.sdo("indicator", f"indicator|{index}", name=value,
                       description=description or f"{wia_type} indicator {value}",
                       indicator_types=["malicious-activity"], pattern=pattern, pattern_type="stix",
                       pattern_version="2.1", valid_from=valid_from)
        if phase:
            kcp = self.kill_chain_phase(phase)
            if kcp is None:
                self.fail(f"{path}/context/kill_chain_phase", f"{phase!r} is not a kill-chain phase name")
            else:
                obj["kill_chain_phases"] = [kcp]
        if isinstance(ind.get("confidence"), (int, float)):
            obj["confidence"] = round(ind["confidence"] * 100)
        return self.add(obj)

    def ip(self, value: str | None, path: str) -> str | None:
        if not value:
            return None
        try:
            kind = ip_kind(value)
        except PatternValueError as exc:
            self.fail(path, str(exc))
            return None
        return self.sco(kind, value=value.strip())

    def email(self, value: str | None, path: str, owner: str | None = None) -> str | None:
        if not value:
            return None
        if not _EMAIL.match(value):
            self.fail(path, f"{value!r} is not an e-mail address STIX accepts")
            return None
        return self.sco("email-addr", value=value, belongs_to_ref=owner)

    def url(self, value: str | None, path: str) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if not (parts.scheme and parts.netloc):
            self.fail(path, f"{value!r} is not an absolute URL")
            return None
        return self.sco("url", value=value)

    def domain(self, value: str | None, resolves_to: list[str] | None = None, path: str = "") -> str | None:
        if not value:
            return None
        if not _is_hostname(value):     # domain-name `value` has format idn-hostname
            self.fail(path, f"{value!r} is not a host name")
            return None
        oid = self.sco("domain-name", value=value, resolves_to_refs=resolves_to or None)
        if resolves_to:
            # One name for two addresses (a source and a destination named alike) is one object, its id being its
            # value (section 6.4): it resolves to both, or the second end would come back without its name.
            refs = next(o for o in self.objects if o["id"] == oid).setdefault("resolves_to_refs", [])
            refs.extend(r for r in resolves_to if r not in refs)
        return oid

    def hashes(self, hashes: dict[str, str] | None, path: str) -> dict[str, str] | None:
        out = {}
        for key, wia_type in (("md5", "file_hash_md5"), ("sha1", "file_hash_sha1"), ("sha256", "file_hash_sha256")):
            value = (hashes or {}).get(key)
            if value:
                try:
                    out[hash_algorithm(wia_type, value)] = value
                except PatternValueError as exc:
                    self.fail(f"{path}/{key}", str(exc))
        return out or None

    def file(self, path_value: str | None, name: str | None, hashes: dict[str, str] | None, where: str,
             **props: Any) -> str | None:
        directory = None
        if path_value:
            cut = max(path_value.rfind("\\"), path_value.rfind("/"))
            if cut >= 0:
                directory = self.sco("directory", path=path_value[:cut] or path_value[0])
            name = name or path_value[cut + 1:] or None
        digest = self.hashes(hashes, f"{where}/hash")
        if not (name or digest):
            return None
        return self.sco("file", name=name, hashes=digest, parent_directory_ref=directory, **props)

    def user(self, user: dict[str, Any] | None, path: str) -> str | None:
        if not user or not user.get("name"):
            return None
        account = self.sco("user-account", account_login=user["name"])
        self.email(user.get("email"), f"{path}/email", account)
        return account

    def traffic(self, src: str | None, dst: str | None, src_port: Any, dst_port: Any,
                protocols: list[str], path: str, **props: Any) -> str | None:
        if not (src or dst):
            return None
        layer = (src or dst).split("--")[0].replace("-addr", "")
        names = [layer]
        # Only IANA service names (what `protocols` SHOULD hold); others (GRE, free text) stay unmapped.
        names += [p for p in (p.lower() for p in protocols) if p in IANA_PROTOCOLS and p not in names]
        return self.sco("network-traffic", src_ref=src, dst_ref=dst, src_port=src_port, dst_port=dst_port,
                        protocols=names, **props)

    def context_scos(self) -> None:
        """SCOs for the envelope's context (host addresses, user, network flow)."""
        ctx = self.event.get("context") or {}
        if not ctx:     # nothing below would make an object (about half the events)
            return
        host = ctx.get("host") or {}
        for i, addr in enumerate(host.get("ip") or ()):
            self.ip(addr, f"/context/host/ip/{i}")
        for i, mac in enumerate(host.get("mac") or ()):
            self.mac(mac, f"/context/host/mac/{i}")
        self.user(ctx.get("user"), "/context/user")
        net = ctx.get("network") or {}
        src, dst = net.get("source") or {}, net.get("destination") or {}
        src_ip = self.ip(src.get("ip"), "/context/network/source/ip")
        dst_ip = self.ip(dst.get("ip"), "/context/network/destination/ip")
        self.domain(dst.get("hostname"), [dst_ip] if dst_ip else None, "/context/network/destination/hostname")
        self.traffic(src_ip, dst_ip, src.get("port"), dst.get("port"),
                     [net["protocol"]] if net.get("protocol") else [], "/context/network/protocol")

    def mac(self, value: str, path: str) -> str | None:
        mac = value.strip().lower()
        if not _MAC.match(mac):
            self.fail(path, f"{value!r} is not a MAC-48 address")
            return None
        digits = _NOT_HEX.sub("", mac)
        return self.sco("mac-addr", value=":".join([digits[i:i + 2] for i in range(0, 12, 2)]))

    def observed(self, role: str, refs: list[str], first: str | None = None, last: str | None = None,
                 count: int = 1) -> dict[str, Any]:
        first_observed = stix_time(first) if first else self.time
        last_observed = stix_time(last) if last else first_observed
        if later(first_observed, last_observed):
            last_observed = first_observed
        return self.sdo("observed-data", role, first_observed=first_observed, last_observed=last_observed,
                        number_observed=count, object_refs=refs)

    def scos_since(self, mark: int) -> list[str]:
        return [o["id"] for o in self.objects[mark:] if o["type"] not in _NOT_SCO]


_NOT_SCO = frozenset({"identity", "attack-pattern", "indicator", "relationship", "observed-data", "sighting",
                      "extension-definition", "malware", "intrusion-set", "campaign", "vulnerability", "incident"})


# -- per event type ----------------------------------------------------------------------------------

def threat_intel(w: Writer) -> list[dict[str, Any]]:
    d = w.data
    stix_type, malware_types = THREAT_OBJECTS.get(d.get("threat_type"), ("campaign", None))
    threat = w.sdo(stix_type, "threat", name=d.get("threat_name"), aliases=d.get("aliases") or None)
    if stix_type == "malware":
        threat["is_family"] = True
        threat["malware_types"] = malware_types
    if d.get("first_seen"):
        threat["first_seen"] = stix_time(d["first_seen"])
    if d.get("last_seen"):
        last = stix_time(d["last_seen"])
        if "first_seen" not in threat or not later(threat["first_seen"], last):
            threat["last_seen"] = last
        else:
            w.fail("/data/last_seen", "STIX last_seen must not be earlier than first_seen")
    refs = _url_references(d.get("references"))
    if d.get("report_id"):
        refs.append({"source_name": threat_source_name(w), "external_id": d["report_id"]})
    if refs:
        threat["external_references"] = refs
    for i, ind in enumerate(d.get("indicators") or ()):
        ctx = ind.get("context") if isinstance(ind.get("context"), dict) else {}
        ref = w.indicator(i, f"/data/indicators/{i}", ind, ctx.get("description"), ctx.get("kill_chain_phase"))
        if ref:
            w.relate(ref, "indicates", threat["id"])
    for i, ttp in enumerate(d.get("ttps") or ()):
        if ttp.get("technique"):
            w.relate(threat["id"], "uses", w.attack_pattern(ttp["technique"], ttp.get("technique_name"),
                                                             ttp.get("tactic"), role=f"ttp{i}"))
    return w.finish(threat)


def threat_source_name(w: Writer) -> str:
    return (w.event.get("source") or {}).get("name") or "wia-security"


def alert(w: Writer) -> list[dict[str, Any]]:
    d = w.data
    target = w.mitre_pattern()
    if target is None:
        rule = d.get("detection_rule") or {}
        ap = w.sdo("attack-pattern", "detection", name=rule.get("name") or d.get("title"),
                   description=d.get("description"))
        if rule.get("id"):
            ap["external_references"] = [{"source_name": threat_source_name(w), "external_id": rule["id"]}]
        target = w.add(ap)
    for i, ind in enumerate(d.get("indicators") or ()):
        ref = w.indicator(i, f"/data/indicators/{i}", ind,
                          ind.get("context") if isinstance(ind.get("context"), str) else None, None)
        if ref:
            w.relate(ref, "indicates", target)
    mark = len(w.objects)
    w.context_scos()
    scos = w.scos_since(mark)
    first = stix_time(d["first_seen"]) if d.get("first_seen") else None
    last = stix_time(d["last_seen"]) if d.get("last_seen") else None
    if first and last and later(first, last):
        w.fail("/data/last_seen", "STIX last_seen must not be earlier than first_seen")
        last = None
    sighting = w.sdo("sighting", "sighting", sighting_of_ref=target, where_sighted_refs=[w.identity],
                     description=d.get("description"), first_seen=first, last_seen=last, count=d.get("count"))
    if scos:
        od = w.add(w.observed("observed-data", scos, first, last, d.get("count") or 1))
        sighting["observed_data_refs"] = [od]
    return w.finish(sighting)


def vulnerability(w: Writer) -> list[dict[str, Any]]:
    d = w.data
    refs: list[dict[str, Any]] = [{"source_name": "cve", "external_id": d["vuln_id"]}]
    refs += [{"source_name": "cwe", "external_id": c} for c in d.get("cwe") or ()]
    refs += _url_references(d.get("references"))
    vuln = w.sdo("vulnerability", "vulnerability", name=d["vuln_id"], description=d.get("description"),
                 external_references=refs)
    return w.finish(vuln)


def incident(w: Writer) -> list[dict[str, Any]]:
    d = w.data
    core: dict[str, Any] = {"extension_type": "property-extension", "determination": "suspected",
                            "investigation_status": _INVESTIGATION_STATUS.get(d.get("status"), "open"),
                            "scores": [{"name": "wia-severity", "value": w.event["severity"],
                                        "description": "WIA Security severity, 0 (informational) to 10"}]}
    if d.get("category"):
        core["incident_types"] = [d["category"].replace("_", "-")]
    if d.get("priority") in _PRIORITY_CRITICALITY:
        core["criticality"] = _PRIORITY_CRITICALITY[d["priority"]]
    src = (w.event.get("source") or {}).get("name")
    if src:
        core["detection_methods"] = [src]
    inc = w.sdo("incident", "incident", name=d.get("title"), description=d.get("description"),
                extensions={INCIDENT_CORE_EXTENSION: core})
    pattern = w.mitre_pattern()
    if pattern:
        w.relate(inc["id"], "related-to", pattern)
    for i, ioc in enumerate(d.get("iocs") or ()):
        ref = w.indicator(i, f"/data/iocs/{i}", ioc, ioc.get("description"), None)
        if ref:
            w.relate(ref, "related-to", inc["id"])
    return w.finish(inc)


def network_event(w: Writer) -> list[dict[str, Any]]:
    d = w.data
    src, dst = d.get("source") or {}, d.get("destination") or {}
    src_ip = w.ip(src.get("ip"), "/data/source/ip")
    dst_ip = w.ip(dst.get("ip"), "/data/destination/ip")
    w.domain(src.get("hostname"), [src_ip] if src_ip else None, "/data/source/hostname")
    w.domain(dst.get("hostname"), [dst_ip] if dst_ip else None, "/data/destination/hostname")
    for side, host in (("source", src), ("destination", dst)):
        if host.get("mac"):
            w.mac(host["mac"], f"/data/{side}/mac")
    protocols = [d["protocol"]] if d.get("protocol") else []
    if d.get("event_type") in APP_PROTOCOLS:
        protocols.append(APP_PROTOCOLS[d["event_type"]])
    extensions = None
    http = d.get("http") or {}
    if http.get("method") and d.get("url"):
        parts = urlsplit(d["url"])
        request = {"request_method": http["method"].lower(),
                   "request_value": (parts.path or "/") + (f"?{parts.query}" if parts.query else "")}
        headers = {k: [v] for k, v in (("User-Agent", http.get("user_agent")), ("Referer", http.get("referer")))
                   if v}
        if headers:
            request["request_header"] = headers
        extensions = {"http-request-ext": request}
    counts = {k: d[w_key] for k, w_key in (("src_byte_count", "bytes_sent"), ("dst_byte_count", "bytes_received"),
                                           ("src_packets", "packets_sent"), ("dst_packets", "packets_received"))
              if isinstance(d.get(w_key), int)}
    w.traffic(src_ip, dst_ip, src.get("port"), dst.get("port"), protocols, "/data/protocol",
              extensions=extensions, **counts)
    w.url(d.get("url"), "/data/url")
    dns = d.get("dns") or {}
    if dns.get("query"):
        answers = []
        for i, answer in enumerate(dns.get("response") or ()):
            try:
                answers.append(w.sco(ip_kind(answer), value=answer.strip()))
            except PatternValueError:
                name = w.domain(answer, None, f"/data/dns/response/{i}")
                if name:
                    answers.append(name)
        w.domain(dns["query"], answers, "/data/dns/query")
    tls = d.get("tls") or {}
    if tls.get("sni"):
        w.domain(tls["sni"], None, "/data/tls/sni")
    cert = tls.get("certificate") or {}
    if cert:
        _certificate(w, cert)
    w.context_scos()
    return w.finish(w.observed("observed-data", w.scos_since(0)))


def _certificate(w: Writer, cert: dict[str, Any]) -> None:
    props: dict[str, Any] = {"issuer": cert.get("issuer"), "subject": cert.get("subject")}
    for wia_key, stix_key in (("not_before", "validity_not_before"), ("not_after", "validity_not_after")):
        if cert.get(wia_key):
            props[stix_key] = stix_time(cert[wia_key])
    fp = cert.get("fingerprint_sha256")
    if fp:
        try:
            props["hashes"] = {hash_algorithm("file_hash_sha256", fp.replace(":", "")): fp.replace(":", "")}
        except PatternValueError as exc:
            w.fail("/data/tls/certificate/fingerprint_sha256", str(exc))
    # Only with its fingerprint: without an ID Contributing Property the spec wants a UUIDv4 id while
    # the validator's uuid-check wants a UUIDv5 one, so no id would pass both.
    if "hashes" in props:
        w.sco("x509-certificate", **props)
    else:
        w.fail("/data/tls/certificate", "an x509-certificate needs its SHA-256 fingerprint to get an id")


def endpoint_event(w: Writer) -> list[dict[str, Any]]:
    d = w.data
    host = d.get("host") or {}
    for i, addr in enumerate(host.get("ip") or ()):
        w.ip(addr, f"/data/host/ip/{i}")
    for i, mac in enumerate(host.get("mac") or ()):
        w.mac(mac, f"/data/host/mac/{i}")
    proc = d.get("process") or {}
    if proc:
        _process(w, proc)
    f = d.get("file") or {}
    if f:
        times = {stix_key: stix_time(f[wia_key]) for wia_key, stix_key in
                 (("created", "ctime"), ("modified", "mtime"), ("accessed", "atime")) if f.get(wia_key)}
        size = f.get("size") if isinstance(f.get("size"), int) and f["size"] >= 0 else None
        w.file(f.get("path"), f.get("name"), f.get("hash"), "/data/file", size=size, **times)
    reg = d.get("registry") or {}
    if reg.get("key"):
        value = {k: v for k, v in (("name", reg.get("value_name")), ("data", reg.get("value_data")),
                                   ("data_type", reg.get("value_type"))) if v is not None}
        w.sco("windows-registry-key", key=expand_hive(reg["key"]), values=[value] if value else None)
    conn = d.get("network_connection") or {}
    if conn.get("local_ip") or conn.get("remote_ip"):
        local = w.ip(conn.get("local_ip"), "/data/network_connection/local_ip")
        remote = w.ip(conn.get("remote_ip"), "/data/network_connection/remote_ip")
        ends = ((remote, conn.get("remote_port"), local, conn.get("local_port")) if conn.get("direction") == "inbound"
                else (local, conn.get("local_port"), remote, conn.get("remote_port")))
        w.traffic(ends[0], ends[2], ends[1], ends[3], [conn["protocol"]] if conn.get("protocol") else [],
                  "/data/network_connection/protocol")
    dll = d.get("dll") or {}
    if dll:
        w.file(dll.get("path"), dll.get("name"), dll.get("hash"), "/data/dll")
    w.context_scos()
    refs = w.scos_since(0)
    if not refs:    # only host details: the host name is what was observed (observed-data needs one object)
        name = w.domain(host.get("hostname"), None, "/data/host/hostname")
        if name is None:      # not a DNS name either (the WIA extension, on here, keeps the event)
            return w.finish(w.sdo("infrastructure", "host", name=host.get("hostname") or "unknown",
                                  infrastructure_types=["unknown"]))
        refs = [name]
    return w.finish(w.observed("observed-data", refs))


def _process(w: Writer, proc: dict[str, Any]) -> str | None:
    image = w.file(proc.get("path"), proc.get("name"), proc.get("hash"), "/data/process")
    creator = w.user({"name": proc["user"]}, "/data/process/user") if proc.get("user") else None
    parent = proc.get("parent") or {}
    parent_props = _clean({"pid": parent.get("pid", proc.get("ppid")), "command_line": parent.get("command_line"),
                           "image_ref": w.file(parent.get("path"), parent.get("name"), None, "/data/process/parent")})
    parent_ref = w.add({"type": "process", "spec_version": "2.1", "id": derived_id("process", w.event_id, "parent"),
                        **parent_props}) if parent_props else None
    props = _clean({"pid": proc.get("pid"), "command_line": proc.get("command_line"),
                    "created_time": stix_time(proc["start_time"]) if proc.get("start_time") else None,
                    "image_ref": image, "parent_ref": parent_ref, "creator_user_ref": creator})
    if not props:
        return None
    return w.add({"type": "process", "spec_version": "2.1", "id": derived_id("process", w.event_id, "process"),
                  **props})


def auth_event(w: Writer) -> list[dict[str, Any]]:
    d = w.data
    w.user(d.get("user"), "/data/user")
    src = d.get("source") or {}
    w.ip(src.get("ip"), "/data/source/ip")
    target = d.get("target") or {}
    w.ip(target.get("ip"), "/data/target/ip")
    w.url(target.get("url"), "/data/target/url")
    w.context_scos()
    refs = w.scos_since(0)
    if not refs:    # observed-data needs one object: the user is required, so this is rare
        refs = [w.sco("user-account", account_login=(d.get("user") or {}).get("name") or "unknown")]
    return w.finish(w.observed("observed-data", refs))


def _url_references(urls: list[str] | None) -> list[dict[str, Any]]:
    refs = []
    for url in urls or ():
        host = urlsplit(url).hostname or "reference"
        refs.append({"source_name": host, "url": url})
    return refs


def _clean(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v is not None}


WRITERS = {"threat_intel": threat_intel, "alert": alert, "vulnerability": vulnerability, "incident": incident,
           "network_event": network_event, "endpoint_event": endpoint_event, "auth_event": auth_event}


def event_objects(event: dict[str, Any], *, wia_extension: bool = True) -> list[dict[str, Any]]:
    """The STIX objects of one WIA event (ConversionError when its type has no mapping)."""
    writer_fn = WRITERS.get(event.get("type"))
    if writer_fn is None:
        raise ConversionError("stix", f"no STIX mapping for event type {event.get('type')!r}", path="/type")
    try:
        return writer_fn(Writer(event, wia_extension=wia_extension))
    except OverflowError:
        # A STIX timestamp is UTC with a four-digit year (section 3.2): a valid WIA time whose UTC instant leaves
        # the years 1-9999 (9999-12-31T23:30:00-01:00) has no STIX spelling. Refused, naming the member.
        error = out_of_range_error("stix", event, "a STIX timestamp (UTC, section 3.2)")
        if error is None:
            raise
        raise error from None
