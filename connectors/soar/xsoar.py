"""Cortex XSOAR sink: one incident per WIA event through demisto-py (the official XSOAR API client).

Incident (XSOAR REST API, `POST /incident`, demisto-py `create_incident`): `name`, `type` ("WIA
Security Event", the content pack's incident type), `severity` mapped from the WIA band (0.5
informational, 1 low, 2 medium, 3 high, 4 critical), `occurred` = the event timestamp (in UTC when XSOAR would refuse its spelling), `labels`
(wia_event_id, wia_event_type, meta.labels, meta.tags), `CustomFields` (the pack's wia* incident
fields, see mapping.XSOAR_FIELDS) and `rawJSON` = the WIA event, which the pack's incoming mapper
and playbook read. XSOAR has no idempotency key, so before creating, the sink searches
(`POST /incidents/search`, query `wiaeventid:"<id>"`) and reports an event already there as a
duplicate, or, when the event is a newer version of the incident's rawJSON (_versions.is_newer),
updates the incident and reports it delivered. `update(event)` re-posts the incident with its `id`
and current `version` (XSOAR's optimistic locking); `search(query)` lists incidents.

Auth: the API key in `Authorization`; XSOAR 8 / XSIAM also needs the key id (`auth_id`, sent as
`x-xdr-auth-id`). URL: `xsoar+https://xsoar.example.com` (XSOAR 8: the API URL, e.g.
`xsoar+https://api-tenant.xdr.us.paloaltonetworks.com`; with `auth_id` another https host is
refused, since demisto-py would send to api-<host>; nothing is taken from demisto-py's environment
variables); options: `token` (the API key; secret: token_env / token_file), `auth_id`,
`incident_type`, `playbook` (playbookId to start), `tls_verify`, `ca_file`, delivery keys.
"""
from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError, DeliveryError

from .. import _eventview as view
from ..config import Secret, reveal
from ..delivery import Batch, BatchingSink, DeliveryPolicy, Outcome
from ..delivery.urls import check_header_secret, parse_sink_url, tls_verification, url_netloc, warn_plain_http_secret
from ..delivery.policy import parse_retry_after
from . import mapping
from ._recent import RECENT_IDS_KEPT, RecentMap
from ._versions import is_newer, readable

log = logging.getLogger(__name__)

#: One incident per createIncident call (the batch endpoint /incident/batch is for updates).
XSOAR_EVENTS_PER_REQUEST = 1
DEFAULT_INCIDENT_TYPE = "WIA Security Event"
#: Longest incident name kept (the full text stays in `details`).
XSOAR_MAX_NAME_CHARS = 512
#: Bounds on one answer: bytes (decoded) and seconds in all, from the status line to the last byte.
XSOAR_MAX_ANSWER_BYTES = 64 * 1024 * 1024
XSOAR_ANSWER_SECONDS = 120.0
OPTIONS = ("token", "auth_id", "incident_type", "playbook", "tls_verify", "ca_file", "timeout")
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Event ids find_incident puts in a query as they are (a UUID and then some; no quote, backslash or space).
_QUERY_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class XsoarSink(BatchingSink):
    max_batch_events = XSOAR_EVENTS_PER_REQUEST
    item_separator = b""
    pipelined = False           # callers read the ids a post learned right after send()

    def __init__(self, base_url: str, *, token: Secret | str, auth_id: str | int | None = None,
                 incident_type: str = DEFAULT_INCIDENT_TYPE, playbook: str | None = None, tls_verify: bool = True,
                 ca_file: str | None = None, timeout: float | tuple[float, float] | None = None,
                 recent_ids_kept: int = RECENT_IDS_KEPT, max_answer_bytes: int = XSOAR_MAX_ANSWER_BYTES,
                 answer_seconds: float = XSOAR_ANSWER_SECONDS, delivery: DeliveryPolicy | None = None,
                 dead_letter: Any = None, **machinery: Any) -> None:
        import demisto_client

        from ..delivery.http import DEFAULT_TIMEOUT

        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("expected xsoar+https://host[:port]", key="url", source=f"{parts.scheme}://{parts.hostname}")
        if not token:
            raise ConfigError("an XSOAR API key is required (token_env = \"VAR\" or token_file)", key="token")
        check_header_secret(reveal(token) or "", key="token", product="XSOAR")
        if auth_id is not None:
            check_header_secret(str(auth_id), key="auth_id", product="XSOAR")
        host = url_netloc(parts)             # an IPv6 address keeps its brackets
        super().__init__(name=f"xsoar:{host}", delivery=delivery, dead_letter=dead_letter, **machinery)
        self.base_url = f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
        warn_plain_http_secret(self.name, self.base_url, "XSOAR API key")
        self.incident_type, self.playbook = incident_type, playbook
        # tls_verify=false with a ca_file verifies against the CA file, as the other connectors do
        # (demisto-py alone would turn verification off and ignore the file)
        verify = bool(tls_verification(self.name, tls_verify, ca_file))
        if auth_id is not None and parts.scheme == "https" and not (parts.hostname or "").startswith("api-"):
            # demisto-py would send the key to https://api-<host>/xsoar, a host nobody configured, without a word
            raise ConfigError(f"with auth_id (XSOAR 8 / XSIAM) the URL is the API URL, "
                              f"https://api-{url_netloc(parts)}{parts.path.rstrip('/')}: demisto-py sends every "
                              "request there; give that URL", key="url")
        # Everything demisto-py would otherwise read from the environment is given: DEMISTO_API_KEY_ID or
        # XSIAM_AUTH_ID (set for demisto-sdk on many a machine) turned an XSOAR 6 sink into an XSOAR 8 one,
        # DEMISTO_HTTP_HEADERS added headers to every request.
        self.client = demisto_client.configure(base_url=self.base_url, api_key=reveal(token),
                                               auth_id=str(auth_id) if auth_id is not None else None,
                                               verify_ssl=verify, ssl_ca_cert=ca_file, additional_headers={})
        configuration = self.client.api_client.configuration
        if auth_id is None and "x-xdr-auth-id" in configuration.api_key:
            del configuration.api_key["x-xdr-auth-id"]
            configuration.host = self.base_url
        # demisto-py sets no timeout (a stalled server blocks forever), lets urllib3 retry on its own
        # (attempts would not be counted once) and follow redirects (a POST to a login page, the key
        # re-sent to wherever Location points), and reads any answer whole however long it trickles
        # or however big it is (urllib3 bounds each socket read only): none of that here.
        self.timeout = timeout or DEFAULT_TIMEOUT
        pool = self.client.api_client.rest_client.pool_manager
        pool.urlopen = _once_and_bounded(pool.urlopen, max_bytes=max_answer_bytes, seconds=answer_seconds,
                                         sink=self.name)
        #: event id -> incident id, for the latest `recent_ids_kept` events delivered or found already there
        #: (a gateway sends for weeks; de-duplication is XSOAR's search before create, not this table)
        self.incidents: RecentMap[str, str] = RecentMap(recent_ids_kept)
        #: said once: an incident's rawJSON could not be read, so newer versions cannot be told from duplicates
        self._unreadable_said = False
        #: why events sent again would not be found (XSOAR dropped the wiaeventid field), once seen
        self.deduplication_problem: str | None = None

    def __repr__(self) -> str:
        return f"<XsoarSink {self.name}>"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "XsoarSink":
        parsed = parse_sink_url(url, options, product="XSOAR", known=OPTIONS, numbers=("timeout",),
                                required={"token": "an XSOAR API key is required"})
        return cls(parsed.base, delivery=parsed.delivery, **parsed.options)

    # -- mapping ----------------------------------------------------------------------------------
    def incident_for(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The createIncident body (XSOAR JSON names) for one event."""
        event = dict(event)
        incident = {"name": view.title(event)[:XSOAR_MAX_NAME_CHARS], "type": self.incident_type,
                    "severity": mapping.xsoar_severity(event), "occurred": mapping.xsoar_occurred(event["timestamp"]),
                    "details": view.description(event), "labels": mapping.xsoar_labels(event),
                    "CustomFields": mapping.xsoar_custom_fields(event), "rawJSON": jsonio.dumps(event),
                    "createInvestigation": True}
        if self.playbook:
            incident["playbookId"] = self.playbook
        return incident

    def encode(self, event: Mapping[str, Any]) -> bytes:
        return jsonio.dumpb(self.incident_for(event))

    def _request_model(self, body: dict[str, Any]) -> Any:
        from demisto_client.demisto_api import CreateIncidentRequest, Label

        attribute = {v: k for k, v in CreateIncidentRequest.attribute_map.items()}
        kwargs = {attribute[k]: v for k, v in body.items() if k in attribute}
        kwargs["labels"] = [Label(type=l["type"], value=l["value"]) for l in body.get("labels", [])]
        return CreateIncidentRequest(**kwargs)

    # -- delivery ---------------------------------------------------------------------------------
    def post(self, batch: Batch) -> Sequence[Outcome] | None:
        event = batch.events[0]
        existing = self.find_incident(event["id"])
        body = json.loads(batch.payloads[0])
        if existing is not None:
            self.incidents[event["id"]] = str(existing["id"])
            stored = _stored_event(existing)
            if not readable(stored) and not self._unreadable_said:
                self._unreadable_said = True
                log.warning("%s: incident %s: its rawJSON is not a WIA event with a readable timestamp; an event "
                            "already in XSOAR is counted a duplicate without checking whether it is a newer version "
                            "(said once)", self.name, existing["id"])
            if is_newer(event, stored):
                try:
                    self._update_incident(existing, body)     # a later status of the same event: not a duplicate
                except DeliveryError as exc:
                    if exc.status != 400:
                        raise
                    # XSOAR bumps the version on every change (an analyst, a playbook task), so the version
                    # searched may be stale by now: the retry searches again and sends the current one
                    raise DeliveryError(f"XSOAR refused the update of incident {existing['id']} ({exc.reason}); its "
                                        "version may have moved on since the search: retried", sink=self.name,
                                        status=400, retryable=True) from None
                return None
            return [Outcome.duplicate()]
        created = self._call("create_incident", create_incident_request=self._request_model(body))
        if not getattr(created, "id", None):
            # No incident id: not XSOAR's createIncident answer (a proxy page, an empty body). Retrying
            # is safe: the search above finds the incident if this request did create it.
            raise DeliveryError("XSOAR create_incident answered without an incident id; not counted as created",
                                sink=self.name, retryable=True)
        self.incidents[event["id"]] = str(created.id)
        self._check_deduplication_field(created, body.get("type"))
        return None

    def _check_deduplication_field(self, created: Any, incident_type: Any) -> None:
        """Say once when XSOAR stored the incident without `wiaeventid` (the pack not installed, or its fields
        not associated with this incident type): find_incident searches that field, so it cannot find the
        incident and a re-sent event becomes a second one."""
        if self.deduplication_problem is not None:
            return
        custom = self._as_json(created).get("CustomFields")
        if not isinstance(custom, dict) or custom.get("wiaeventid"):
            return                          # stored, or an answer that does not show the fields: nothing to say
        self.deduplication_problem = (
            f"XSOAR stored incident {created.id} of type {incident_type!r} without the incident field wiaeventid "
            "(the WIA Security pack is not installed, or its fields are not associated with this incident type): "
            "the search that finds an event's incident before creating one cannot find it, so a re-sent event "
            "becomes a second incident. Install the pack and add its fields to this type, or use the pack's type "
            f"{DEFAULT_INCIDENT_TYPE!r}")
        log.warning("%s: %s", self.name, self.deduplication_problem)

    def update(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Re-post the incident of an event already in XSOAR (same id, its current version) with the
        event's new content, e.g. a later status of the same WIA incident; returns the stored incident."""
        existing = self.find_incident(event["id"])
        if existing is None:
            raise DeliveryError(f"no XSOAR incident for WIA event {event['id']}", sink=self.name)
        return self._update_incident(existing, self.incident_for(event))

    def _update_incident(self, existing: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """createIncident with the incident's id and current version (XSOAR's optimistic locking: an edit in
        between answers 400, the event then fails with XSOAR's reason). Neither a new investigation nor the
        playbook is asked for again."""
        body = {k: v for k, v in body.items() if k not in ("createInvestigation", "playbookId")}
        body.update(id=existing["id"], version=existing.get("version"))
        updated = self._call("create_incident", create_incident_request=self._request_model(body))
        if not getattr(updated, "id", None):
            raise DeliveryError("XSOAR create_incident (update) answered without an incident id; not counted as "
                                "updated", sink=self.name, retryable=True)
        return self._as_json(updated)

    def search(self, query: str, *, page: int = 0, size: int = 50) -> list[dict[str, Any]]:
        """Incidents matching an XSOAR query (`type:"WIA Security Event" and severity:>=3`)."""
        from demisto_client.demisto_api import IncidentFilter, SearchIncidentsData

        result = self._call("search_incidents", filter=SearchIncidentsData(filter=IncidentFilter(query=query, page=page, size=size)))
        total, data = getattr(result, "total", None), getattr(result, "data", None)
        # A reply that is not a search result must not read as "no incident": the sink would create a
        # second one. XSOAR always sends `total`, and `data` with the incidents when total > 0.
        if not isinstance(total, int) or isinstance(total, bool) or (total and not isinstance(data, list)):
            raise DeliveryError(f"XSOAR search_incidents answered something that is not a search result "
                                f"(total={total!r}, data {type(data).__name__})", sink=self.name, retryable=True)
        found = [self._as_json(i) for i in (data or [])]
        for n, incident in enumerate(found):
            if not incident.get("id"):
                raise DeliveryError(f"XSOAR search_incidents: /data/{n} has no id", sink=self.name, retryable=True)
        return found

    def _as_json(self, model: Any) -> dict[str, Any]:
        """An incident model as XSOAR's JSON (demisto-py's Incident is a dict subclass holding the
        fields it has no attribute for, such as CustomFields and rawJSON, as items)."""
        out: dict[str, Any] = dict(model) if isinstance(model, dict) else {}
        for attr, key in model.attribute_map.items():
            value = getattr(model, attr, None)
            if value is not None:
                out[key] = self.client.api_client.sanitize_for_serialization(value)
        return out

    def find_incident(self, event_id: str) -> dict[str, Any] | None:
        # The id goes into an XSOAR query: one with a quote in it could end the term and add others (another
        # event's incident would be reported as this one's, or overwritten by update). WIA ids are UUIDs; an
        # id with anything but letters, digits, '-', '_', '.' or ':' is refused, not searched for.
        if not isinstance(event_id, str) or not _QUERY_SAFE_ID.fullmatch(event_id):
            raise DeliveryError(f"WIA event id {str(event_id)[:80]!r} is not usable in an XSOAR query (a WIA event id "
                                "is a UUID): not sent", sink=self.name)
        found = self.search(f'wiaeventid:"{event_id}"', size=1)
        return found[0] if found else None

    def _call(self, method: str, **kwargs: Any) -> Any:
        import urllib3
        from demisto_client.demisto_api.rest import ApiException

        try:
            return getattr(self.client, method)(_request_timeout=self.timeout, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            # With urllib3's own retries off its errors arrive bare (ReadTimeoutError, NewConnectionError),
            # names the shared classifier does not know: every one is a network failure worth a retry.
            raise DeliveryError(f"XSOAR {method}: network error: {type(exc).__name__}: {exc}", sink=self.name,
                                retryable=True) from None
        except ApiException as exc:
            if not exc.status:      # demisto-py's way to raise urllib3's SSLError: status 0, the text in reason
                text = " ".join(str(exc.reason).split())[:300]
                verify_failed = "CERTIFICATE_VERIFY_FAILED" in text
                raise DeliveryError(f"XSOAR {method}: TLS {'verification ' if verify_failed else ''}failed: {text}",
                                    sink=self.name, retryable=not verify_failed) from None
            status = exc.status
            detail = _error_text(exc.body)
            if 300 <= status < 400:
                location = (exc.headers or {}).get("Location") or "(no Location)"
                raise DeliveryError(f"XSOAR {method}: HTTP {status} redirect to {location}: the XSOAR API does not "
                                    "redirect; set the URL to the API address (XSOAR 8: the api- host)",
                                    sink=self.name, status=status) from None
            retry_after = parse_retry_after((exc.headers or {}).get("Retry-After")) if status in _RETRYABLE else None
            if status in (401, 403):
                raise DeliveryError(f"XSOAR refused the API key (HTTP {status}): {detail}", sink=self.name, status=status) from None
            raise DeliveryError(f"XSOAR {method}: HTTP {status}: {detail}", sink=self.name, status=status,
                                retryable=status in _RETRYABLE, retry_after=retry_after) from None

    def close_transport(self) -> None:
        pool = getattr(self.client.api_client, "rest_client", None)
        if pool is not None and hasattr(pool, "pool_manager"):
            pool.pool_manager.clear()


def _once_and_bounded(urlopen: Any, *, max_bytes: int, seconds: float, sink: str) -> Any:
    """urllib3's urlopen with no retries and no redirects, whose answer is read within `max_bytes` (decoded)
    and `seconds` in all, then handed to demisto-py as a response read in full."""
    import io

    import urllib3
    from urllib3.exceptions import HTTPError

    def urlopen_once(method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
        kw.update(retries=False, preload_content=False)
        started = time.monotonic()
        response = urlopen(method, url, redirect=False, **kw)
        what = f"XSOAR {method} {urlsplit(url).path}"
        declared = response.headers.get("Content-Length", "")
        try:
            if declared.isdigit() and int(declared) > max_bytes and "Content-Encoding" not in response.headers:
                raise _too_big(what, sink, max_bytes, f"it says it is {int(declared):,} bytes")
            read = response.read1 if hasattr(response, "read1") else response.read
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() - started > seconds:
                    raise DeliveryError(f"{what}: the answer was still arriving after {seconds:g} s ({size:,} bytes "
                                        "so far): giving up on a server that trickles", sink=sink, retryable=True)
                chunk = read(65_536, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise _too_big(what, sink, max_bytes, "more arrived")
                chunks.append(chunk)
        except (DeliveryError, HTTPError, OSError):
            response.close()            # unread bytes: the connection cannot be reused
            raise
        response.release_conn()
        headers = urllib3.HTTPHeaderDict(response.headers)
        for name in ("Content-Length", "Content-Encoding", "Transfer-Encoding"):
            headers.discard(name)       # the body below is the decoded one, whole
        return urllib3.HTTPResponse(body=io.BytesIO(b"".join(chunks)), headers=headers, status=response.status,
                                    reason=response.reason, preload_content=True, decode_content=False,
                                    request_method=method, request_url=url)
    return urlopen_once


def _too_big(what: str, sink: str, max_bytes: int, how: str) -> DeliveryError:
    return DeliveryError(f"{what}: the answer is over the {max_bytes:,}-byte limit ({how}): refused",
                         sink=sink, retryable=False)


def _stored_event(incident: dict[str, Any]) -> Any:
    """The WIA event an incident was made from (its rawJSON), or None when that is not JSON."""
    raw = incident.get("rawJSON")
    try:
        return json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def _error_text(body: Any) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        doc = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        return str(body)[:300]
    if isinstance(doc, dict):
        return str(doc.get("detail") or doc.get("title") or doc.get("error") or doc)[:300]
    return str(doc)[:300]
