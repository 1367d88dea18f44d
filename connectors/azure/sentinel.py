"""Microsoft Sentinel: WIA events as rows of the custom table `WIASecurity_CL` through the Logs Ingestion
API (`azure-monitor-ingestion`, a data collection rule), and as Sentinel incidents through
`azure-mgmt-securityinsight`.

    sentinel://<dce-host>/<dcr-immutable-id>?stream=Custom-WIASecurity[&client_id=<managed identity>]
    sentinel-incidents:///subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.OperationalInsights/workspaces/<ws>

Limits (Azure Monitor service limits, "Logs Ingestion API"): one call carries at most 1 MB
(`MAX_REQUEST_BYTES`; this sink batches so each request body is at most that, uncompressed, and
gzips it); a field value over 64 KB is truncated by the service (`MAX_FIELD_BYTES`: such an event is
refused with the reason instead of stored cut short). An event bigger than one request alone is
dead-lettered, never fatal. The service's 403 (the identity's role on the DCR missing or still
propagating, which "may take up to 30 minutes") is retried for PERMISSION_PROPAGATION_SECONDS.
Credentials: managed identity by default (`credential=default` for DefaultAzureCredential); secrets
never pass through this module. Retries are the shared delivery machinery's (the SDK's own retry policy
is turned off so attempts are counted once).
"""
from __future__ import annotations

import gzip
import io
import json
import re
import time
import uuid
from datetime import timezone
from typing import Any, Callable, Iterator, Sequence, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from wia_security import __version__
from wia_security.errors import ConfigError, DeliveryError, ParseError, WiaError
from wia_security.redact import remember, remember_proxy_credentials
from wia_security.reader import Item
from wia_security.severity import band
from wia_security.timeutil import now_iso, parse_iso

from .. import _eventview as view
from ..base import BaseSink, DeliveryReport, Rejected
from ..delivery.batching import Batch, BatchingSink, BatchItem, Outcome
from ..delivery.http import is_retryable_status
from ..delivery.permission_window import PermissionWindow
from ..delivery.policy import DeliveryPolicy, parse_retry_after
from ..delivery.urls import checked_ca_file, refuse_repeated_keys, seconds

#: Logs Ingestion API: maximum size of one API call (1 MB; Azure Monitor service limits).
MAX_REQUEST_BYTES = 1024 * 1024
#: Logs Ingestion API: a field value longer than this is truncated when stored (64 KB).
MAX_FIELD_BYTES = 64 * 1024
#: The custom table and the DCR input stream that feeds it (azure_function/deploy/sentinel.json).
TABLE = "WIASecurity_CL"
DEFAULT_STREAM = "Custom-WIASecurity"
#: seconds to wait for the answer to one upload (azure-core's own default is 300 s, which stalls a
#: pipeline for five minutes per hung request); connecting gets at most CONNECT_TIMEOUT of it
DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
#: options `from_url` (and a config table) take: the sink's own, and azure-core client settings
SINK_OPTIONS = frozenset({"credential", "client_id", "ca_file", "timeout", "audience", "client", "dead_letter",
                          "name"})
CLIENT_OPTIONS = frozenset({"read_timeout", "connection_timeout", "proxies", "logging_enable"})
#: Token audience of the Logs Ingestion API in the public cloud, and in the sovereign clouds by the data collection
#: endpoint's domain: the client "is configured to use the Azure Public Cloud. To use a sovereign cloud instead,
#: provide the correct endpoint and audience" (azure-monitor-ingestion's sovereign cloud sample:
#: `credential_scopes=["https://monitor.azure.us/.default"]` for `*.ingest.monitor.azure.us`).
PUBLIC_MONITOR_AUDIENCE = "https://monitor.azure.com"
SOVEREIGN_MONITOR_AUDIENCES = {".azure.us": "https://monitor.azure.us", ".azure.cn": "https://monitor.azure.cn"}
#: Azure Resource Manager's token audience (the incidents API), in the public cloud and by the sovereign clouds'
#: Resource Manager hosts (a management client there takes `credential_scopes=[<resource manager>/.default]`).
PUBLIC_ARM_AUDIENCE = "https://management.azure.com"
SOVEREIGN_ARM_HOSTS = frozenset({"management.usgovcloudapi.net", "management.chinacloudapi.cn"})
#: A 403 from the Logs Ingestion API (OperationFailed, "does not have access to ingest data for the data
#: collection rule") while the identity's role on the DCR is new: "The permissions may take up to 30 minutes
#: to propagate" (azure-monitor-ingestion TROUBLESHOOTING.md). The service's 403 is retried until this long
#: after the first one the sink met with no upload accepted since; later 403s fail at once.
PERMISSION_PROPAGATION_SECONDS = 30 * 60
#: The role the Logs Ingestion API requires on the DCR (named in the 403's reason).
INGESTION_ROLE = "Monitoring Metrics Publisher"
#: Resource Manager's 403 (AuthorizationFailed) on the incidents API while the identity's role on the workspace is
#: new: "it can sometimes take up to 30 minutes for changes to take effect when you assign roles" (Azure RBAC
#: troubleshooting: Resource Manager caches them). Retried for the same PERMISSION_PROPAGATION_SECONDS as ingestion.
INCIDENT_WRITE_ROLE = "Microsoft Sentinel Responder"
INCIDENT_READ_ROLE = "Microsoft Sentinel Reader"

_T = TypeVar("_T")

#: The table's columns, in order: (name, Log Analytics type, what fills it). The ARM template's table
#: schema and DCR stream declaration are checked against this list by the tests.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("TimeGenerated", "datetime", "ingestion time (the service refuses very old TimeGenerated values)"),
    ("EventTime", "datetime", "timestamp"),
    ("EventId", "string", "id"),
    ("EventType", "string", "type"),
    ("WiaVersion", "string", "version"),
    ("Severity", "real", "severity (0-10)"),
    ("SeverityBand", "string", "the standard's band of severity"),
    ("SourceType", "string", "source.type"),
    ("SourceName", "string", "source.name"),
    ("SourceVendor", "string", "source.vendor"),
    ("Title", "string", "data.title / threat_name, else a summary"),
    ("Status", "string", "data.status"),
    ("MitreTactic", "string", "mitre.tactic"),
    ("MitreTechnique", "string", "mitre.sub_technique or mitre.technique"),
    ("HostName", "string", "context.host.hostname (endpoint events: data.host.hostname)"),
    ("UserName", "string", "auth user or context.user.name"),
    ("SrcIp", "string", "network source ip"),
    ("DstIp", "string", "network destination ip"),
    ("CloudProvider", "string", "context.cloud.provider"),
    ("CloudAccount", "string", "context.cloud.account_id"),
    ("Tags", "dynamic", "meta.tags"),
    ("Event", "dynamic", "the whole WIA event"),
)


#: Log Analytics datetime values are 100-nanosecond ticks, years 0001-9999, always UTC (KQL "The datetime data
#: type"). The one spelling Microsoft documents for an ingested datetime is UTC with a Z (YYYY-MM-DDThh:mm:ssZ);
#: what the service makes of a lower-case t/z, an offset or more than 7 fraction digits is not documented.
DATETIME_FRACTION_DIGITS = 7
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})")


def column_datetime(value: Any, name: str = "timestamp") -> str:
    """An RFC 3339 time as a datetime column takes it: the same instant in UTC, upper-case T and Z, the fraction as
    written up to 7 digits (ticks; more is cut, never rounded into the next second). ValueError says why not."""
    # one trailing newline: the standard's validator takes it, as the reference's `$` does
    m = _RFC3339.fullmatch(value.removesuffix("\n")) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"{name} {str(value)[:60]!r} is not an RFC 3339 date-time")
    date, clock, fraction, offset = m.groups()
    try:
        moment = parse_iso(f"{date}T{clock}{offset}")
    except ValueError:          # a month 13, a 25th hour: the shape without the calendar
        raise ValueError(f"{name} {value[:60]!r} is not an RFC 3339 date-time") from None
    try:
        # the offset is whole minutes, so only the seconds part moves; the fraction is kept digit for digit
        utc = moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{name} {value[:60]!r} is not an instant Log Analytics holds (UTC years 0001-9999)") from None
    digits = f".{fraction[:DATETIME_FRACTION_DIGITS]}" if fraction else ""
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}{digits}Z"


def to_row(event: dict[str, Any], *, ingested_at: str | None = None) -> dict[str, Any]:
    """One `WIASecurity_CL` row (empty columns left out) for a WIA event dict. EventTime is the event's timestamp
    as `column_datetime` spells it (ValueError when it is no RFC 3339 time); `Event` keeps it as written."""
    source = event.get("source") or {}
    mitre = event.get("mitre") or {}
    cloud = (event.get("context") or {}).get("cloud") or {}
    src, dst = view.endpoints(event)
    row = {
        "TimeGenerated": ingested_at or now_iso(),
        "EventTime": None if event.get("timestamp") is None else column_datetime(event["timestamp"]),
        "EventId": event.get("id"),
        "EventType": event.get("type"),
        "WiaVersion": event.get("version"),
        "Severity": event.get("severity"),
        "SeverityBand": band(event.get("severity")),
        "SourceType": source.get("type"),
        "SourceName": source.get("name"),
        "SourceVendor": source.get("vendor"),
        "Title": view.title(event),
        "Status": view.status(event),
        "MitreTactic": mitre.get("tactic"),
        "MitreTechnique": mitre.get("sub_technique") or mitre.get("technique"),
        "HostName": view.hostname(event),
        "UserName": view.user_name(event),
        "SrcIp": src.get("ip"),
        "DstIp": dst.get("ip"),
        "CloudProvider": cloud.get("provider"),
        "CloudAccount": cloud.get("account_id"),
        "Tags": (event.get("meta") or {}).get("tags"),
        "Event": event,
    }
    return {k: v for k, v in row.items() if v is not None}


def monitor_audience(endpoint: str) -> str:
    """The Logs Ingestion API's token audience for a data collection endpoint: its sovereign cloud's when the
    host is in one (`.azure.us`, `.azure.cn`), else the public cloud's."""
    host = (urlsplit(endpoint).hostname or "").lower()
    return next((audience for suffix, audience in SOVEREIGN_MONITOR_AUDIENCES.items() if host.endswith(suffix)),
                PUBLIC_MONITOR_AUDIENCE)


def arm_audience(base_url: str | None) -> str:
    """Resource Manager's token audience for `base_url`: a sovereign cloud's own host, else the public cloud's."""
    host = (urlsplit(base_url or "").hostname or "").lower()
    return f"https://{host}" if host in SOVEREIGN_ARM_HOSTS else PUBLIC_ARM_AUDIENCE


def checked_audience(audience: str) -> str:
    if not isinstance(audience, str) or not audience.startswith("https://"):
        raise ConfigError("the token audience is an https:// URL such as https://monitor.azure.us", key="audience")
    return audience.rstrip("/")


def make_credential(kind: str = "managed_identity", client_id: str | None = None) -> Any:
    """ManagedIdentityCredential (default; `client_id` picks a user-assigned identity) or DefaultAzureCredential,
    its tokens masked in errors (RedactedTokens)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
    if kind == "managed_identity":
        return RedactedTokens(ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential())
    if kind == "default":
        return RedactedTokens(DefaultAzureCredential(managed_identity_client_id=client_id,
                                                     exclude_interactive_browser_credential=True))
    raise ConfigError("credential must be 'managed_identity' or 'default'", key="credential")


class RedactedTokens:
    """An azure-identity credential whose access tokens are masked in every delivery error from the moment
    they are issued (wia_security.redact): a service that quotes the Authorization header back in an
    error must not carry the bearer token into reasons, logs or dead-letter records."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @classmethod
    def wrap(cls, credential: Any) -> Any:
        return credential if isinstance(credential, cls) or credential is None else cls(credential)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self._remember(self._inner.get_token(*scopes, **kwargs))

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        if hasattr(self._inner, "get_token_info"):
            return self._remember(self._inner.get_token_info(*scopes, options=options))
        from azure.core.credentials import AccessTokenInfo
        token = self._remember(self._inner.get_token(*scopes))
        return AccessTokenInfo(token.token, token.expires_on)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return f"RedactedTokens({type(self._inner).__name__})"

    @staticmethod
    def _remember(token: Any) -> Any:
        remember(token.token)
        return token


def _http_error(exc: Exception, what: str) -> DeliveryError:
    """An azure-core error as a DeliveryError: retryable by status, Retry-After kept, body as details."""
    from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, IncompleteReadError,
                                       ServiceRequestError, ServiceResponseError)
    if isinstance(exc, (ServiceResponseError, IncompleteReadError)):
        # the request went out and the answer never came whole (connection closed, read timeout, body cut
        # short): the rows may or may not be stored; re-sending is the at-least-once choice
        return DeliveryError(f"{what}: network error: {type(exc).__name__}: {exc}", retryable=True)
    if (isinstance(exc, HttpResponseError) and not isinstance(exc, ClientAuthenticationError)
            and exc.status_code is None and exc.response is None):
        # the same, when the connection was reset mid-body: azure-core raises IncompleteReadError only if
        # urllib3 saw an early EOF and wraps a reset as a bare HttpResponseError (which one is a race)
        return DeliveryError(f"{what}: network error: {exc.message}", retryable=True)
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
        # no token could be obtained (identity endpoint down or not configured): may clear up
        return DeliveryError(f"{what}: could not get an access token: {exc.message}", retryable=True)
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        response = exc.response
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        code = getattr(exc.error, "code", None) if exc.error is not None else None
        try:
            details = json.loads(response.text()) if response is not None else None
        except (ValueError, AttributeError):
            details = None
        message = (getattr(exc.error, "message", None) if exc.error is not None else None) or exc.reason or ""
        if 300 <= exc.status_code < 400 and response is not None:
            # redirects are not followed (permit_redirects=False): the rows would go wherever Location says
            message = f"redirect to {response.headers.get('Location') or '(no Location)'}; set the endpoint that answers"
        elif 200 <= exc.status_code < 300:
            expected = "; the Logs Ingestion API answers 204" if what == "Logs Ingestion API" else ""
            message = f"{message}: not a readable answer of this API{expected} (a proxy page?)"
        return DeliveryError(f"{what}: HTTP {exc.status_code}{' ' + code if code else ''}: {message}",
                             retryable=is_retryable_status(exc.status_code), retry_after=retry_after,
                             status=exc.status_code, details=details)
    if isinstance(exc, ServiceRequestError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return DeliveryError(f"{what}: TLS verification failed: {text}", retryable=False)
        return DeliveryError(f"{what}: network error: {text}", retryable=True)
    raise exc


class SentinelSink(BatchingSink):
    """WIA events into `WIASecurity_CL` through a data collection rule. Each batch is one request of at
    most MAX_REQUEST_BYTES (uncompressed JSON array), sent gzip-compressed."""

    max_batch_bytes = MAX_REQUEST_BYTES
    item_separator = b","
    body_prefix = b"["
    body_suffix = b"]"

    def __init__(self, endpoint: str, rule_id: str, stream: str = DEFAULT_STREAM, *,
                 credential: Any = None, client_id: str | None = None, ca_file: str | None = None,
                 audience: str | None = None, client: Any = None, timeout: float = DEFAULT_TIMEOUT,
                 delivery: DeliveryPolicy | None = None, dead_letter: Any = None, name: str | None = None,
                 **client_options: Any) -> None:
        self.timeout = timeout = seconds(timeout, "timeout", "sentinel")
        if not endpoint.startswith("https://"):
            raise ConfigError("the data collection endpoint must be an https:// URL", key="endpoint")
        # A token for another cloud's audience is refused (401): the SDK asks for the public cloud's unless told.
        self.audience = checked_audience(audience or monitor_audience(endpoint))
        if not rule_id.startswith("dcr-"):
            raise ConfigError("the rule id is the DCR's immutable id, 'dcr-' and 32 hex digits", key="rule_id")
        super().__init__(name=name or f"sentinel:{urlsplit(endpoint).hostname}/{rule_id}/{stream}",
                         delivery=delivery, dead_letter=dead_letter)
        self.endpoint, self.rule_id, self.stream = endpoint, rule_id, stream
        if client is None:
            from azure.monitor.ingestion import LogsIngestionClient
            if credential is None or isinstance(credential, str):
                credential = make_credential(credential or "managed_identity", client_id)
            credential = RedactedTokens.wrap(credential)     # a credential object given in Python too
            options: dict[str, Any] = {"retry_total": 0, "permit_redirects": False,
                                       "credential_scopes": [f"{self.audience}/.default"],
                                       "user_agent": f"wia-security/{__version__}",
                                       "connection_timeout": min(timeout, CONNECT_TIMEOUT), "read_timeout": timeout}
            if ca_file:
                options["connection_verify"] = checked_ca_file(ca_file)
            remember_proxy_credentials(client_options.get("proxies") or {})     # azure-core's proxies option
            options.update(client_options)
            client = LogsIngestionClient(endpoint=endpoint, credential=credential, **options)
        self._client = client
        self._window = PermissionWindow(PERMISSION_PROPAGATION_SECONDS)     # the service's 403s in a row

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SentinelSink":
        parts = urlsplit(url)
        refuse_repeated_keys(parts.query, f"sentinel://{parts.netloc}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = [unquote(p) for p in parts.path.strip("/").split("/") if p]
        if not parts.hostname or not path:
            raise ConfigError("expected sentinel://<data-collection-endpoint-host>/<dcr-immutable-id>",
                              key="url", source=f"sentinel://{parts.hostname or ''}/...")
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        stream = options.pop("stream", None) or (path[1] if len(path) > 1 else query.get("stream", DEFAULT_STREAM))
        query.pop("stream", None)
        policy_keys = {k: query.pop(k) for k in list(query) if k in DeliveryPolicy.keys()}
        delivery = options.pop("delivery", None)
        if policy_keys:
            delivery = DeliveryPolicy.from_mapping(policy_keys, base=delivery, source="sentinel URL")
        for key in ("credential", "client_id", "ca_file", "timeout", "audience"):
            if key in query and key not in options:
                options[key] = query.pop(key)
        if query:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(query))}", key=sorted(query)[0],
                              source=f"sentinel://{host}/...")
        # The rest go to azure-core's client: only the ones worth setting, so a misspelt key is refused
        # (a config table's `stram = "x"` was handed to LogsIngestionClient and silently ignored).
        unknown = sorted(set(options) - SINK_OPTIONS - CLIENT_OPTIONS)
        if unknown:
            raise ConfigError(f"unknown option {unknown[0]!r}; known: {', '.join(sorted(SINK_OPTIONS | CLIENT_OPTIONS))}",
                              key=unknown[0], source=f"sentinel://{host}/...")
        return cls(f"https://{host}", path[0], stream, delivery=delivery, **options)

    def encode(self, event: dict[str, Any]) -> bytes:
        row = to_row(event)
        event_bytes = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
        if event_bytes > MAX_FIELD_BYTES:
            raise ValueError(f"the event is {event_bytes:,} bytes, over the Logs Ingestion API's "
                             f"{MAX_FIELD_BYTES // 1024} KB field limit (the Event column would be truncated)")
        return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def post(self, batch: Batch) -> Sequence[Outcome] | None:
        return self._post_items(batch.items, whole=True)

    def _post_items(self, items: list[BatchItem], *, whole: bool) -> list[Outcome] | None:
        """One upload of `items`. A 413 (a proxy in front of the endpoint allowing less than the API's 1 MB,
        or the service counting the body otherwise) halves the request until each part fits, and later
        batches stay below the refused size; once split, a part's error is the outcome of its items only,
        so parts already stored are not sent again."""
        body = self.body_prefix + self.item_separator.join(item.payload for item in items) + self.body_suffix
        try:
            self._upload(body)
        except DeliveryError as error:
            if error.status == 413:
                return self._split(items, len(body), error)
            if whole:
                raise
            return [Outcome.from_error(error)] * len(items)
        return None

    def _split(self, items: list[BatchItem], body_size: int, error: DeliveryError) -> list[Outcome]:
        if len(items) == 1:
            return [Outcome.failed(f"{error.reason} (one row of {body_size:,} bytes is over the service's or a "
                                   "proxy's request size limit)", details=error.details)]
        self.lower_byte_limit(body_size, error.reason)
        half = len(items) // 2
        return [*(self._post_items(items[:half], whole=False) or [Outcome.delivered()] * half),
                *(self._post_items(items[half:], whole=False) or [Outcome.delivered()] * (len(items) - half))]

    def _upload(self, body: bytes) -> None:
        try:
            # A readable stream is uploaded as-is: exactly this request, no re-chunking by the client.
            self._client.upload(rule_id=self.rule_id, stream_name=self.stream,
                                logs=io.BytesIO(gzip.compress(body, compresslevel=6)))
        except Exception as exc:  # noqa: BLE001 - classified below; unknown ones re-raised
            error = _http_error(exc, "Logs Ingestion API")
            raise (self._denied(error) if error.status == 403 else error) from None
        self._window.accepted()

    def _denied(self, error: DeliveryError) -> DeliveryError:
        """A 403 of the service itself (its JSON error, not a proxy's page) is retried while a new role
        assignment may still be propagating (PERMISSION_PROPAGATION_SECONDS from the first 403 with no
        upload accepted since); the reason says which role on which DCR. It used to be dead-lettered at once,
        so the events of the first minutes after a deployment were lost to Sentinel until replayed."""
        service_error = isinstance(error.details, dict) and isinstance(error.details.get("error"), dict)
        if not service_error:
            return error
        role = f"the identity needs {INGESTION_ROLE} on the data collection rule {self.rule_id}"
        return self._window.refused(error, self._clock(), need=role, grant="a role assignment", status=403,
                                    propagation=("a new role assignment can take up to "
                                                 f"{PERMISSION_PROPAGATION_SECONDS // 60} minutes to propagate"))

    def close_transport(self) -> None:
        self._client.close()


# -- incidents -------------------------------------------------------------------------------------

#: WIA severity band -> Sentinel incident severity.
SEVERITY_BY_BAND = {"informational": "Informational", "low": "Low", "medium": "Medium",
                    "high": "High", "critical": "High", "emergency": "High", "unknown": "Informational"}
#: Sentinel severity -> a WIA severity inside the matching band (used only when no label carries it).
SEVERITY_SCORE = {"Informational": 0, "Low": 2, "Medium": 4, "High": 7}
#: WIA incident/alert status -> (Sentinel status, classification for Closed).
STATUS_MAP = {
    "new": ("New", None), "triaging": ("Active", None), "investigating": ("Active", None),
    "containing": ("Active", None), "eradicating": ("Active", None), "recovering": ("Active", None),
    "closed": ("Closed", "Undetermined"), "resolved": ("Closed", "TruePositive"),
    "false_positive": ("Closed", "FalsePositive"),
}
#: Sentinel status -> WIA incident status.
WIA_INCIDENT_STATUS = {"New": "new", "Active": "investigating", "Closed": "closed"}
_LABEL_PREFIX = "wia:"


def incident_id_for(event: dict[str, Any]) -> str:
    """The Sentinel incident id of an event: its own UUID, so a re-send updates the same incident."""
    return str(uuid.UUID(event["id"]))


def to_incident_properties(event: dict[str, Any]) -> dict[str, Any]:
    d = view.data(event)
    status, classification = STATUS_MAP.get(view.status(event) or "new", ("New", None))
    labels = [f"{_LABEL_PREFIX}type={event.get('type')}", f"{_LABEL_PREFIX}severity={event.get('severity')}"]
    for key in ("category", "priority"):
        if isinstance(d.get(key), str):
            labels.append(f"{_LABEL_PREFIX}{key}={d[key]}")
    labels += [t for t in (event.get("meta") or {}).get("tags") or []]
    props: dict[str, Any] = {
        "title": view.title(event)[:256],
        "description": view.description(event)[:5000],
        "severity": SEVERITY_BY_BAND[band(event.get("severity"))],
        "status": status,
        "labels": [{"labelName": label} for label in labels],
    }
    # in UTC as the rows' EventTime: the SDK's own ISO 8601 reader refuses some spellings the standard takes
    # (a trailing newline), and the incident failed with a DeserializationError before any request
    for prop, keys in (("firstActivityTimeUtc", ("first_seen", "created_at")),
                       ("lastActivityTimeUtc", ("last_seen", "updated_at"))):
        key = next((k for k in keys if d.get(k)), None)
        props[prop] = column_datetime(d[key], f"data.{key}") if key else column_datetime(event.get("timestamp"))
    if classification:
        props["classification"] = classification
    owner = d.get("lead_analyst") or d.get("assignee")
    if isinstance(owner, str) and owner:
        props["owner"] = {"email": owner} if "@" in owner else {"assignedTo": owner}
    return props


def incident_to_event(incident: dict[str, Any]) -> dict[str, Any]:
    """A Sentinel incident (ARM JSON: name, properties) as a WIA `incident` event."""
    props = incident.get("properties") or {}
    labels = {}
    tags = []
    for label in props.get("labels") or []:
        name = label.get("labelName", "")
        if name.startswith(_LABEL_PREFIX) and "=" in name:
            key, _, value = name[len(_LABEL_PREFIX):].partition("=")
            labels[key] = value
        elif name:
            tags.append(name)
    name = incident.get("name") or ""
    try:
        event_id = str(uuid.UUID(name))
    except ValueError:
        if not (incident.get("id") or name):
            raise ValueError("the incident has neither a name nor an id") from None
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, incident.get("id") or name))
    try:
        severity = float(labels["severity"])
        severity = int(severity) if severity.is_integer() else severity
    except (KeyError, ValueError):
        severity = SEVERITY_SCORE.get(props.get("severity"), 0)
    priority = labels.get("priority")
    if priority not in ("critical", "high", "medium", "low"):
        priority = {"High": "high", "Medium": "medium"}.get(props.get("severity"), "low")
    category = labels.get("category")
    data: dict[str, Any] = {
        "incident_id": f"SENTINEL-{props.get('incidentNumber', incident.get('name'))}",
        "title": props.get("title") or "(untitled Sentinel incident)",
        "category": category if category in _INCIDENT_CATEGORIES else "other",
        "status": WIA_INCIDENT_STATUS.get(props.get("status"), "new"),
        "priority": priority,
    }
    if props.get("description"):
        data["description"] = props["description"]
    for wia_key, key in (("created_at", "createdTimeUtc"), ("updated_at", "lastModifiedTimeUtc")):
        if props.get(key):
            data[wia_key] = props[key]
    if props.get("status") == "Closed" and props.get("lastModifiedTimeUtc"):
        data["closed_at"] = props["lastModifiedTimeUtc"]
    owner = props.get("owner") or {}
    if owner.get("email") or owner.get("assignedTo"):
        data["lead_analyst"] = owner.get("email") or owner.get("assignedTo")
    event: dict[str, Any] = {
        "$schema": "https://wia.live/security/v1/schema.json",
        "version": "1.0.0",
        "id": event_id,
        "type": "incident",
        "timestamp": props.get("createdTimeUtc") or now_iso(),
        "severity": severity,
        "source": {"type": "siem", "name": "Microsoft Sentinel", "vendor": "Microsoft"},
        "data": data,
    }
    meta: dict[str, Any] = {}
    if tags:
        meta["tags"] = tags
    if props.get("incidentUrl"):
        meta["labels"] = {"sentinel_incident_url": props["incidentUrl"]}
    if meta:
        event["meta"] = meta
    return event


_INCIDENT_CATEGORIES = frozenset({"malware", "phishing", "ransomware", "data_breach", "ddos",
                                  "unauthorized_access", "insider_threat", "apt", "other"})


def parse_workspace_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, workspace) of a Log Analytics workspace ARM resource id."""
    parts = [p for p in resource_id.strip("/").split("/")]
    lowered = [p.lower() for p in parts]
    try:
        sub = parts[lowered.index("subscriptions") + 1]
        group = parts[lowered.index("resourcegroups") + 1]
        workspace = parts[lowered.index("workspaces") + 1]
    except (ValueError, IndexError):
        raise ConfigError("expected /subscriptions/<id>/resourceGroups/<rg>/providers/"
                          "Microsoft.OperationalInsights/workspaces/<name>", key="workspace") from None
    return sub, group, workspace


class SentinelIncidents(BaseSink):
    """Sentinel incidents through `azure-mgmt-securityinsight`: one incident per WIA event (its id is the
    event's UUID, so re-sending updates it), listing incidents back as WIA incident events, and status
    changes. As a sink it takes incident and alert events; other types are refused with the reason."""

    accepted_types = frozenset({"incident", "alert"})

    def __init__(self, subscription_id: str, resource_group: str, workspace: str, *, credential: Any = None,
                 client_id: str | None = None, base_url: str | None = None, ca_file: str | None = None,
                 audience: str | None = None, client: Any = None, timeout: float = DEFAULT_TIMEOUT,
                 delivery: DeliveryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, **client_options: Any) -> None:
        self.subscription_id, self.resource_group, self.workspace = subscription_id, resource_group, workspace
        # attempts and backoff of a call Resource Manager refuses while a role assignment propagates (403)
        self.policy = delivery or DeliveryPolicy()
        self._sleep, self._clock = sleep, clock
        self._window = PermissionWindow(PERMISSION_PROPAGATION_SECONDS)     # Resource Manager's 403s in a row
        # Resource Manager's audience of base_url's cloud: a public cloud token is refused (401) in a sovereign one
        self.audience = checked_audience(audience or arm_audience(base_url))
        self.name = f"sentinel-incidents:{resource_group}/{workspace}"
        # bounded as the rows connector's: azure-core alone waits 300 s for an answer, on each of 4 tries
        self.timeout = timeout = seconds(timeout, "timeout", "sentinel-incidents")
        if client is None:
            from azure.mgmt.securityinsight import SecurityInsights
            if credential is None or isinstance(credential, str):
                credential = make_credential(credential or "managed_identity", client_id)
            credential = RedactedTokens.wrap(credential)     # a credential object given in Python too
            options: dict[str, Any] = {"retry_total": 3, "permit_redirects": False,
                                       "connection_timeout": min(timeout, CONNECT_TIMEOUT), "read_timeout": timeout,
                                       "credential_scopes": [f"{self.audience}/.default"]}
            if base_url:
                options["base_url"] = base_url
            if ca_file:
                options["connection_verify"] = checked_ca_file(ca_file)
            remember_proxy_credentials(client_options.get("proxies") or {})     # azure-core's proxies option
            options.update(client_options)
            client = SecurityInsights(credential, subscription_id, **options)
        self._client = client

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SentinelIncidents":
        parts = urlsplit(url)
        sub, group, workspace = parse_workspace_id(unquote(parts.path))
        refuse_repeated_keys(parts.query, "sentinel-incidents://")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        for key in ("credential", "client_id", "ca_file", "base_url", "timeout", "audience"):
            if key in query and key not in options:
                options[key] = query.pop(key)
        if query:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(query))}", key=sorted(query)[0],
                              source="sentinel-incidents URL")
        return cls(sub, group, workspace, **options)

    def upsert(self, event: dict[str, Any]) -> dict[str, Any]:
        """Create or update the incident for `event`; returns the incident as the service stored it."""
        from azure.mgmt.securityinsight.models import Incident
        incident = Incident.deserialize({"properties": to_incident_properties(event)})
        stored = self._authorized(lambda: self._client.incidents.create_or_update(
            self.resource_group, self.workspace, incident_id_for(event), incident), write=True)
        return _as_arm_json(stored)

    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport:
        report = DeliveryReport(self.name)
        refused: DeliveryError | None = None      # a 403 retried to the end of its budget in this send
        for event in events:
            if event.get("type") not in self.accepted_types:
                report.failed.append(Rejected(f"Sentinel incidents take incident and alert events, not "
                                              f"{event.get('type')!r}", event=event, sink=self.name))
                continue
            try:
                if refused is not None:
                    # the role is not there yet: the next events are not each given a retry budget of their own
                    raise DeliveryError(f"not tried, the incident before it was refused: {refused.reason}",
                                        retryable=True, status=403, details=refused.details)
                self.upsert(event)
                report.delivered += 1
            except Exception as exc:  # noqa: BLE001 - every failure is reported, never raised
                error = _incidents_error(exc)
                if refused is None and error.retryable and _service_403(error):
                    refused = error
                report.failed.append(Rejected(error.reason, event=event, sink=self.name,
                                              retryable=error.retryable,
                                              errors=[{"path": "", "code": "delivery", "message": error.reason,
                                                       "details": error.details}]))
        return report

    def list_events(self, *, top: int | None = None) -> Iterator[dict[str, Any]]:
        """Every incident of the workspace as a WIA incident event (the client follows nextLink). An
        incident that cannot be read raises ParseError naming it (`items()` goes on past it)."""
        for item in self.items(top=top):
            if item.error is not None:
                raise item.error
            yield item.value

    def items(self, *, top: int | None = None) -> Iterator[Item]:
        """`list_events` as reader Items, numbered from 1 in listing order: the WIA event of each incident,
        or an error naming the incident (number, name) and why, which the Forwarder dead-letters. A page
        the client cannot read is a DeliveryError naming how many incidents came before it."""
        where = f"{self.name}/incidents"
        count = 0
        attempt, started = 0, self._clock()
        while True:
            attempt += 1
            try:
                for incident in self._client.incidents.list(self.resource_group, self.workspace, top=top):
                    count += 1
                    try:
                        doc = _as_arm_json(incident)
                        event = incident_to_event(doc)
                    except (WiaError, ValueError, TypeError, KeyError, AttributeError) as exc:
                        label = getattr(incident, "name", None) or "no name"
                        yield Item(where, count, error=ParseError(f"incident {count} ({label}): {exc}", source=where,
                                                                  line=count), raw=repr(incident).encode("utf-8"))
                        continue
                    yield Item(where, count, value=event)
            except Exception as exc:  # noqa: BLE001 - every failure of the listing itself becomes one clear error
                error = _incidents_error(exc, page=True)
                if _service_403(error):
                    error = self._denied(error, write=False)
                    # listed again from its start only while nothing was handed over (no incident twice)
                    delay = self._retry_delay(error, attempt, started) if count == 0 else None
                    if delay is not None:
                        self._sleep(delay)
                        continue
                raise DeliveryError(f"listing incidents failed after {count} incident(s): {error.reason}",
                                    sink=self.name, retryable=error.retryable, retry_after=error.retry_after,
                                    status=error.status) from None
            self._window.accepted()
            return

    def set_status(self, incident_id: str, status: str, *, classification: str | None = None,
                   classification_comment: str | None = None) -> dict[str, Any]:
        """Move an incident to New/Active/Closed (Closed needs a classification, as the API requires)."""
        current = self._authorized(lambda: self._client.incidents.get(self.resource_group, self.workspace,
                                                                      incident_id), write=False)
        current.status = status
        if status == "Closed":
            current.classification = classification or "Undetermined"
            if classification_comment:
                current.classification_comment = classification_comment
        stored = self._authorized(lambda: self._client.incidents.create_or_update(
            self.resource_group, self.workspace, incident_id, current), write=True)
        return _as_arm_json(stored)

    def _authorized(self, call: Callable[[], _T], *, write: bool) -> _T:
        """`call()`, again after a backoff while Resource Manager answers 403 within the propagation window (as the
        rows connector's machinery retries the ingestion 403), at most `policy.max_attempts` tries within
        `policy.max_elapsed`; then the DeliveryError (retryable within the window, not after it)."""
        attempt, started = 0, self._clock()
        while True:
            attempt += 1
            try:
                result = call()
            except Exception as exc:  # noqa: BLE001 - classified; anything but the service's 403 as before
                error = _incidents_error(exc)
                if not _service_403(error):
                    raise                   # as the SDK raised it (send() classifies it, a caller of upsert sees it)
                error = self._denied(error, write=write)
                delay = self._retry_delay(error, attempt, started)
                if delay is None:
                    raise error from None
                self._sleep(delay)
                continue
            self._window.accepted()
            return result

    def _retry_delay(self, error: DeliveryError, attempt: int, started: float) -> float | None:
        """The backoff before another try of a call refused with `error`, or None: not retryable, or past the policy's
        attempts or time."""
        if not error.retryable or attempt >= self.policy.max_attempts:
            return None
        delay = self.policy.delay(attempt, error.retry_after)
        if self.policy.max_elapsed and self._clock() - started + delay > self.policy.max_elapsed:
            return None
        return delay

    def _denied(self, error: DeliveryError, *, write: bool) -> DeliveryError:
        """Resource Manager's 403 is retryable while a new role assignment may still be propagating
        (PERMISSION_PROPAGATION_SECONDS from the first 403 with no call accepted since), the reason naming the role on
        the workspace; after that it fails at once. Before, every 403 was permanent: an upsert was dead-lettered and a
        listing failed for good in the first minutes after the role was assigned."""
        role = (f"the identity needs {INCIDENT_WRITE_ROLE if write else INCIDENT_READ_ROLE} (or more) on the workspace "
                f"{self.workspace}")
        return self._window.refused(error, self._clock(), need=role, grant="a role assignment", status=403,
                                    afterwards="grant the role, then replay the dead letter" if write
                                    else "grant the role, then list again",
                                    propagation=("a new role assignment can take up to "
                                                 f"{PERMISSION_PROPAGATION_SECONDS // 60} minutes to take effect"))

    def close(self) -> None:
        self._client.close()


def _incidents_error(exc: Exception, *, page: bool = False) -> DeliveryError:
    """An error of the incidents API as a DeliveryError (`page`: of a listing, where the SDK also fails on a page
    it cannot read, naming the page without the SDK's dump of it)."""
    if isinstance(exc, DeliveryError):
        return exc
    try:
        return _http_error(exc, "SecurityInsights")
    except Exception as other:  # noqa: BLE001 - not an HTTP error azure-core classifies
        if page:
            text = str(other).split(". Data:", 1)[0]             # the SDK appends the whole page
            return DeliveryError(f"SecurityInsights: a page of incidents is not readable "
                                 f"({type(other).__name__}: {text[:200]})")
        return DeliveryError(f"SecurityInsights: {type(other).__name__}: {other}")


def _service_403(error: DeliveryError) -> bool:
    """A 403 with the service's JSON error document (Resource Manager's AuthorizationFailed), not a proxy's page."""
    return error.status == 403 and isinstance(error.details, dict) and isinstance(error.details.get("error"), dict)


def _as_arm_json(incident: Any) -> dict[str, Any]:
    """An Incident model in its wire (ARM JSON) shape: {id, name, properties: {camelCase...}}."""
    return incident.serialize(keep_readonly=True) | {"id": incident.id, "name": incident.name}
