"""A MISP REST API contract server (misp-project.org/openapi): the calls pymisp makes for pull and push.

What it follows:
  - Auth: the `Authorization` header carries the API key; missing or wrong -> 403 `{"name": "Authentication
    failed. Please make sure you pass the API key of an API enabled user along in the Authorization
    header.", "message": ..., "url": path}`. JSON requests must say `Accept: application/json`, POST bodies
    `Content-Type: application/json` (else 406 / 400).
  - pymisp's connection check: GET /servers/getPyMISPVersion.json, /servers/getVersion, /users/view/me
    (User, Role, UserSetting); GET /attributes/describeTypes.json -> 404 here (pymisp uses its bundled copy).
  - POST /events/restSearch and /attributes/restSearch with a JSON filter body: `returnFormat` must be
    "json"; `limit` + `page` (1-based) page the results; `tags` (str or list; "!" negates), `to_ids`,
    `published`, `timestamp` (epoch seconds or 30m/12h/7d, lower bound, inclusive; on /attributes the
    attribute's own timestamp), `eventid`, `type`, `value`, `deleted` (absent/0 live attributes, 1 the
    soft-deleted ones only, [0, 1] both). Replies
    `{"response": [{"Event": {...}}]}` and `{"response": {"Attribute": [...]}}` (attributes carry an
    "Event" summary {id, uuid, info, orgc_id}; event tags only with includeEventTags).
  - HEAD /events/view/{id|uuid}: 200 or 404.
  - POST /events/add with `{"Event": {...}}`: validates info (non-empty), threat_level_id 1-4, analysis 0-2,
    distribution 0-5, uuid, duplicate event uuid; failures are 403 `{"saved": false, "name": "Could not add
    Event", "message": "Could not add Event", "url": "/events/add", "errors": {...}}`. Then each attribute is
    saved on its own, as MISP's Event::_add does: one whose type, category (a subset of describeTypes) or value
    (AttributeValidationTool::validate after modifyBeforeValidation, for the types below) fails, whose uuid is
    taken, or whose type, category and value (as modified) the event already has (valueIsUnique), is dropped with a
    log entry only ("Attribute dropped due to validation for Event N failed"; kept in
    `dropped` here); success returns the stored `{"Event": {...}}` with ids and the attributes saved.
Fault injection: `faults` (see intel_http.Fault).
"""
from __future__ import annotations

import re
import time
import uuid
from typing import Any

from intel_http import ContractServer, Fault, Request  # noqa: F401 - re-exported for tests

VERSION = "2.5.10"
AUTH_FAILED = ("Authentication failed. Please make sure you pass the API key of an API enabled user along in "
               "the Authorization header.")
#: Attribute type -> categories allowed (a subset of MISP's describeTypes category_type_mappings).
TYPE_CATEGORIES = {
    "ip-src": {"Network activity", "Payload delivery", "External analysis"},
    "ip-dst": {"Network activity", "Payload delivery", "External analysis"},
    "domain": {"Network activity", "Payload delivery", "External analysis"},
    "hostname": {"Network activity", "Payload delivery", "External analysis"},
    "url": {"Network activity", "Payload delivery", "External analysis"},
    "md5": {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
    "sha1": {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
    "sha256": {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
    "sha224": {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
    "sha384": {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
    "sha512": {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
    "email-src": {"Payload delivery", "Network activity", "Social network"},
    "mutex": {"Artifacts dropped"},
    "regkey": {"Persistence mechanism", "Artifacts dropped"},
    "link": {"External analysis", "Internal reference", "Antivirus detection", "Payload delivery"},
    "comment": {"Other", "External analysis"},
}


_HASH_LENGTH = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}


def _php_ip(text: str) -> bool:
    """PHP's filter_var(FILTER_VALIDATE_IP): dotted-quad IPv4 without leading zeros, or IPv6 without a zone."""
    import ipaddress
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _modified(kind: str, value: Any) -> Any:
    """AttributeValidationTool::modifyBeforeValidation for the types this server knows (what MISP stores)."""
    if not isinstance(value, str):
        return value
    if kind in _HASH_LENGTH or kind == "email-src":
        return value.lower()
    if kind in ("domain", "hostname"):
        value = value.lower().strip(".")
        if kind == "domain" and not re.fullmatch(r"[a-z0-9.\-_]+\.[a-z0-9\-]{2,}", value):
            try:
                value = value.encode("idna").decode("ascii")      # idn_to_ascii
            except UnicodeError:
                pass
        return value
    if kind in ("ip-src", "ip-dst"):
        import ipaddress
        address, _, prefix = value.partition("/")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return value
        if prefix and prefix == ("32" if ip.version == 4 else "128"):
            return str(ip) if ":" in address else address
        text = str(ip) if ":" in address and "%" not in address else address
        return f"{text}/{prefix}" if prefix else text
    return value


def _value_problem(kind: str, value: Any) -> str | None:
    """AttributeValidationTool::validate for the types this server knows, after modifyBeforeValidation."""
    if not isinstance(value, str) or not value.strip():
        return "Value cannot be empty."
    if kind in _HASH_LENGTH:
        value = value.lower()
        if len(value) == _HASH_LENGTH[kind] and re.fullmatch(r"[0-9a-f]+", value):
            return None
        return f"Checksum has an invalid length or format (expected: {_HASH_LENGTH[kind]} hexadecimal characters)."
    if kind in ("ip-src", "ip-dst"):
        if "/" in value:
            address, prefix = value.split("/", 1)
            if not prefix.isdigit() or not _php_ip(address):
                return "Invalid CIDR notation value found."
            return None if int(prefix) <= (32 if "." in address and ":" not in address else 128) else \
                "Invalid CIDR notation value found."
        return None if _php_ip(value) else "IP address has an invalid format."
    if kind in ("domain", "hostname"):
        value = value.lower().strip(".")
        if not re.fullmatch(r"[a-z0-9.\-_]+\.[a-z0-9\-]{2,}", value):
            try:
                value = value.encode("idna").decode("ascii")
            except UnicodeError:
                pass
        return None if re.fullmatch(r"[a-z0-9.\-_]+\.[a-z0-9\-]{2,}", value) else f"{kind.title()} has an invalid format."
    if kind == "email-src":
        return None if re.match(r"^.[^\s]*@.*\..*$", value.lower()) else "Email address has an invalid format."
    if kind == "link":
        from urllib.parse import urlsplit
        ok = value.isascii() and value.isprintable() and " " not in value and urlsplit(value).scheme
        return None if ok and (urlsplit(value).netloc or urlsplit(value).scheme not in ("http", "https")) else \
            "Link is not a valid URL."
    if kind in ("url", "regkey") and "\n" in value:
        return "Value must not contain new line character."
    return None


def _forbidden(path: str, errors: Any = None, name: str = "Could not add Event") -> tuple[int, Any, dict]:
    body: dict[str, Any] = {"name": name, "message": name, "url": path}
    if errors is not None:
        body = {"saved": False, **body, "errors": errors}
    return 403, body, {}


def _since(value: Any) -> int:
    """restSearch `timestamp`: epoch seconds, or relative "30m", "12h", "7d" (MISP's documented forms)."""
    text = str(value).strip()
    m = re.fullmatch(r"(\d+)([smhd])", text)
    if m:
        return int(time.time()) - int(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
    return int(text)


def _deleted_matches(attr: dict[str, Any], wanted: Any) -> bool:
    """restSearch `deleted` (pymisp's search docs): absent or 0 -> live attributes only, 1 -> only the
    soft-deleted ones, [0, 1] -> both."""
    values = {int(v) for v in (wanted if isinstance(wanted, list) else [0 if wanted is None else wanted])}
    return int(bool(attr.get("deleted"))) in values


class MispServer(ContractServer):
    secret_headers = ("authorization",)

    def __init__(self, key: str = "misp-test-key") -> None:
        super().__init__()
        self.key = key
        self.events: list[dict[str, Any]] = []       # stored inner Event objects
        #: attributes /events/add dropped (MISP logs them, and says nothing in the answer), with why
        self.dropped: list[dict[str, Any]] = []
        self._next_event = 1
        self._next_attr = 1

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Seed an event (the inner object); ids are assigned as MISP would."""
        ev = {"id": str(self._next_event), "uuid": event.get("uuid") or str(uuid.uuid4()), "published": True,
              "timestamp": "1767225600", "date": "2026-01-01", "threat_level_id": "2", "analysis": "2",
              "distribution": "1", "Orgc": {"id": "1", "name": "CIRCL"}, "Tag": [], "Galaxy": [], **event}
        self._next_event += 1
        for attr in ev.setdefault("Attribute", []):
            attr.setdefault("id", str(self._next_attr))
            attr.setdefault("uuid", str(uuid.uuid4()))
            attr.setdefault("event_id", ev["id"])
            attr.setdefault("to_ids", False)
            attr.setdefault("timestamp", ev["timestamp"])
            self._next_attr += 1
        self.events.append(ev)
        return ev

    # -- protocol --------------------------------------------------------------------------------------
    def handle(self, req: Request, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if headers.get("authorization") != self.key:
            return 403, {"name": AUTH_FAILED, "message": AUTH_FAILED, "url": req.path}, {}
        if "application/json" not in headers.get("accept", ""):
            return 406, {"name": "Not Acceptable", "message": "Use Accept: application/json", "url": req.path}, {}
        if req.method == "POST" and "application/json" not in headers.get("content-type", ""):
            return 400, {"name": "Bad Request", "message": "Content-Type must be application/json", "url": req.path}, {}
        path = req.path
        if req.method == "GET" and path == "/servers/getPyMISPVersion.json":
            return 200, {"version": VERSION}, {}
        if req.method == "GET" and path == "/servers/getVersion":
            return 200, {"version": VERSION, "pymisp_recommended_version": VERSION, "perm_sync": False,
                         "perm_sighting": False, "perm_galaxy_editor": False, "request_encoding": ["gzip"]}, {}
        if req.method == "GET" and path == "/users/view/me":
            return 200, {"User": {"id": "1", "email": "admin@example.org", "org_id": "1", "role_id": "3"},
                         "Role": {"id": "3", "name": "User", "perm_add": True, "perm_auth": True},
                         "UserSetting": {}}, {}
        if req.method == "POST" and path == "/events/restSearch":
            return self._rest_search("events", req)
        if req.method == "POST" and path == "/attributes/restSearch":
            return self._rest_search("attributes", req)
        m = re.fullmatch(r"/events/view/([\w-]+)", path)
        if m and req.method == "HEAD":
            return (200 if self._find(m[1]) else 404), None, {}
        if req.method == "POST" and path == "/events/add":
            return self._add(req)
        return 404, {"name": "Not Found", "message": "Not Found", "url": path}, {}

    def _find(self, key: str) -> dict[str, Any] | None:
        return next((e for e in self.events if key in (e["id"], e["uuid"])), None)

    @staticmethod
    def _tags_match(names: list[str], wanted: Any) -> bool:
        wanted = wanted if isinstance(wanted, list) else [wanted]
        positive = [t for t in wanted if not str(t).startswith("!")]
        negative = [str(t)[1:] for t in wanted if str(t).startswith("!")]
        return (not positive or any(t in names for t in positive)) and not any(t in names for t in negative)

    def _rest_search(self, controller: str, req: Request) -> tuple[int, Any, dict]:
        q = req.body if isinstance(req.body, dict) else {}
        if q.get("returnFormat") != "json":
            return 400, {"name": "Invalid return format.", "message": "Invalid return format.", "url": req.path}, {}
        include_tags = str(q.get("includeEventTags", "0")) in ("1", "True", "true")
        rows: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for ev in self.events:
            if "eventid" in q and str(q["eventid"]) not in (ev["id"], ev["uuid"]):
                continue
            if "published" in q and bool(q["published"]) != bool(ev.get("published")):
                continue
            if controller == "events" and "timestamp" in q and int(ev["timestamp"]) < _since(q["timestamp"]):
                continue
            ev_tags = [t["name"] for t in ev.get("Tag", [])]
            if controller == "events":
                if "tags" in q and not self._tags_match(ev_tags, q["tags"]):
                    continue
                rows.append((ev, None))
                continue
            for attr in ev.get("Attribute", []):
                if not _deleted_matches(attr, q.get("deleted")):
                    continue
                # on /attributes the attribute's own timestamp is the one compared (pymisp's search docs)
                if "timestamp" in q and int(attr.get("timestamp") or ev["timestamp"]) < _since(q["timestamp"]):
                    continue
                attr_tags = [t["name"] for t in attr.get("Tag", [])]
                if "tags" in q and not self._tags_match(attr_tags + ev_tags, q["tags"]):
                    continue
                if "type" in q and attr["type"] not in (q["type"] if isinstance(q["type"], list) else [q["type"]]):
                    continue
                if "value" in q and attr["value"] != q["value"]:
                    continue
                if "to_ids" in q and bool(int(q["to_ids"])) != bool(attr.get("to_ids")):
                    continue
                rows.append((ev, attr))
        limit, page = q.get("limit"), int(q.get("page") or 1)
        if limit:
            rows = rows[(page - 1) * int(limit): page * int(limit)]
        if controller == "events":
            shown = [{**ev, **{k: [a for a in ev[k] if _deleted_matches(a, q.get("deleted"))]
                               for k in ("Attribute", "Object") if k in ev}} for ev, _ in rows]
            return 200, {"response": [{"Event": ev} for ev in shown]}, {}
        out = []
        for ev, attr in rows:
            summary = {"id": ev["id"], "uuid": ev["uuid"], "info": ev.get("info"), "orgc_id": "1",
                       "org_id": "1", "distribution": ev["distribution"]}
            item = {**attr, "Event": summary}
            if include_tags:
                item["Tag"] = attr.get("Tag", []) + ev.get("Tag", [])
            out.append(item)
        return 200, {"response": {"Attribute": out}}, {}

    def _add(self, req: Request) -> tuple[int, Any, dict]:
        body = req.body if isinstance(req.body, dict) else None
        ev = body.get("Event", body) if body else None
        if not isinstance(ev, dict):
            return _forbidden(req.path, {"Event": ["Invalid event."]})
        errors: dict[str, list[str]] = {}
        if not str(ev.get("info") or "").strip():
            errors.setdefault("info", []).append("Info cannot be empty.")
        for field, allowed in (("threat_level_id", {"1", "2", "3", "4"}), ("analysis", {"0", "1", "2"}),
                               ("distribution", {"0", "1", "2", "3", "4", "5"})):
            if field in ev and str(ev[field]) not in allowed:
                errors.setdefault(field, []).append(f"Options: {', '.join(sorted(allowed))}")
        if "uuid" in ev:
            try:
                uuid.UUID(str(ev["uuid"]))
            except ValueError:
                errors.setdefault("uuid", []).append("Please provide a valid UUID")
            else:
                if self._find(str(ev["uuid"])):
                    errors.setdefault("uuid", []).append("An event with this uuid already exists.")
        if errors:
            return _forbidden(req.path, {"Event": errors})
        saved, taken = [], {a.get("uuid") for e in self.events for a in e.get("Attribute", [])}
        values: set[tuple[Any, Any, Any]] = set()            # valueIsUnique: (type, category, value) in this event
        for attr in ev.get("Attribute") or []:
            allowed = TYPE_CATEGORIES.get(attr.get("type")) if isinstance(attr, dict) else None
            if allowed is not None:
                attr = {**attr, "value": _modified(attr["type"], attr.get("value"))}
            same = (attr.get("type"), attr.get("category"), attr.get("value")) if allowed is not None else None
            problem = ("Invalid type." if allowed is None else
                       "Invalid category." if attr.get("category") not in allowed else
                       "An attribute with this uuid already exists." if attr.get("uuid") in taken else
                       _value_problem(attr["type"], attr.get("value")) or
                       ("A similar attribute already exists for this event." if same in values else None))
            if problem:      # MISP: "Attribute dropped due to validation for Event N failed" in its log, nothing else
                self.dropped.append({"attribute": attr, "why": problem})
                continue
            taken.add(attr.get("uuid"))
            values.add(same)
            saved.append(attr)
        stored = self.add_event({k: v for k, v in ev.items() if k not in ("id",)}
                                | {"published": bool(ev.get("published")), "Attribute": saved})
        return 200, {"Event": stored}, {}
