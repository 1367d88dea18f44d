"""Sources the modular input pulls WIA events from, one class each, picked by URL scheme.

A source yields pages: `Page(events, position)`; the caller writes the page's events to Splunk and
then checkpoints `position`. Standard library HTTP only, so the app runs in Splunk's Python with
nothing but the vendored pure-Python core.

- taxii+https://host/api-root/collections/<id>/ : TAXII 2.1 "Get Objects" (section 5.4) with
  `added_after` (exclusive, section 3.4.2) and `limit`; the position is the response's
  X-TAXII-Date-Added-Last header. `stix_content="wia"` (default): the collection holds WIA events
  as wia_security writes them (convert(event, to="stix")), each whole in the WIA property extension
  of its primary object; only those objects are read, each giving its event back exactly, so an
  event whose companion objects fall on another page is still complete, and the companions are
  skipped. `stix_content="stix"`: any STIX; each page is read natively, event by event, with
  the STIX format's to_wia_each (an object the reader cannot use skips only the events that need it;
  relationships split across pages are not joined).
  Objects added within the last `settle` seconds of the server's clock (default 60; 0 reads everything
  listed) are held for a later run, since the server may still be adding the rest of their request
  (wia_security.taxii_settle): the run stops at the first page reaching past that cutoff, reads the
  part of a page straddling it that is older (Get Manifest names the recent ids; Get Objects where the
  server has no manifest) and keeps the position before what it held.
- gateway+https://host : the WIA gateway's arrival-order feed `GET /v1/events?after=<cursor>&limit=N`
  (the first cursor is "0"), answering {"events": [...], "next": <cursor>}; the same cursor comes
  back when nothing is new (docs/connectors/gateway.md).
- kafka://broker:9092[,broker2:9092]/TOPIC (kafka+ssl://, kafka+sasl_ssl://, kafka+sasl:// with
  ?sasl_mechanism=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512, or none: the strongest the broker offers that takes
  the user): messages whose value is one WIA event as JSON (what the project's kafka sink writes), read
  with kafka-python (pure Python, vendored) on manually assigned partitions; the position is the next
  offset of every partition, so no consumer group and no broker-side commit is involved: the checkpoint
  alone says where to resume.

A new input's first position may hold only START_CUTOFF, start_time's cutoff (modinput.py): each source then starts
there, as the XSOAR pack's First fetch time does (the parsing is the core's wia_security.start_time). TAXII asks
`added_after` just before it; Kafka starts each partition at its first message stamped at or after it; the gateway's
feed has no time filter, so its events with a timestamp before it are passed over (counted) while the cursor walks
the feed from "0". The key stays in the position until the source has one of its own (TAXII: a date_added; Kafka:
the start offsets, checkpointed at once; gateway: once the walk reaches the end of the feed).
"""
from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from wia_security import kafka_sasl
from wia_security.kafka_offsets import offsets_out_of_range
from wia_security.start_time import event_before, kafka_start_offsets
from wia_security.taxii_settle import DEFAULT_SETTLE_SECONDS, SettleWindow, instant, iso_micro, just_before, settle_seconds

from . import checkpoint as _checkpoint
from .client_cert import ClientCertificateError, load_client_certificate

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
#: Most pages of Get Manifest a settle split reads (what was added in the last `settle` seconds).
MAX_RECENT_PAGES = 1000
#: In the warning of a TAXII walk that read objects stamped ahead of the server's clock (SettleWindow.ahead_warning).
AHEAD_MARK = "carry a date_added later than the server's clock"
#: In the warning of a TAXII walk whose server's Date header is behind its date_added stamps (SettleWindow.date_warning).
DATE_BEHIND_MARK = "is behind the date_added it lists"
#: In the warning of a TAXII walk from a checkpoint stored past the server's clock (SettleWindow.stored_past).
STORED_PAST_MARK = "the stored position (added_after"
#: Most event ids a TAXII position keeps as read at its instant (`ids_at_added_after`, TaxiiSource.pages): with the
#: checkpoint's 20,000 remembered ids, a checkpoint holds at most 40,000 event ids (about 1.6 MB with UUID ids).
MAX_IDS_AT_INSTANT = 20_000
#: Most bytes of one TAXII or gateway answer (a page). Past it the run ends naming page_size: read whole, a server or
#: proxy sending without end filled the memory of splunkd's host.
MAX_ANSWER_BYTES = 256 * 1024 * 1024
#: Most seconds one answer may take to arrive whole. The socket timeout bounds each read only: a server sending a byte
#: every few seconds held the run, and so the input (Splunk starts no new run while one is going), for ever.
MAX_ANSWER_SECONDS = 300.0
#: Position key of a new input's start_time cutoff (RFC 3339 UTC), until the source has a position of its own.
START_CUTOFF = "start_cutoff"


class SourceError(Exception):
    """Why a source could not be read. `retryable`: the same request may work a little later (a 5xx, 408 or
    429 answer, a refused or timed-out connection); `retry_after`: the seconds the source asked to wait."""

    def __init__(self, reason: str, *, url: str = "", status: int | None = None, retryable: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{reason} ({url}, status {status})" if status else f"{reason} ({url})")
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class Page:
    events: list[dict[str, Any]]
    position: dict[str, Any]
    skipped: list[str] = field(default_factory=list)   # why objects did not become events
    held: int = 0                                       # TAXII objects still settling, left for a later run (the walk's)
    held_more: bool = False                             # more than `held`: later pages held too, not all listed
    repeated: int = 0                                   # TAXII events read before at the position's instant, left out
    before_start: int = 0                               # gateway events stamped before start_time's cutoff, passed over
    #: items that gave no event and that the source will not keep (a Kafka message past its retention): each with
    #: where it was, why, and its content, for the dead-letter log
    unreadable: list[dict[str, Any]] = field(default_factory=list)


class HttpSource:
    scheme = ""

    def __init__(self, url: str, *, secret: str | None = None, username: str | None = None,
                 verify_tls: bool = True, page_size: int = 500, timeout: float = 60.0, stix_content: str = "wia") -> None:
        self.base = url.split("+", 1)[1] if "+" in url.split("://", 1)[0] else url
        self._secret = secret
        self._username = username or None
        self.page_size = page_size
        self.timeout = timeout
        self.stix_content = stix_content
        self._ssl = ssl.create_default_context() if verify_tls else ssl._create_unverified_context()
        self.round_trip = timedelta(0)      # of the last request: sent -> answer's headers read (TAXII settle)

    def __repr__(self) -> str:  # never the secret
        return f"<{type(self).__name__} {_redact(self.base)}>"

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": "wia-security-splunk-app"}
        if self._secret and self._username:
            pair = f"{self._username}:{self._secret}".encode("utf-8")
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif self._secret:
            headers["Authorization"] = f"Bearer {self._secret}"
        return headers

    def _get(self, url: str, accept: str) -> tuple[dict[str, Any], Any]:
        request = urllib.request.Request(url, headers=self._headers(accept))
        try:
            started = time.monotonic()
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._ssl) as response:
                self.round_trip = timedelta(seconds=time.monotonic() - started)
                body = _read_bounded(response, _redact(url), started)
                return json.loads(body.decode("utf-8") or "{}"), response.headers
        except urllib.error.HTTPError as exc:
            retryable = exc.code in (408, 429) or exc.code >= 500
            reason = f"source answered {exc.code} {exc.reason}"
            if exc.code in (401, 403):
                reason = (f"the source refused the credential ({exc.code} {exc.reason}): check the secret in "
                          "storage/passwords named by 'credential' and the 'username'")
            raise SourceError(reason, url=_redact(url), status=exc.code, retryable=retryable,
                              retry_after=_retry_after(exc.headers.get("Retry-After") if exc.headers else None)) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                # the same certificate is refused on every attempt: retrying only delays the run's error
                raise SourceError(f"the source's TLS certificate was refused ({exc.reason.verify_message}). Add the CA that "
                                  "issued it to the trusted CAs of Splunk's Python (SSL_CERT_FILE) and use a host name the "
                                  "certificate names, or set verify_tls = false (not secure)", url=_redact(url)) from None
            raise SourceError(f"cannot reach source: {exc.reason}", url=_redact(url), retryable=True) from None
        except (OSError, http.client.HTTPException) as exc:
            # after the request went out (urllib wraps only failures before): no answer, a reset, a read timeout
            raise SourceError(f"the source did not answer: {type(exc).__name__}: {exc}", url=_redact(url),
                              retryable=True) from None
        except (ValueError, RecursionError) as exc:
            raise SourceError(f"source sent invalid JSON: {exc}", url=_redact(url)) from None

    def _get_object(self, url: str, accept: str, listing: str) -> tuple[dict[str, Any], Any, list[Any]]:
        """A JSON object answer and its `listing` array (missing = empty); anything else is a SourceError,
        so the run stops at the last checkpoint instead of skipping what it could not read."""
        body, headers = self._get(url, accept)
        items = body.get(listing) if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(items, (list, type(None))):
            raise SourceError(f"source answered {type(body).__name__ if not isinstance(body, dict) else 'an object'} "
                              f"without a {listing!r} array", url=_redact(url))
        return body, headers, items or []

    def pages(self, position: dict[str, Any]) -> Iterator[Page]:  # pragma: no cover - abstract
        raise NotImplementedError

    def position_problem(self, position: dict[str, Any]) -> str | None:
        """Why a checkpointed position cannot be read by this source (a value edited by hand, another source's), or
        None. Checked before the first request: read on, such a value ended every run with a traceback."""
        return _cutoff_problem(position)


class TaxiiSource(HttpSource):
    scheme = "taxii"

    def __init__(self, url: str, *, settle: float = DEFAULT_SETTLE_SECONDS, **options: Any) -> None:
        super().__init__(url, **options)
        try:
            self.settle = settle_seconds(settle)
        except ValueError as exc:
            raise SourceError(f"settle {exc}", url=_redact(url)) from None
        self._no_manifest = False           # Get Manifest failed once: the settle split uses Get Objects
        self.notes: list[str] = []          # logged once at the end of the run
        self.warnings: list[str] = []       # logged once at the end of the run, as WARNING
        #: the checkpoint file the position is kept in (set by the modular input), named in how to reset it
        self.checkpoint_file: str | None = None

    def pages(self, position: dict[str, Any]) -> Iterator[Page]:
        """TAXII 2.1 Get Objects (section 5.4). Within a run, pages follow the server's `next` token
        (objects added in one request share one date_added, so added_after alone cannot page through
        them); across runs, the checkpoint is the last page's date_added, stepped back 1 microsecond
        because added_after is exclusive (section 3.4.2): objects of that instant are read again. The
        position keeps the ids of the events read at its instant (`ids_at_added_after`, all of them while it
        stays there, up to MAX_IDS_AT_INSTANT) and those are not handed over again; the caller skips the
        others it already emitted by the checkpoint's remembered ids. Those alone forgot the first events of
        an instant holding more than they keep (one Add of many objects shares one date_added), which then
        looked new, filled max_events, and no run got past the instant. Objects still settling end the run,
        the position kept before them (the module's docstring)."""
        from wia_security import Event
        from wia_security.formats import get_format

        stix = get_format("stix")
        objects_url = self.base.rstrip("/") + "/objects/"
        after = position.get("added_after")
        # A page of at most half the checkpoint's remembered event ids: after a split, what was read of the page
        # comes again (from its first date_added) and must still be remembered to be skipped (an object can make
        # more than one event); a bigger page_size had the ids read first forgotten, indexed again every run.
        params = {"limit": str(min(self.page_size, _checkpoint.RECENT_IDS // 2))}
        cutoff = instant(position.get(START_CUTOFF))
        # a new input with start_time: what was added from its cutoff on (the key goes with the first date_added kept)
        start = _step_back(after) if after else just_before(iso_micro(cutoff)) if cutoff else None
        if start:
            params["added_after"] = start
        window = SettleWindow(self.settle)
        kept = dict(position)               # the position of the last page handed over
        read_at_start = set(_ids_at(position))
        capped_at = None
        next_token = None
        while True:
            query = dict(params, next=next_token) if next_token else params
            body, headers, objects = self._get_object(f"{objects_url}?{urllib.parse.urlencode(query)}", TAXII_MEDIA_TYPE,
                                                      "objects")
            # A one-object page may carry only X-TAXII-Date-Added-First (medallion does so).
            last = headers.get("X-TAXII-Date-Added-Last") or headers.get("X-TAXII-Date-Added-First") or after
            try:
                if last:
                    _step_back(last)
            except (ValueError, OverflowError):
                # Checkpointed, it would fail every later run; the page is not indexed, the run stops here.
                raise SourceError(f"the TAXII server's X-TAXII-Date-Added-Last {last[:40]!r} is not a timestamp",
                                  url=_redact(objects_url)) from None
            settled = window.page(objects, headers.get("X-TAXII-Date-Added-First"),
                                  headers.get("X-TAXII-Date-Added-Last"), date_header=headers.get("Date"),
                                  round_trip=self.round_trip, recent=self._added_after)
            objects = settled.objects
            stored_past = window.stored_past(after)
            # what follows a done page is still settling: the position stays before it (None: where it was); objects
            # stamped ahead of the server's clock were read: it stays at the cutoff (capped). A checkpoint stored past
            # the server's clock stays where it is: moved back to the cutoff, it would skip, unsaid, all added since.
            moved_to = None if stored_past else settled.position if settled.done or settled.capped else last
            events: list[dict[str, Any]] = []
            skipped = [f"STIX object #{i} added up to {last}: a JSON {type(o).__name__}, not an object"
                       for i, o in enumerate(objects) if not isinstance(o, dict)]
            for chunk in self._readable([o for o in objects if isinstance(o, dict)]):
                try:
                    # event by event: an object the reader cannot use refuses only the events that need
                    # it (each reported with its JSON pointer), the page's other events are indexed
                    for outcome in stix.to_wia_each(chunk):
                        if outcome.error is None:
                            events += [Event.from_dict(e).to_dict() for e in outcome.events]
                        else:
                            skipped.append(f"STIX objects added up to {last}: {outcome.error}")
                except Exception as exc:  # a converter error names the object; keep going with the rest
                    skipped.append(f"STIX objects added up to {last}: {exc}")
            if moved_to:
                kept, capped = _position_at(kept, moved_to, [str(e["id"]) for e in events if e.get("id")])
                capped_at = moved_to if capped else capped_at
            # before the yield: the caller may stop the walk there
            if capped_at and not any("event ids added at" in w for w in self.warnings):
                self.warnings.append(f"the TAXII collection holds more than {MAX_IDS_AT_INSTANT} event ids added at "
                                     f"{capped_at[:40]}; the checkpoint keeps the first {MAX_IDS_AT_INSTANT} read there "
                                     f"and the last {_checkpoint.RECENT_IDS} read anywhere, so later runs may index "
                                     "others added then again")
            # before the yield too: the walk's so far, the last attempt's once. Stored past the clock, the objects
            # stamped ahead are those it was taken from, and the position does not stay at the cutoff: not said.
            stuck = stored_past and f"{stored_past}; {self._reset()}"
            for mark, warning in ((STORED_PAST_MARK, stuck), (AHEAD_MARK, not stuck and window.ahead_warning()),
                                  (DATE_BEHIND_MARK, window.date_warning())):
                if warning:
                    self.warnings[:] = [w for w in self.warnings if mark not in w] + [warning]
            fresh = [e for e in events if str(e.get("id") or "") not in read_at_start]
            # the walk's held objects in all (Get Manifest lists those of later pages); this page's where it cannot
            held = len(settled.held) if settled.held_in_all is None else settled.held_in_all
            yield Page(fresh, dict(kept), skipped, held, held_more=settled.held_in_all is None and bool(body.get("more")),
                       repeated=len(events) - len(fresh))
            next_token = body.get("next")
            if settled.done or not body.get("more") or not objects or not next_token:
                return

    def position_problem(self, position: dict[str, Any]) -> str | None:
        after = position.get("added_after")
        if after:
            try:
                if not isinstance(after, str):
                    raise ValueError
                _step_back(after)
            except (ValueError, OverflowError):
                return f"\"added_after\" is {str(after)[:60]!r}, not an RFC 3339 date-time such as 2026-01-31T12:00:00Z"
        return _cutoff_problem(position)

    def _reset(self) -> str:
        """How to move a checkpoint stored past the server's clock back by hand (the Checkpoint file's format)."""
        where = self.checkpoint_file or "the input's checkpoint file in $SPLUNK_HOME/var/lib/splunk/modinputs/wia_events/"
        return (f"to resume, disable the input, set \"added_after\" under \"position\" in {where} to an instant before "
                "the first object it missed (e.g. when it last indexed an event with a true stamp: events read before "
                "are skipped by the event ids the file remembers) and enable the input again; deleting the file reads "
                "the whole collection again")

    def _added_after(self, cutoff: datetime) -> list[Any] | None:
        """The Get Manifest entries of what was added after `cutoff` (the ids to hold of a page straddling it),
        every page of them; a server failing Get Manifest (an HTTP error: many do not serve it; or an answer
        that is no TAXII envelope, e.g. a front end's HTML page) gets Get Objects with the same filter instead,
        which lists them too. None when the server says more follow without a `next` token: they cannot all be
        listed, so the whole page waits."""
        entries: list[Any] = []
        for endpoint in ("objects",) if self._no_manifest else ("manifest", "objects"):
            url = f"{self.base.rstrip('/')}/{endpoint}/"
            params = {"limit": str(self.page_size), "added_after": iso_micro(cutoff)}
            try:
                for _ in range(MAX_RECENT_PAGES):
                    body, _, listed = self._get_object(f"{url}?{urllib.parse.urlencode(params)}", TAXII_MEDIA_TYPE,
                                                       "objects")
                    entries += listed
                    if not body.get("more") or not listed:
                        return entries
                    if not body.get("next"):
                        return None
                    params["next"] = str(body["next"])
                return None                 # a `next` that never ends: they cannot all be listed
            except SourceError as exc:
                # Whatever Get Manifest answers, Get Objects can list the same ids: raising would end every run
                # that meets a straddling page, and a collection added to all the time always has one.
                if endpoint != "manifest":
                    raise
                self._no_manifest = True    # not asked again by this source
                self.notes.append(f"Get Manifest failed ({str(exc)[:200]}); the objects added after the settle "
                                  "cutoff are listed with Get Objects instead")
                entries = []
        return entries

    def _readable(self, objects: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """The groups of objects to parse: each WIA-extension carrier alone, or the whole page."""
        from wia_security.formats.stix import WIA_EXTENSION

        if self.stix_content == "stix":
            return [objects] if objects else []
        return [[o] for o in objects if WIA_EXTENSION in (o.get("extensions") or {})]


class GatewaySource(HttpSource):
    scheme = "gateway"
    #: Past the cursor the feed serves an id already served only as a newer version of it (the gateway's store
    #: gives a newer version a new position): a bare id an earlier checkpoint remembers does not hide it.
    serves_an_id_again_only_when_newer = True

    def position_problem(self, position: dict[str, Any]) -> str | None:
        cursor = position.get("cursor")
        if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, (str, int))):
            return f"\"cursor\" is {str(cursor)[:60]!r}, not a gateway feed's cursor (a string)"
        return _cutoff_problem(position)

    def pages(self, position: dict[str, Any]) -> Iterator[Page]:
        cursor = position.get("cursor") or "0"
        cutoff = instant(position.get(START_CUTOFF))
        while True:
            params = {"after": cursor, "limit": str(self.page_size)}
            body, _, events = self._get_object(f"{self.base.rstrip('/')}/v1/events?{urllib.parse.urlencode(params)}",
                                               "application/json", "events")
            next_cursor = body.get("next") or cursor
            end = not events or next_cursor == cursor
            moved = {"cursor": next_cursor}
            before_start = 0
            if cutoff is not None:
                # the feed has no time filter: a new input's first walk passes over what happened before start_time;
                # once it reaches the end, later arrivals are indexed whatever their timestamp (a late batch)
                kept = [event for event in events if not event_before(event, cutoff)]
                before_start, events = len(events) - len(kept), kept
                if not end:
                    moved[START_CUTOFF] = position[START_CUTOFF]
            yield Page(events, moved, before_start=before_start)
            if end:
                return
            cursor = next_cursor


class KafkaSource:
    scheme = "kafka"
    #: A poll that brings nothing this many times in a row ends the run (the topic is drained).
    IDLE_POLLS = 2
    POLL_MS = 1000
    #: Seconds the pre-flight connection to one bootstrap broker may take (TCP connect and TLS handshake).
    CONNECT_TIMEOUT = 10.0
    _PROTOCOLS = {"kafka": "PLAINTEXT", "kafka+ssl": "SSL", "kafka+sasl": "SASL_PLAINTEXT", "kafka+sasl_ssl": "SASL_SSL"}

    def __init__(self, url: str, *, secret: str | None = None, username: str | None = None, verify_tls: bool = True,
                 page_size: int = 500, timeout: float = 60.0, stix_content: str = "wia",
                 client_certificate: str | None = None, client_key_passphrase: str | None = None,
                 client_certificate_credential: str = "", client_key_passphrase_credential: str | None = None) -> None:
        scheme, parts = _split(url)
        if scheme not in self._PROTOCOLS:
            raise SourceError(f"use one of {', '.join(s + '://' for s in self._PROTOCOLS)}", url=_redact(url))
        self.brokers = [b for b in parts.netloc.split(",") if b]
        self.topic = urllib.parse.unquote(parts.path.strip("/"))
        if not self.brokers or not self.topic or parts.username or parts.password:
            raise SourceError("expected kafka://host:port[,host:port]/TOPIC (credentials go in 'credential')", url=_redact(url))
        query = dict(urllib.parse.parse_qsl(parts.query))
        # auto_offset_reset: where kafka-python goes from an offset the broker does not hold that the check of
        # _offsets_in_range did not see (retention deleting between the two): its default, "latest", skipped all the
        # partition held
        self.config: dict[str, Any] = {"bootstrap_servers": self.brokers, "security_protocol": self._PROTOCOLS[scheme],
                                       "enable_auto_commit": False, "group_id": None, "request_timeout_ms": int(timeout * 1000) + 5000,
                                       "client_id": "wia-security-splunk-app", "auto_offset_reset": "earliest"}
        self._tls: ssl.SSLContext | None = None
        if "ssl" in scheme:
            # one context for the pre-flight handshake and for kafka-python, so both judge the broker alike
            self._tls = self._tls_context(verify_tls)
            if client_certificate is not None:
                # mutual TLS: loaded before any connection, so a bad key or passphrase fails here, at once
                try:
                    load_client_certificate(self._tls, client_certificate, client_key_passphrase,
                                            credential=client_certificate_credential,
                                            passphrase_credential=client_key_passphrase_credential)
                except ClientCertificateError as exc:
                    raise SourceError(str(exc), url=_redact(url)) from None
            self.config["ssl_context"] = self._tls      # kafka-python then ignores ssl_check_hostname
        elif client_certificate is not None:
            raise SourceError("a client certificate is presented over TLS only: use kafka+ssl:// or kafka+sasl_ssl://",
                              url=_redact(url))
        self._client_certificate_credential = client_certificate_credential if client_certificate is not None else None
        #: the configured SASL mechanism; None: the strongest the broker offers, chosen by the pre-flight login
        self.sasl_mechanism: str | None = query.get("sasl_mechanism") or None
        #: lines for splunkd.log: the SASL mechanism the pre-flight chose, and why (INFO); PLAIN used without TLS that
        #: verifies the broker, or assumed because the pre-flight could not ask (WARNING)
        self.notes: list[str] = []
        self.warnings: list[str] = []
        #: a checkpointed offset the broker no longer holds, moved to the partition's first (_offsets_in_range): kept
        #: across the run's attempts (the pre-flight starts notes and warnings again), as WARNING (a recreated topic)
        #: and ERROR (messages deleted by retention before the input read them) lines
        self.offset_warnings: list[str] = []
        self.errors: list[str] = []
        if "sasl" in scheme:
            # None until the pre-flight settles it (_check_reachable): kafka-python never starts without one
            self.config.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=username,
                               sasl_plain_password=secret)
        self.page_size = page_size
        self._where = f"{scheme}://{','.join(self.brokers)}/{self.topic}"

    def __repr__(self) -> str:
        return f"<KafkaSource {self._where}>"

    @staticmethod
    def _tls_context(verify_tls: bool) -> ssl.SSLContext:
        """verify_tls: the broker's certificate checked against Python's trusted CAs (OpenSSL's default
        paths, which honour SSL_CERT_FILE / SSL_CERT_DIR) and its host name; off: neither (not secure)."""
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2      # kafka-python's own floor
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _check_reachable(self) -> None:
        """Connects to the bootstrap brokers (a TLS handshake for kafka+ssl/kafka+sasl_ssl) until one answers a
        Kafka ApiVersions request (and, with SASL, the login: wia_security.kafka_sasl).

        kafka-python only logs why a connection failed and, 30 s later, raises "Unable to bootstrap"
        without the reason; so a refused certificate, brokers nobody can reach, a kafka:// URL for a TLS
        listener, a SASL mechanism the broker does not offer and a refused password are reported here at once,
        with why. Only the bootstrap connection is checked: the brokers it advertises are kafka-python's. Without
        ?sasl_mechanism= the login chooses the strongest mechanism the broker offers, and kafka-python gets it."""
        failures: list[str] = []
        refused = False
        found = kafka_sasl.TlsFindings()       # servers reached that gave no Kafka answer over TLS: what happened
        unasked: str | None                    # why the check could not finish, if it could not
        self.notes, self.warnings = [], []
        for server in self.brokers:
            try:
                host, port = kafka_sasl.broker_address(server)
                raw = socket.create_connection((host, port), timeout=self.CONNECT_TIMEOUT)
            except (OSError, ValueError) as exc:           # refused, timed out, no such host, a port that is no number
                failures.append(f"{server}: {exc}")
                continue
            with raw:
                if self._tls is None:
                    try:
                        unasked = self._probe_plain(raw, server, host, port)
                    except OSError as exc:     # e.g. the login's second connection refused
                        failures.append(f"{server}: {exc}")
                        continue
                    self._settle_mechanism(server, unasked)
                    return
                try:
                    # a plaintext Kafka listener is named when it does not answer the hello in a second, or cuts it off
                    tls = kafka_sasl.tls_handshake(raw, self._tls, host, port, CLIENT_ID)
                except kafka_sasl.PlainKafkaListener:
                    found.plain_kafka = found.plain_kafka or server
                    continue
                except ssl.SSLCertVerificationError as exc:
                    refused = True
                    failures.append(f"{server}: {exc.verify_message}")
                    continue
                except ssl.SSLError as exc:    # an alert (a refused client certificate under TLS 1.2), a plain listener
                    found.handshake_failed(server, exc)
                    continue
                except OSError as exc:         # a plain Kafka listener waits for a request: a timeout
                    found.handshake_unanswered(server, exc, self.CONNECT_TIMEOUT)
                    continue
                unasked = None
                with tls:
                    try:
                        # under TLS 1.3 a broker judges the client's certificate after the client's side of the
                        # handshake: its refusal comes as the first request's answer
                        versions = kafka_sasl.api_versions(tls, CLIENT_ID)
                    except TimeoutError as exc:
                        unasked = str(exc) or "no answer in time"   # kafka-python judges a slow answer, as before
                    except (kafka_sasl.NotKafka, OSError) as exc:
                        found.no_kafka_answer(server, exc, tls)
                        continue
                    else:
                        try:
                            self._log_in(tls, server, host, port, versions)
                        except (OSError, kafka_sasl.NotKafka) as exc:
                            # a Kafka broker that gave no login answer the check can read: kafka-python's own login
                            # decides, with the mechanism configured or _settle_mechanism's
                            unasked = str(exc) or "no answer in time"
                self._settle_mechanism(server, unasked)
                return
        reasons = "; ".join(failures)
        if refused:
            raise SourceError(f"the Kafka broker's TLS certificate was refused ({reasons}). Add the CA that issued it to "
                              "the trusted CAs of Splunk's Python (SSL_CERT_FILE) and use a broker address the "
                              "certificate names, or set verify_tls = false (not secure)", url=self._where)
        if found.plain_kafka:
            scheme = self._where.split("://", 1)[0]
            plain = "kafka+sasl://" if "SASL" in self.config["security_protocol"] else "kafka://"
            raise SourceError(f"the Kafka broker {found.plain_kafka} answered a Kafka request sent without TLS, and not "
                              f"the TLS handshake: this is a plaintext Kafka listener. Use the port of the brokers' "
                              f"TLS listener, or {plain} to read this one without TLS (source_url starts with "
                              f"{scheme}://)", url=self._where)
        remedy = ("client_certificate_credential naming a secret in storage/passwords (realm wia_security) with a "
                  "certificate issued by a CA the broker trusts and its private key")
        if found.client_refused:
            given = (f"the client certificate given (client_certificate_credential {self._client_certificate_credential!r}) "
                     "was not accepted" if self._client_certificate_credential else "no client certificate was given")
            raise SourceError(f"the Kafka broker refused the TLS connection ({found.client_refused}): {given}. A "
                              f"broker that demands client certificates (mutual TLS) needs {remedy}", url=self._where)
        if found.closed:
            why = (f"a broker that does not accept the client certificate given (client_certificate_credential "
                   f"{self._client_certificate_credential!r}) may end the connection so (mutual TLS): it needs a "
                   "certificate issued by a CA the broker trusts" if self._client_certificate_credential else
                   "no client certificate was given, and a broker that demands one (mutual TLS) may end the connection "
                   f"so: it needs {remedy}")
            raise SourceError(f"the Kafka broker closed the TLS connection after the handshake without answering "
                              f"({found.closed}): {why}. Otherwise check that source_url names the brokers' Kafka TLS "
                              "listener", url=self._where)
        if found.failures:
            raise SourceError(f"the Kafka brokers could not be reached over TLS ({'; '.join(found.failures + found.no_handshake + failures)}). "
                              "Check that source_url names the brokers' Kafka TLS listener (host and port)",
                              url=self._where)
        if found.no_handshake:
            raise SourceError(f"the TLS handshake with the Kafka brokers failed ({'; '.join(found.no_handshake + failures)}); "
                              "is the listener TLS (kafka+ssl://) or plain (kafka://)?", url=self._where)
        raise SourceError(f"cannot reach any Kafka bootstrap broker ({reasons})", url=self._where, retryable=True)

    def _probe_plain(self, sock: socket.socket, server: str, host: str, port: int) -> str | None:
        """ApiVersions (and the SASL login) on a plain connection. A TLS listener answers a Kafka request with a
        TLS alert or just closes (a reset); a second connection then completes a TLS handshake (nothing verified:
        this only tells the protocol). An answer that is neither is left to kafka-python. Returns why the check
        could not finish (a slow answer, one that is not Kafka), None when it did."""
        try:
            self._probe_kafka(sock, server, host, port)
        except TimeoutError as exc:
            return str(exc) or "no answer in time"         # a slow answer: kafka-python waits longer
        except kafka_sasl.NotKafka as exc:
            if _speaks_tls(host, port, self.CONNECT_TIMEOUT):
                tls_scheme = "kafka+sasl_ssl://" if "sasl" in self.config["security_protocol"].lower() else "kafka+ssl://"
                raise SourceError(f"the Kafka broker {server} answered with TLS: this is a TLS listener, use "
                                  f"{tls_scheme} (source_url starts with {self._where.split('://', 1)[0]}://)",
                                  url=self._where) from None
            return str(exc)
        return None

    def _settle_mechanism(self, server: str, unasked: str | None) -> None:
        """kafka-python's SASL mechanism when the pre-flight login could not choose one (`unasked`: why) and none is
        configured. Over TLS that verifies the broker, UNDISCOVERED_SASL_MECHANISM (PLAIN, the app's default
        before discovery), with a warning; elsewhere PLAIN would go to whatever is on the path, so the run ends
        asking for ?sasl_mechanism= (or a connection the check can finish on)."""
        if "SASL" not in self.config["security_protocol"] or self.config.get("sasl_mechanism"):
            return
        why = unasked or "no login was made"
        if kafka_sasl.verifies_broker(self._tls):
            self.config["sasl_mechanism"] = UNDISCOVERED_SASL_MECHANISM
            self.warnings.append(f"no SASL mechanism configured and the pre-flight check could not ask the Kafka broker "
                                 f"{server} ({why}): using {UNDISCOVERED_SASL_MECHANISM} over TLS that verifies the "
                                 f"broker; add ?sasl_mechanism= to source_url to choose")
            return
        raise SourceError(f"no SASL mechanism configured and the pre-flight check could not ask the Kafka broker "
                          f"{server} which to use ({why}); {kafka_sasl.plain_withheld_reason(self._tls)}, so it is "
                          f"not assumed: add ?sasl_mechanism=SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN to source_url (the "
                          f"one the broker is configured for), or check that {server} is a Kafka listener answering "
                          f"in time", url=self._where)

    def _connect(self, host: str, port: int) -> socket.socket:
        """Another connection to the broker that answered (the login tries the next mechanism on one)."""
        raw = socket.create_connection((host, port), timeout=self.CONNECT_TIMEOUT)
        if self._tls is None:
            return raw
        try:
            return self._tls.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise

    def _probe_kafka(self, sock: socket.socket, server: str, host: str, port: int) -> None:
        """One ApiVersions v0 exchange, then the login (_log_in)."""
        self._log_in(sock, server, host, port, kafka_sasl.api_versions(sock, CLIENT_ID))

    def _log_in(self, sock: socket.socket, server: str, host: str, port: int, versions: bytes) -> None:
        """With SASL, the login after the ApiVersions answer `versions` (wia_security.kafka_sasl.log_in): a mechanism
        the broker does not offer, a refused login and a broker that fails SCRAM's server signature are SourceErrors
        naming the broker, the user and the mechanism; never the password. kafka-python then uses the mechanism that
        logged in (without ?sasl_mechanism=, the strongest the broker offers that takes the user)."""
        if "SASL" not in self.config["security_protocol"]:
            return
        try:
            login = kafka_sasl.log_in(sock, server, versions=versions, mechanism=self.sasl_mechanism,
                                      username=self.config.get("sasl_plain_username") or "",
                                      password=self.config.get("sasl_plain_password") or "", client_id=CLIENT_ID,
                                      reconnect=lambda: self._connect(host, port),
                                      choices=kafka_sasl.discovery_choices(self._tls))
        except kafka_sasl.PlainWithheld as exc:
            # PLAIN listed alone where discovery may not pick it (kafka_sasl.discovery_choices): nothing was sent
            remedy = ("use kafka+sasl_ssl:// to a TLS listener" if self._tls is None else
                      "set verify_tls = true (the broker's certificate trusted by Splunk's Python, SSL_CERT_FILE)")
            raise SourceError(f"SASL login not attempted: the Kafka broker {server} lists {', '.join(exc.offered)} and "
                              f"{kafka_sasl.plain_withheld_reason(self._tls)}, so PLAIN is not chosen when no mechanism "
                              f"is configured. Add ?sasl_mechanism=PLAIN to source_url to log in with PLAIN anyway, "
                              f"or {remedy}", url=self._where) from None
        except kafka_sasl.MechanismNotOffered as exc:
            raise SourceError(f"SASL login refused: {exc.describe()}; set ?sasl_mechanism= in source_url to one the "
                              "broker is configured for", url=self._where) from None
        except kafka_sasl.LoginRefused as exc:
            raise SourceError(f"SASL login refused: {exc.describe()}; check the username and the password stored under "
                              "'credential', and ?sasl_mechanism= in source_url", url=self._where) from None
        except kafka_sasl.SaslError as exc:
            raise SourceError(exc.describe(), url=self._where) from None
        self.config["sasl_mechanism"] = login.mechanism
        if login.discovered:
            self.notes.append(login.describe(server, tls=self._tls is not None))
        elif login.mechanism == "PLAIN" and kafka_sasl.plain_warning(self._tls):
            self.warnings.append(f"the Kafka broker {server}: {kafka_sasl.plain_warning(self._tls)}")

    def _kafka_python_config(self) -> dict[str, Any]:
        """self.config as kafka-python gets it. With SCRAM the user name is given in the form kafka-python must have
        for the broker to read it (kafka_sasl.scram_username_for): kafka-python 3.0 sends ',' and '=' unescaped, so
        the pre-flight logged in and kafka-python's login was refused until its 30 s "Unable to bootstrap". PLAIN
        sends the name as it is. A name kafka-python cannot send right is refused here, before kafka-python starts."""
        config = dict(self.config)
        if str(config.get("sasl_mechanism") or "").startswith("SCRAM-"):
            username = config.get("sasl_plain_username") or ""
            sent = kafka_sasl.scram_username_for(username, _kafka_python_scram_first)
            if sent is None:
                raise SourceError(f"the Kafka user in 'username' ({username!r}) contains ',' or '=', which SCRAM sends "
                                  "as =2C and =3D (RFC 5802), and the bundled kafka-python's SCRAM client was not "
                                  "found to send them so: the broker would refuse its login. Use a Kafka user without "
                                  "',' and '=' (or ?sasl_mechanism=PLAIN over TLS, if the broker offers it)",
                                  url=self._where)
            config["sasl_plain_username"] = sent
        return config

    class _LastConnectionError(logging.Handler):
        """The last connection failure kafka-python logged. It logs why a connection failed (a SASL error, a
        dropped connection) only to its own logger, which has a NullHandler and never reaches splunkd.log,
        and then raises "Unable to bootstrap" alone; the run's error carries this reason too."""

        _BACKOFF = re.compile(r" \(backoff [0-9.]+ secs\)$")

        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.last: str | None = None

        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if " failed: " in message and "Unable to bootstrap" not in message:   # not the timeout that follows
                self.last = self._BACKOFF.sub("", message)[:300]

        def told(self) -> str:
            return f"; kafka-python's last connection error: {self.last}" if self.last else ""

    def pages(self, position: dict[str, Any]) -> Iterator[Page]:
        self._check_reachable()
        try:
            from kafka import KafkaConsumer, TopicPartition
            from kafka.errors import KafkaError
        except ImportError as exc:  # pragma: no cover - vendored in bin/lib
            raise SourceError(f"kafka-python is not available: {exc}", url=self._where) from None
        offsets: dict[str, int] = {str(k): int(v) for k, v in (position.get("offsets") or {}).items()}
        cutoff = instant(position.get(START_CUTOFF))
        config = self._kafka_python_config()
        last_error = self._LastConnectionError()
        kafka_log = logging.getLogger("kafka")
        kafka_log.addHandler(last_error)
        try:
            consumer = KafkaConsumer(**config)
        except KafkaError as exc:
            kafka_log.removeHandler(last_error)
            # not retried within the run: kafka-python's bootstrap has just retried for 30 s itself
            raise SourceError(f"cannot reach the Kafka brokers: {exc}{last_error.told()}", url=self._where) from None
        try:
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise SourceError(f"topic {self.topic!r} does not exist or has no partitions", url=self._where)
            assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            moved = self._offsets_in_range(consumer, [tp for tp in assigned if str(tp.partition) in offsets], offsets)
            if moved:
                offsets.update(moved)
                yield Page([], {"offsets": dict(offsets)})      # checkpointed at once: said once
            if cutoff is not None:
                # a new input with start_time: each partition from its first message stamped at or after the cutoff,
                # checkpointed at once (an empty page) whether a message is read there or not
                offsets.update(self._start_offsets(consumer, [tp for tp in assigned if str(tp.partition) not in offsets],
                                                   cutoff))
                yield Page([], {"offsets": dict(offsets)})
            for tp in assigned:
                if str(tp.partition) in offsets:
                    consumer.seek(tp, offsets[str(tp.partition)])
                else:
                    consumer.seek_to_beginning(tp)
            idle = 0
            while idle < self.IDLE_POLLS:
                batch = consumer.poll(timeout_ms=self.POLL_MS, max_records=self.page_size)
                if not batch:
                    idle += 1
                    continue
                idle = 0
                events: list[dict[str, Any]] = []
                skipped: list[str] = []
                unreadable: list[dict[str, Any]] = []
                for tp, records in sorted(batch.items(), key=lambda item: item[0].partition):
                    for record in records:
                        try:
                            if record.value is None:     # a tombstone (null value) of a compacted topic
                                raise ValueError("no value (a tombstone)")
                            value = json.loads(record.value.decode("utf-8"))
                            if not isinstance(value, dict):
                                raise ValueError(f"a JSON {type(value).__name__}, not an object")
                            events.append(value)
                        except (ValueError, RecursionError) as exc:
                            where = f"{self.topic}/{tp.partition}@{record.offset}"
                            skipped.append(f"{where}: not a WIA event: {exc}")
                            if record.value is not None:     # a tombstone holds nothing to keep
                                unreadable.append({"reason": f"not a WIA event: {exc}", "where": where,
                                                   **_message_value(record.value)})
                        offsets[str(tp.partition)] = record.offset + 1
                yield Page(events, {"offsets": dict(offsets)}, skipped, unreadable=unreadable)
        except KafkaError as exc:
            raise SourceError(f"Kafka: {exc}{last_error.told()}", url=self._where, retryable=True) from None
        finally:
            consumer.close()
            kafka_log.removeHandler(last_error)

    def position_problem(self, position: dict[str, Any]) -> str | None:
        offsets = position.get("offsets")
        if offsets is not None and not (isinstance(offsets, dict) and all(
                str(k).isdigit() and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in offsets.items())):
            return (f"\"offsets\" is {str(offsets)[:60]!r}, not partition numbers with the next offset of each "
                    "(such as {\"0\": 42})")
        return _cutoff_problem(position)

    def _offsets_in_range(self, consumer: Any, partitions: list[Any], offsets: dict[str, int]) -> dict[str, int]:
        """The checkpoint's offsets of `partitions` the broker does not hold (wia_security.kafka_offsets), each moved
        to the partition's first offset and said: past the end, the topic was deleted and created again (or emptied),
        and what it holds now is new; before the first offset, the broker deleted messages (retention) before the
        input read them. A broker that cannot list offsets leaves them to kafka-python's reset, "earliest" here."""
        from kafka.errors import KafkaError
        try:
            moves = offsets_out_of_range(consumer, partitions, offsets)
        except KafkaError:
            return {}
        for move in moves:
            where = f"Kafka {move.topic}/{move.partition}"
            if move.recreated:
                self.offset_warnings.append(
                    f"{where}: the checkpoint's offset {move.stored} is past the partition's end {move.end} (the topic "
                    f"was deleted and created again, or emptied): reading it from its first offset {move.start}")
            else:
                self.errors.append(
                    f"{where}: messages {move.stored} to {move.start - 1} were deleted by the broker (retention) before "
                    f"the input read them; reading from the oldest left, offset {move.start}. Run the input more often "
                    "(interval), raise max_events, or raise the topic's retention")
        return {move.partition: move.start for move in moves}

    def _start_offsets(self, consumer: Any, partitions: list[Any], since: datetime) -> dict[str, int]:
        """Where a new input starts reading with a start_time (wia_security.start_time.kafka_start_offsets)."""
        from kafka.errors import KafkaError
        try:
            return kafka_start_offsets(consumer, partitions, since)
        except KafkaError as exc:
            raise SourceError(f"the Kafka broker could not look up the offsets of start_time's cutoff {iso_micro(since)} "
                              f"(ListOffsets by timestamp, Kafka 0.10.1 and later): {exc}; clear start_time to read the "
                              "topic from its beginning", url=self._where) from None


#: The client id of the pre-flight check's requests.
CLIENT_ID = "wia-security-splunk-app"


def _message_value(value: bytes) -> dict[str, str]:
    """A Kafka message value for the dead-letter log: as text when it is UTF-8, else base64."""
    try:
        return {"value": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"value_base64": base64.b64encode(value).decode("ascii")}
#: kafka-python's mechanism when none is configured and the pre-flight check could not ask the broker (a slow
#: answer, a login answer the check cannot read), over TLS that verifies the broker only: the app's default before
#: mechanisms were discovered. Elsewhere the run ends asking for ?sasl_mechanism= (KafkaSource._settle_mechanism).
UNDISCOVERED_SASL_MECHANISM = "PLAIN"


def _kafka_python_scram_first(name: str) -> bytes:
    """kafka-python's SCRAM client-first message for user `name` (kafka_sasl.scram_username_for reads it)."""
    from kafka.net.sasl.scram import ScramClient        # where kafka-python 3.0 keeps it
    return ScramClient(name, "probe", "SCRAM-SHA-256").first_message()


def _speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether host:port completes a TLS handshake, or ends one with a TLS alert. Nothing is verified and
    nothing is sent after the handshake: this only tells which protocol the listener speaks."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, context.wrap_socket(raw):
            return True
    except ssl.SSLError as exc:
        return "ALERT" in str(exc.reason or "").upper()
    except OSError:
        return False


SOURCES: dict[str, type] = {"taxii": TaxiiSource, "gateway": GatewaySource, "kafka": KafkaSource}


def open_source(url: str, **options: Any) -> HttpSource:
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme not in SOURCES:
        raise SourceError(f"unknown source scheme {scheme!r}; use one of: " + ", ".join(f"{s}+https://..." for s in SOURCES),
                          url=_redact(url))
    return SOURCES[scheme](url, **options)


def _read_bounded(response: Any, where: str, started: float) -> bytes:
    """The answer's body, at most MAX_ANSWER_BYTES and arriving within MAX_ANSWER_SECONDS of `started`
    (time.monotonic()). Too big: a SourceError not retried (the same page is as big next time); too slow: retried."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() - started > MAX_ANSWER_SECONDS:
            raise SourceError(f"the source's answer was still arriving after {MAX_ANSWER_SECONDS:g} s ({size:,} bytes so "
                              "far)", url=where, retryable=True)
        chunk = response.read1(65_536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise SourceError(f"the source's answer is over {MAX_ANSWER_BYTES:,} bytes: lower page_size", url=where)
        chunks.append(chunk)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (RFC 9110: delay-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None


def _cutoff_problem(position: dict[str, Any]) -> str | None:
    """Why the position's start_time cutoff is not an instant, or None (none is fine)."""
    cutoff = position.get(START_CUTOFF)
    if cutoff is not None and instant(cutoff) is None:
        return f"{START_CUTOFF!r} is {str(cutoff)[:60]!r}, not an RFC 3339 date-time such as 2026-01-31T12:00:00Z"
    return None


def _step_back(timestamp: str) -> str | None:
    """One microsecond before a TAXII date (added_after is exclusive); None before the first instant of the
    year 1 (ask from the beginning). ValueError when it is not a timestamp."""
    try:
        return just_before(timestamp)
    except TypeError:
        raise ValueError(f"{timestamp!r} is not a timestamp") from None


def _ids_at(position: dict[str, Any]) -> list[str]:
    """A TAXII position's ids_at_added_after (none in a checkpoint written before it existed, or not a list)."""
    ids = position.get("ids_at_added_after")
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _position_at(kept: dict[str, Any], added_after: str, page_ids: list[str]) -> tuple[dict[str, Any], bool]:
    """(the TAXII position after a page, whether ids were left out): `added_after` and the ids of the events a later
    run, reading again from there, meets again and leaves out. On the instant kept before, those kept plus the
    page's; on a new one, the page's alone (objects are listed in date_added order, so earlier pages hold nothing
    added at it; the page's objects added before it are not listed again from there and merely take room; after a
    settle split, `added_after` is the page's first instant and the page's ids are those read of it up to the
    cutoff). At most MAX_IDS_AT_INSTANT, the first read kept: past that, the others are skipped by the checkpoint's
    remembered ids alone (each event once while the instant holds no more than both together)."""
    at = instant(added_after)
    same = at is not None and instant(kept.get("added_after")) == at
    ids = list(dict.fromkeys([*_ids_at(kept), *page_ids] if same else page_ids))
    return {"added_after": added_after, "ids_at_added_after": ids[:MAX_IDS_AT_INSTANT]}, len(ids) > MAX_IDS_AT_INSTANT


def _split(url: str) -> tuple[str, urllib.parse.SplitResult]:
    """(lower-case scheme, the rest split). By hand: urlsplit reads no scheme, and so no user:password,
    in `kafka+sasl_ssl://` (an underscore is not an RFC 3986 scheme character)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", urllib.parse.urlsplit(url)
    return scheme.lower(), urllib.parse.urlsplit("scheme://" + rest)


def _redact(url: str) -> str:
    scheme, parts = _split(url)
    try:
        host = parts.hostname or ""
        port = parts.port
    except ValueError:                      # a port that is not a number: the host alone
        port = None
    if port:
        host += f":{port}"
    if not scheme:                          # not a URL: nothing up to an "@" (it could be user:password)
        return url.rpartition("@")[2].split("?", 1)[0]
    return f"{scheme}://{host}{parts.path}"
