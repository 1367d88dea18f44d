"""A Splunk SOAR (Phantom) REST API contract server: containers, artifacts, playbook runs, queries.

What it follows (Splunk SOAR REST API reference: "Using the REST API", "REST Containers", "REST
Artifact", "REST Run Playbook", "Query for Data"):
  - Auth: the `ph-auth-token` header (an automation user's token); missing or wrong -> 401
    {"failed": true, "message": ...}. Every failure answers {"failed": true, "message": ...}.
  - POST /rest/container: JSON object; `label` must be an existing label, `severity` an existing
    severity, `status` an existing status, `sensitivity` a TLP value, `name` non-empty; `artifacts`
    (optional) a list of artifact objects created with the container. A `source_data_identifier`
    already used by a container -> the first is kept and the answer carries
    {"existing_container_id": N, "failed": true, "message": "duplicate"}. Success -> 200
    {"id": N, "success": true}.
  - Times (`start_time`, `end_time`, `due_time` of containers and artifacts): read as SOAR's Django models read
    a date-time (django.utils.dateparse.parse_datetime: upper-case T or a space, 1-6 fraction digits and up to
    6 more dropped, Z upper case or an offset [+-]hh[[:]mm]); anything else -> 400 {"failed": true, "message":
    Django's "... value has an invalid format ..."}. Reference examples and SOAR's own answers spell them
    2015-03-21T19:28:13.759000Z.
  - Artifacts: `cef` an object, every `cef_types` key present in `cef` with a list of strings as
    value, `label` non-empty, `severity` an existing severity. (SOAR does not de-duplicate
    artifacts by source_data_identifier.) The artifacts of a container POST are created one by one
    after the container: the answer carries `artifacts`, one result per artifact sent, in order:
    {"id": N}, {"existing_artifact_id": N} or {"failed": true, "message": ...}; an artifact that
    fails leaves the container created (Splunk's own client, splunk-soar-sdk
    soar_sdk/apis/container.py, reads this list the same way).
  - POST /rest/artifact {container_id (existing), ...artifact} -> {"id": N, "success": true}; the
    same artifact (same label, name, source_data_identifier, cef and data) already in that container
    -> {"existing_artifact_id": N, "failed": true, "message": "artifact already exists"}
    (soar_sdk/apis/artifact.py); a bad artifact -> 400 {"failed": true, "message": ...}.
  - POST /rest/playbook_run {container_id (existing), playbook_id ("repo/name" or id of an existing
    playbook), scope ("new", "all" or a list of artifact ids), run: true} -> {"playbook_run_id": N,
    "message": "playbook run request received"}; GET /rest/playbook_run/N -> {"id", "status"}:
    "running" on the first read, then "success".
  - POST /rest/container/N updates the fields given ("Update an existing container"; the same checks
    as on create; 404 for an unknown N) -> {"id": N, "success": true}.
  - GET /rest/container/N, GET /rest/container?_filter_source_data_identifier="x"&page_size=n ->
    {"count", "num_pages", "data"}; GET /rest/artifact?_filter_container=N likewise.
Fault injection: `faults` (intel_http.Fault), e.g. a 503 with Retry-After; `artifact_failures`, messages
the next artifacts created inside a container POST fail with (a database refusal, say), one each.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from intel_http import ContractServer, Fault, Request  # noqa: F401 - re-exported for tests

LABELS = {"events", "incident", "wia_security"}
SEVERITIES = {"low", "medium", "high"}
STATUSES = {"new", "open", "closed"}
SENSITIVITIES = {"white", "green", "amber", "red"}
PLAYBOOKS = {1: "local/wia_triage", 2: "community/investigate"}


#: django.utils.dateparse.datetime_re, the reader of every Django version (4.0+ try datetime.fromisoformat first,
#: which reads each string this reads as the same instant; before 4.0 only this).
DJANGO_DATETIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:[.,](?P<microsecond>\d{1,6})\d{0,6})?)?\s*(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$")
TIME_FIELDS = ("start_time", "end_time", "due_time")


def read_datetime(value: Any) -> datetime | None:
    """A SOAR time field as SOAR stores it (aware, UTC), or None when Django would refuse it."""
    m = DJANGO_DATETIME.match(value) if isinstance(value, str) else None
    if m is None:
        return None
    parts = m.groupdict()
    zone = parts.pop("tzinfo")
    fields = {k: int(v.ljust(6, "0") if k == "microsecond" else v) for k, v in parts.items() if v is not None}
    offset = timezone.utc
    if zone and zone != "Z":
        minutes = int(zone[1:3]) * 60 + (int(zone[-2:]) if len(zone) > 3 else 0)
        offset = timezone(timedelta(minutes=-minutes if zone[0] == "-" else minutes))
    try:
        return datetime(tzinfo=offset, **fields).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _time_problem(body: dict[str, Any]) -> str | None:
    for key in TIME_FIELDS:
        if body.get(key) not in (None, "") and read_datetime(body[key]) is None:
            return (f"{key}: \u201c{body[key]}\u201d value has an invalid format. It must be in "
                    "YYYY-MM-DD HH:MM[:ss[.uuuuuu]][TZ] format.")
    return None


def _fail(status: int, message: str, **extra: Any) -> tuple[int, Any, dict]:
    return status, {"failed": True, "message": message, **extra}, {}


class SplunkSoarServer(ContractServer):
    secret_headers = ("ph-auth-token", "authorization")

    def __init__(self, token: str = "soar-test-token") -> None:
        super().__init__()
        self.token = token
        #: status of the "existing_container_id" answer (the reference shows the body, not the status)
        self.duplicate_status = 200
        self.containers: dict[int, dict[str, Any]] = {}
        self.artifacts: dict[int, dict[str, Any]] = {}
        self.playbook_runs: dict[int, dict[str, Any]] = {}
        #: messages the next artifacts of container POSTs fail with, one per artifact, first first
        self.artifact_failures: list[str] = []
        self._ids = {"container": 0, "artifact": 0, "run": 0}

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def handle(self, req: Request, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if headers.get("ph-auth-token") != self.token:
            return _fail(401, "Authentication failed: a valid ph-auth-token header is required")
        if req.method == "POST" and not isinstance(req.body, dict):
            return _fail(400, "Request body must be a JSON object")
        path = req.path.rstrip("/")
        if req.method == "POST" and path == "/rest/container":
            return self._create_container(req.body)
        if req.method == "GET" and path == "/rest/container":
            return self._query(self.containers, req.query)
        if req.method == "POST" and path.startswith("/rest/container/"):
            return self._update_container(_int(path.rsplit("/", 1)[1]), req.body)
        if req.method == "GET" and path.startswith("/rest/container/"):
            item = self.containers.get(_int(path.rsplit("/", 1)[1]))
            return (200, item, {}) if item else _fail(404, "container not found")
        if req.method == "POST" and path == "/rest/artifact":
            return self._add_artifact(req.body)
        if req.method == "GET" and path == "/rest/artifact":
            return self._query(self.artifacts, req.query)
        if req.method == "POST" and path == "/rest/playbook_run":
            return self._run_playbook(req.body)
        if req.method == "GET" and path.startswith("/rest/playbook_run/"):
            run = self.playbook_runs.get(_int(path.rsplit("/", 1)[1]))
            if run is None:
                return _fail(404, "playbook run not found")
            reply = dict(run)
            run["status"] = "success"            # the run finishes after the first status read
            return 200, reply, {}
        return _fail(404, f"no such endpoint {req.method} {req.path}")

    def _create_container(self, body: dict[str, Any]) -> tuple[int, Any, dict]:
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            return _fail(400, "container name is required")
        if body.get("label") not in LABELS:
            return _fail(400, f"Invalid label: {body.get('label')!r}; labels are created in the SOAR UI")
        for key, allowed in (("severity", SEVERITIES), ("status", STATUSES), ("sensitivity", SENSITIVITIES)):
            if key in body and body[key] not in allowed:
                return _fail(400, f"Invalid {key}: {body[key]!r}")
        if problem := _time_problem(body):
            return _fail(400, problem)
        sdi = body.get("source_data_identifier")
        if sdi is not None:
            for cid, existing in self.containers.items():
                if existing.get("source_data_identifier") == sdi:
                    return self.duplicate_status, {"existing_container_id": cid, "failed": True, "message": "duplicate"}, {}
        artifacts = body.get("artifacts")
        if artifacts is not None and not isinstance(artifacts, list):
            return _fail(400, "artifacts must be a list")
        cid = self._next("container")
        stored = {k: v for k, v in body.items() if k != "artifacts"}
        stored.update(id=cid, status=body.get("status", "new"), artifact_count=0)
        self.containers[cid] = stored
        if artifacts is None:
            return 200, {"id": cid, "success": True}, {}
        results = []
        for artifact in artifacts:
            problem = _artifact_problem(artifact) or (self.artifact_failures.pop(0) if self.artifact_failures else None)
            results.append({"failed": True, "message": problem} if problem else self._store_artifact(cid, artifact))
        return 200, {"id": cid, "success": True, "artifacts": results}, {}

    def _update_container(self, cid: int, body: dict[str, Any]) -> tuple[int, Any, dict]:
        if cid not in self.containers:
            return _fail(404, "container not found")
        if "label" in body and body["label"] not in LABELS:
            return _fail(400, f"Invalid label: {body['label']!r}")
        for key, allowed in (("severity", SEVERITIES), ("status", STATUSES), ("sensitivity", SENSITIVITIES)):
            if key in body and body[key] not in allowed:
                return _fail(400, f"Invalid {key}: {body[key]!r}")
        if "artifacts" in body or "id" in body:
            return _fail(400, "artifacts and id cannot be updated")
        if problem := _time_problem(body):
            return _fail(400, problem)
        self.containers[cid].update(body)
        return 200, {"id": cid, "success": True}, {}

    def _store_artifact(self, cid: int, artifact: dict[str, Any]) -> dict[str, Any]:
        key = _artifact_key(artifact)
        for aid, existing in self.artifacts.items():
            if existing["container"] == cid and _artifact_key(existing) == key:
                return {"existing_artifact_id": aid, "failed": True, "message": "artifact already exists"}
        aid = self._next("artifact")
        self.artifacts[aid] = {**{k: v for k, v in artifact.items() if k != "container_id"}, "id": aid, "container": cid}
        self.containers[cid]["artifact_count"] += 1
        return {"id": aid, "success": True}

    def _add_artifact(self, body: dict[str, Any]) -> tuple[int, Any, dict]:
        cid = body.get("container_id")
        if isinstance(cid, bool) or cid not in self.containers:
            return _fail(400, f"container {cid!r} does not exist")
        problem = _artifact_problem(body)
        if problem:
            return _fail(400, problem)
        return 200, self._store_artifact(cid, body), {}

    def _run_playbook(self, body: dict[str, Any]) -> tuple[int, Any, dict]:
        if body.get("run") is not True:
            return _fail(400, "run must be true")
        if body.get("container_id") not in self.containers:
            return _fail(400, f"container {body.get('container_id')!r} does not exist")
        playbook = body.get("playbook_id")
        if playbook not in PLAYBOOKS and playbook not in PLAYBOOKS.values():
            return _fail(400, f"playbook {playbook!r} not found")
        scope = body.get("scope", "new")
        if not (scope in ("new", "all") or (isinstance(scope, list) and all(isinstance(a, int) for a in scope))):
            return _fail(400, "scope must be new, all or a list of artifact ids")
        rid = self._next("run")
        self.playbook_runs[rid] = {"id": rid, "container": body["container_id"], "playbook": playbook,
                                   "scope": scope, "status": "running"}
        return 200, {"playbook_run_id": rid, "message": "playbook run request received"}, {}

    @staticmethod
    def _query(table: dict[int, dict[str, Any]], query: dict[str, list[str]]) -> tuple[int, Any, dict]:
        rows = list(table.values())
        for key, values in query.items():
            if key.startswith("_filter_"):
                field = key[len("_filter_"):]
                wanted = json.loads(values[-1])        # SOAR filter values are JSON literals: "x", 5
                rows = [r for r in rows if r.get(field) == wanted]
        size = int(query.get("page_size", ["10"])[-1]) or len(rows) or 1
        page = int(query.get("page", ["0"])[-1])
        data = rows[page * size:(page + 1) * size]
        return 200, {"count": len(rows), "num_pages": -(-len(rows) // size), "data": data}, {}


def _artifact_problem(artifact: Any) -> str | None:
    if not isinstance(artifact, dict):
        return "must be an object"
    if not isinstance(artifact.get("label"), str) or not artifact["label"]:
        return "label is required"
    if "severity" in artifact and artifact["severity"] not in SEVERITIES:
        return f"Invalid severity {artifact['severity']!r}"
    if problem := _time_problem(artifact):
        return problem
    cef = artifact.get("cef", {})
    if not isinstance(cef, dict):
        return "cef must be an object"
    for key, contains in (artifact.get("cef_types") or {}).items():
        if key not in cef:
            return f"cef_types key {key!r} is not in cef"
        if not isinstance(contains, list) or not all(isinstance(c, str) for c in contains):
            return f"cef_types[{key!r}] must be a list of strings"
    return None


def _artifact_key(artifact: dict[str, Any]) -> str:
    """What makes two artifacts of a container the same one (the server's `hash`)."""
    return json.dumps([artifact.get(k) for k in ("label", "name", "source_data_identifier", "cef", "data")],
                      sort_keys=True)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1
