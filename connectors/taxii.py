"""TAXII 2.1 on taxii2-client: a client (discovery, API roots, collections, manifest, objects, add + status), a sink and a source.

Client: `TaxiiClient(url, user=, password=)` or `token=` (Bearer). `pages()` walks Get Objects or
Get Manifest with the filters `added_after`, `match[type|id|version|spec_version]`; it follows the
server's `next` cursor while `more` is true, with the same filters (OASIS TAXII 2.1 section 3.4),
so any number of objects that share one `date_added` come through exactly once. A server that
says `more` without a `next` is paged by moving `added_after` to the page's
`X-TAXII-Date-Added-Last` minus one microsecond and skipping what was already seen (an
exclusive `added_after` at the last date would lose the objects sharing it); if a whole page is
already-seen objects (more than `limit` share one date), TaxiiPagingError says so.

Sink `taxii+https://host/api-root/collections/<id>/` (on the shared delivery machinery): each
WIA event -> its STIX 2.1 objects (the STIX converter; ids are deterministic, so a re-send is
idempotent), batched into envelopes under the API root's `max_content_length`, POSTed, and the
status polled until complete. Objects the server lists as failures are checked against the
manifest: present with that version = duplicate; otherwise the event fails with the server's
message.

Source: `TaxiiSource.poll()` yields WIA events parsed from each page of objects (the STIX
converter's reader) and a checkpoint {added_after, seen} that callers persist after delivery.
Objects added within the last `settle` seconds of the server's clock are left for the next poll:
a server may still be adding the rest of their request.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from taxii2client.exceptions import AccessError, TAXIIServiceException, ValidationError
from taxii2client.v21 import ApiRoot, Collection, Server

from wia_security import jsonio
from wia_security.errors import ConfigError, ConversionError, DeliveryError, WiaError
from wia_security.formats import convert, get_format
from wia_security.outputs import held_exclusively, replace_durably
from wia_security.redact import remember_basic_auth
from wia_security.taxii_settle import (DEFAULT_SETTLE_SECONDS, Clocks, ahead_warning, classify, date_behind, iso_micro,
                                       just_before, measure, moved_on, page_bounds, reaches_past, server_clock,
                                       settle_seconds, stored_past_horizon, stored_past_warning)
from wia_security.timeutil import parse_iso

from .base import Rejected
from .config import resolve_options, reveal
from .delivery import Batch, BatchingSink, DeliveryPolicy, Outcome
from .delivery.batching import classify_exception
from .delivery.http import POOL_SIZE, is_retryable_status, new_session
from .delivery.urls import tls_options, tls_verification, url_netloc, warn_plain_http_secret

log = logging.getLogger("wia_security.connectors.taxii")

MEDIA_TAXII = "application/taxii+json;version=2.1"
MEDIA_STIX = "application/stix+json;version=2.1"
#: Objects asked for per page (servers may return fewer; medallion's default max_page_size is 100).
DEFAULT_PAGE_SIZE = 100
#: Used when an API root does not state `max_content_length` (TAXII 2.1 makes it required).
FALLBACK_MAX_CONTENT_LENGTH = 10 * 1024 * 1024
#: Envelope bytes around the objects: {"objects":[ ... ]}.
ENVELOPE_PREFIX, ENVELOPE_SUFFIX = b'{"objects":[', b"]}"
DEFAULT_STATUS_TIMEOUT = 60.0
#: Objects a source gathers before parsing them into events (an event's objects may span pages).
DEFAULT_BATCH_OBJECTS = 20_000
STATUS_POLL_INTERVAL = 0.5
#: The settle window's default and limits (DEFAULT_SETTLE_SECONDS, imported above) are in
#: wia_security.taxii_settle, shared with the Splunk app's and the XSOAR pack's TAXII pulls.
FILTERS = ("added_after", "type", "id", "version", "spec_version")
#: Pages in a row a walk follows that say `more` but hold no object (a server filtering after it pages may answer
#: some; one handing out new cursors for ever must not be followed for ever).
MAX_EMPTY_PAGES = 1000
#: Seconds to connect to the server. taxii2-client sets no timeout at all: a server that accepted a connection
#: and stopped answering held a poll, and its checkpoint's lock, for ever (and a sink's flush).
CONNECT_TIMEOUT = 10.0
#: Seconds a request may wait for the server's answer, and for each part of its body (`?timeout=`).
DEFAULT_TIMEOUT = 60.0
#: One answer's whole body must come within this many `timeout`s: a body trickled a byte at a time never
#: trips the per-read timeout.
ANSWER_TIMEOUTS = 10
#: The largest answer read (decoded bytes): a server ignoring `limit`, or a compressed bomb, must not exhaust memory.
MAX_ANSWER_BYTES = 256 * 1024 * 1024


class TaxiiError(WiaError):
    """A TAXII server answered something this client cannot use."""


class TaxiiPagingError(TaxiiError):
    pass


class _TimedAdapter(HTTPAdapter):
    """requests' adapter with a (connect, read) timeout on every request that gives none (taxii2-client never does)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE, max_retries=0)
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             **kwargs: Any) -> requests.Response:
        return super().send(request, stream=stream, timeout=(CONNECT_TIMEOUT, self.timeout) if timeout is None
                            else timeout, **kwargs)


def _bounded_body(timeout: float) -> Any:
    """A response hook reading the body within ANSWER_TIMEOUTS x `timeout` and MAX_ANSWER_BYTES (requests reads
    it after the hooks, unbounded). The round trip (`elapsed`) stays request -> headers, as the settle window
    measures it."""
    def read(response: requests.Response, *args: Any, stream: bool = False, **kwargs: Any) -> requests.Response:
        if stream or response._content is not False:
            return response
        deadline = time.monotonic() + ANSWER_TIMEOUTS * timeout
        body = bytearray()
        try:
            for chunk in _chunks(response):
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise TaxiiError(f"{_shown(response.url)} answered more than {MAX_ANSWER_BYTES} bytes: "
                                     "not read (a page is `limit` objects)")
                if time.monotonic() > deadline:
                    raise requests.exceptions.ReadTimeout(
                        f"{_shown(response.url)}: the answer's body took more than {ANSWER_TIMEOUTS * timeout:g} s "
                        f"({ANSWER_TIMEOUTS} x timeout={timeout:g}): given up", response=response)
        except BaseException:
            response.close()
            raise
        response._content = bytes(body)
        return response
    return read


def _chunks(response: requests.Response, size: int = 64 * 1024) -> Iterator[bytes]:
    """The decoded body as it arrives: urllib3's read1 gives what one read of the socket brings, so a trickled
    body is checked as often as bytes come (its read(size), used by iter_content, waits for `size` bytes).
    urllib3's errors become requests' as iter_content makes them. Older urllib3 (no read1): iter_content."""
    from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError
    raw = response.raw
    if not hasattr(raw, "read1"):
        yield from response.iter_content(size)
        return
    while True:
        try:
            chunk = raw.read1(size, decode_content=True)
        except ProtocolError as exc:
            raise requests.exceptions.ChunkedEncodingError(exc) from None
        except DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc) from None
        except ReadTimeoutError as exc:
            raise requests.exceptions.ConnectionError(exc) from None
        except SSLError as exc:
            raise requests.exceptions.SSLError(exc) from None
        if not chunk:
            return
        yield chunk


def _shown(url: str | None) -> str:
    """scheme://host:port/path of a request's URL: no query, no user info."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{url_netloc(parts)}{parts.path}"


class BearerAuth(requests.auth.AuthBase):
    """`Authorization: Bearer <token>` (taxii2-client's TokenAuth sends the `Token` scheme)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


@dataclass
class Page:
    """One page of Get Objects / Get Manifest: its items and the server's date_added range."""

    items: list[dict[str, Any]]
    more: bool
    date_added_first: str | None
    date_added_last: str | None
    server_date: datetime | None = None       # the server's clock as it began answering (`Date` less the round trip)

    def bounds(self) -> tuple[str | None, str | None]:
        """(earliest, latest) date_added on the page as far as its headers tell: a one-object page may
        carry only X-TAXII-Date-Added-First (medallion's last `next` page does so)."""
        return page_bounds(self.date_added_first, self.date_added_last, len(self.items))


def _timeout_seconds(value: Any, source: str) -> float:
    from .delivery.urls import seconds
    return seconds(value, "timeout", source)


def _credentials(user: str | None, password: Any, token: Any) -> dict[str, Any]:
    password, token = reveal(password), reveal(token)      # remembered for masking in errors
    if token:
        return {"auth": BearerAuth(token)}
    if user or password:
        remember_basic_auth(user, password)                # `Authorization: Basic <base64>` echoed back, too
        return {"user": user, "password": password}
    return {}


class TaxiiClient:
    """Discovery -> API roots -> collections; pages of objects/manifest; add objects."""

    def __init__(self, url: str, *, user: str | None = None, password: Any = None, token: Any = None,
                 verify: bool | str = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            # Never sent (the session's auth wins over a URL's), yet shown wherever the URL is: logs, errors,
            # dead-letter records. Refused as the other connectors refuse them.
            raise ConfigError("put credentials in the user and password_env / token_env options (or password= / "
                              "token=), not in the URL", key="url", source=f"{parts.scheme}://{url_netloc(parts)}")
        self.url = url if url.endswith("/") else url + "/"
        self._auth = _credentials(user, password, token)
        if self._auth:
            warn_plain_http_secret(f"taxii:{urlsplit(self.url).hostname}", self.url,
                                   "TAXII token" if "auth" in self._auth else "TAXII password")
        self.verify = verify
        self.timeout = _timeout_seconds(timeout, f"{parts.scheme}://{url_netloc(parts)}")
        self._headers = threading.local()

    def _endpoint(self, cls: type, url: str) -> Any:
        endpoint = cls(url, verify=self.verify, **self._auth)
        # taxii2-client's plain requests.Session lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace a CA file given
        # here (psf/requests#3829): verification then failed against the system CAs. new_session keeps it.
        session = new_session(verify=self.verify)
        session.auth = endpoint._conn.session.auth or session.auth      # no credentials: still none from .netrc
        adapter = _TimedAdapter(self.timeout)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        endpoint._conn.session = session
        endpoint._conn.session.hooks["response"] += [_bounded_body(self.timeout), self._remember_headers]
        return endpoint

    def _remember_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # taxii2-client returns bodies only; the X-TAXII-Date-Added-* headers are taken here.
        self._headers.last = response.headers
        self._headers.elapsed = response.elapsed          # request sent -> headers read (our monotonic clock)

    def _last_header(self, name: str) -> str | None:
        headers = getattr(self._headers, "last", None)
        return headers.get(name) if headers is not None else None

    def _date_header(self, name: str) -> str | None:
        """An X-TAXII-Date-Added-* header, or None when absent or not a timestamp: a garbled one must not
        reach a checkpoint (the next poll could not resume from it) nor the date paging."""
        value = self._last_header(name)
        if value is None:
            return None
        try:
            parse_iso(value)
        except (TypeError, ValueError):
            log.warning("%s: ignoring %s %r: not a timestamp", self.url, name, value[:60])
            return None
        return value

    def _server_date(self) -> datetime | None:
        """The server's clock when the last request reached it, at the latest: its response's `Date`
        header (RFC 9110: whole seconds, made as the answer goes out) less the time from sending the
        request to reading that answer, since the server may have listed objects long before it
        answered (a slow first page: medallion took 36 s under load). None without a usable `Date`."""
        return server_clock(self._last_header("Date"), self._round_trip())

    def _round_trip(self) -> timedelta:
        elapsed = getattr(self._headers, "elapsed", None)
        return elapsed if isinstance(elapsed, timedelta) else timedelta(0)

    def server(self) -> Server:
        return self._endpoint(Server, self.url)

    def discover(self) -> dict[str, Any]:
        with self.server() as server:
            return {"title": server.title, "description": server.description, "contact": server.contact,
                    "default": server.default.url if server.default else None,
                    "api_roots": [root.url for root in server.api_roots]}

    def api_root(self, url: str | None = None) -> ApiRoot:
        return self._endpoint(ApiRoot, url or self.url)

    def collections(self, api_root_url: str | None = None) -> list[dict[str, Any]]:
        with self.api_root(api_root_url) as root:
            return [c._raw for c in root.collections]

    def collection(self, url: str | None = None) -> Collection:
        return self._endpoint(Collection, url or self.url)

    # --- reading ---
    def pages(self, collection: Collection, *, manifest: bool = False, page_size: int = DEFAULT_PAGE_SIZE,
              **filters: Any) -> Iterator[Page]:
        """Every page of Get Objects (or Get Manifest) matching `filters`, following `next`."""
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise ValueError(f"unknown TAXII filter(s) {sorted(unknown)}; known: {FILTERS}")
        filters = {k: v for k, v in filters.items() if v}
        get = collection.get_manifest if manifest else collection.get_objects

        def fetch(**params: Any) -> Any:
            # taxii2-client refuses an answer whose Content-Type is not TAXII (a proxy's login page, an HTML error
            # page answered 200) with its own exception, and one without a Content-Type with a KeyError: neither
            # is an error a caller (pull) reports; both are this client's TaxiiError, naming the endpoint.
            try:
                return get(**params)
            except TAXIIServiceException as exc:          # AccessError too: the collection says can_read: false
                raise TaxiiError(f"{_shown(collection.url)}: {str(exc).splitlines()[0]}") from None
            except KeyError as exc:
                if str(exc.args[0] if exc.args else "").lower() != "content-type":
                    raise
                raise TaxiiError(f"{_shown(collection.url)}: the server answered without a Content-Type, not "
                                 f"{MEDIA_TAXII}") from None
        key = "objects"
        seen_at: dict[str, set[tuple[str, str]]] = {}      # fallback paging: keys already yielded, by date
        previous: tuple[Any, list[tuple[str, str]]] | None = None   # last (`next`, page keys): no progress = loop
        walked: set[int] = set()           # the pages followed, by their keys: one answered again is no progress
        empty = 0                          # pages in a row saying `more` without any object
        followed = 0

        def progressed(page: Page, cursor: Any) -> None:
            # A server may answer a page it gave before under a new `next` (a cursor it ignores, one holding a
            # counter) or with a moved X-TAXII-Date-Added-Last, or nothing for ever: followed, that never ends.
            nonlocal empty
            held = frozenset(_key(o) for o in page.items)
            empty = 0 if held else empty + 1
            if empty > MAX_EMPTY_PAGES:
                raise TaxiiPagingError(f"the server says more objects follow but answered {empty} pages in a row "
                                       f"without any (after {followed} page(s)): following it may never end")
            if held and hash(held) in walked:
                raise TaxiiPagingError(f"the server answered the same page again after {followed} page(s) ("
                                       + (f"`next` {str(cursor)[:80]!r}" if cursor else "no `next`")
                                       + "): following it would loop")
            walked.add(hash(held))
        envelope = fetch(limit=page_size, **filters)
        while True:
            if not isinstance(envelope, dict):
                raise TaxiiPagingError(f"the server answered a {type(envelope).__name__}, not a TAXII envelope "
                                       f"(after {followed} page(s))")
            items = envelope.get(key) or []
            if not isinstance(items, list):
                raise TaxiiPagingError(f"the server's envelope has `{key}` as a {type(items).__name__}, not a list")
            page = Page(list(items), bool(envelope.get("more")),
                        self._date_header("X-TAXII-Date-Added-First"), self._date_header("X-TAXII-Date-Added-Last"),
                        self._server_date())
            if not page.more:
                if seen_at:                     # date-paged: drop what the overlap brings again
                    already = next(iter(seen_at.values()))
                    page.items = [o for o in page.items if _key(o) not in already]
                yield page
                return
            token = envelope.get("next")
            if token:
                # Servers may reuse one cursor for a whole walk (medallion does); the same cursor
                # answering the very same page again, though, would be followed forever.
                keys = [_key(o) for o in page.items]
                if previous is not None and previous == (token, keys):
                    raise TaxiiPagingError(f"the server answered the `next` cursor {str(token)[:80]!r} with the same "
                                           f"page again after {followed} page(s): following it would loop")
                previous = (token, keys)
                progressed(page, token)
                followed += 1
                yield page
                envelope = fetch(limit=page_size, next=token, **filters)
                continue
            # No `next`: page by date. Re-ask from just before the last date; drop what we saw.
            if not page.date_added_last:
                raise TaxiiPagingError("the server says more objects follow but gives neither `next` "
                                       "nor X-TAXII-Date-Added-Last (a timestamp)")
            last = page.date_added_last
            fresh = [o for o in page.items if _key(o) not in seen_at.get(last, set())]
            if not fresh and page.items:
                raise TaxiiPagingError(f"more than {page_size} objects share date_added {last} and the server "
                                       "offers no `next` cursor: raise the page size")
            progressed(page, None)
            followed += 1
            seen_at = {last: seen_at.get(last, set()) | {_key(o) for o in page.items}}
            yield Page(fresh, True, page.date_added_first, last, page.server_date)
            filters["added_after"] = _just_before(last)
            envelope = fetch(limit=page_size, **filters)

    def objects(self, collection: Collection, **filters: Any) -> Iterator[dict[str, Any]]:
        for page in self.pages(collection, **filters):
            yield from page.items

    def manifest(self, collection: Collection, **filters: Any) -> Iterator[dict[str, Any]]:
        for page in self.pages(collection, manifest=True, **filters):
            yield from page.items

    # --- writing ---
    def add(self, collection: Collection, objects: Sequence[dict[str, Any]] | bytes, *,
            timeout: float = DEFAULT_STATUS_TIMEOUT) -> dict[str, Any]:
        """Add Objects (5.4), then poll Get Status (4.3) until complete or `timeout`; the status resource."""
        envelope = objects if isinstance(objects, bytes) else {"objects": list(objects)}
        status = collection.add_objects(envelope, wait_for_completion=True, poll_interval=STATUS_POLL_INTERVAL,
                                        timeout=timeout)
        return status._raw


def _key(obj: Any) -> tuple[str, str]:
    """(id, version) of an object; always two strings (checkpoints store and sort them), also for a
    malformed object, which is keyed by its JSON text so it is still seen once."""
    if not isinstance(obj, dict):
        return "", _json_text(obj)
    oid = obj.get("id")
    version = obj.get("modified") or obj.get("version") or obj.get("created") or ""
    return (oid if isinstance(oid, str) else _json_text(oid)), (version if isinstance(version, str) else _json_text(version))


def _json_text(value: Any) -> str:
    try:
        return jsonio.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _just_before(timestamp: str) -> str | None:
    """One microsecond before `timestamp` (added_after is exclusive); None before the first instant of the
    year 1 (nothing is earlier: no added_after)."""
    return just_before(timestamp)


_iso = iso_micro


def _later(a: str | None, b: str | None) -> str | None:
    if not a or not b:
        return a or b
    return a if parse_iso(a) >= parse_iso(b) else b


# ---------------------------------------------------------------------------------------------
class TaxiiSink(BatchingSink):
    """WIA events -> STIX 2.1 objects -> Add Objects on one collection, with status polling."""

    item_separator = b","
    body_prefix, body_suffix = ENVELOPE_PREFIX, ENVELOPE_SUFFIX

    def __init__(self, collection_url: str, *, user: str | None = None, password: Any = None, token: Any = None,
                 tls_verify: bool | None = None, ca_file: str | None = None, verify: bool | str | None = None,
                 status_timeout: float = DEFAULT_STATUS_TIMEOUT, timeout: float = DEFAULT_TIMEOUT,
                 max_content_length: int | None = None, send_extension_definition: bool = False,
                 delivery: DeliveryPolicy | None = None, dead_letter: Any = None, **machinery: Any) -> None:
        parts = urlsplit(collection_url)
        self.send_extension_definition = bool(send_extension_definition)
        if parts.scheme not in ("http", "https") or "/collections/" not in parts.path:
            raise ConfigError("expected taxii+https://HOST/API-ROOT/collections/ID/", key="url",
                              source=f"{parts.scheme}://{parts.hostname}")
        self.client = TaxiiClient(collection_url, user=user, password=password, token=token,
                                  verify=_verification(parts, tls_verify, ca_file, verify), timeout=timeout)
        self.collection = self.client.collection(collection_url)
        self.status_timeout = status_timeout
        self._no_manifest = False            # Get Manifest failed once: held versions are read from Get Objects
        if max_content_length is None:
            api_root_url = collection_url.split("/collections/", 1)[0] + "/"
            try:
                with self.client.api_root(api_root_url) as root:
                    max_content_length = root.max_content_length or FALLBACK_MAX_CONTENT_LENGTH
            except (requests.RequestException, TAXIIServiceException, TaxiiError, KeyError) as exc:
                # KeyError: taxii2-client reading an answer without a Content-Type
                why = "the server answered without a Content-Type" if isinstance(exc, KeyError) else _safe(exc)
                raise ConfigError(f"cannot read the API root: {why}", key="url",
                                  source=f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}") from None
        self.max_content_length = int(max_content_length)
        policy = (delivery or DeliveryPolicy()).capped(max_events=None, max_bytes=self.max_content_length)
        super().__init__(name=f"taxii:{parts.hostname}{parts.path}", delivery=policy, dead_letter=dead_letter, **machinery)

    #: options besides the delivery policy's, in the URL query or as keywords / config-table keys
    OPTIONS = ("user", "password", "token", "tls_verify", "ca_file", "verify", "status_timeout", "timeout",
               "max_content_length", "send_extension_definition", "delivery", "dead_letter", "sleep", "clock")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "TaxiiSink":
        """taxii+https://host/api-root/collections/<id>/[?option=value] with user/password_env or token_env;
        delivery keys (max_events, ...) in the query or as keywords."""
        target, options = taxii_options(url, options, cls.OPTIONS, numbers=("status_timeout", "timeout"),
                                        integers=("max_content_length",), booleans=("send_extension_definition",))
        return cls(target, **options)

    def encode(self, event: dict[str, Any]) -> bytes:
        try:
            objects = convert(event, to="stix")["objects"]
        except ConversionError as exc:
            raise ValueError(f"stix conversion failed: {exc}") from None
        if not self.send_extension_definition:
            # An extension-definition SDO has a required `version` property, which medallion 3.0.0
            # mistakes for the object's version (Get Objects then fails with 500 for the whole
            # collection). The objects still carry the extension by its id.
            objects = [o for o in objects if o["type"] != "extension-definition"]
        return b",".join(jsonio.dumpb(o) for o in objects)

    def post(self, batch: Batch) -> Sequence[Outcome] | None:
        body = batch.body()
        try:
            status = self.client.add(self.collection, body, timeout=self.status_timeout)
        except requests.HTTPError as exc:
            error = _delivery_error(exc, self.name)
            if error.status == 413:
                return self._split(batch, len(body), error)
            raise error from None
        except AccessError as exc:             # the collection says can_write: false
            raise DeliveryError(f"the collection does not accept objects: {exc}", sink=self.name) from None
        except (ValidationError, KeyError, TypeError, ValueError, AttributeError) as exc:
            # taxii2-client checks the status resource (required fields; counts that add up): a server
            # answering nonsense may still have added the objects, so retry (re-adds are duplicates).
            raise DeliveryError(f"unusable TAXII status resource: {type(exc).__name__}: {_safe(exc)}",
                                sink=self.name, retryable=True) from None
        except TAXIIServiceException as exc:
            # An answer that is not TAXII (a proxy's page answered 200 while the status is polled): the objects may
            # be added all the same, so retry, as for a status resource that makes no sense.
            raise DeliveryError(f"unusable TAXII answer: {_safe(exc).splitlines()[0]}", sink=self.name,
                                retryable=True) from None
        if status.get("status") != "complete":
            return [Outcome.retry(f"TAXII status {status.get('id')} still {status.get('status')} "
                                  f"after {self.status_timeout:g}s")] * len(batch.items)
        failures = {f.get("id"): f for f in _entries(status.get("failures"))}
        pending = {f.get("id") for f in _entries(status.get("pendings"))}
        if not failures and not pending and not status.get("pending_count"):
            return None
        added = {x.get("id") for x in _entries(status.get("successes"))}
        present = self._present({i for i in failures if isinstance(i, str)})
        outcomes = []
        for item in batch.items:
            objects = {o["id"]: o for o in json.loads(b"[" + item.payload + b"]")}
            ids = set(objects)
            refused = [failures[i] for i in sorted(ids) if i in failures and not _held(objects[i], present)]
            if ids & pending or (status.get("pending_count") and not pending and not ids <= added | set(failures)):
                # "complete" yet pending: a contradiction; the objects not known to be stored are sent again
                outcomes.append(Outcome.retry(f"TAXII status {status.get('id')} is complete but lists "
                                              f"{status.get('pending_count')} object(s) as pending"))
            elif refused:
                first = refused[0]
                outcomes.append(Outcome.failed(f"TAXII server refused {first.get('id')}: "
                                               f"{first.get('message') or 'no reason given'}", details=refused))
            elif ids & added or not ids <= set(failures):
                outcomes.append(Outcome.delivered())   # something of it was new (shared objects repeat per event)
            else:
                outcomes.append(Outcome.duplicate())   # every object was already there, same version
        return outcomes

    def _split(self, batch: Batch, body_size: int, error: DeliveryError) -> list[Outcome]:
        """A 413: the server, or a proxy before it (nginx takes 1 MiB by default), takes less than the API root's
        max_content_length. Each half is sent on its own and later batches are smaller; one event alone too large
        fails with the reason."""
        if len(batch.items) == 1:
            return [Outcome.failed(f"{error.reason} (one event's objects, {body_size:,} bytes, are over the server's "
                                   "or a proxy's request size limit)")]
        self.lower_byte_limit(body_size, error.reason)
        half = len(batch.items) // 2
        outcomes: list[Outcome] = []
        for items in (batch.items[:half], batch.items[half:]):
            try:
                outcomes += self.post(replace(batch, items=items)) or [Outcome.delivered()] * len(items)
            except Exception as exc:  # noqa: BLE001 - the half delivered before stays delivered
                outcomes += [Outcome.from_error(classify_exception(exc))] * len(items)
        return outcomes

    def _present(self, ids: set[str]) -> dict[str, set[Any]]:
        """The versions the collection holds of each of `ids` (a failed add of an id and version it holds is a
        duplicate), asked MANIFEST_ID_CHARS of ids at a time: every id of a large re-sent batch in one match[id]
        made a URL past what servers take (medallion answered 414 past 64 KiB, nginx and Apache past 8 KiB)."""
        found: dict[str, set[Any]] = {}
        for chunk in _id_chunks(sorted(ids)):
            for entry in self._versions(chunk):
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    found.setdefault(entry["id"], set()).add(_version_of(entry.get("version")))
        return found

    def _versions(self, ids: list[str]) -> list[dict[str, Any]]:
        """{id, version} of every version of `ids` the collection holds: Get Manifest, or, from a server that does not
        serve it (an HTTP error: many leave it out; asked once), Get Objects with the same filters, whose objects carry
        their version. Before, a re-send to such a server failed every event with a refused (already held) object:
        retried as an I/O error, then dead-lettered, though the objects were stored."""
        if not self._no_manifest:
            try:
                return list(self.client.manifest(self.collection, id=ids, version="all"))
            except (requests.HTTPError, TAXIIServiceException, TaxiiError) as exc:
                self._no_manifest = True
                status = getattr(getattr(exc, "response", None), "status_code", None)
                log.warning("%s: Get Manifest failed (%s); which refused objects the collection holds is read from Get "
                            "Objects instead", self.name, f"HTTP {status}" if status else type(exc).__name__)
        return [{"id": o.get("id"), "version": o.get("modified") or o.get("created")}
                for o in self.client.objects(self.collection, id=ids, version="all") if isinstance(o, dict)]

    def close_transport(self) -> None:
        self.collection.close()


#: Characters of ids (with their URL-encoded commas) in one Get Manifest's match[id]: its URL stays under the
#: 8 KiB request line nginx and Apache take by default.
MANIFEST_ID_CHARS = 4000


def _id_chunks(ids: list[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for oid in ids:
        if chunk and size + len(oid) + 3 > MANIFEST_ID_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(oid)
        size += len(oid) + 3
    if chunk:
        yield chunk


def _version_of(value: Any) -> Any:
    """A version as an instant, so '...00Z' and '...00.000Z' are one; as given when it is none."""
    try:
        return parse_iso(value)
    except (TypeError, ValueError):
        return value


def _held(obj: dict[str, Any], present: dict[str, set[Any]]) -> bool:
    """Whether the collection holds `obj` in its version: a server refuses to add it again (a duplicate). Holding
    another version of it is not enough: that server refused this version, for its own reason."""
    versions = present.get(obj["id"])
    if versions is None:
        return False
    version = obj.get("modified") or obj.get("created")
    return version is None or _version_of(version) in versions      # no version: an immutable object, its id is it


def _entries(value: Any) -> list[dict[str, Any]]:
    """A status resource's successes/failures/pendings: status entries (dicts with an id) only."""
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _delivery_error(exc: requests.HTTPError, sink: str) -> DeliveryError:
    response = exc.response
    status = response.status_code if response is not None else None
    from .delivery.policy import parse_retry_after
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
    return DeliveryError(f"HTTP {status}: {_safe(exc)}", sink=sink, status=status,
                         retryable=status is not None and is_retryable_status(status), retry_after=retry_after)


def _safe(exc: BaseException) -> str:
    """An exception text without URL credentials or query strings."""
    text = str(exc)
    return text.split("?", 1)[0] if "?" in text else text


# ---------------------------------------------------------------------------------------------
def _same_collection(a: str, b: str) -> bool:
    """One collection URL in two spellings: scheme and host in any case, with or without the final slash."""
    def key(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")
    return key(a) == key(b)


@dataclass
class Checkpoint:
    """Where an incremental poll resumes: after `added_after`, skipping `seen` keys at exactly that date."""

    added_after: str | None = None
    seen: list[list[str]] = field(default_factory=list)
    #: the collection the position belongs to (None in a checkpoint written before it was recorded)
    collection: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"added_after": self.added_after, "seen": self.seen} | (
            {"collection": self.collection} if self.collection else {})

    def check_collection(self, url: str, path: str) -> None:
        """A position is a date in one collection's `date_added` sequence: read against another collection it
        would skip every object that collection added before it. Refused, naming both (a checkpoint from
        before collections were recorded is taken, and records its collection when next saved)."""
        if self.collection is not None and not _same_collection(self.collection, url):
            raise ConfigError(f"this checkpoint holds the position in {self.collection}, not in {url}: a poll of "
                              f"another collection from it would skip that collection's objects added before "
                              f"{self.added_after}. Give each collection its own --checkpoint", key="checkpoint",
                              source=path)

    @classmethod
    def load(cls, path: str) -> "Checkpoint":
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"unreadable TAXII checkpoint: {exc}", key="checkpoint", source=path) from None
        # A damaged checkpoint must stop the poll: guessing would re-read everything or skip objects.
        if not isinstance(doc, dict):
            raise ConfigError(f"a TAXII checkpoint is a JSON object, not {type(doc).__name__}", key="checkpoint",
                              source=path)
        added_after, seen = doc.get("added_after"), doc.get("seen") or []
        if added_after is not None:
            try:
                _just_before(added_after)
            except (TypeError, ValueError, AttributeError):
                raise ConfigError(f"added_after {str(added_after)[:40]!r} is not a timestamp", key="checkpoint",
                                  source=path) from None
        if not isinstance(seen, list) or not all(isinstance(k, list) and len(k) == 2 and all(isinstance(x, str) for x in k)
                                                 for k in seen):
            raise ConfigError("`seen` is not a list of [id, version] pairs", key="checkpoint", source=path)
        collection = doc.get("collection")
        if collection is not None and not (isinstance(collection, str) and collection):
            raise ConfigError("`collection` is not a collection URL", key="checkpoint", source=path)
        return cls(added_after, seen, collection)

    def save(self, path: str) -> None:
        """Atomically, so a crash or power cut leaves the old or the new checkpoint, never half: write a
        temporary file in the same folder, fsync it, rename it over `path`, fsync the folder (the
        rename itself is durable only then). A temporary file a kill left behind is removed by the
        next save."""
        replace_durably(path, json.dumps(self.to_dict()))


@dataclass
class HeldBack:
    """What a run left for a later one (still settling), for `wia-security pull`'s summary."""

    held: int
    settle_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"held": self.held, "settle_seconds": self.settle_seconds}

    def render(self) -> str:
        return (f"held: {self.held} object(s) added in the last {self.settle_seconds:g} s of the server's clock "
                "(a later pull reads them; ?settle=SECONDS)")


@dataclass
class PolledPage:
    events: list[dict[str, Any]]
    objects: int
    rejected: list[Rejected]          # objects that did not become events, with why (for the dead letter)
    checkpoint: Checkpoint
    held: int = 0                     # objects still settling, left for the next poll (not in the checkpoint)


def _reset(checkpoint_path: str | None) -> str:
    """How to move a checkpoint stored past the server's clock back by hand."""
    where = f"in {checkpoint_path}" if checkpoint_path else "in the poll's checkpoint file"
    return (f"to resume, stop polling, set \"added_after\" {where} to an instant before the first object missed "
            "(objects added after it are read again: a sink keyed by event id keeps one of each) and poll again; "
            "deleting the file reads the whole collection again")


def _settle_seconds(value: Any, source: str | None = None) -> float:
    """The settle window: a finite number of seconds >= 0 (0 reads what the server lists at once)."""
    try:
        return settle_seconds(value)
    except ValueError as exc:
        raise ConfigError(str(exc), key="settle", source=source) from None


def _reaches_past(page: Page, cutoff: datetime) -> bool:
    """Whether a page may hold objects added after `cutoff`. A page without date headers cannot be
    told apart and is read as it stands."""
    return reaches_past(page.date_added_first, page.date_added_last, len(page.items), cutoff)


def _well_formed(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("type"), str) and isinstance(obj.get("id"), str)


def _verification(parts: Any, tls_verify: Any, ca_file: Any, verify: Any) -> bool | str:
    """taxii2-client's `verify` from tls_verify / ca_file as every connector reads them (`verify`, taxii2-client's
    own name, true/false or a CA bundle's path: their older spelling, still read)."""
    where = f"taxii+{parts.scheme}://{parts.hostname or ''}"
    return tls_verification(f"taxii:{parts.hostname}{parts.path}", *tls_options(
        {"tls_verify": tls_verify, "ca_file": ca_file, "verify": verify}, source=where))


def taxii_options(url: str, options: dict[str, Any], known: Sequence[str], *, numbers: Sequence[str] = (),
                  integers: Sequence[str] = (), booleans: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
    """`taxii+https://host/.../collections/<id>/?k=v` and keyword options -> (the collection URL without its
    query, typed options). Secrets only by reference (`password_env`, `token_file`, ...; literal ones too,
    from Python); delivery keys become a DeliveryPolicy; unknown keys are refused naming the known ones."""
    from urllib.parse import parse_qsl, urlunsplit

    from .delivery.urls import boolean, number, refuse_repeated_keys, seconds
    target = url.split("+", 1)[1] if url.startswith("taxii+") else url
    parts = urlsplit(target)
    where = f"taxii+{parts.scheme}://{parts.hostname or ''}"
    refuse_repeated_keys(parts.query, where)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    twice = sorted(set(query) & set(options))
    if twice:
        raise ConfigError(f"given in both the URL and the options: {', '.join(twice)}", key=twice[0], source=where)
    # a literal secret is refused in the URL (it ends up in logs and shell history), allowed from Python
    merged = {**resolve_options(query, source=where), **resolve_options(options, source=where, allow_literal_secrets=True)}
    policy = {k: merged.pop(k) for k in list(merged) if k in DeliveryPolicy.keys()}
    unknown = sorted(set(merged) - set(known))
    if unknown:
        shown = [k for k in known if k not in ("delivery", "dead_letter", "sleep", "clock", "verify")]
        more = " and the delivery keys" if "delivery" in known else ""
        raise ConfigError(f"unknown TAXII option {unknown[0]!r}; known: {', '.join(shown)}{more} (tls_verify also "
                          f"as verify, taxii2-client's name)", key=unknown[0], source=where)
    if policy:
        if "delivery" not in known:
            raise ConfigError("a TAXII source takes no delivery keys", key=sorted(policy)[0], source=where)
        merged["delivery"] = DeliveryPolicy.from_mapping(policy, base=merged.get("delivery"), source=where)
    for key in numbers:
        if isinstance(merged.get(key), str):
            merged[key] = seconds(merged[key], key, where)
    for key in integers:
        if isinstance(merged.get(key), str):
            value = number(merged[key], key, where)
            if value != int(value) or value < 1:
                raise ConfigError(f"must be a whole number >= 1, got {merged[key]!r}", key=key, source=where)
            merged[key] = int(value)
    for key in booleans:
        if key in merged:
            merged[key] = boolean(merged[key], key, where)
    if isinstance(merged.get("types"), str):
        merged["types"] = [t.strip() for t in merged["types"].split(",") if t.strip()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), merged


class TaxiiSource:
    """A collection as WIA events, incrementally: each poll asks for what was added after the checkpoint."""

    #: options in the URL query or as keywords / config-table keys
    OPTIONS = ("user", "password", "token", "tls_verify", "ca_file", "verify", "page_size", "types", "batch_objects",
               "settle", "timeout")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "TaxiiSource":
        """taxii+https://host/api-root/collections/<id>/?page_size=..&types=indicator,malware&batch_objects=..
        &settle=SECONDS with user/password_env or token_env."""
        target, options = taxii_options(url, options, cls.OPTIONS, numbers=("timeout",),
                                        integers=("page_size", "batch_objects"))
        if "settle" in options:
            parts = urlsplit(target)
            options["settle"] = _settle_seconds(options["settle"], f"taxii+{parts.scheme}://{parts.hostname or ''}")
        return cls(target, **options)

    def __init__(self, collection_url: str, *, user: str | None = None, password: Any = None, token: Any = None,
                 tls_verify: bool | None = None, ca_file: str | None = None, verify: bool | str | None = None,
                 page_size: int = DEFAULT_PAGE_SIZE, types: Sequence[str] | None = None,
                 batch_objects: int = DEFAULT_BATCH_OBJECTS, settle: float = DEFAULT_SETTLE_SECONDS,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.settle = _settle_seconds(settle)
        self._no_manifest = False                # Get Manifest failed once: the settle split uses Get Objects
        self._stored_past = False                # the poll's checkpoint lies past the horizon (poll)
        self._undated: bool | None = None        # pages without date headers: None not met yet, True no manifest either
        self.client = TaxiiClient(collection_url, user=user, password=password, token=token,
                                  verify=_verification(urlsplit(collection_url), tls_verify, ca_file, verify),
                                  timeout=timeout)
        self.collection = self.client.collection(collection_url)
        self.page_size = page_size
        self.batch_objects = batch_objects
        self.types = list(types) if types else None
        self.stix = get_format("stix")

    def poll(self, checkpoint: Checkpoint, *, checkpoint_path: str | None = None,
             lenient: bool = False) -> Iterator[PolledPage]:
        """What was added since `checkpoint`, as events, with the checkpoint to store once they are delivered.

        Objects are gathered over pages and parsed together (an event's objects and the
        relationships between them may straddle a page boundary), in chunks of about `batch_objects`.
        A chunk ends only where the next page starts a later date_added instant: objects added
        together (one event's, posted in one request) are never split between chunks, which would
        read them as several partial events.
        A checkpoint's `added_after` is the newest X-TAXII-Date-Added-Last read; the next poll asks
        from one microsecond before it and skips the `seen` objects of that instant, so an object
        added later with the same date_added is not lost.
        Objects added after the settle cutoff (`_cutoff`) are held: a server may still be adding
        the rest of their request, and what it has listed so far would read as partial events. The
        checkpoint stays before them, so the next poll reads them again, whole by then.
        A checkpoint whose `added_after` lies past the horizon (an earlier version took a stamp in the year 2999 as
        it) is never moved back, and each poll says so in one WARNING with how to reset it (`checkpoint_path`, where
        it is kept, named there)."""
        seen = {tuple(k) for k in checkpoint.seen}
        # The checkpoint's keys: already delivered, at its instant or (objects read from a page straddling the
        # settle cutoff) at later ones. Skipped wherever met; kept in the checkpoints made here until a page
        # read with a known last instant passes them, since this walk's pages fall otherwise than the last one's.
        delivered = set(seen)
        passed: set[tuple[str, str]] = set()
        start = _just_before(checkpoint.added_after) if checkpoint.added_after else None
        newest = checkpoint.added_after
        buffered: dict[tuple[str, str], Any] = {}
        full = False                       # the chunk is big enough: end it where a later instant starts
        clocks: Clocks | None = None       # the settle cutoff and the horizon (set by the first answer)
        tail: list[Page] = []              # from the first page reaching past the cutoff on: held or split
        pages = self.client.pages(self.collection, page_size=self.page_size, added_after=start, type=self.types)
        for page in pages:
            if clocks is None:
                clocks = self._clocks(page)
                if date_behind(clocks):
                    log.warning("%s: %s", self.collection.url, date_behind(clocks))
                self._stored_past = stored_past_horizon(checkpoint.added_after, clocks)
                if self._stored_past:
                    log.warning("%s: %s; %s", self.collection.url, stored_past_warning(str(checkpoint.added_after), clocks),
                                _reset(checkpoint_path))
            else:                          # the horizon of the latest answer: the manifest is asked after the walk
                clocks = moved_on(clocks, self.settle, page.server_date, round_trip=self.client._round_trip())
            if page.items and page.bounds() == (None, None):
                page = self._dated(page)
            # with settle 0 nothing settles, but a stamp ahead of the server's clock is not taken as the checkpoint
            threshold = clocks.cutoff if self.settle else clocks.horizon
            if tail or page.items and _reaches_past(page, threshold):
                tail.append(page)          # pages come in date_added order: every later page is past it too
                continue
            first = page.date_added_first
            if full and buffered and first and newest and first != newest and _later(first, newest) == first:
                yield self._page(buffered, newest, seen | (delivered - passed), lenient=lenient)
                buffered, full = {}, False
            last = page.bounds()[1]
            for obj in page.items:
                key = _key(obj)
                if key in delivered:
                    if last:               # at or before `newest` from here on: in `seen`, or not listed again
                        passed.add(key)
                elif key not in seen:
                    buffered.setdefault(key, obj)
            if last and (newest is None or _later(last, newest) == last and last != newest):
                newest, seen = last, set()
            if last and last == newest:
                # Which objects sit at exactly `newest` is not in the objects envelope, so every
                # key of the page is remembered (a superset is harmless).
                seen |= {_key(o) for o in page.items}
            full = len(buffered) >= self.batch_objects
        held = 0
        if tail and clocks is not None:
            released, held, newest, seen = self._settle_tail(tail, clocks, newest, seen, delivered)
            for key, obj in released.items():
                buffered.setdefault(key, obj)
            # Delivered keys met only past the cutoff stay in the checkpoint (the next walk meets them again);
            # those met nowhere are gone (deleted, or a later version listed instead): `seen` does not grow.
            seen |= {_key(o) for page in tail for o in page.items} & (delivered - passed)
        if held and clocks is not None:
            log.info("%s: %d object(s) added after %s (the last %g s of the server's clock) left for the next poll",
                     self.collection.url, held, _iso(clocks.cutoff), self.settle)
        yield self._page(buffered, newest, seen, held, lenient=lenient)

    def _clocks(self, page: Page) -> Clocks:
        """The settle cutoff, `settle` seconds before the server's clock at the poll's first request (its `Date`
        header less the request's round trip, or, without one, our clock at the answer less the round trip; the
        server stamped the page's latest date_added by its own clock, so its clock reads at least that when the
        stamp is within the horizon: a `Date` header lagging the stamps, e.g. a proxy's clock), and the horizon past
        which a date_added is ahead of the server's clock (wia_security.taxii_settle.measure). The first answer's
        clock, not a later one's: an Add still running while any page was listed began after the cutoff measured at
        the start of the walk (if it takes less than `settle`)."""
        return measure(self.settle, page.server_date, round_trip=self.client._round_trip(), latest=page.bounds()[1])

    def _settle_tail(self, tail: list[Page], clocks: Clocks, newest: str | None, seen: set[tuple[str, str]],
                     delivered: set[tuple[str, str]]) -> tuple[dict[tuple[str, str], Any], int, str | None,
                                                               set[tuple[str, str]]]:
        """The pages reaching past the cutoff (settle 0: past the horizon) -> (objects to read now, how many are
        held, checkpoint newest and seen). Objects sit on a page without their own date_added, so the Get Manifest
        of what was added after the cutoff (asked after the walk: it lists at least every recent object the walk
        saw) tells the objects still settling from those stamped ahead of the server's clock
        (wia_security.taxii_settle.classify). Settling ones are held; when the first of these pages starts at or
        before the cutoff, the rest of that page is read now, and the checkpoint moves only to its first instant,
        with what is read now as `seen`, so the held objects (all later) are asked for again. Objects stamped
        ahead are read (they are data) and the checkpoint moves no further than the cutoff, with them in `seen`:
        taken as the checkpoint, a stamp in the year 2999 would have every object added later, with a true stamp,
        never read."""
        cutoff = clocks.cutoff
        first = tail[0].bounds()[0]
        straddles = first is not None and parse_iso(first) <= cutoff
        # _added_after lists them all (or raises): classify has no None to give here
        settling, ahead_ids = classify(self._added_after, clocks, self.settle) or (set(), set())
        released: dict[tuple[str, str], Any] = {}
        ahead: dict[tuple[str, str], Any] = {}
        held: set[tuple[str, str]] = set()
        for page in tail:
            earliest = page.bounds()[0]
            all_recent = not straddles or earliest is not None and parse_iso(earliest) > cutoff
            for obj in page.items:
                key = _key(obj)
                if key in delivered or key in seen:
                    continue
                oid = obj.get("id") if isinstance(obj, dict) else None
                if isinstance(oid, str) and oid in ahead_ids:
                    ahead.setdefault(key, obj)
                elif self.settle and (all_recent or not isinstance(oid, str) or oid in settling):
                    held.add(key)          # an entry without an id cannot be looked up: it waits for its page
                else:
                    released.setdefault(key, obj)
        if ahead or released and not self.settle:
            if ahead and not self._stored_past:     # stored past the clock: said so instead (poll)
                log.warning("%s: %s", self.collection.url,
                            ahead_warning(len(ahead), tail[-1].bounds()[1] or tail[-1].bounds()[0], clocks))
            released.update(ahead)
            # The checkpoint at the cutoff, not past it (nor back): what is listed again from there is in `seen`.
            at = iso_micro(cutoff)
            if newest is None or at != newest and _later(at, newest) == at:
                newest, seen = at, set()
            return released, len(held), newest, seen | set(released)
        if released:
            # Pages come in date_added order, so `first` is at or after `newest`; a server listing out of
            # order keeps the checkpoint where it was (the released keys in `seen` keep them from coming twice).
            if newest is None or first is not None and first != newest and _later(first, newest) == first:
                newest, seen = first, set()
            seen = seen | set(released)
        return released, len(held), newest, seen

    def _dated(self, page: Page) -> Page:
        """A page without X-TAXII-Date-Added-* headers, placed by the date_added Get Manifest gives its objects. Unplaced,
        its objects never moved the checkpoint nor met the settle window: every poll read the whole collection again
        (each object delivered again at each poll) and an Add still running was read in part. As it was when the
        manifest does not place every object of the page, with a warning."""
        if self._undated is None:
            log.warning("%s: the server sends no X-TAXII-Date-Added-First/-Last headers; each page is placed by the "
                        "date_added of its objects in Get Manifest (one more request a page)", self.collection.url)
            self._undated = False
        wanted = {_key(o) for o in page.items if _well_formed(o)}      # a malformed entry has no id to look up
        if not wanted:
            return page
        dates: dict[tuple[str, Any], str] = {}
        if not self._undated:
            try:
                for chunk in _id_chunks(sorted({oid for oid, _ in wanted})):
                    for entry in self.client.manifest(self.collection, page_size=self.page_size, id=chunk, version="all"):
                        if isinstance(entry, dict) and isinstance(entry.get("date_added"), str):
                            dates[(entry.get("id"), _version_of(entry.get("version")))] = entry["date_added"]
                            dates.setdefault((entry.get("id"), ""), entry["date_added"])    # an object without versions
            except (requests.HTTPError, TAXIIServiceException, TaxiiError) as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                log.warning("%s: Get Manifest failed (%s)", self.collection.url,
                            f"HTTP {status}" if status else type(exc).__name__)
                self._undated = True
        try:
            found = sorted((parse_iso(dates[(oid, _version_of(version))]), dates[(oid, _version_of(version))])
                           for oid, version in wanted)
        except (KeyError, TypeError, ValueError):
            log.warning("%s: %d object(s) the server lists without dates cannot be placed: the checkpoint does not move "
                        "past them and the settle window does not hold them (every poll reads them again)",
                        self.collection.url, len(page.items))
            return page
        return replace(page, date_added_first=found[0][1], date_added_last=found[-1][1])

    def _added_after(self, cutoff: datetime) -> list[Any]:
        """What was added after `cutoff`: Get Manifest entries (with their date_added, no bodies); a server that
        does not serve it (an HTTP error: many leave it out) gets Get Objects with the same filter instead, which
        lists them too."""
        filters: dict[str, Any] = {"page_size": self.page_size, "added_after": _iso(cutoff), "type": self.types}
        if not self._no_manifest:
            try:
                return list(self.client.manifest(self.collection, **filters))
            except (requests.HTTPError, TAXIIServiceException, TaxiiError) as exc:
                self._no_manifest = True               # not asked again by this source
                status = getattr(getattr(exc, "response", None), "status_code", None)
                log.warning("%s: Get Manifest failed (%s); the objects added after the settle cutoff are "
                            "listed with Get Objects instead", self.collection.url,
                            f"HTTP {status}" if status else type(exc).__name__)
        return list(self.client.objects(self.collection, **filters))

    def _page(self, buffered: dict[tuple[str, str], Any], newest: str | None,
              seen: set[tuple[str, str]], held: int = 0, *, lenient: bool = False) -> PolledPage:
        events, rejected = self._parse(list(buffered.values()), lenient=lenient)
        return PolledPage(events, len(buffered), rejected, Checkpoint(newest, sorted([list(k) for k in seen])), held)

    def _parse(self, objects: list[Any], *, lenient: bool = False) -> tuple[list[dict[str, Any]], list[Rejected]]:
        """Events from the objects. What cannot be read is dead-lettered with its objects, never the
        whole chunk: malformed entries one by one, and each event the STIX reader refuses (an
        unmappable pattern, a vulnerability without a CVE id, a malformed object it needs) with the
        objects it is read from (`to_wia_each`), so the chunk's other events are delivered."""
        rejected = [self._reject("not a STIX object: it needs a string `type` and `id`", [o])
                    for o in objects if not _well_formed(o)]
        objects = [o for o in objects if _well_formed(o)]
        if not objects:
            return [], rejected
        events: list[dict[str, Any]] = []
        bundle = {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": objects}
        # lenient: an event restored from the WIA extension may carry null for an absent member, as the
        # forwarder's lenient mode accepts (the reader checks such events; see docs/formats/README.md)
        for outcome in self.stix.to_wia_each(bundle, lenient=lenient):
            if outcome.error is None:
                events += outcome.events
            else:
                rejected.append(self._refused(outcome, objects))
        return events, rejected

    def _refused(self, outcome: Any, objects: list[dict[str, Any]]) -> Rejected:
        """A refused event with the objects it is read from (the whole chunk when the chunk itself was
        refused), its error's pointer re-based into them so it names the object in the record's raw."""
        member = outcome.member["objects"] if isinstance(outcome.member, dict) and outcome.member.get("type") == "bundle" \
            else objects if outcome.member is None else [outcome.member]     # a malformed object alone
        error, path = outcome.error, outcome.error.path
        parts = path.split("/")
        if len(parts) > 2 and parts[1] == "objects" and parts[2].isdigit() and int(parts[2]) < len(objects):
            culprit = objects[int(parts[2])]
            at = next((i for i, o in enumerate(member) if o is culprit), None)
            if at is not None:
                path = "/".join(["", "objects", str(at), *parts[3:]])
        return self._reject(f"stix conversion failed: stix{f' at {path}' if path else ''}: {error.reason}", member)

    def _reject(self, reason: str, objects: list[Any]) -> Rejected:
        ids = [o["id"] for o in objects if _well_formed(o)]
        named = f" object(s) {', '.join(ids[:5])}{f' and {len(ids) - 5} more' if len(ids) > 5 else ''}" if ids else ""
        return Rejected(reason, where=f"taxii:{self.collection.url}{named}",
                        raw=_json_text({"type": "bundle", "objects": objects}).encode("utf-8"))

    def run(self, sink: Any, dead_letter: Any, checkpoint_path: str, *, lenient: bool = False) -> dict[str, Any]:
        """One incremental poll: events -> sink (rejects dead-lettered), checkpoint saved after each page.

        Returns page/object/event totals and, under "summary", the forwarder's ForwardSummary."""
        from wia_security.pipeline import Forwarder
        from wia_security.reader import Item
        with held_exclusively(checkpoint_path, "TAXII poll"):      # one poll per checkpoint
            checkpoint = Checkpoint.load(checkpoint_path)
            checkpoint.check_collection(self.collection.url, checkpoint_path)
            forwarder = Forwarder(sink, dead_letter, lenient=lenient)
            summary = forwarder.summary
            totals = {"pages": 0, "objects": 0, "events": 0, "held": 0}
            for page in self.poll(checkpoint, checkpoint_path=checkpoint_path, lenient=lenient):
                items = [Item(f"taxii:{self.collection.url}", i, e) for i, e in enumerate(page.events)]
                forwarder.run(items)
                for rejected in page.rejected:
                    dead_letter.put(rejected)
                    summary.unparseable += 1
                    summary.dead_lettered += 1
                    summary.reject_reasons[rejected.reason.split(": ", 1)[0]] += 1
                    totals["conversion_errors"] = totals.get("conversion_errors", 0) + 1
                if hasattr(dead_letter, "flush"):
                    dead_letter.flush()
                page.checkpoint.collection = self.collection.url
                page.checkpoint.save(checkpoint_path)      # only after the page was delivered
                totals["pages"] += 1
                totals["objects"] += page.objects
                totals["held"] += page.held
                totals["events"] += len(page.events)
            return {**totals, "summary": summary}

    def close(self) -> None:
        self.collection.close()
