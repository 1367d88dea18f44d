"""A Cortex XSOAR REST API contract server: the incident calls demisto-py makes (create, update, search).

What it follows (Cortex XSOAR REST API reference: createIncident `POST /incident`, searchIncidents
`POST /incidents/search`; demisto-py's models give the JSON names):
  - Auth: XSOAR 6 -> the API key in `Authorization`; XSOAR 8 / XSIAM -> paths under /xsoar, the key
    in `Authorization` and its id in `x-xdr-auth-id`. Missing or wrong -> 401 with XSOAR's error
    document {"id", "status", "title", "detail", "error", "encrypted", "multires"}.
  - POST /incident (CreateIncidentRequest): `name` non-empty; `type` a known incident type;
    `severity` one of 0, 0.5, 1, 2, 3, 4; `rawJSON` a string; `labels` a list of {type, value}
    strings; `CustomFields` values stored for known incident-field cliNames on an incident of a type
    they are associated with (the pack associates them with "WIA Security Event" only); others dropped,
    as XSOAR drops fields the type does not have. Without `id` it creates (id = the next number as a
    string, version 1, status 0 pending); with `id` it updates that incident, which needs the current
    `version` (else 400 "version mismatch", XSOAR's optimistic locking) and bumps it.
  - POST /incidents/search {"filter": {"query", "page", "size"}} -> {"total", "data"}. The query is
    `key:"value"`, `key:value` or `key:>=N` terms joined by spaces or `and`; keys are incident
    fields or CustomFields cliNames.
Fault injection: `faults` (intel_http.Fault), e.g. a 429 with Retry-After.
"""
from __future__ import annotations

import re
from typing import Any

from intel_http import ContractServer, Fault, Request  # noqa: F401 - re-exported for tests

INCIDENT_TYPES = {"Unclassified", "WIA Security Event"}
SEVERITIES = {0, 0.5, 1, 2, 3, 4}
#: cliNames of the incident fields the WIA Security pack defines (a server with the pack installed).
CUSTOM_FIELDS = {"wiaeventid", "wiaeventtype", "wiaversion", "wiaseverityscore", "wiasourcetype", "wiasourcename",
                 "wiasourcevendor", "wiaconfidence", "wiacorrelationid", "wiamitretacticid", "wiamitretactic",
                 "wiamitretechniqueid", "wiamitretechnique", "wiamitresubtechniqueid", "wiamitresubtechnique", "wiastatus",
                 "wiaindicators"}
#: Incident types the pack's fields are associated with (their `associatedTypes`; `associatedToAll` false).
CUSTOM_FIELD_TYPES = {"WIA Security Event"}
_TERM = re.compile(r'\s*(?:and\s+)?([\w.]+):(?:"((?:[^"\\]|\\.)*)"|(>=|<=|>|<)?([^\s"]+))\s*', re.I)


def _error(status: int, title: str, detail: str) -> tuple[int, Any, dict]:
    return status, {"id": title.lower().replace(" ", "_"), "status": status, "title": title, "detail": detail,
                    "error": detail, "encrypted": False, "multires": None}, {}


class XsoarServer(ContractServer):
    secret_headers = ("authorization", "x-xdr-auth-id")

    def __init__(self, api_key: str = "xsoar-test-key", auth_id: str | None = None) -> None:
        super().__init__()
        self.api_key, self.auth_id = api_key, auth_id
        self.incidents: dict[str, dict[str, Any]] = {}
        self._next_id = 0

    def handle(self, req: Request, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        path = req.path
        if self.auth_id is not None:
            if not path.startswith("/xsoar/"):
                return _error(404, "Not Found", "XSOAR 8 serves its API under /xsoar")
            path = path[len("/xsoar"):]
            if headers.get("x-xdr-auth-id") != self.auth_id:
                return _error(401, "Unauthorized", "API key ID missing or wrong (x-xdr-auth-id)")
        if headers.get("authorization") != self.api_key:
            return _error(401, "Unauthorized", "Missing or invalid API key in the Authorization header")
        if req.method == "POST" and not isinstance(req.body, dict):
            return _error(400, "Bad Request", "the request body must be a JSON object")
        if req.method == "POST" and path == "/incident":
            return self._create_or_update(req.body)
        if req.method == "POST" and path == "/incidents/search":
            return self._search(req.body)
        return _error(404, "Not Found", f"no such endpoint {req.method} {req.path}")

    def _create_or_update(self, body: dict[str, Any]) -> tuple[int, Any, dict]:
        body = {k: v for k, v in body.items() if v is not None}     # demisto-py sends every unset field as null
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            return _error(400, "Bad Request", "incident name is required")
        if body.get("type", "Unclassified") not in INCIDENT_TYPES:
            return _error(400, "Bad Request", f"incident type {body.get('type')!r} does not exist")
        if body.get("severity", 0) not in SEVERITIES:
            return _error(400, "Bad Request", f"severity {body.get('severity')!r} is not one of {sorted(SEVERITIES)}")
        if "rawJSON" in body and not isinstance(body["rawJSON"], str):
            return _error(400, "Bad Request", "rawJSON must be a string")
        labels = body.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(l, dict) and isinstance(l.get("type"), str)
                                                   and isinstance(l.get("value"), str) for l in labels):
            return _error(400, "Bad Request", "labels must be a list of {type, value} strings")
        incident_type = body.get("type") or (self.incidents.get(str(body.get("id")), {}).get("type") if body.get("id")
                                             else None) or "Unclassified"
        custom = {k: v for k, v in (body.get("CustomFields") or {}).items()
                  if k in CUSTOM_FIELDS and incident_type in CUSTOM_FIELD_TYPES}
        if body.get("id"):
            current = self.incidents.get(str(body["id"]))
            if current is None:
                return _error(404, "Not Found", f"incident {body['id']} does not exist")
            if body.get("version") != current["version"]:
                return _error(400, "Bad Request", f"version mismatch: incident {body['id']} is at version "
                              f"{current['version']}, the update was for {body.get('version')}")
            fields = {k: v for k, v in body.items() if k not in ("id", "version", "CustomFields")}
            current.update(fields)
            current["CustomFields"] = {**current["CustomFields"], **custom}
            current["version"] += 1
            return 200, current, {}
        self._next_id += 1
        incident = {"id": str(self._next_id), "version": 1, "status": 0, "type": body.get("type", "Unclassified"),
                    "severity": body.get("severity", 0), "name": body["name"], "labels": labels,
                    "CustomFields": custom, "rawJSON": body.get("rawJSON", ""), "occurred": body.get("occurred"),
                    "details": body.get("details", ""), "playbookId": body.get("playbookId", "")}
        self.incidents[incident["id"]] = incident
        return 201, incident, {}

    def _search(self, body: dict[str, Any]) -> tuple[int, Any, dict]:
        flt = {k: v for k, v in (body.get("filter") or {}).items() if v is not None}
        query = flt.get("query") or ""
        rows = list(self.incidents.values())
        pos = 0
        while pos < len(query):
            m = _TERM.match(query, pos)
            if not m or m.end() == pos:
                return _error(400, "Bad Request", f"cannot parse query at {query[pos:]!r}")
            pos = m.end()
            key, quoted, op, bare = m.groups()
            rows = [r for r in rows if _matches(r, key, quoted if quoted is not None else bare, op)]
        size = int(flt.get("size") or 50)
        page = int(flt.get("page") or 0)
        return 200, {"total": len(rows), "data": rows[page * size:(page + 1) * size]}, {}


def _matches(incident: dict[str, Any], key: str, value: str, op: str | None) -> bool:
    have = incident["CustomFields"].get(key, incident.get(key))
    if have is None:
        return False
    if op:
        try:
            number = float(have)
            target = float(value)
        except (TypeError, ValueError):
            return False
        return {">=": number >= target, "<=": number <= target, ">": number > target, "<": number < target}[op]
    return str(have).lower() == value.replace('\\"', '"').lower()
