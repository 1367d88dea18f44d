"""Elasticsearch / OpenSearch bulk sink: WIA events as ECS documents, idempotent by event id.

`elasticsearch+https://es.example:9200?index=wia-security` (elasticsearch-py) or
`opensearch+https://os.example:9200` (opensearch-py). Each event becomes one bulk `index` action
with `_id` = the event id and an external version (`version_type=external`) = the event's own
instant in microseconds (`event_version`): a newer version of an event replaces the stored document,
while a retry after a timeout or a dead server, or an older version arriving late, is answered 409
(version_conflict_engine_exception) and counts as a duplicate. Index naming: `daily` (default) ->
`<index>-<type>-YYYY.MM.DD` from the event's own UTC date (a retry lands in the same index);
`datastream` -> `<index>-<type>` data streams, which take only `create` (append-only: a version of an
id already in the stream counts as a duplicate). Before the first bulk request the sink installs a
composable index template with ECS mappings (template.py).

Per-item results of a bulk response (Elasticsearch "Bulk API" docs: the response's `items` hold
one object per action with `status` and, on failure, `error.type`/`error.reason`):
201/200 delivered; 409 duplicate; 429 and `es_rejected_execution_exception` (the write queue is
full) and 5xx retried with backoff; anything else (`mapper_parsing_exception`,
`illegal_argument_exception`, ...) dead-lettered with the server's reason. Whole-request errors:
429/5xx/timeouts/connection failures, and the error types retried per item (a cluster-wide write block
answers the whole request: 403 `cluster_block_exception`), are retried (honouring `Retry-After` where the
client exposes the header), others fail the batch. The clients' own retries are off: the delivery machinery
(docs/connectors/delivery.md) does it once, with jitter, for both.
"""
from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Sequence
from urllib.parse import parse_qsl, urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError, DeliveryError
from wia_security.formats import FORMATS, get_format
from wia_security.redact import remember_basic_auth
from wia_security.timeutil import parse_iso

from ..config import reveal
from ..delivery.batching import Batch, BatchingSink, BatchItem, Outcome
from ..delivery.http import is_retryable_status
from ..delivery.policy import DeliveryPolicy, parse_retry_after
from ..delivery.urls import (boolean, refuse_repeated_keys, seconds, tls_options, tls_verification,
                             warn_plain_http_secret)
from . import template

#: Elastic's bulk guidance: requests of a few MB to ~15 MB; `http.max_content_length` is 100 MB.
BULK_MAX_BYTES = 10 * 1024 * 1024
#: Actions per bulk request we never exceed (the delivery policy's max_events is usually lower).
BULK_MAX_ACTIONS = 5000
#: The server's default hard limit on one request body (`http.max_content_length`).
HTTP_MAX_CONTENT_LENGTH = 100 * 1024 * 1024
DEFAULT_INDEX = "wia-security"
#: The server's limit on a document `_id`; a bulk request holding a longer one is refused as a whole (400).
MAX_ID_BYTES = 512
#: External versions are longs: 0 up to Java's Long.MAX_VALUE. Microseconds since 0001-01-01T00:00Z reach
#: about 3.2e17 by the end of year 9999, so every RFC 3339 instant has one.
MAX_EXTERNAL_VERSION = 2 ** 63 - 1
NAMINGS = ("daily", "datastream")
#: Index names are at most 255 bytes; the longest suffix the sink adds is "-endpoint_event-YYYY.MM.DD" (26).
MAX_INDEX_PREFIX_BYTES = 255 - len("-endpoint_event-YYYY.MM.DD")
#: Characters an index name may not hold (Elasticsearch and OpenSearch's create-index rules).
_INDEX_NAME_FORBIDDEN = re.compile(r'[\\/*?"<>| ,#:]')
#: Per-item error types that mean "try again later" even when the status says otherwise.
RETRYABLE_ITEM_ERRORS = frozenset({"es_rejected_execution_exception", "rejected_execution_exception",
                                   "unavailable_shards_exception", "circuit_breaking_exception",
                                   "cluster_block_exception"})
#: URL query keys besides the delivery policy's; `verify` and `ca_certs` (elasticsearch-py's names) are older
#: spellings of tls_verify and ca_file, still read
_URL_KEYS = ("index", "naming", "format", "install_template", "mapping_dialect", "tls_verify", "ca_file",
             "request_timeout", "verify", "ca_certs")
_OLD_TLS_KEYS = ("verify", "ca_certs")


class ElasticSink(BatchingSink):
    """Bulk-indexes ECS documents into Elasticsearch (elasticsearch-py 8/9) or OpenSearch (opensearch-py)."""

    flavor = "elasticsearch"
    max_batch_events = BULK_MAX_ACTIONS
    max_batch_bytes = BULK_MAX_BYTES
    item_separator = b""                  # each payload is two NDJSON lines ending in "\n"

    def __init__(self, url: str, *, index: str = DEFAULT_INDEX, naming: str = "daily", format: str = "ecs",
                 install_template: bool = True, mapping_dialect: str | None = None, api_key: Any = None, username: str | None = None,
                 password: Any = None, tls_verify: bool | None = None, ca_file: str | None = None,
                 verify: bool | None = None, ca_certs: str | None = None, request_timeout: float = 30.0, client: Any = None, client_options: dict[str, Any] | None = None,
                 delivery: DeliveryPolicy | None = None, dead_letter: Any = None, name: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if naming not in NAMINGS:
            raise ConfigError(f"naming must be one of {', '.join(NAMINGS)}", key="naming")
        if format not in FORMATS:
            raise ConfigError(f"unknown format {format!r}; known: {', '.join(sorted(FORMATS))}", key="format")
        if index != index.lower() or not index or index.startswith(("-", "_", "+")):
            raise ConfigError("an index prefix is lower case and does not start with -, _ or +", key="index")
        if _INDEX_NAME_FORBIDDEN.search(index) or index in (".", ".."):
            # the server would refuse every event's index item by item (invalid_index_name_exception)
            raise ConfigError(f"an index prefix holds none of \\ / * ? \" < > | , # : or a space, and is not . or ..; "
                              f"got {index!r}", key="index")
        if len(index.encode("utf-8")) > MAX_INDEX_PREFIX_BYTES:
            raise ConfigError(f"an index prefix is at most {MAX_INDEX_PREFIX_BYTES} bytes (index names are at most "
                              "255, with -<type>-YYYY.MM.DD after it)", key="index")
        parts = urlsplit(url)
        super().__init__(name=name or f"{self.flavor}:{parts.hostname}:{parts.port or 9200}",
                         delivery=delivery, dead_letter=dead_letter, sleep=sleep)
        self.index, self.naming, self.format = index, naming, format
        self.install_template = install_template
        # The server's type names (match_only_text, flattened... vs text, flat_object): the client's by default.
        self.mapping_dialect = mapping_dialect or self.flavor
        if self.mapping_dialect not in ("elasticsearch", "opensearch"):
            raise ConfigError("mapping_dialect must be elasticsearch or opensearch", key="mapping_dialect")
        self.template_installed = False
        self._converter: tuple[str, Any] = (format, get_format(format))
        # The clients send Basic credentials and an (id, key) API key as base64 of "user:password" / "id:key":
        # remembered in that form too, so a server or proxy echoing the Authorization header is masked.
        plain_key = tuple(map(reveal, api_key)) if isinstance(api_key, (tuple, list)) else reveal(api_key)
        if isinstance(plain_key, tuple) and len(plain_key) == 2:
            remember_basic_auth(*plain_key)
        if username:
            remember_basic_auth(username, reveal(password))
        if plain_key or username or password:
            warn_plain_http_secret(self.name, url, "API key" if plain_key else "password")
        # tls_verify / ca_file as every connector reads them (verify / ca_certs: the older spellings)
        verification = tls_verification(self.name, *tls_options(
            {"tls_verify": tls_verify, "ca_file": ca_file, "verify": verify, "ca_certs": ca_certs}))
        self.client = client if client is not None else self._client(
            url, api_key=plain_key, username=username, password=reveal(password), verify=verification is not False,
            ca_certs=verification if isinstance(verification, str) else None, request_timeout=request_timeout,
            extra=client_options or {})

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str, **options: Any) -> "ElasticSink":
        """`elasticsearch+https://host:9200?index=wia-security&naming=daily&max_events=1000`; credentials
        come as options (`api_key`, `username` + `password`, Secrets from the config file), never in the URL."""
        scheme, _, rest = url.partition("://")
        transport = scheme.split("+", 1)[1] if "+" in scheme else "https"
        parts = urlsplit(f"{transport}://{rest}")
        if parts.username or parts.password:
            raise ConfigError("credentials do not belong in the URL; use api_key_env / password_env",
                              key="url", source=f"{scheme}://{parts.hostname}")
        refuse_repeated_keys(parts.query, f"{scheme}://{parts.hostname}")
        query = dict(parse_qsl(parts.query))
        policy_keys = {k: query.pop(k) for k in list(query) if k in DeliveryPolicy.keys()}
        unknown = set(query) - set(_URL_KEYS)
        if unknown:
            names = [k for k in _URL_KEYS if k not in _OLD_TLS_KEYS]
            raise ConfigError(f"unknown {cls.flavor} option(s) {', '.join(sorted(unknown))}; known: "
                              f"{', '.join(names)} (tls_verify / ca_file also as verify / ca_certs) and the "
                              f"delivery keys", key=sorted(unknown)[0], source=f"{scheme}://{parts.hostname}")
        where = f"{scheme}://{parts.hostname}"
        twice = sorted(set(query) & set(options))
        if twice:       # as parse_sink_url: one value per option, never one silently winning
            raise ConfigError(f"given in both the URL and the options: {', '.join(twice)}", key=twice[0], source=where)
        for key, value in query.items():
            if key == "install_template":
                options[key] = boolean(value, key, where)
            elif key == "request_timeout":
                options[key] = seconds(value, key, where)
            else:
                options[key] = value
        if policy_keys:
            options["delivery"] = DeliveryPolicy.from_mapping(policy_keys, base=options.get("delivery"))
        return cls(f"{parts.scheme}://{parts.netloc}{parts.path}", **options)

    def _client(self, url: str, *, api_key: str | None, username: str | None, password: str | None, verify: bool,
                ca_certs: str | None, request_timeout: float, extra: dict[str, Any]) -> Any:
        from elasticsearch import Elasticsearch
        # No client-side retries or dead-node pauses: the delivery machinery owns backoff.
        options: dict[str, Any] = {"verify_certs": verify, "request_timeout": request_timeout, "max_retries": 0,
                                   "retry_on_timeout": False, "retry_on_status": (), "dead_node_backoff_factor": 0.0,
                                   "max_dead_node_backoff": 0.0}
        if ca_certs:
            options["ca_certs"] = ca_certs
        if api_key:
            options["api_key"] = api_key
        if username:
            options["basic_auth"] = (username, password or "")
        if "serializer" not in extra:           # the client takes one of serializer and serializers
            options["serializers"] = elasticsearch_serializers()
        return Elasticsearch(url, **{**options, **extra})

    # -- naming and encoding --------------------------------------------------------------------
    def index_for(self, event: dict[str, Any]) -> str:
        kind = str(event.get("type", "unknown")).lower()
        if self.naming == "datastream":
            return f"{self.index}-{kind}"
        return f"{self.index}-{kind}-{utc_day(event['timestamp'])}"

    def document(self, event: dict[str, Any]) -> dict[str, Any]:
        name, converter = self._converter
        if name != self.format:           # what convert(event, to=self.format) does, minus the look-up per event
            name, converter = self._converter = (self.format, get_format(self.format))
        doc = converter.from_wia(event if isinstance(event, dict) else event.to_dict())
        if not isinstance(doc, dict):
            raise ValueError(f"format {self.format!r} does not produce a JSON document")
        if "@timestamp" not in doc:           # non-ECS formats: index time from the event itself
            doc = {"@timestamp": es_date(event["timestamp"]), **doc}
        return doc

    def encode(self, event: dict[str, Any]) -> bytes:
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise ValueError("an event needs an id (it is the document _id)")
        if len(event_id) * 4 > MAX_ID_BYTES and len(event_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
            # the server refuses the whole bulk request for one such action: it fails alone here
            raise ValueError(f"the id is {len(event_id.encode('utf-8', 'surrogatepass')):,} bytes in UTF-8, over the "
                             f"{MAX_ID_BYTES}-byte limit of a document _id")
        index = self.index_for(event)
        try:
            # The action line {"index":{"_index":...,"_id":...,"version":N,"version_type":"external"}} written
            # around its two JSON strings: the same bytes as dumping that dict, without building it.
            index_json, id_json = jsonio.dumpb(index), jsonio.dumpb(event_id)
        except Exception:       # a string JSON cannot hold (a lone surrogate): raise what dumping the dict raises
            jsonio.dumpb({"create": {"_index": index, "_id": event_id}})
            raise
        if self.naming == "datastream":          # data streams take only `create` (append-only)
            action = (b'{"create":{"_index":', index_json, b',"_id":', id_json, b'}}\n')
        else:
            action = (b'{"index":{"_index":', index_json, b',"_id":', id_json, b',"version":',
                      str(event_version(event)).encode(), b',"version_type":"external"}}\n')
        return b"".join((*action, jsonio.dumpb(self.document(event)), b"\n"))

    # -- requests -------------------------------------------------------------------------------
    def template_body(self) -> dict[str, Any]:
        return template.index_template([f"{self.index}-*"], self.mapping_dialect, data_stream=self.naming == "datastream")

    def template_name(self) -> str:
        """One template per index prefix, named as the prefix (`wia-security` for the default): sinks with
        different prefixes on one cluster keep each other's."""
        return self.index

    def install_index_template(self) -> None:
        """PUT the template unless one of its name has a version at least TEMPLATE_VERSION (an operator's own,
        or a newer release's: left as it is; but this package's own written for the other naming is replaced). The shared `wia-security` template an older release wrote for
        this prefix (its patterns exactly this prefix's, its description ours) is deleted first: Elasticsearch
        refuses a second template with overlapping patterns and the same priority."""
        installed = self.get_template(self.template_name())
        version = installed.get("version") if installed is not None else None
        if version.__class__ is int and version >= template.TEMPLATE_VERSION and not self._other_naming(installed):
            return
        if self.template_name() != template.TEMPLATE_NAME:
            shared = self.get_template(template.TEMPLATE_NAME)
            meta = shared.get("_meta") if shared is not None else None
            if (shared is not None and shared.get("index_patterns") == [f"{self.index}-*"]
                    and isinstance(meta, dict) and meta.get("description") == template.DESCRIPTION):
                self.client.indices.delete_index_template(name=template.TEMPLATE_NAME)
        self.put_template()

    def _other_naming(self, installed: dict[str, Any]) -> bool:
        """Whether `installed` is this package's template written for the other naming: one declaring data streams
        under a `daily` sink makes each daily index a data stream, which takes no `index` action (every event was
        refused), and one without under a `datastream` sink makes plain indices instead of data streams."""
        meta = installed.get("_meta")
        ours = isinstance(meta, dict) and meta.get("description") == template.DESCRIPTION
        return ours and ("data_stream" in installed) != (self.naming == "datastream")

    def get_template(self, name: str) -> dict[str, Any] | None:
        """The composable template `name` as the server holds it; None when there is none."""
        try:
            response = self.client.indices.get_index_template(name=name)
        except Exception as exc:  # noqa: BLE001 - both clients' NotFoundError; anything else goes on
            if _status_of(exc)[0] == 404:
                return None
            raise
        found = getattr(response, "body", response).get("index_templates") or []
        return next((t.get("index_template") for t in found if t.get("name") == name), None)

    def put_template(self) -> None:
        body = self.template_body()
        kwargs = {k: v for k, v in body.items() if k != "_meta"}
        self.client.indices.put_index_template(name=self.template_name(), meta=body["_meta"], **kwargs)

    def bulk(self, body: bytes) -> dict[str, Any]:
        return self.client.bulk(operations=body).body

    def post(self, batch: Batch) -> Sequence[Outcome] | None:
        try:
            if self.install_template and not self.template_installed:
                self.install_index_template()
                self.template_installed = True
        except Exception as exc:  # noqa: BLE001 - turned into a DeliveryError the machinery understands
            # said as the template's: a key without the template privileges (403) or an operator's template with
            # overlapping patterns (400) reads as if the documents had been refused
            error = self.as_delivery_error(exc)
            raise DeliveryError(f"installing the index template {self.template_name()!r} failed "
                                f"(install_template=false leaves templates to you): {error.reason}", sink=self.name,
                                retryable=error.retryable, retry_after=error.retry_after, status=error.status,
                                details=error.details) from None
        return self._post_items(batch.items, whole=True)

    def _post_items(self, items: list[BatchItem], *, whole: bool) -> list[Outcome] | None:
        """One `_bulk` request for `items`. A 413 (the server's `http.max_content_length`, or a proxy's
        body limit such as nginx's 1 MB default) halves the request until it fits. Once split, a part's
        error becomes the outcome of its items only: parts already indexed are not re-sent."""
        body = b"".join(item.payload for item in items)           # item_separator is b""
        try:
            try:
                response = self.bulk(body)
            except Exception as exc:  # noqa: BLE001 - turned into a DeliveryError the machinery understands
                error = self.as_delivery_error(exc)
                if error.status == 413:
                    return self._split(items, len(body), error)
                raise error from None
            return self._outcomes(response, items)
        except DeliveryError as error:
            if whole:
                raise
            return [Outcome.from_error(error)] * len(items)

    def _split(self, items: list[BatchItem], body_size: int, error: DeliveryError) -> list[Outcome]:
        if len(items) == 1:
            return [Outcome.failed(f"{error.reason} (one document of {body_size:,} bytes is over the server's "
                                   f"or a proxy's request size limit)", details=error.details)]
        self.lower_byte_limit(body_size, error.reason)
        half = len(items) // 2
        return [*(self._post_items(items[:half], whole=False) or [Outcome.delivered()] * half),
                *(self._post_items(items[half:], whole=False) or [Outcome.delivered()] * (len(items) - half))]

    def _outcomes(self, response: Any, actions: list[BatchItem]) -> list[Outcome] | None:
        """Per-item outcomes of a bulk response (None: all delivered). A body that is not a bulk
        response (a proxy's page answered with 200, a cut-off body) retries: indexing by `_id` and version
        makes re-sending safe, whatever the server did with the first try."""
        count = len(actions)
        if not isinstance(response, dict):
            raise DeliveryError(f"bulk response is not a JSON object: {_short(response)}", sink=self.name,
                                retryable=True)
        # One item per action, also when `errors` is false: a JSON object without them (a proxy's or another
        # service's answer with status 200) is no sign that anything was indexed.
        items = response.get("items")
        if not isinstance(items, list) or len(items) != count:
            found = f"{len(items)} item(s)" if isinstance(items, list) else f"items {_short(items)}"
            raise DeliveryError(f"bulk response has {found} for {count} action(s)", sink=self.name, retryable=True)
        if response.get("errors") is False:
            return None
        # Items are read by position (item n answers action n), so each must name its action's _id: an answer in
        # another order put one event's refusal on another (the refused one counted delivered).
        for n, (item, action) in enumerate(zip(items, actions)):
            result = next(iter(item.values()), None) if isinstance(item, dict) and len(item) == 1 else None
            if not isinstance(result, dict) or result.get("status").__class__ is not int:
                continue                    # malformed: item_outcome names it
            answered = result.get("_id")
            if answered is not None and answered != action.event.get("id"):
                raise DeliveryError(f"bulk response item #{n} is for _id {_short(answered, 80)}, not the _id of action "
                                    f"#{n}: the items do not follow the actions", sink=self.name, retryable=True)
        return [item_outcome(item, n) for n, item in enumerate(items)]

    def as_delivery_error(self, exc: Exception) -> DeliveryError:
        """A client exception as a DeliveryError: HTTP status decides retryability; network errors retry;
        an answer the client could not parse (a proxy's page, a cut-off body) retries too."""
        status, headers, info = _status_of(exc)
        if status is None:
            if type(exc).__name__ == "SerializationError":         # both clients' name for it
                return DeliveryError(f"bulk response could not be read: {_short(str(exc))}", sink=self.name,
                                     retryable=True)
            from ..delivery.batching import classify_exception
            error = classify_exception(exc)
            cause = exc.__cause__
            if cause is not None and str(cause) not in str(exc):
                # elastic-transport's ConnectionError / TlsError read only "Connection error" / "TLS error": what
                # happened (a refused connection, a certificate not trusted) is the urllib3 error it was raised from
                why = classify_exception(cause)
                if not why.retryable and why.reason.startswith("TLS verification failed"):
                    return why                  # a certificate retrying cannot fix
                return DeliveryError(f"{error.reason} ({type(cause).__name__}: {_short(str(cause))})",
                                     retryable=error.retryable)
            return error
        # opensearch-py keeps a body that is not JSON (an HTML error page) as the error's text, not its info.
        text = _error_text(info) or _error_text(getattr(exc, "error", None)) or type(exc).__name__
        retry_after = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
        # an error the bulk items retry (a cluster-wide write block answers the whole request, 403) retries here too
        retryable = is_retryable_status(status) or _error_type(info) in RETRYABLE_ITEM_ERRORS
        return DeliveryError(f"HTTP {status}: {_short(text)}", sink=self.name, retryable=retryable,
                             status=status, retry_after=parse_retry_after(retry_after), details=info)

    def close_transport(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


class OpenSearchSink(ElasticSink):
    """The same sink on opensearch-py (its `bulk(body=...)`, `TransportError.status_code`)."""

    flavor = "opensearch"

    def _client(self, url: str, *, api_key: str | None, username: str | None, password: str | None, verify: bool,
                ca_certs: str | None, request_timeout: float, extra: dict[str, Any]) -> Any:
        from opensearchpy import OpenSearch
        options: dict[str, Any] = {"verify_certs": verify, "timeout": request_timeout, "max_retries": 0,
                                   "retry_on_timeout": False, "retry_on_status": (),
                                   "serializer": opensearch_serializer()}
        if ca_certs:
            options["ca_certs"] = ca_certs
        if username:
            options["http_auth"] = (username, password or "")
        if api_key:
            options["headers"] = {"Authorization": f"ApiKey {api_key}"}
        return OpenSearch(hosts=[url], **{**options, **extra})

    def put_template(self) -> None:
        self.client.indices.put_index_template(name=self.template_name(), body=self.template_body())

    def bulk(self, body: bytes) -> dict[str, Any]:
        return self.client.bulk(body=body)


def opensearch_serializer() -> Any:
    """opensearch-py's JSONSerializer, reading answers with orjson when it is installed. Its own reader
    (simplejson) takes 0.7 ms for a 500-item bulk answer, orjson 0.3: time on the worker thread, which
    shares the interpreter lock with the encoding of the next batch. What orjson refuses (NaN, lone
    surrogates, deep nesting, bad JSON) and texts with a run of 20 digits (integers orjson would round
    to floats, `jsonio.wide_digits`) go to the client's own reader, so every answer reads, or fails, as
    it did. Writing is the client's own."""
    from opensearchpy.serializer import JSONSerializer

    if jsonio.fast_loads is None:
        return JSONSerializer()

    class FastReadingSerializer(JSONSerializer):
        def loads(self, s: str) -> Any:
            return _fast_or(s, super().loads)

    return FastReadingSerializer()


def _fast_or(data: Any, client_loads: Callable[[Any], Any]) -> Any:
    """`data` read with orjson, or by the client's own reader when orjson refuses it or it may hold an
    integer orjson would round (`jsonio.wide_digits`)."""
    if isinstance(data, (str, bytes)) and not jsonio.wide_digits(data):
        try:
            return jsonio.fast_loads(data)  # type: ignore[misc]
        except ValueError:          # orjson's errors: the client's reader decides
            pass
    return client_loads(data)


def elasticsearch_serializers() -> dict[str, Any]:
    """elasticsearch-py's JSON serializers (plain and compatibility-mode mimetypes) reading answers as
    opensearch_serializer does: orjson, and the client's own reader (json) for the rest."""
    from elasticsearch.serializer import CompatibilityModeJsonSerializer, JsonSerializer

    if jsonio.fast_loads is None:
        return {}

    class FastReading:
        def json_loads(self, data: bytes) -> Any:
            return _fast_or(data, super().json_loads)  # type: ignore[misc]

    class Plain(FastReading, JsonSerializer):
        pass

    class Compatible(FastReading, CompatibilityModeJsonSerializer):
        pass

    return {Plain.mimetype: Plain(), Compatible.mimetype: Compatible()}


#: A UTC timestamp whose date is the UTC day as written (the builders' spelling): no parsing needed.
_UTC_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[Tt](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?[Zz]")
#: A timestamp with a numeric offset, in ASCII digits and a time of day that exists: its UTC day is the
#: day written, or the one before or after when the offset crosses midnight (no datetime is built).
#: Groups: the date, the time as "HH:MM", the sign, the offset as "HH:MM".
_OFFSET_STAMP = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]((?:[01][0-9]|2[0-3]):[0-5][0-9]):[0-5][0-9](?:\.[0-9]+)?"
                           r"([+-])((?:[01][0-9]|2[0-3]):[0-5][0-9])")
#: Days remembered by utc_day (about 45 years of them, a few MB at most): a replay spanning more than the
#: 4096 it kept before (11 years, as benchmarks/bench_bulk.py's corpus does) cleared the cache over and
#: over and paid a date check and formatting for half its events.
_DAY_CACHE_LIMIT = 16384
_days: dict[str, str] = {}        # "2025-12-14" -> "2025.12.14", each date checked once
_shifted_days: dict[tuple[str, int], str] = {}      # ("2025-12-14", -1) -> "2025.12.13"
_DAY_TURNS: dict[str, str] = {}     # -HH:MM offset -> the local time from which UTC is the next day (< 1440 of them)


#: An RFC 3339 date-time as Elasticsearch's default `date` format (strict_date_optional_time) reads it: upper-case T
#: and Z, at most nine fraction digits, an offset within +-18:00 (Java's ZoneOffset; RFC 3339 allows up to +-23:59,
#: elastic/elasticsearch#108672), nothing after the offset.
_ES_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
                      r"(?:Z|[+-](?:(?:0[0-9]|1[0-7]):[0-5][0-9]|18:00))")


def es_date(timestamp: Any) -> Any:
    """`timestamp` as given when Elasticsearch reads it, else the same instant in UTC with microseconds. The schema
    checks date-times as JSON Schema does (t/z in either case, a trailing line break, any number of fraction
    digits, offsets up to +-23:59); Elasticsearch refuses those spellings (mapper_parsing_exception), which
    dead-lettered valid events.
    What parse_iso cannot read is left as it is (the server's refusal then names it)."""
    if not isinstance(timestamp, str) or _ES_DATE.fullmatch(timestamp):
        return timestamp
    try:
        m = parse_iso(timestamp).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return timestamp
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"


def utc_day(timestamp: Any) -> str:
    """The UTC day of an RFC 3339 timestamp as `YYYY.MM.DD` (daily index names); ValueError or
    TypeError when it is not one (the event then fails alone, with that reason)."""
    if not isinstance(timestamp, str):
        raise TypeError(f"timestamp is {type(timestamp).__name__}, not an RFC 3339 string")
    # only a timestamp ending in Z can match _UTC_STAMP: the others go straight to the offset form
    match = _UTC_STAMP.fullmatch(timestamp) if timestamp[-1:] in ("Z", "z") else None
    if match is None:
        offset = _OFFSET_STAMP.fullmatch(timestamp)
        day = _offset_day(*offset.groups()) if offset is not None else None
        if day is None:         # other spellings, errors: the full parse
            try:
                return _dotted(parse_iso(timestamp).astimezone(timezone.utc))
            except OverflowError:       # valid RFC 3339, but the UTC day is before year 1 or after 9999
                raise ValueError(f"timestamp {timestamp!r} is outside the years 0001-9999 in UTC: no daily "
                                 "index can be named for it") from None
        return day
    ymd = match.group(1)
    day = _days.get(ymd)
    if day is None:
        day = _dotted(date.fromisoformat(ymd))       # ValueError for 2025-02-30
        if len(_days) >= _DAY_CACHE_LIMIT:                                   # many distinct days: stay bounded
            _days.clear()
        _days[ymd] = day
    return day


def _dotted(day: date) -> str:
    """`YYYY.MM.DD` with four year digits for any year (strftime's %Y gives "1" for year 1 on glibc)."""
    return f"{day.year:04d}.{day.month:02d}.{day.day:02d}"


def _offset_day(ymd: str, local: str, sign: str, offset: str) -> str | None:
    """utc_day of a timestamp _OFFSET_STAMP matched (`local`, the time written, and `offset` are "HH:MM"), or None when only
    the full parse can tell (a day that does not exist, a shift past year 1 or 9999: it raises its own
    error then). The offset is under a day, so the UTC day is the day written or the one next to it:
    with +HH:MM the day before when the time is earlier than the offset, with -HH:MM the day after when
    it is at or past 24:00 minus the offset. Zero-padded "HH:MM" strings compare as the times do, so
    no numbers are parsed per event."""
    if sign == "+":
        shift = -1 if local < offset else 0
    else:
        turn = _DAY_TURNS.get(offset)
        if turn is None:
            minutes = 1440 - int(offset[:2]) * 60 - int(offset[3:])
            turn = _DAY_TURNS[offset] = f"{minutes // 60:02d}:{minutes % 60:02d}"       # "24:00" for -00:00
        shift = 1 if local >= turn else 0
    key = (ymd, shift)
    day = _shifted_days.get(key)
    if day is None:
        try:
            day = _dotted(date.fromisoformat(ymd) + timedelta(days=shift))
        except (ValueError, OverflowError):
            return None
        if len(_shifted_days) >= _DAY_CACHE_LIMIT:
            _shifted_days.clear()
        _shifted_days[key] = day
    return day


_YEAR_ONE = datetime(1, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def event_version(event: dict[str, Any]) -> int:
    """The external version of an event's document: its instant as microseconds since 0001-01-01T00:00Z
    (any offset, fraction digits past the sixth dropped), or for an incident the later of its timestamp
    and its `data.updated_at`, so that a newer version replaces an older one and a re-send does not.
    ValueError or TypeError when a time is not RFC 3339 (the event then fails alone, with that reason)."""
    instant = _instant(event["timestamp"], "timestamp")
    data = event.get("data") if event.get("type") == "incident" else None
    updated = data.get("updated_at") if isinstance(data, dict) else None
    if updated is not None:
        instant = max(instant, _instant(updated, "data.updated_at"))
    return (instant - _YEAR_ONE) // _MICROSECOND


def _instant(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"{name} is {type(value).__name__}, not an RFC 3339 string")
    try:
        return parse_iso(value)
    except ValueError:
        raise ValueError(f"{name} {value[:64]!r} is not an RFC 3339 date-time") from None


def item_outcome(item: Any, index: int = 0) -> Outcome:
    """One bulk response item -> its Outcome (see the module docstring for the rules). An item that is
    not `{action: {"status": int, ...}}` retries: whether it was indexed is unknown, and indexing by `_id`
    and version (`create` by `_id` in a data stream) makes re-sending safe."""
    result = next(iter(item.values()), None) if isinstance(item, dict) and len(item) == 1 else None
    status = result.get("status") if isinstance(result, dict) else None
    if status.__class__ is not int:
        return Outcome.retry(f"malformed bulk response item #{index}: {_short(item)}")
    error = result.get("error")
    if 200 <= status < 300:
        return Outcome.delivered()
    if status == 409:
        return Outcome.duplicate()
    kind = error.get("type", "") if isinstance(error, dict) else ""
    text = f"bulk item {status}: {_error_text(error)}"
    if status == 429 or status >= 500 or kind in RETRYABLE_ITEM_ERRORS:
        return Outcome.retry(text, details=error)
    return Outcome.failed(text, details=error)


def _short(value: Any, limit: int = 200) -> str:
    """A response fragment for an error message: one line, at most `limit` characters."""
    text = " ".join((value.decode("utf-8", "replace") if isinstance(value, bytes) else
                     value if isinstance(value, str) else repr(value)).split())
    return (text[:limit] + "…" if len(text) > limit else text) or "(empty)"


def _error_text(error: Any) -> str:
    if isinstance(error, dict) and "error" in error:
        error = error["error"]
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text
    return str(error) if error else ""


def _error_type(body: Any) -> str | None:
    """`error.type` of an Elasticsearch error body ({"error": {"type": ...}, "status": N})."""
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def _status_of(exc: Exception) -> tuple[int | None, dict[str, str] | None, Any]:
    """(HTTP status, response headers, error body) of an elasticsearch-py or opensearch-py error."""
    meta = getattr(exc, "meta", None)
    if meta is not None and isinstance(getattr(meta, "status", None), int) and meta.status > 0:
        return meta.status, dict(getattr(meta, "headers", {}) or {}), getattr(exc, "body", None)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status, None, getattr(exc, "info", None)
    return None, None, None


__all__ = ["ElasticSink", "OpenSearchSink", "item_outcome", "event_version", "BULK_MAX_BYTES", "BULK_MAX_ACTIONS",
           "HTTP_MAX_CONTENT_LENGTH", "MAX_EXTERNAL_VERSION"]
