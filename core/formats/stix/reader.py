"""STIX 2.1 objects -> WIA events: the WIA extension when present, else the native mapping with documented defaults.

Roots, in this order, each claiming the objects it uses: objects carrying the WIA extension (the
event comes back whole); sighting -> alert; incident -> incident; vulnerability -> vulnerability;
malware / intrusion-set / threat-actor / campaign -> threat_intel; an indicator no root claimed ->
threat_intel; observed-data no sighting claimed -> network_event (network-traffic), endpoint_event
(process, file, registry key) or auth_event (a user account). Identities, extension definitions
and marking definitions are never events. Defaults for what the STIX lacks are listed in
docs/formats/stix.md ("Parsing plain STIX").

Each event is read on its own (`read_members`): a malformed object refuses only the events that need
it. Properties of the objects an event is read from that the event does not give back are kept in
`meta.custom.stix.objects`, by STIX id (`_keep_unread`); in this project's own plain STIX, what writing
the event again gives back is not (`_written_back`).
"""
from __future__ import annotations

import copy
import functools
import re
from typing import Any

from ..._version import WIA_SCHEMA_URI, WIA_VERSION
from ...attack import table as attack_table
from ...errors import ConversionError
from ...severity import BAND_PRIORITY, band
from ...validation.formats import is_email, is_uri
from .._wia_paths import utc_ms
from .._own_event import checked
from ..base import MALFORMED, MemberOutcome, all_or_nothing
from .ids import WIA_NAMESPACE, derived_id, uuid5_str
from .patterns import PatternValueError, comparisons, pattern_for
from .writer import ATTACK_SOURCE, INCIDENT_CORE_EXTENSION, SHARED_TIME, WIA_EXTENSION, WRITERS, Writer

DEFAULT_SEVERITY = 5
THREAT_TYPES = ("malware", "intrusion-set", "threat-actor", "campaign")
#: STIX type of an object carrying the WIA extension -> the WIA event types it may carry: those it is
#: written as (writer.py: the primary object) or read natively as (`_READERS`). The extension is the
#: object itself as WIA, so a sighting carrying an incident would mean one thing to STIX consumers and
#: another to WIA: refused (docs/formats/stix.md, "Parsing").
CARRIED_TYPES: dict[str, tuple[str, ...]] = {
    "sighting": ("alert",), "incident": ("incident",), "vulnerability": ("vulnerability",),
    **{t: ("threat_intel",) for t in (*THREAT_TYPES, "indicator")},
    "observed-data": ("network_event", "endpoint_event", "auth_event"), "infrastructure": ("endpoint_event",),
}
_ALERT_VOCAB = frozenset({"ip", "domain", "url", "hash", "email", "file", "file_hash_md5", "file_hash_sha1",
                          "file_hash_sha256", "mutex", "registry"})
_TI_VOCAB = frozenset({"ip", "domain", "url", "file_hash_md5", "file_hash_sha1", "file_hash_sha256", "email",
                       "mutex", "registry"})
_IOC_VOCAB = frozenset({"ip", "domain", "url", "hash", "email"})
_INCIDENT_CATEGORIES = frozenset({"malware", "phishing", "ransomware", "data_breach", "ddos", "unauthorized_access",
                                  "insider_threat", "apt", "other"})
_CVE = re.compile(r"CVE-[0-9]{4}-[0-9]{4,}")
_CWE = re.compile(r"CWE-[0-9]+")
_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"})
_REG_TYPES = frozenset({"REG_SZ", "REG_DWORD", "REG_QWORD", "REG_BINARY", "REG_MULTI_SZ", "REG_EXPAND_SZ"})
_TRANSPORTS = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "gre": "GRE", "esp": "ESP"}
_WIA_NAMESPACE_BYTES = WIA_NAMESPACE.bytes
_APPS = {"http": "http", "https": "http", "dns": "dns", "domain": "dns", "tls": "tls", "ssl": "tls", "smtp": "smtp",
         "ftp": "ftp", "ssh": "ssh", "rdp": "rdp"}


class Graph:
    """The objects of one document, indexed by id, with relationships by endpoint, and where each object
    is in the document (`path`), so that every error names a JSON pointer into the input."""

    def __init__(self, objects: list[Any], base: str | None = "/objects") -> None:
        self.objects: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.rels_to: dict[str, list[dict[str, Any]]] = {}
        self.rels_from: dict[str, list[dict[str, Any]]] = {}
        self.base = base
        self.index: dict[int, int] = {}         # id() of an object -> its position in `objects`
        self.document = objects
        self.position: dict[str, int] = {}      # STIX id -> the position of `by_id`'s object
        #: objects that are not what STIX says, by position: each refuses the events that need it
        #: (or, needed by none, itself); `broken_ids` the same by STIX id, for the events' references
        self.broken: dict[int, ConversionError] = {}
        self.broken_ids: dict[str, int] = {}
        #: while an event is read: the ids it looked up and the relationships it followed
        self.touched: set[str] | None = None
        for i, obj in enumerate(objects):
            if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) or not isinstance(obj.get("id"), str):
                where = "" if base is None else f"{base}/{i}"
                if not isinstance(obj, dict):
                    self.broken[i] = ConversionError("stix", f"a STIX object must be a JSON object, not {obj!r:.60}",
                                                     path=where)
                    continue
                member = "type" if not isinstance(obj.get("type"), str) else "id"
                self.broken[i] = ConversionError("stix", f"every STIX object needs a string `{member}` (section 3.1)",
                                                 path=f"{where}/{member}")
                if isinstance(obj.get("id"), str):      # still referable: the events referring to it need it
                    self.broken_ids[obj["id"]] = i
                continue
            self.index[id(obj)] = i
            self.position[obj["id"]] = i
            self.objects.append(obj)
            self.by_id[obj["id"]] = obj
            if obj["type"] == "relationship":
                target, source = obj.get("target_ref"), obj.get("source_ref")   # not strings: refused later
                self.rels_to.setdefault(target if isinstance(target, str) else "", []).append(obj)
                self.rels_from.setdefault(source if isinstance(source, str) else "", []).append(obj)

    def refuse(self, obj: dict[str, Any], error: ConversionError) -> None:
        """Marks `obj` (an object of this document) broken."""
        i = self.index[id(obj)]
        self.broken[i] = error
        self.broken_ids[obj["id"]] = i

    def path(self, obj: dict[str, Any], *keys: Any) -> str:
        """The JSON pointer of `obj` (an object of this document) or of a member below it."""
        where = "" if self.base is None else f"{self.base}/{self.index[id(obj)]}"
        return where + "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)

    def time(self, obj: dict[str, Any], key: str) -> str | None:
        """`obj[key]` as WIA writes date-times (UTC, milliseconds, "Z"); None when absent;
        ConversionError at its path when it is no RFC 3339 date-time."""
        value = obj.get(key)
        if value is None:
            return None
        moment = utc_ms(value)
        if moment is None:
            raise ConversionError("stix", f"`{key}` of {obj['id']} is not an RFC 3339 date-time: {value!r}",
                                  path=self.path(obj, key))
        return moment

    def get(self, ref: Any) -> dict[str, Any] | None:
        if type(ref) is not str:
            return None
        if self.touched is not None:
            self.touched.add(ref)
        return self.by_id.get(ref)

    def _follow(self, rel: dict[str, Any]) -> None:
        if self.touched is not None:
            self.touched.add(rel["id"])

    def sources(self, target: str, rel: str, stix_type: str) -> list[dict[str, Any]]:
        found = []
        for r in self.rels_to.get(target, ()):
            if r.get("relationship_type") == rel:
                o = self.get(r.get("source_ref"))
                if o is not None and o["type"] == stix_type:
                    self._follow(r)
                    found.append(o)
        return found

    def targets(self, source: str, rel: str, stix_type: str) -> list[dict[str, Any]]:
        found = []
        for r in self.rels_from.get(source, ()):
            if r.get("relationship_type") == rel:
                o = self.get(r.get("target_ref"))
                if o is not None and o["type"] == stix_type:
                    self._follow(r)
                    found.append(o)
        return found

    def related(self, oid: str) -> list[dict[str, Any]]:
        """The objects at the other end of `related-to` relationships of `oid` (either direction)."""
        found = []
        for r in (*self.rels_to.get(oid, ()), *self.rels_from.get(oid, ())):
            if r.get("relationship_type") == "related-to":
                o = self.get(r.get("source_ref") if r.get("target_ref") == oid else r.get("target_ref"))
                if o is not None:
                    self._follow(r)
                    found.append(o)
        return found

    def closure(self, root: dict[str, Any]) -> set[str]:
        """Every object the writer made for the event `root` belongs to (refs and relationships, transitively)."""
        seen: set[str] = set()
        todo = [root["id"]]
        while todo:
            oid = todo.pop()
            obj = self.by_id.get(oid) if isinstance(oid, str) else None
            if obj is None or oid in seen or obj["type"] in ("identity", "extension-definition", "marking-definition"):
                continue
            seen.add(oid)
            todo += _refs(obj)
            for rel in (*self.rels_to.get(oid, ()), *self.rels_from.get(oid, ())):
                todo += [rel["id"], rel.get("source_ref"), rel.get("target_ref")]
        return seen


def _refs(obj: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in obj.items():
        if not key.endswith(("_ref", "_refs")):     # most keys: one test instead of two
            continue
        if key.endswith("_ref") and isinstance(value, str) and key != "created_by_ref":
            out.append(value)
        elif key.endswith("_refs") and isinstance(value, list) and key != "object_marking_refs":
            out += [v for v in value if isinstance(v, str)]
    return out


#: STIX property -> what section 3 and the object definitions say it holds, for the properties this
#: reader reads (a wrong one is a ConversionError at its path, never an AttributeError or an invalid
#: WIA event): "str", "int" (with bounds), "strs" (list of strings), "objs" (list of objects), "obj".
_STR, _STRS, _OBJS, _OBJ = "a string", "a list of strings", "a list of objects", "an object"
_SHAPES: dict[str, Any] = {
    **dict.fromkeys(("name", "description", "pattern", "pattern_type", "created", "modified", "valid_from",
                     "valid_until", "first_seen", "last_seen", "first_observed", "last_observed", "created_by_ref",
                     "sighting_of_ref", "src_ref", "dst_ref", "parent_ref", "image_ref", "creator_user_ref",
                     "parent_directory_ref", "belongs_to_ref", "relationship_type", "source_ref", "target_ref",
                     "value", "account_login", "user_id", "key", "command_line", "path", "created_time", "ctime",
                     "mtime", "atime", "issuer", "subject", "validity_not_before", "validity_not_after"), _STR),
    **dict.fromkeys(("labels", "aliases", "malware_types", "protocols", "object_refs", "observed_data_refs",
                     "resolves_to_refs"), _STRS),
    **dict.fromkeys(("external_references", "kill_chain_phases", "values"), _OBJS),
    **dict.fromkeys(("extensions", "hashes"), _OBJ),
    "confidence": (0, 100), "count": (0, 999_999_999), "pid": (None, None), "src_port": (0, 65535),
    "dst_port": (0, 65535), "size": (0, None), "src_byte_count": (0, None), "dst_byte_count": (0, None),
    "src_packets": (0, None), "dst_packets": (0, None),
}
_STR_KEYS = frozenset(key for key, shape in _SHAPES.items() if shape is _STR)
#: members of the objects in those lists that the reader reads (all strings)
_ITEM_STRINGS = {"external_references": ("source_name", "external_id", "url"),
                 "kill_chain_phases": ("kill_chain_name", "phase_name"), "values": ("name", "data", "data_type")}
#: SCO types whose `value` is required (section 6)
_VALUE_REQUIRED = frozenset({"ipv4-addr", "ipv6-addr", "mac-addr", "domain-name", "url", "email-addr"})
#: the object types the reader reads properties of (others, custom ones included, are not checked)
_SHAPED = frozenset({"indicator", "malware", "threat-actor", "intrusion-set", "campaign", "vulnerability", "sighting",
                     "incident", "observed-data", "attack-pattern", "relationship", "ipv4-addr",
                     "ipv6-addr", "mac-addr", "domain-name", "url", "email-addr", "user-account", "network-traffic",
                     "process", "file", "directory", "windows-registry-key", "x509-certificate"})


def _check_shape(graph: Graph, obj: dict[str, Any]) -> None:
    if not obj["id"].partition("--")[2]:
        raise ConversionError("stix", f"an id is type--UUID (section 2.9), not {obj['id']!r:.60}",
                              path=graph.path(obj, "id"))
    if obj["type"] in _VALUE_REQUIRED and type(obj.get("value")) is not str:
        raise ConversionError("stix", f"a {obj['type']} object needs a string `value` ({obj['id']})",
                              path=graph.path(obj, "value"))
    if obj["type"] == "email-addr" and not is_email(obj["value"]) or obj["type"] == "url" and not is_uri(obj["value"]):
        raise ConversionError("stix", f"the `value` of {obj['id']} is not a valid {obj['type'][:-5] or 'URL'}: "
                              f"{obj['value']!r:.60}", path=graph.path(obj, "value"))
    for key, value in obj.items():
        if type(value) is str and key in _STR_KEYS:     # most properties: one test
            continue
        shape = _SHAPES.get(key)
        if shape is None:
            continue
        if shape is _STR:
            ok = type(value) is str
        elif shape is _STRS:
            ok = type(value) is list and all(type(v) is str for v in value)
        elif shape is _OBJS:
            ok = type(value) is list and all(type(v) is dict for v in value)
            if ok:
                for i, item in enumerate(value):
                    for member in _ITEM_STRINGS[key]:
                        if member in item and type(item[member]) is not str:
                            raise ConversionError("stix", f"`{member}` must be a string ({obj['id']})",
                                                  path=graph.path(obj, key, i, member))
                    if key == "external_references" and "url" in item and not is_uri(item["url"]):
                        raise ConversionError("stix", f"`url` of {obj['id']} is not a valid URL: {item['url']!r:.60}",
                                              path=graph.path(obj, key, i, "url"))
        elif shape is _OBJ:
            ok = type(value) is dict and (key != "hashes" or all(type(v) is str for v in value.values()))
            shape = "an object of strings" if key == "hashes" else shape
        else:
            low, high = shape
            ok = type(value) is int and (low is None or value >= low) and (high is None or value <= high)
            shape = "an integer" + (f" in {low}-{high}" if high is not None else " >= 0" if low == 0 else "")
        if not ok:
            raise ConversionError("stix", f"`{key}` of {obj['id']} must be {shape}, not {value!r:.60}",
                                  path=graph.path(obj, key))


#: immutable JSON values: copying keeps them (as copy.deepcopy does)
_ATOMS = frozenset({str, int, float, bool, type(None)})


def _copy_json(value: Any, memo: dict[int, Any]) -> Any:
    """copy.deepcopy(value, memo) at a fraction of the cost for JSON data: plain dicts and lists are
    copied here (shared and cyclic ones once, through `memo` as deepcopy does), strings, numbers and
    None are kept, anything else goes to copy.deepcopy with the same memo."""
    cls = type(value)
    if cls in _ATOMS:
        return value
    if cls is dict:
        if id(value) in memo:
            return memo[id(value)]
        out: dict[Any, Any] = {}
        memo[id(value)] = out
        for key, item in value.items():
            if type(key) is not str:
                key = copy.deepcopy(key, memo)
            out[key] = item if type(item) in _ATOMS else _copy_json(item, memo)
        return out
    if cls is list:
        if id(value) in memo:
            return memo[id(value)]
        items: list[Any] = []
        memo[id(value)] = items     # before the items, for a list that holds itself
        items += [item if type(item) in _ATOMS else _copy_json(item, memo) for item in value]
        return items
    return copy.deepcopy(value, memo)


def read_objects(objects: list[Any], *, base: str | None = "/objects", **options: Any) -> list[dict[str, Any]]:
    """The WIA events of a document's objects, all or nothing (the first refusal of `read_members`
    raises). `base`: the JSON pointer of the objects array in the document ("/objects" in a bundle, ""
    for a top-level array, None when the document is one object), so that errors name the path in the
    document the caller got."""
    return all_or_nothing(read_members(objects, base=base, **options))


def read_members(objects: list[Any], *, base: str | None = "/objects", lenient: bool = False,
                 **options: Any) -> list[MemberOutcome]:
    """One outcome per event the objects hold (in the order `read_objects` gives the events), each
    refused alone: by its root's own error, by an error in an object its reading needed (one it claims,
    looks up by reference or reaches through a relationship it follows), or by an object it needs
    that is not what STIX says. A malformed object no event needs is one refused outcome of its own
    (first, in document order). See docs/formats/stix.md, "One bad object refuses what needs it".
    `lenient`: the event a WIA extension carries may hold null for an absent optional member."""
    graph = Graph(objects, base)
    roots: list[MemberOutcome] = []
    claimed: set[str] = set()
    for obj in graph.objects:
        extensions = obj.get("extensions")
        if isinstance(extensions, dict) and WIA_EXTENSION in extensions:
            # the carrier holds its whole event: it is the member, refused only when that event is not
            # valid WIA; either way it claims the objects made with it
            roots.append(_carrier_outcome(graph, obj, lenient))
            claimed |= graph.closure(obj)
    unclaimed: dict[str, list[dict[str, Any]]] = {}     # by type, in document order (claims only grow)
    for obj in graph.objects:
        if obj["id"] not in claimed:
            unclaimed.setdefault(obj["type"], []).append(obj)
            if obj["type"] in _SHAPED:          # read natively below: its properties must be what STIX says
                try:
                    _check_shape(graph, obj)
                except ConversionError as exc:
                    graph.refuse(obj, exc)
    accounted: set[int] = set()                 # broken objects whose refusal an event's outcome reports
    for stix_type, reader in _READERS:
        for obj in unclaimed.get(stix_type, ()):
            if obj["id"] in claimed:
                continue
            claims = _claims(graph, obj)
            claimed |= claims
            claimed.add(obj["id"])
            roots.append(_read_root(graph, obj, reader, claims, accounted))
    alone = [MemberOutcome("" if base is None else f"{base}/{i}", error=error, member=objects[i])
             for i, error in sorted(graph.broken.items()) if i not in accounted]
    if not roots and not alone and graph.objects:
        kinds = sorted({obj["type"] for obj in graph.objects})
        where = "/type" if base is None else base
        return [MemberOutcome(where, error=ConversionError(
            "stix", f"no object here is one a WIA event is made from (this has {', '.join(kinds)}; WIA reads "
            "indicator, malware, threat-actor, intrusion-set, campaign, vulnerability, sighting, incident and "
            "observed-data)", path=where))]
    return alone + roots


def _carrier_outcome(graph: Graph, carrier: dict[str, Any], lenient: bool) -> MemberOutcome:
    """The outcome of an object carrying the WIA extension: its event, or the refusal of it."""
    path = graph.path(carrier)
    try:
        return MemberOutcome(path, _carried(graph, carrier, lenient), member=carrier)
    except ConversionError as exc:
        return MemberOutcome(path, error=exc, member=carrier)
    except MALFORMED as exc:        # RecursionError: an event nested deeper than Python copies
        return MemberOutcome(path, error=ConversionError(
            "stix", f"the WIA extension of {carrier['id']} could not be read ({type(exc).__name__})",
            path=graph.path(carrier, "extensions", WIA_EXTENSION, "event")), member=carrier)


def _carried(graph: Graph, carrier: dict[str, Any], lenient: bool) -> list[dict[str, Any]]:
    """The event the WIA extension of `carrier` holds, as it was written (a copy), when it is valid
    WIA; else ConversionError at its JSON pointer in the document (a tampered or damaged extension)."""
    extension = carrier["extensions"][WIA_EXTENSION]
    where = graph.path(carrier, "extensions", WIA_EXTENSION)
    if type(extension) is not dict:
        raise ConversionError("stix", f"the WIA extension of {carrier['id']} must be a JSON object, not "
                              f"{extension!r:.60}", path=where)
    if "event" not in extension:
        raise ConversionError("stix", f"the WIA extension of {carrier['id']} has no `event`", path=f"{where}/event")
    event = extension["event"]
    if type(event) is not dict:
        raise ConversionError("stix", f"the `event` of the WIA extension of {carrier['id']} must be a JSON object "
                              f"(the whole WIA event), not {event!r:.60}", path=f"{where}/event")
    carried = checked(_copy_json(event, {}), "stix", lambda pointer: f"{where}/event{pointer}",
                      f"the event of the WIA extension of {carrier['id']}", lenient=lenient)
    kinds = CARRIED_TYPES.get(carrier["type"], ())
    if carried["type"] not in kinds:
        holds = f"{' or '.join(kinds)} events" if kinds else "no WIA event"
        raise ConversionError("stix", f"the event of the WIA extension of {carrier['id']:.80} is of type "
                              f"{carried['type']!r}, but a {carrier['type']:.40} carries {holds} (the extension "
                              f"is the object itself as a WIA event; STIX consumers read it as a {carrier['type']:.40})",
                              path=f"{where}/event/type")
    return [carried]


def _read_root(graph: Graph, root: dict[str, Any], reader: Any, claims: set[str],
               accounted: set[int]) -> MemberOutcome:
    """The outcome of the event read from `root` (see `read_members`)."""
    error: ConversionError | None = None
    event: dict[str, Any] | None = None
    graph.touched = {root["id"]}
    try:
        if root["id"] not in graph.broken_ids:      # a broken root is not read: its own error refuses it
            event = reader(graph, root)
    except ConversionError as exc:
        error = exc
    except MALFORMED as exc:                        # not expected after _check_shape; refuse this event alone
        error = ConversionError("stix", f"{root['id']} could not be read ({type(exc).__name__}: {exc})",
                                path=graph.path(root))
    finally:
        needed, graph.touched = graph.touched | claims, None
    broken = sorted(graph.broken_ids[i] for i in needed if i in graph.broken_ids) if graph.broken_ids else ()
    position = graph.position
    objects = [graph.document[i] for i in sorted(position[oid] for oid in needed if oid in position)]
    # the member: a bundle of the objects the event is read from (in document order), which a dead
    # letter holds and `parse` reads again once fixed (a list would be split by line readers)
    member = {"type": "bundle", "id": derived_id("bundle", root["id"]), "objects": objects}
    if broken:
        accounted.update(broken)
        return MemberOutcome(graph.path(root), error=graph.broken[broken[0]], member=member)
    if error is not None or event is None:
        return MemberOutcome(graph.path(root), error=error, member=member)
    _keep_unread(event, root, objects, _written_back(graph, event, root, objects))
    return MemberOutcome(graph.path(root), [event], member=member)


def _strs(value: Any) -> list[str]:
    return [v for v in value if type(v) is str] if type(value) is list else []


def _claims(graph: Graph, root: dict[str, Any]) -> set[str]:
    """The objects the event of `root` is made with, which no later root may read again (the
    indicators of a threat, the observables of an observed-data, ...), whether or not it is read:
    a refused malware's indicators do not become events of their own. Mirrors the root readers."""
    kind = root["type"]
    if kind == "sighting":
        sighted = graph.get(root.get("sighting_of_ref")) or {}
        used = {sighted["id"]} if sighted else set()
        if sighted and sighted["type"] != "indicator":      # a sighted indicator is the only one
            used |= {i["id"] for i in graph.sources(sighted["id"], "indicates", "indicator")}
        for ref in _strs(root.get("observed_data_refs")):
            od = graph.get(ref)
            if od is not None:
                used.add(od["id"])
                used |= set(_strs(od.get("object_refs")))
        return used
    if kind == "incident":
        return {o["id"] for o in graph.related(root["id"])}
    if kind in THREAT_TYPES:
        return {o["id"] for o in (*graph.sources(root["id"], "indicates", "indicator"),
                                  *graph.targets(root["id"], "uses", "attack-pattern"))}
    if kind == "observed-data":
        return set(_strs(root.get("object_refs")))
    return set()


#: Properties that say nothing a kept copy would need: the map key (`id`) and the object's `type`.
_NEVER_KEPT = frozenset({"id", "type"})
#: Properties the readers map into a WIA field (by name, whatever the object type). One of them is
#: left out of `meta.custom.stix.objects` only when the WIA event holds its value (`_given_back`).
_MAPPED = frozenset({
    "name", "description", "created", "first_seen", "last_seen", "first_observed", "valid_from", "confidence",
    "labels", "aliases", "count", "value", "account_login", "user_id", "pid", "command_line", "created_time", "key",
    "path", "size", "ctime", "mtime", "atime", "issuer", "subject", "validity_not_before", "validity_not_after",
    "src_port", "dst_port", "src_byte_count", "dst_byte_count", "src_packets", "dst_packets", "hashes", "pattern",
    "pattern_type", "spec_version", "modified", "x_opencti_cvss_base_score"})
#: Of those, the ones only a root's value becomes a WIA field of (the event's timestamp, meta.tags): an
#: indicator created at the same instant as its sighting still keeps its own `created`.
_MAPPED_BELOW = _MAPPED - {"created", "modified", "labels"}
_TIMES = frozenset({"created", "first_seen", "last_seen", "first_observed", "valid_from", "created_time", "ctime",
                    "mtime", "atime", "validity_not_before", "validity_not_after"})
_WIA_HASHES = frozenset({"MD5", "SHA-1", "SHA-256"})


def _leaves(event: dict[str, Any]) -> set[Any]:
    """Every string and number in a WIA event (the values it gives back)."""
    out: set[Any] = set()
    stack: list[Any] = [event]
    while stack:
        node = stack.pop()
        for value in (node.values() if type(node) is dict else node):
            kind = type(value)
            if kind is dict or kind is list:
                stack.append(value)
            elif kind is str or kind is int or kind is float:
                out.add(value)
    return out


@functools.lru_cache(maxsize=4096)      # a feed's objects share a few instants
def _is_canonical(moment: str) -> bool:
    return utc_ms(moment) == moment


#: Mapped properties given back when the event holds their value (a list: every item), checked inline
#: by `_keep_unread`; `_given_back` checks the others (times, `modified`, `confidence`, the pattern, ...).
_COMPARED = _MAPPED - _TIMES - {"spec_version", "modified", "confidence", "hashes", "pattern", "pattern_type"}
_PATTERN_VOCAB = _TI_VOCAB | _ALERT_VOCAB
_NO_COMPARISON = ("", None)


@functools.lru_cache(maxsize=4096)      # a pattern is looked at twice (`pattern` and `pattern_type`)
def _one_comparison(pattern: str) -> tuple[str, Any]:
    """(WIA type, value) of a STIX pattern that is one comparison, spelt as `pattern_for` writes it;
    `_NO_COMPARISON` for any other pattern."""
    pairs = comparisons(pattern, _PATTERN_VOCAB)
    try:
        return pairs[0] if len(pairs) == 1 and pattern_for(*pairs[0]) == pattern else _NO_COMPARISON
    except PatternValueError:
        return _NO_COMPARISON


def _given_back(obj: dict[str, Any], key: str, value: Any, leaves: set[Any]) -> bool:
    """Whether the WIA event holds `obj[key]` as it came (so a kept copy would add nothing)."""
    kind = type(value)
    if key in _TIMES:
        return kind is str and value in leaves and _is_canonical(value)   # another spelling is kept
    if key == "spec_version":
        return value == "2.1"               # the version this reader reads: implied
    if key == "modified":
        return value == obj.get("created") and _given_back(obj, "created", value, leaves)
    if key == "confidence":
        return kind is int and value / 100 in leaves
    if key == "hashes":
        return kind is dict and value.keys() <= _WIA_HASHES and all(v in leaves for v in value.values())
    if key == "pattern":
        if obj.get("pattern_type", "stix") != "stix":
            return value in leaves          # another language's rule: kept whole in meta.custom.stix (.rules)
        return kind is str and (pair := _one_comparison(value)) is not _NO_COMPARISON and pair[1] in leaves
    if key == "pattern_type":
        return _given_back(obj, "pattern", obj.get("pattern"), leaves) and (value == "stix" or value in leaves)
    if kind is list:
        return bool(value) and all(type(v) is str and v in leaves for v in value)
    return kind in (str, int, float) and kind is not bool and value in leaves


def _keep_unread(event: dict[str, Any], root: dict[str, Any], objects: list[dict[str, Any]],
                 written: dict[str, frozenset[str]]) -> None:
    """Every property of the objects `event` was read from that the event does not give back, as it
    came, in `meta.custom.stix.objects` keyed by STIX id: custom `x_` properties, markings, `lang`,
    references, external references, kill chain phases, `modified`, ... (docs/formats/stix.md).
    `written`: by object id, the properties writing the event again gives back (`_written_back`)."""
    leaves: set[Any] | None = None
    kept: dict[str, dict[str, Any]] = {}
    memo: dict[int, Any] = {}
    for obj in objects:
        mapped = _MAPPED if obj is root else _MAPPED_BELOW
        same = written.get(obj["id"], _NOTHING) if written else _NOTHING
        if len(same) == len(obj):           # the writer gives all of it back (`type` and `id` too)
            continue
        if leaves is None:
            leaves = _leaves(event)
        rest: dict[str, Any] = {}
        for key, value in obj.items():
            if key in mapped:
                # `_given_back`'s two most frequent cases inline: this loop runs for every property
                if key == "spec_version":
                    if value == "2.1":
                        continue
                elif key in _COMPARED:
                    kind = type(value)
                    if (kind is str or kind is int or kind is float) and value in leaves:
                        continue
                    if kind is list and value and all(type(v) is str and v in leaves for v in value):
                        continue
                elif _given_back(obj, key, value, leaves):
                    continue
            elif key in _NEVER_KEPT:
                continue
            if same and key in same:
                continue
            rest[key] = value if type(value) in _ATOMS else _copy_json(value, memo)   # the event owns its copy
        if rest:
            kept[obj["id"]] = rest
    if kept:
        event.setdefault("meta", {}).setdefault("custom", {}).setdefault("stix", {})["objects"] = kept


_NOTHING: frozenset[str] = frozenset()


def _written_back(graph: Graph, event: dict[str, Any], root: dict[str, Any],
                  objects: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """By the id of each of `objects` (the ones `event` was read from): the properties that writing the
    event again as plain STIX (`convert(event, to="stix", wia_extension=False)`) gives back as they are,
    references compared through the pairing of the written objects with these (`_pair_written`).
    This project's own plain STIX derives such properties from the event (`created_by_ref`,
    `modified`, `indicator_types`, the relationships, ...): the event gives them back, so they are
    not kept. Only when the root's creator is the identity the writer makes for the event's source
    (its `description`, which names the vendor and version the event does not hold, aside): any other
    producer's bundle costs one look at its creator."""
    creator = graph.get(root.get("created_by_ref"))
    if creator is None or creator.get("created") != SHARED_TIME:    # every identity the writer makes has it
        return {}
    try:
        writer = Writer(event, wia_extension=False)
        if any(key not in ("id", "description") and not _same(value, creator.get(key))
               for key, value in writer.objects[0].items()):
            return {}
        written = WRITERS[event["type"]](writer)
    except (ConversionError, *MALFORMED):       # an event plain STIX cannot hold: nothing is given back
        return {}
    by_id = {obj["id"]: obj for obj in written}
    own = {obj["id"]: obj for obj in objects}
    pairs = _pair_written(written, root, objects)
    out: dict[str, frozenset[str]] = {}
    for written_id, oid in pairs.items():
        mine, theirs = by_id[written_id], own[oid]
        same = []
        for key, value in theirs.items():
            if key not in mine:
                continue
            kind, again = _REF_KIND.get(key) or _ref_kind(key), mine[key]
            if kind is _REF:                    # the writer's reference, to the object paired with it
                ok = pairs.get(again) == value
            elif kind is _REFS:
                ok = (type(value) is list and len(again) == len(value)
                      and all(pairs.get(ref) == other for ref, other in zip(again, value)))
            elif type(again) is str:            # most values
                ok = type(value) is str and again == value
            else:
                ok = _same(again, value)
            if ok:
                same.append(key)
        if same:
            out[oid] = frozenset(same)
    return out


_REF, _REFS, _VALUE = "ref", "refs", "value"
#: property name -> _REF / _REFS / _VALUE, for the names the writer writes; an `id` is given back as
#: its pair (`_pair_written`) is
_REF_KIND: dict[str, str] = {"id": _REF}


def _ref_kind(key: str) -> str:
    kind = _REF_KIND[key] = _REF if key.endswith("_ref") else _REFS if key.endswith("_refs") else _VALUE
    return kind


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1, 1.0 and true differ (Python's == would take them for one another)."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return a.keys() == b.keys() and all(_same(value, b[key]) for key, value in a.items())
    if kind is list:
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _pair_written(written: list[dict[str, Any]], root: dict[str, Any],
                  objects: list[dict[str, Any]]) -> dict[str, str]:
    """Which written object (of `written`, the event written again, primary last) stands for which of
    the event's `objects`, by id: the primary for the root, an id both hold for itself (SCO ids come
    from content), the others by type in the order written (the writer writes an event's objects in
    one order every time; paired otherwise, objects differ, and what differs is kept). The ids differ
    where the writer derives them from the WIA event id, which plain STIX does not carry."""
    primary = written[-1]["id"]
    pairs = {primary: root["id"]}
    ids = {obj["id"] for obj in written}
    unpaired: dict[str, list[str]] = {}         # by type, in document order (the order written)
    for obj in objects:
        oid = obj["id"]
        if obj is root:
            continue
        if oid in ids and oid not in pairs:
            pairs[oid] = oid
        else:
            unpaired.setdefault(obj["type"], []).append(oid)
    for obj in written:
        waiting = unpaired.get(obj["type"])
        if waiting and obj["id"] not in pairs:
            pairs[obj["id"]] = waiting.pop(0)
    return pairs


# -- envelope ----------------------------------------------------------------------------------------

def _envelope(graph: Graph, root: dict[str, Any], event_type: str, data: dict[str, Any],
              severity: float | None = None) -> dict[str, Any]:
    creator = graph.get(root.get("created_by_ref")) or {}
    timestamp = graph.time(root, "created") or graph.time(root, "first_observed")
    if timestamp is None:
        raise ConversionError("stix", f"{root['id']} has no `created` (STIX requires it on every SDO and SRO; "
                              "it is the WIA event's timestamp)", path=graph.path(root, "created"))
    event: dict[str, Any] = {
        "$schema": WIA_SCHEMA_URI, "version": WIA_VERSION,
        "id": uuid5_str(_WIA_NAMESPACE_BYTES, root["id"]),
        "type": event_type, "timestamp": timestamp,
        "severity": DEFAULT_SEVERITY if severity is None else severity,
        "source": {"type": "custom", "name": creator.get("name") if isinstance(creator.get("name"), str) and
                   creator["name"] else "stix"},
        "data": data,
    }
    meta: dict[str, Any] = {}
    if isinstance(root.get("confidence"), int):
        meta["confidence"] = root["confidence"] / 100
    if root.get("labels"):
        meta["tags"] = list(root["labels"])
    if meta:
        event["meta"] = meta
    return event


_KINDS: dict[str, Any] = {_STR: lambda v: type(v) is str, _STRS: lambda v: type(v) is list and all(type(i) is str for i in v),
                          _OBJS: lambda v: type(v) is list and all(type(i) is dict for i in v),
                          _OBJ: lambda v: type(v) is dict, "an integer": lambda v: type(v) is int,
                          "a string or a list of strings": lambda v: type(v) is str or
                          (type(v) is list and all(type(i) is str for i in v))}


def _member(graph: Graph, obj: dict[str, Any], kind: str, *keys: str) -> Any:
    """The member at `keys` below `obj` (None when absent), checked to be `kind` (a ConversionError at
    its JSON path otherwise): for extension members, which `_check_shape` does not look into."""
    value: Any = obj
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if value is not None and not _KINDS[kind](value):
        raise ConversionError("stix", f"`{keys[-1]}` of {obj['id']} must be {kind}, not {value!r:.60}",
                              path=graph.path(obj, *keys))
    return value


def _keep(event: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """Values a WIA field cannot hold (outside its enum) in `meta.custom.stix.kept`, keyed by their JSON
    pointer in the document, so nothing the producer sent is dropped silently."""
    if kept:
        event.setdefault("meta", {}).setdefault("custom", {}).setdefault("stix", {})["kept"] = kept
    return event


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _mitre(pattern: dict[str, Any] | None) -> dict[str, str] | None:
    """The WIA mitre block for an attack-pattern with an ATT&CK reference."""
    tech_id = _attack_id(pattern)
    if tech_id is None:
        return None
    t = attack_table()
    tech = t.technique(tech_id)
    block: dict[str, str] = {}
    if "." in tech_id:
        parent = t.technique(tech_id.split(".")[0])
        block.update(technique=tech_id.split(".")[0], sub_technique=tech_id)
        if parent:
            block["technique_name"] = parent.name
        block["sub_technique_name"] = tech.name if tech else pattern.get("name", tech_id)
    else:
        block.update(technique=tech_id, technique_name=tech.name if tech else pattern.get("name", tech_id))
    tactic = _tactic(pattern)
    if tactic:
        block = {"tactic": tactic.id, "tactic_name": tactic.name, **block}
    return block


def _attack_id(pattern: dict[str, Any] | None) -> str | None:
    for ref in (pattern or {}).get("external_references") or ():
        if ref.get("source_name") == ATTACK_SOURCE and isinstance(ref.get("external_id"), str) \
                and ref["external_id"].upper().startswith("T"):
            return ref["external_id"].upper()
    return None


def _tactic(obj: dict[str, Any]) -> Any:
    order = {tac.id: i for i, tac in enumerate(attack_table().tactics)}
    found = [attack_table().tactic(p.get("phase_name", "")) for p in obj.get("kill_chain_phases") or ()
             if p.get("kill_chain_name") == ATTACK_SOURCE]
    found = [t for t in found if t is not None]
    return min(found, key=lambda t: order[t.id]) if found else None


def _rules(indicators: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Indicators whose pattern is another language's rule (Snort, YARA, Sigma, ...): no observable WIA
    has a type for, so each rule is kept whole (meta.custom.stix.rules) instead of failing the bundle."""
    return [{k: i[k] for k in ("id", "pattern_type", "pattern") if k in i}
            for i in indicators if i.get("pattern_type", "stix") != "stix"]


def _with_rules(event: dict[str, Any], indicators: list[dict[str, Any]]) -> dict[str, Any]:
    rules = _rules(indicators)
    if rules:
        event.setdefault("meta", {}).setdefault("custom", {}).setdefault("stix", {})["rules"] = rules
    return event


def _indicators(graph: Graph, indicators: list[dict[str, Any]], vocab: frozenset[str],
                context_as: str) -> list[dict[str, Any]]:
    out = []
    for ind in indicators:
        if ind.get("pattern_type", "stix") != "stix":
            continue                         # a rule, kept by _with_rules
        pairs = comparisons(ind.get("pattern", ""), vocab)
        if not pairs:
            raise ConversionError("stix", f"no WIA indicator type fits the pattern {ind.get('pattern')!r} "
                                  f"of {ind['id']}", path=graph.path(ind, "pattern"))
        for wia_type, value in pairs:
            item: dict[str, Any] = {"type": wia_type, "value": value}
            desc = ind.get("description")
            if context_as == "text" and desc:
                item["context"] = desc
            elif context_as == "object":
                ctx = {"description": desc} if desc else {}
                phases = ind.get("kill_chain_phases") or ()
                if phases and phases[0].get("phase_name"):
                    ctx["kill_chain_phase"] = phases[0]["phase_name"]
                if ctx:
                    item["context"] = ctx
            elif context_as == "ioc" and desc:
                item["description"] = desc
            if isinstance(ind.get("confidence"), int) and context_as != "ioc":
                item["confidence"] = ind["confidence"] / 100
            first_seen = graph.time(ind, "valid_from")
            if first_seen:
                item["first_seen"] = first_seen
            out.append(item)
    return out


# -- per root type ------------------------------------------------------------------------------------

def _alert(graph: Graph, sighting: dict[str, Any]) -> dict[str, Any]:
    sighted = graph.get(sighting.get("sighting_of_ref")) or {}
    if sighted.get("type") == "indicator":
        indicators = [sighted]
    else:
        indicators = graph.sources(sighted.get("id", ""), "indicates", "indicator")
    short = sighting["id"].split("--")[1][:8].upper()
    data: dict[str, Any] = {"alert_id": f"ALERT-{short}", "title": sighted.get("name") or "STIX sighting",
                            "category": "other", "status": "new"}
    if sighting.get("description"):
        data["description"] = sighting["description"]
    mitre = _mitre(sighted) if sighted.get("type") == "attack-pattern" else None
    if sighted.get("type") == "attack-pattern" and mitre is None:
        rule = {"name": sighted.get("name")}
        rule.update({"id": r["external_id"] for r in sighted.get("external_references") or () if r.get("external_id")})
        data["detection_rule"] = {k: v for k, v in rule.items() if v}
    items = _indicators(graph, indicators, _ALERT_VOCAB, "text")
    if items:
        data["indicators"] = items
    for key in ("first_seen", "last_seen"):
        _put(data, key, graph.time(sighting, key))
    if sighting.get("count") is not None and sighting["count"] >= 1:
        data["count"] = sighting["count"]
    event = _envelope(graph, sighting, "alert", data)
    data["priority"] = BAND_PRIORITY.get(band(event["severity"]), "medium")
    if mitre:
        event["mitre"] = mitre
    context: dict[str, Any] = {}
    for ref in sighting.get("observed_data_refs") or ():
        od = graph.get(ref)
        if od is not None:
            context = _context(graph, od)
    if context:
        event["context"] = context
    return _with_rules(event, indicators)


def _context(graph: Graph, od: dict[str, Any]) -> dict[str, Any]:
    scos = [o for o in (graph.get(r) for r in od.get("object_refs") or ()) if o is not None]
    context: dict[str, Any] = {}
    traffic = next((o for o in scos if o["type"] == "network-traffic"), None)
    in_traffic = {traffic.get("src_ref"), traffic.get("dst_ref")} if traffic else set()
    if traffic:
        network: dict[str, Any] = {}
        for side, ref_key, port_key in (("source", "src_ref", "src_port"), ("destination", "dst_ref", "dst_port")):
            end = _endpoint(graph, scos, traffic.get(ref_key), traffic.get(port_key))
            if end:
                network[side] = end
        app = [p for p in traffic.get("protocols") or () if p not in ("ipv4", "ipv6")]
        if app:
            network["protocol"] = app[-1].upper()
        if network:
            context["network"] = network
    host_ips = [o["value"] for o in scos if o["type"] in ("ipv4-addr", "ipv6-addr") and o["id"] not in in_traffic]
    macs = [o["value"] for o in scos if o["type"] == "mac-addr"]
    host = {k: v for k, v in (("ip", host_ips), ("mac", macs)) if v}
    if host:
        context["host"] = host
    account = next((o for o in scos if o["type"] == "user-account"), None)
    if account and (account.get("account_login") or account.get("user_id")):
        user = {"name": account.get("account_login") or account.get("user_id")}
        email = next((o["value"] for o in scos if o["type"] == "email-addr" and o.get("belongs_to_ref") == account["id"]),
                     None)
        if email:
            user["email"] = email
        context["user"] = user
    return context


def _endpoint(graph: Graph, scos: list[dict[str, Any]], ref: Any, port: Any) -> dict[str, Any]:
    addr = graph.get(ref)
    end: dict[str, Any] = {}
    if addr and addr["type"] in ("ipv4-addr", "ipv6-addr"):
        end["ip"] = addr["value"]
        name = next((o["value"] for o in scos if o["type"] == "domain-name" and addr["id"] in (o.get("resolves_to_refs") or ())),
                    None)
        if name:
            end["hostname"] = name
    if isinstance(port, int):
        end["port"] = port
    return end


def _threat(graph: Graph, threat: dict[str, Any]) -> dict[str, Any]:
    kind = threat["type"]
    if kind == "malware":
        types = threat.get("malware_types") or ()
        threat_type = "ransomware" if "ransomware" in types else "botnet" if "bot" in types else "malware"
    else:
        threat_type = {"intrusion-set": "apt", "threat-actor": "apt"}.get(kind, "campaign")
    indicators = graph.sources(threat["id"], "indicates", "indicator")
    patterns = graph.targets(threat["id"], "uses", "attack-pattern")
    data: dict[str, Any] = {"threat_type": threat_type, "threat_name": threat.get("name") or threat["id"],
                            "status": "unknown"}
    if threat.get("aliases"):
        data["aliases"] = list(threat["aliases"])     # the event's own list, not the document's
    for key in ("first_seen", "last_seen"):
        _put(data, key, graph.time(threat, key))
    items = _indicators(graph, indicators, _TI_VOCAB, "object")
    if items:
        data["indicators"] = items
    ttps = []
    for p in patterns:
        mitre = _mitre(p)
        if mitre:
            ttp = {"technique": mitre.get("sub_technique", mitre["technique"]),
                   "technique_name": mitre.get("sub_technique_name", mitre.get("technique_name"))}
            if mitre.get("tactic"):
                ttp = {"tactic": mitre["tactic"], "tactic_name": mitre["tactic_name"], **ttp}
            ttps.append(ttp)
    if ttps:
        data["ttps"] = ttps
    creator = (graph.get(threat.get("created_by_ref")) or {}).get("name")
    refs = threat.get("external_references") or ()
    urls = [r["url"] for r in refs if r.get("url") and r.get("source_name") not in ("cve", "cwe", ATTACK_SOURCE)]
    if urls:
        data["references"] = urls
    report = next((r["external_id"] for r in refs if r.get("external_id") and not r.get("url")
                   and r.get("source_name") in (creator, "wia-security")), None)
    if report:
        data["report_id"] = report
    return _with_rules(_envelope(graph, threat, "threat_intel", data), indicators)


def _lone_indicator(graph: Graph, ind: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"threat_type": "malware", "threat_name": ind.get("name") or ind["id"], "status": "unknown"}
    if ind.get("pattern_type", "stix") != "stix":
        # A Snort/YARA/Sigma rule names no observable WIA has a type for: the rule itself is kept.
        event = _envelope(graph, ind, "threat_intel", data)
        event.setdefault("meta", {})["custom"] = {"stix": {k: ind[k] for k in ("id", "pattern_type", "pattern") if k in ind}}
        return event
    data["indicators"] = _indicators(graph, [ind], _TI_VOCAB, "object")
    return _envelope(graph, ind, "threat_intel", data)


def _vulnerability(graph: Graph, vuln: dict[str, Any]) -> dict[str, Any]:
    refs = vuln.get("external_references") or ()
    cve = next((r["external_id"].upper() for r in refs if r.get("source_name") == "cve" and r.get("external_id")), None)
    named = _CVE.search(vuln.get("name", "").upper())     # "CVE-2021-44228 (Log4Shell)"
    if cve is None and named:
        cve = named[0]
    if cve is not None and not _CVE.fullmatch(cve):
        i = next(i for i, r in enumerate(refs) if r.get("source_name") == "cve" and r.get("external_id"))
        raise ConversionError("stix", f"the CVE id {cve!r:.60} of {vuln['id']} is not CVE-YYYY-NNNN (WIA's vuln_id)",
                              path=graph.path(vuln, "external_references", i, "external_id"))
    if cve is None:
        raise ConversionError("stix", f"a WIA vulnerability needs a CVE id; {vuln['id']} has none (no "
                              "external reference with source_name \"cve\", no CVE- name)",
                              path=graph.path(vuln, "external_references"))
    data: dict[str, Any] = {"vuln_id": cve, "title": vuln.get("name") or cve,
                            "cvss": {"version": "3.1", "score": 0, "severity": "none"}}
    score = vuln.get("x_opencti_cvss_base_score")     # STIX has no CVSS property; OpenCTI exports add this one
    if isinstance(score, (int, float)) and not isinstance(score, bool) and 0 <= score <= 10:
        data["cvss"] = {"version": "3.1", "score": score, "severity": "none" if score == 0 else "low" if score < 4 else
                        "medium" if score < 7 else "high" if score < 9 else "critical"}
    if vuln.get("description"):
        data["description"] = vuln["description"]
    # NVD also writes "NVD-CWE-Other" / "NVD-CWE-noinfo" there: no CWE id, not WIA's `cwe`
    cwes = [r["external_id"] for r in refs if r.get("source_name") == "cwe" and _CWE.fullmatch(r.get("external_id") or "")]
    if cwes:
        data["cwe"] = cwes
    urls = [r["url"] for r in refs if r.get("url")]
    if urls:
        data["references"] = urls
    return _envelope(graph, vuln, "vulnerability", data)


def _incident(graph: Graph, inc: dict[str, Any]) -> dict[str, Any]:
    where = ("extensions", INCIDENT_CORE_EXTENSION)
    _member(graph, inc, _OBJ, *where)
    scores = _member(graph, inc, _OBJS, *where, "scores") or ()
    severity = next((s["value"] for s in scores if s.get("name") == "wia-severity"
                     and type(s.get("value")) in (int, float) and 0 <= s["value"] <= 10), None)
    category = ((_member(graph, inc, _STRS, *where, "incident_types") or ["other"])[0]).replace("-", "_")
    status = {"new": "new", "closed": "closed"}.get(_member(graph, inc, _STR, *where, "investigation_status"),
                                                    "investigating")
    crit = _member(graph, inc, "an integer", *where, "criticality")
    short = inc["id"].split("--")[1][:8].upper()
    data: dict[str, Any] = {"incident_id": f"INC-{short}", "title": inc.get("name") or short,
                            "category": category if category in _INCIDENT_CATEGORIES else "other", "status": status}
    if inc.get("description"):
        data["description"] = inc["description"]
    related = graph.related(inc["id"])
    iocs = [o for o in related if o["type"] == "indicator"]
    items = _indicators(graph, iocs, _IOC_VOCAB, "ioc")
    if items:
        data["iocs"] = [{k: v for k, v in i.items() if k in ("type", "value", "description", "first_seen")}
                        for i in items]
    event = _envelope(graph, inc, "incident", data, severity)
    if isinstance(crit, int):
        data["priority"] = "critical" if crit >= 100 else "high" if crit >= 75 else "medium" if crit >= 50 else "low"
    else:
        priority = BAND_PRIORITY.get(band(event["severity"]), "medium")
        data["priority"] = "low" if priority == "info" else priority     # incident priority has no "info"
    mitre = next((m for m in (_mitre(o) for o in related if o["type"] == "attack-pattern") if m), None)
    if mitre:
        event["mitre"] = mitre
    return _with_rules(event, iocs)


def _observed(graph: Graph, od: dict[str, Any]) -> dict[str, Any]:
    scos = [o for o in (graph.get(r) for r in od.get("object_refs") or ()) if o is not None]
    types = {o["type"] for o in scos}
    traffic = next((o for o in scos if o["type"] == "network-traffic"), None)
    # A flow with both ends is a network event; a half-known one (a connection an endpoint saw) is not.
    complete = traffic is not None and all(
        (graph.get(traffic.get(k)) or {}).get("type") in ("ipv4-addr", "ipv6-addr") for k in ("src_ref", "dst_ref"))
    if scos and scos[0]["type"] == "user-account" and not types & {"process", "file", "windows-registry-key"}:
        return _auth_event(graph, od, scos)   # the account leads: an auth event
    if types & {"process", "file", "windows-registry-key"} or (traffic is not None and not complete):
        return _endpoint_event(graph, od, scos)
    if traffic is not None:
        return _network_event(graph, od, scos, traffic)
    if types <= {"ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"}:    # host details only: an endpoint event
        return _endpoint_event(graph, od, scos)
    return _auth_event(graph, od, scos)


def _network_event(graph: Graph, od: dict[str, Any], scos: list[dict[str, Any]],
                   traffic: dict[str, Any]) -> dict[str, Any]:
    protocols = traffic.get("protocols") or ()
    kept: dict[str, Any] = {}
    ext = _member(graph, traffic, _OBJ, "extensions", "http-request-ext") or {}
    kind = "http" if ext else next((_APPS[p] for p in protocols if p in _APPS), "connection")
    data: dict[str, Any] = {"event_type": kind,
                            "protocol": next((_TRANSPORTS[p] for p in protocols if p in _TRANSPORTS), "TCP")}
    for side, ref_key, port_key in (("source", "src_ref", "src_port"), ("destination", "dst_ref", "dst_port")):
        end = _endpoint(graph, scos, traffic.get(ref_key), traffic.get(port_key))
        if "ip" not in end:
            raise ConversionError("stix", f"a WIA network event needs the {side} IP address ({traffic['id']} "
                                  f"has no {ref_key} to an ipv4-addr or ipv6-addr)", path=graph.path(traffic, ref_key))
        data[side] = end
    for stix_key, wia_key in (("src_byte_count", "bytes_sent"), ("dst_byte_count", "bytes_received"),
                              ("src_packets", "packets_sent"), ("dst_packets", "packets_received")):
        if isinstance(traffic.get(stix_key), int) and traffic[stix_key] >= 0:
            data[wia_key] = traffic[stix_key]
    url = next((o["value"] for o in scos if o["type"] == "url"), None)
    if url:
        data["url"] = url
    if ext:
        where = ("extensions", "http-request-ext")
        _member(graph, traffic, _OBJ, *where, "request_header")
        method = _member(graph, traffic, _STR, *where, "request_method") or ""
        http = {}
        if method.upper() in _HTTP_METHODS:
            http["method"] = method.upper()
        else:       # WEBDAV and other methods WIA's enum does not list: kept as they came
            kept[graph.path(traffic, *where, "request_method")] = method
        for header, key in (("User-Agent", "user_agent"), ("Referer", "referer")):
            value = _member(graph, traffic, "a string or a list of strings", *where, "request_header", header)
            if value:
                http[key] = value[0] if isinstance(value, list) else value
        data["http"] = http
    hosts = {data["source"].get("hostname"), data["destination"].get("hostname")}
    query = next((o for o in scos if o["type"] == "domain-name" and o["value"] not in hosts and o.get("resolves_to_refs")),
                 None)
    if kind == "dns" and query:
        answers = [a["value"] for a in (graph.get(r) for r in query["resolves_to_refs"]) if a]
        data["dns"] = {"query": query["value"], "response": answers}
    cert = next((o for o in scos if o["type"] == "x509-certificate"), None)
    if cert:
        certificate = {k: cert[s] for s, k in (("issuer", "issuer"), ("subject", "subject"))
                       if s in cert}
        for s, k in (("validity_not_before", "not_before"), ("validity_not_after", "not_after")):
            _put(certificate, k, graph.time(cert, s))
        if (cert.get("hashes") or {}).get("SHA-256"):
            certificate["fingerprint_sha256"] = cert["hashes"]["SHA-256"]
        data["tls"] = {"certificate": certificate}
    return _keep(_envelope(graph, od, "network_event", data), kept)


def _file_obj(graph: Graph, f: dict[str, Any] | None) -> dict[str, Any]:
    if not f:
        return {}
    out: dict[str, Any] = {}
    directory = graph.get(f.get("parent_directory_ref"))
    if f.get("name"):
        out["name"] = f["name"]
        if directory and directory.get("path"):
            sep = "\\" if "\\" in directory["path"] or ":" in directory["path"] else "/"
            out["path"] = directory["path"].rstrip(sep) + sep + f["name"]
    hashes = {w: f["hashes"][s] for s, w in (("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"))
              if s in (f.get("hashes") or {})}
    if hashes:
        out["hash"] = hashes
    return out


def _endpoint_event(graph: Graph, od: dict[str, Any], scos: list[dict[str, Any]]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    procs = [o for o in scos if o["type"] == "process"]
    parents = {p.get("parent_ref") for p in procs}
    main = next((p for p in procs if p["id"] not in parents), procs[0] if procs else None)
    images = {p.get("image_ref") for p in procs}
    data: dict[str, Any] = {"event_type": "process_creation", "host": {"hostname": "unknown"}}
    traffic = next((o for o in scos if o["type"] == "network-traffic"), None)
    in_traffic = {traffic.get("src_ref"), traffic.get("dst_ref")} if traffic else set()
    ips = [o["value"] for o in scos if o["type"] in ("ipv4-addr", "ipv6-addr") and o["id"] not in in_traffic]
    if ips:
        data["host"]["ip"] = ips
    names = [o["value"] for o in scos if o["type"] == "domain-name"]
    if len(names) == 1 and not {o["type"] for o in scos} & {"process", "file", "windows-registry-key", "network-traffic"}:
        data["host"]["hostname"] = names[0]         # what the writer makes of a host with nothing else seen
    if main:
        proc: dict[str, Any] = {k: main[k] for k in ("pid", "command_line") if k in main}
        proc.update(_file_obj(graph, graph.get(main.get("image_ref"))))
        _put(proc, "start_time", graph.time(main, "created_time"))
        user = graph.get(main.get("creator_user_ref"))
        if user and user.get("account_login"):
            proc["user"] = user["account_login"]
        parent = graph.get(main.get("parent_ref"))
        if parent:
            par = {k: parent[k] for k in ("pid", "command_line") if k in parent}
            image = _file_obj(graph, graph.get(parent.get("image_ref")))
            par.update({k: image[k] for k in ("name", "path") if k in image})
            if "pid" in par:
                proc["ppid"] = par["pid"]
            proc["parent"] = par
        data["process"] = proc
    files = [o for o in scos if o["type"] == "file" and o["id"] not in images]    # images of every process
    if files:
        f = files[0]
        info = _file_obj(graph, f)
        if f.get("size") is not None:
            info["size"] = f["size"]
        for s, w in (("ctime", "created"), ("mtime", "modified"), ("atime", "accessed")):
            _put(info, w, graph.time(f, s))
        data["file"] = info
        data["event_type"] = "file_create"
    key = next((o for o in scos if o["type"] == "windows-registry-key"), None)
    if key:
        reg: dict[str, Any] = {"key": key.get("key", "")}
        value = (key.get("values") or [{}])[0]
        for s, w in (("name", "value_name"), ("data", "value_data"), ("data_type", "value_type")):
            if s in value and (s != "data_type" or value[s] in _REG_TYPES):
                reg[w] = value[s]
            elif s in value:        # REG_NONE, REG_LINK, ...: not in WIA's enum, kept as they came
                kept[graph.path(key, "values", 0, s)] = value[s]
        data["registry"] = reg
        data["event_type"] = "registry_modify"
    if traffic:
        src = graph.get(traffic.get("src_ref")) or {}
        dst = graph.get(traffic.get("dst_ref")) or {}
        conn = {"direction": "outbound", "local_ip": src.get("value"), "local_port": traffic.get("src_port"),
                "remote_ip": dst.get("value"), "remote_port": traffic.get("dst_port"),
                "protocol": next((_TRANSPORTS[p] for p in traffic.get("protocols") or () if p in ("tcp", "udp")), None)}
        data["network_connection"] = {k: v for k, v in conn.items() if v is not None}
    return _keep(_envelope(graph, od, "endpoint_event", data), kept)


def _auth_event(graph: Graph, od: dict[str, Any], scos: list[dict[str, Any]]) -> dict[str, Any]:
    account = next((o for o in scos if o["type"] == "user-account"), {})
    user = {"name": account.get("account_login") or account.get("user_id") or "unknown"}
    email = next((o["value"] for o in scos if o["type"] == "email-addr" and o.get("belongs_to_ref") == account.get("id")),
                 None)
    if email:
        user["email"] = email
    url = next((o["value"] for o in scos if o["type"] == "url"), None)
    target: dict[str, Any] = {"type": "application", "name": url or "unknown"}
    if url:
        target["url"] = url
    data = {"event_type": "login_success", "result": "success", "user": user, "target": target}
    return _envelope(graph, od, "auth_event", data)


_READERS = (("sighting", _alert), ("incident", _incident), ("vulnerability", _vulnerability),
            *((t, _threat) for t in THREAT_TYPES), ("indicator", _lone_indicator), ("observed-data", _observed))
