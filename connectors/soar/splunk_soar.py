"""Splunk SOAR (Phantom) sink: one container per WIA event, its evidence as artifacts, over the REST API.

Splunk SOAR has no official Python client for its REST API, so this is hand-written on `requests`
(the delivery machinery's session: TLS verified, pooled). Documented contract (Splunk SOAR REST API
reference: "REST Containers", "REST Artifact", "REST Run Playbook", "Query for Data"):

- auth: the automation user's token in the `ph-auth-token` header;
- POST /rest/container with the container fields and an `artifacts` list creates both in one
  request (SOAR sets run_automation on the last artifact); answers {"id": N, "success": true,
  "artifacts": [one result per artifact: {"id"}, {"existing_artifact_id"} or {"failed", "message"}]}
  (as Splunk's splunk-soar-sdk reads it). An artifact that failed leaves the container created: it is
  added with POST /rest/artifact {container_id, ...}; refused for a while, the event is retried (its
  retry meets existing_container_id and adds it then); refused for good, the event is dead-lettered
  naming the container and SOAR's reason;
- a container whose `source_data_identifier` already exists is not created again: the answer
  carries `existing_container_id` (reported here as a duplicate, never as a failure; after an
  attempt of this sink whose answer was lost, the playbook is started on it). When the event is a
  newer version of the one in the container (_versions.is_newer, read with GET /rest/container/N),
  its new artifacts are added and the container updated with POST /rest/container/N: delivered;
- failures answer {"failed": true, "message": "..."} with a non-2xx status;
- POST /rest/playbook_run {container_id, playbook_id ("repo/name" or id), scope, run: true}
  answers {"playbook_run_id": N}; GET /rest/playbook_run/N gives its `status`;
  a start refused for a while (429, 5xx, timeout) retries the event, which then meets
  existing_container_id and starts the playbook;
- GET /rest/container/N and /rest/container?_filter_source_data_identifier="..." read containers.

URL: `phantom+https://soar.example.com` (or `splunksoar+https://...`); options: `token` (secret:
token_env / token_file in config files), `label` (default "events"; labels must exist in SOAR),
`playbook` (run after each new container), `scope` ("new"), `sensitivity` ("amber"; for events without a TLP tag),
`tls_verify`, `ca_file`, delivery keys.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError, DeliveryError

from .. import _eventview as view
from ..config import Secret, reveal
from ..delivery import Batch, BatchingSink, DeliveryPolicy, Outcome
from ..delivery.urls import check_header_secret, parse_sink_url, tls_verification, url_netloc, warn_plain_http_secret
from . import mapping
from ._recent import RECENT_IDS_KEPT, RecentMap, RecentSet
from ._versions import is_newer, readable

log = logging.getLogger(__name__)

#: One container per POST /rest/container: the API creates a single container per request.
SOAR_EVENTS_PER_REQUEST = 1
#: Longest container name kept (SOAR shows names in lists; the full title stays in `description`).
SOAR_MAX_NAME_CHARS = 512
#: Bounds on one answer: bytes (decoded) and seconds in all, from the status line to the last byte.
SOAR_MAX_ANSWER_BYTES = 64 * 1024 * 1024
SOAR_ANSWER_SECONDS = 120.0
DEFAULT_LABEL = "events"
DEFAULT_SENSITIVITY = "amber"
OPTIONS = ("token", "label", "playbook", "scope", "sensitivity", "tls_verify", "ca_file", "timeout")


class SplunkSoarSink(BatchingSink):
    max_batch_events = SOAR_EVENTS_PER_REQUEST
    item_separator = b""
    pipelined = False           # callers read the ids a post learned right after send()

    def __init__(self, base_url: str, *, token: Secret | str, label: str = DEFAULT_LABEL,
                 playbook: str | None = None, scope: str = "new", sensitivity: str = DEFAULT_SENSITIVITY,
                 tls_verify: bool = True, ca_file: str | None = None, timeout: Any = None,
                 recent_ids_kept: int = RECENT_IDS_KEPT, max_answer_bytes: int = SOAR_MAX_ANSWER_BYTES,
                 answer_seconds: float = SOAR_ANSWER_SECONDS,
                 delivery: DeliveryPolicy | None = None, dead_letter: Any = None, **machinery: Any) -> None:
        from ..delivery.http import DEFAULT_TIMEOUT, new_session

        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("expected phantom+https://host[:port]", key="url", source=f"{parts.scheme}://{parts.hostname}")
        if not token:
            raise ConfigError("a Splunk SOAR automation token is required (token_env = \"VAR\" or token_file)", key="token")
        check_header_secret(reveal(token) or "", key="token", product="Splunk SOAR")
        if scope not in ("new", "all"):
            raise ConfigError("must be new or all", key="scope")
        host = url_netloc(parts)             # an IPv6 address keeps its brackets
        super().__init__(name=f"splunk-soar:{host}", delivery=delivery, dead_letter=dead_letter, **machinery)
        self.base_url = f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
        warn_plain_http_secret(self.name, self.base_url, "Splunk SOAR automation token")
        self.label, self.playbook, self.scope, self.sensitivity = label, playbook, scope, sensitivity
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.max_answer_bytes, self.answer_seconds = max_answer_bytes, answer_seconds
        self.session = new_session(verify=tls_verification(self.name, tls_verify, ca_file),
                                   headers={"ph-auth-token": reveal(token) or "", "Content-Type": "application/json"})
        # Each table keeps the latest `recent_ids_kept` ids (a gateway sends for weeks): a retry or re-send
        # of an id further back is asked of SOAR again (existing_container_id: never a second container).
        #: event id -> container id, for the recent events delivered or found already there
        self.containers: RecentMap[str, int] = RecentMap(recent_ids_kept)
        #: container id -> playbook run id (or the reason the playbook did not start), recent containers
        self.playbook_runs: RecentMap[int, int | str] = RecentMap(recent_ids_kept)
        #: event ids whose create request was sent without an answer saying what became of it (lost,
        #: cut, a proxy's page, a retryable error): a duplicate answer to a later attempt is then taken
        #: for the container that attempt made, and the playbook is started on it. An event whose
        #: attempts all failed stays here until pushed out by newer ones.
        self._unanswered: RecentSet[str] = RecentSet(recent_ids_kept)
        #: event ids whose container exists but whose playbook start was refused for a while: started on the retry
        self._playbook_due: RecentSet[str] = RecentSet(recent_ids_kept)
        #: event id -> (container id, positions of its artifacts SOAR has not stored yet): added on the retry
        self._artifacts_due: RecentMap[str, tuple[int, tuple[int, ...]]] = RecentMap(recent_ids_kept)
        #: said once: an existing container could not be read, so newer versions cannot be told from duplicates
        self._unreadable_said = False
        #: event id -> why artifacts of its container were refused for good: the event fails with it
        self._artifacts_lost: RecentMap[str, str] = RecentMap(recent_ids_kept)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SplunkSoarSink":
        parsed = parse_sink_url(url, options, product="Splunk SOAR", known=OPTIONS,
                                required={"token": "a Splunk SOAR token is required"}, numbers=("timeout",))
        return cls(parsed.base, delivery=parsed.delivery, **parsed.options)

    # -- mapping ----------------------------------------------------------------------------------
    def container_for(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The container (with its artifacts) for one event; source_data_identifier = the event id."""
        event = dict(event)
        severity = mapping.soar_severity(event)
        cef, cef_types = mapping.event_cef(event)
        start_time = mapping.soar_time(event["timestamp"])
        artifacts = [{"name": f"WIA {event['type']}", "label": "event", "severity": severity,
                      "source_data_identifier": f"{event['id']}:event", "cef": cef, "cef_types": cef_types,
                      "data": event, "start_time": start_time}]
        for n, (kind, value, context) in enumerate(mapping.indicators(event)):
            ind_cef, ind_types = mapping.indicator_cef(kind, value)
            artifacts.append({"name": context or f"{kind} indicator", "label": "indicator", "severity": severity,
                              "source_data_identifier": f"{event['id']}:indicator:{n}", "cef": ind_cef,
                              "cef_types": ind_types, "start_time": start_time})
        tags = [t for t in (event.get("meta") or {}).get("tags") or [] if isinstance(t, str)]
        container = {"name": view.title(event)[:SOAR_MAX_NAME_CHARS], "label": self.label,
                     "description": view.description(event), "severity": severity, "status": "new",
                     "sensitivity": mapping.soar_sensitivity(event) or self.sensitivity,
                     "source_data_identifier": event["id"],
                     "start_time": start_time, "data": {"wia_event": event}, "tags": tags,
                     "artifacts": artifacts}
        # SOAR's kill_chain field is Lockheed Martin's kill chain, not ATT&CK: ATT&CK goes in the CEF.
        return container

    def encode(self, event: Mapping[str, Any]) -> bytes:
        return jsonio.dumpb(self.container_for(event))

    # -- delivery ---------------------------------------------------------------------------------
    def post(self, batch: Batch) -> Sequence[Outcome] | None:
        from ..delivery.http import error_for_response

        event = batch.events[0]
        # An earlier attempt of this sink whose answer was lost or unreadable may have made the container.
        sent_before = event["id"] in self._unanswered
        self._unanswered.add(event["id"])
        response = self._exchange("POST", "/rest/container", data=batch.payloads[0])
        body = _json(response)
        existing = body.get("existing_container_id") if isinstance(body, dict) else None
        if existing is not None and _container_id(existing) is not None:
            # Same source_data_identifier already ingested: SOAR kept the first, nothing was lost.
            container_id = _container_id(existing)
            assert container_id is not None
            self.containers[event["id"]] = container_id
            self._unanswered.discard(event["id"])
            if self.playbook and sent_before:
                self._playbook_due.add(event["id"])     # the container our lost attempt made: not run yet
            updated = self._update_if_newer(event, container_id, batch.payloads[0])
            return self._complete(event["id"], container_id, batch.payloads[0],
                                  Outcome.delivered() if updated else Outcome.duplicate())
        if 300 <= response.status_code < 400:
            self._unanswered.discard(event["id"])
            location = response.headers.get("Location") or "(no Location)"
            return [Outcome.failed(f"HTTP {response.status_code} redirect to {location}: the SOAR REST API does not "
                                   "redirect; set the URL to the address that answers")]
        if 200 <= response.status_code < 300 and (not isinstance(body, dict) or _container_id(body.get("id")) is None) \
                and not (isinstance(body, dict) and body.get("failed")):
            # A 2xx that is not SOAR's {"id": N, "success": true} (a proxy page, a cut reply): the container
            # may or may not exist. Re-sending is safe: SOAR answers existing_container_id for it.
            raise DeliveryError(f"Splunk SOAR answered HTTP {response.status_code} without a container id "
                                f"({_excerpt(response)}); not counted as created", sink=self.name, retryable=True)
        if response.status_code >= 300 or not isinstance(body, dict) or body.get("failed"):
            message = _message(body)
            error = error_for_response(response, reason=message, sink=self.name, details=_details(body))
            if response.status_code in (401, 403) or not error.retryable:
                self._unanswered.discard(event["id"])     # refused: this attempt made nothing
            if response.status_code in (401, 403):
                raise DeliveryError(f"Splunk SOAR refused the token: {error}", sink=self.name, status=response.status_code)
            if error.retryable:
                raise error
            return [Outcome.failed(str(error), details=_details(body))]
        container_id = _container_id(body["id"])
        assert container_id is not None
        self.containers[event["id"]] = container_id
        self._unanswered.discard(event["id"])
        if self.playbook:
            self._playbook_due.add(event["id"])
        missing = _artifacts_not_stored(body.get("artifacts"), 1 + sum(1 for _ in mapping.indicators(event)))
        if missing:
            self._artifacts_due[event["id"]] = (container_id, missing)
        return self._complete(event["id"], container_id, batch.payloads[0], Outcome.delivered())

    def _update_if_newer(self, event: dict[str, Any], container_id: int, payload: bytes) -> bool:
        """When the event is a newer version of the one the container holds (a later status of the same event):
        add its event artifact and the indicator artifacts it did not have, then update the container's name,
        description, severity, tags and data (POST /rest/container/N), in that order so that a retry after a
        failure between the two finds the old version still there and does both again. The container's status,
        label and playbook runs are left as they are; the added artifacts start no automation."""
        try:
            data = self.container(container_id).get("data")
        except DeliveryError as exc:
            if exc.retryable:
                raise
            self._say_unreadable(container_id, f"it cannot be read: {exc.reason}")   # a token that may create, not read
            return False
        stored = data.get("wia_event") if isinstance(data, dict) else None
        if not readable(stored):
            self._say_unreadable(container_id, "its data.wia_event is not a WIA event with a readable timestamp")
            return False
        if not is_newer(event, stored):
            return False
        container = json.loads(payload)
        known = {(kind, value) for kind, value, _ in mapping.indicators(stored)}
        positions = [0] + [1 + n for n, (kind, value, _) in enumerate(mapping.indicators(event)) if (kind, value) not in known]
        for position in positions:
            self._add_artifact({**container["artifacts"][position], "container_id": container_id, "run_automation": False})
        marked = ("sensitivity",) if mapping.soar_sensitivity(event) else ()    # else an analyst's choice stays
        self._request("POST", f"/rest/container/{container_id}",
                      {key: container[key] for key in ("name", "description", "severity", "tags", "data", *marked)})
        return True

    def _say_unreadable(self, container_id: int, why: str) -> None:
        if not self._unreadable_said:
            self._unreadable_said = True
            log.warning("%s: container %s: %s; an event already in SOAR is counted a duplicate without checking "
                        "whether it is a newer version (said once)", self.name, container_id, why)

    def _complete(self, event_id: str, container_id: int, payload: bytes, outcome: Outcome) -> list[Outcome]:
        """What is still owed to a container that exists: the artifacts SOAR has not stored, then the playbook.
        Either refused for a while raises a retryable DeliveryError (the retry meets existing_container_id and
        comes back here); an artifact refused for good fails the event with SOAR's reason."""
        due = self._artifacts_due.get(event_id)
        if due is not None and due[0] == container_id:
            self._add_artifacts(event_id, container_id, json.loads(payload)["artifacts"], due[1])
        if self.playbook and event_id in self._playbook_due and not isinstance(self.playbook_runs.get(container_id), int):
            self._start_playbook(event_id, container_id)
        self._playbook_due.discard(event_id)
        lost = self._artifacts_lost.pop(event_id, None)
        return [Outcome.failed(lost)] if lost else [outcome]

    def _add_artifacts(self, event_id: str, container_id: int, artifacts: list[dict[str, Any]],
                       positions: tuple[int, ...]) -> None:
        """POST /rest/artifact for each artifact of the container SOAR did not store. Automation runs once, on the
        last one (SOAR's advice for artifacts added one by one)."""
        refused: list[str] = []
        for n, position in enumerate(positions):
            artifact = {**artifacts[position], "container_id": container_id, "run_automation": n == len(positions) - 1}
            try:
                self._add_artifact(artifact)
            except DeliveryError as exc:
                if exc.retryable:
                    self._artifacts_due[event_id] = (container_id, positions[n:])
                    raise DeliveryError(f"container {container_id} created, artifact "
                                        f"{artifacts[position].get('source_data_identifier')} not stored yet: {exc.reason}",
                                        sink=self.name, retryable=True, retry_after=exc.retry_after,
                                        status=exc.status) from None
                refused.append(f"{artifacts[position].get('source_data_identifier')}: {exc.reason}")
        self._artifacts_due.pop(event_id, None)
        if refused:
            self._artifacts_lost[event_id] = (f"container {container_id} created without {len(refused)} of its "
                                              f"{len(artifacts)} artifact(s), refused by Splunk SOAR: " + "; ".join(refused))

    def _add_artifact(self, artifact: dict[str, Any]) -> None:
        """One artifact into an existing container; the same artifact already there counts as stored."""
        from ..delivery.http import error_for_response

        try:
            response = self._exchange("POST", "/rest/artifact", data=jsonio.dumpb(artifact))
        except Exception as exc:  # noqa: BLE001 - classified into a DeliveryError
            from ..delivery import classify_exception
            raise classify_exception(exc) from None
        body = _json(response)
        if isinstance(body, dict) and (_container_id(body.get("existing_artifact_id")) is not None
                                       or (response.status_code < 300 and _container_id(body.get("id")) is not None)):
            return
        if response.status_code < 300 and not (isinstance(body, dict) and body.get("failed")):
            raise DeliveryError(f"Splunk SOAR answered HTTP {response.status_code} to an artifact without its id "
                                f"({_excerpt(response)})", sink=self.name, retryable=True)
        if 300 <= response.status_code < 400:
            raise DeliveryError(f"HTTP {response.status_code} redirect to {response.headers.get('Location') or '(no Location)'}",
                                sink=self.name, status=response.status_code)
        message = _message(body)
        raise error_for_response(response, reason=message, sink=self.name)

    def _start_playbook(self, event_id: str, container_id: int) -> None:
        """Run the configured playbook. Refused for a while (429, 5xx, a timeout, a reply that is not SOAR's):
        a retryable DeliveryError, so the event is retried, SOAR answers existing_container_id and the
        playbook is started then. Refused for good (an unknown playbook): recorded, the container delivered."""
        try:
            self.playbook_runs[container_id] = self.run_playbook(container_id, self.playbook or "", self.scope)
            self._playbook_due.discard(event_id)
        except DeliveryError as exc:
            self.playbook_runs[container_id] = f"not started: {exc}"
            if exc.retryable:
                raise DeliveryError(f"container {container_id} created, playbook {self.playbook} not started yet: "
                                    f"{exc.reason}", sink=self.name, retryable=True, retry_after=exc.retry_after,
                                    status=exc.status) from None
            self._playbook_due.discard(event_id)
            log.warning("%s: container %s created, playbook %s not started: %s", self.name, container_id, self.playbook, exc)

    # -- reading and automation -------------------------------------------------------------------
    def run_playbook(self, container_id: int, playbook: str | int, scope: str | list[int] = "new") -> int:
        """Start `playbook` ("repo/name" or id) on a container; returns the playbook run id."""
        body = self._request("POST", "/rest/playbook_run",
                             {"container_id": container_id, "playbook_id": playbook, "scope": scope, "run": True})
        run_id = _container_id(body.get("playbook_run_id"))
        if run_id is None:
            raise DeliveryError(f"Splunk SOAR playbook_run answered without a playbook_run_id: {str(body)[:200]}",
                                sink=self.name)
        return run_id

    def playbook_run_status(self, run_id: int) -> str:
        """"running", "success", "failed", ... as SOAR reports the run."""
        return str(self._request("GET", f"/rest/playbook_run/{int(run_id)}").get("status"))

    def container(self, container_id: int) -> dict[str, Any]:
        return self._request("GET", f"/rest/container/{int(container_id)}")

    def container_status(self, container_id: int) -> str:
        return str(self.container(container_id).get("status"))

    def find_container(self, event_id: str) -> dict[str, Any] | None:
        """The container ingested for a WIA event id (its source_data_identifier), if any."""
        body = self._request("GET", "/rest/container",
                             params={"_filter_source_data_identifier": jsonio.dumps(str(event_id)), "page_size": 1})
        data = body.get("data") or []
        if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
            raise DeliveryError(f"Splunk SOAR container query: /data is not a list of containers: {str(data)[:200]}",
                                sink=self.name)
        return data[0] if data else None

    def _request(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from ..delivery.http import error_for_response

        try:
            response = self._exchange(method, path, params=params, data=None if body is None else jsonio.dumpb(body))
        except Exception as exc:  # noqa: BLE001 - classified into a DeliveryError
            from ..delivery import classify_exception
            raise classify_exception(exc) from None
        data = _json(response)
        if 300 <= response.status_code < 400:
            raise DeliveryError(f"Splunk SOAR {method} {path}: HTTP {response.status_code} redirect to "
                                f"{response.headers.get('Location') or '(no Location)'}", sink=self.name,
                                status=response.status_code)
        if response.status_code >= 300 or (isinstance(data, dict) and data.get("failed")):
            message = _message(data)
            raise error_for_response(response, reason=message, sink=self.name, details=_details(data))
        if not isinstance(data, dict):
            raise DeliveryError(f"Splunk SOAR {method} {path}: HTTP {response.status_code} with a body that is not a "
                                f"JSON object ({_excerpt(response)})", sink=self.name, status=response.status_code,
                                retryable=True)
        return data

    def _exchange(self, method: str, path: str, *, data: bytes | None = None,
                  params: Mapping[str, Any] | None = None) -> Any:
        """One request, its answer read within `max_answer_bytes` and `answer_seconds` (requests bounds each
        socket read only: a server sending a byte now and then held the event, and all behind it, for as
        long as it kept sending). No redirects: requests would re-send a POST as a GET (301/302) and read a
        container list as the answer, or carry the token header to wherever Location points."""
        from ..delivery.http_body import read_body

        started = time.monotonic()          # the time bound counts from the request, as documented
        response = self.session.request(method, self.base_url + path, params=params, data=data, timeout=self.timeout,
                                        allow_redirects=False, stream=True)
        read_body(response, max_bytes=self.max_answer_bytes, seconds=self.answer_seconds, started=started,
                  what=f"Splunk SOAR {method} {path}", sink=self.name)
        return response

    def close_transport(self) -> None:
        self.session.close()


def _artifacts_not_stored(results: Any, sent: int) -> tuple[int, ...]:
    """Positions of the artifacts a container answer does not show stored ({"id"} or {"existing_artifact_id"}).
    An answer without an `artifacts` list says nothing about them: taken as stored, as before."""
    if not isinstance(results, list):
        return ()
    return tuple(n for n in range(sent) if not (n < len(results) and isinstance(results[n], dict) and (
        _container_id(results[n].get("id")) is not None or _container_id(results[n].get("existing_artifact_id")) is not None)))


def _message(body: Any, limit: int = 300) -> str | None:
    """SOAR's failure message, cut to `limit` characters: it goes into reasons and dead-letter records."""
    message = body.get("message") if isinstance(body, dict) else None
    if message is None or message == "":
        return None
    text = " ".join(str(message).split())
    return text[:limit] + ("…" if len(text) > limit else "")


#: Longest SOAR error document kept whole in a dead-letter record (as JSON characters).
_MAX_DETAILS_CHARS = 4_096


def _details(body: Any) -> dict[str, Any] | None:
    """SOAR's error document for the dead-letter record; one too long to copy is kept as its cut message."""
    if not isinstance(body, dict):
        return None
    size = len(jsonio.dumps(body))
    if size <= _MAX_DETAILS_CHARS:
        return body
    return {"failed": body.get("failed"), "message": _message(body), "cut": f"a {size:,}-character answer"}


def _container_id(value: Any) -> int | None:
    """A SOAR object id (a positive integer; digits in a string tolerated), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return None


def _excerpt(response: Any, limit: int = 120) -> str:
    try:
        text = " ".join(response.text.split())
    except Exception:  # noqa: BLE001 - an undecodable body is described, not raised
        return "an undecodable body"
    return repr(text[:limit] + ("…" if len(text) > limit else "")) if text else "an empty body"


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
