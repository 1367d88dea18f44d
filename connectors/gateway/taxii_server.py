"""TAXII 2.1 server endpoint: the stored threat intel as one read-only collection (OASIS TAXII 2.1, sections 4-5).

    GET /taxii2/                                            discovery (4.1)
    GET /taxii2/wia/                                        API root information (4.2)
    GET /taxii2/wia/collections/                            collections (5.1)
    GET /taxii2/wia/collections/{id}/                       one collection (5.2)
    GET /taxii2/wia/collections/{id}/objects/               objects, filtered and paged (5.3)
    GET /taxii2/wia/collections/{id}/objects/{object-id}/   one object (5.5)
    GET /taxii2/wia/collections/{id}/objects/{object-id}/versions/   its versions (5.8)
    GET /taxii2/wia/collections/{id}/manifest/              manifest (5.6)

Threat-intel events in the embedded store are converted with the STIX converter
(`convert(event, to="stix")`) into a side table of the same SQLite file, each object version stamped
with the `date_added` at which the gateway added it (microseconds; every object of one sync shares it).
A newer version of a stored event (the store gives it a new row) is converted again: each of its objects
whose `modified` moved is a new version, with its own `date_added` (a poll by `added_after` sees it;
`match[version]=last` serves it). Filters: `added_after`, `match[id]`, `match[type]`, `match[version]` (last — the
default —, first, all, or timestamps), `match[spec_version]`, `limit`. Paging: `next` is an opaque
cursor over (date_added, row), so any number of objects may share one `date_added` without being
skipped or repeated; `X-TAXII-Date-Added-First/-Last` carry the page's range. Auth: the gateway's
bearer token (or HTTP Basic with the token as password). Responses are
`application/taxii+json;version=2.1`; a request whose Accept excludes it gets 406.
"""
from __future__ import annotations

import base64
import binascii
import logging
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from wia_security import jsonio
from wia_security.formats import convert
from wia_security.timeutil import parse_iso

from ..sqlite import write_transaction

log = logging.getLogger("wia_security.gateway.taxii")

MEDIA_TAXII = "application/taxii+json;version=2.1"
MEDIA_STIX = "application/stix+json;version=2.1"
API_ROOT = "wia"
#: The collection's id: fixed, so clients can be configured once.
COLLECTION_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://wia.live/security/taxii/threat-intel"))
COLLECTION_ALIAS = "wia-threat-intel"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: Re-read the store at least this often, for events written by other processes (forward, Kafka).
RESYNC_SECONDS = 5.0
SYNC_CHUNK = 2000

_DDL = """
CREATE TABLE IF NOT EXISTS taxii_objects (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL,
    stix_id      TEXT NOT NULL,
    stix_type    TEXT NOT NULL,
    version      TEXT NOT NULL,
    version_us   INTEGER NOT NULL,
    spec_version TEXT NOT NULL,
    date_added   TEXT NOT NULL,
    added_us     INTEGER NOT NULL,
    body         TEXT NOT NULL,
    UNIQUE (stix_id, version_us)
);
CREATE INDEX IF NOT EXISTS taxii_objects_added ON taxii_objects (added_us, seq);
CREATE INDEX IF NOT EXISTS taxii_objects_id ON taxii_objects (stix_id, version_us);
CREATE INDEX IF NOT EXISTS taxii_objects_event ON taxii_objects (event_id, version_us);
CREATE TABLE IF NOT EXISTS taxii_synced (event_id TEXT PRIMARY KEY, objects INTEGER NOT NULL, error TEXT);
CREATE TABLE IF NOT EXISTS taxii_synced_rows (event_id TEXT PRIMARY KEY, event_row INTEGER NOT NULL);
"""
# taxii_synced_rows.event_row: the store's row number of the event version converted. A newer version of an
# event takes a new row number (connectors/sqlite.py), so a row number that differs (or none) means a version
# not converted yet. A table of its own, not a column of taxii_synced: 0.1.0's gateway inserts three values
# into taxii_synced, and a fourth column would fail every sync of one still running on this file (or brought
# back). An event 0.1.0 converted has no row here: the rows are filled on start, a chunk per transaction, with
# the event's row where the collection holds that version (an object of the event whose version is the event's
# timestamp), else 0, so only events an earlier gateway replaced in place (it kept their row and never
# converted them again) are converted once more; one converted later by a 0.1.0 gateway beside this one is
# converted again by this one, adding only what the collection does not hold.
_FILL_CHUNK = 10_000


class TaxiiRequestError(Exception):
    def __init__(self, status: int, title: str, description: str = "") -> None:
        self.status, self.title, self.description = status, title, description
        super().__init__(title)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)


def _us(timestamp: str) -> int:
    """Epoch microseconds, floored in integer arithmetic: int(timestamp()) rounds toward zero, which put an
    instant before 1970 a second late (1969-12-31T23:59:59.5Z and 1970-01-01T00:00:00.5Z were one version)."""
    return (parse_iso(timestamp) - _EPOCH) // _ONE_US


def _iso_us(us: int) -> str:
    moment = datetime.fromtimestamp(us // 1_000_000, tz=timezone.utc).replace(microsecond=us % 1_000_000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TaxiiCollection:
    """The threat-intel collection over the store file: sync from `events`, then filtered, paged reads."""

    def __init__(self, db_path: str, *, title: str = "WIA Security gateway", use_next: bool = True) -> None:
        self.title = title
        self.use_next = use_next                 # False: page by added_after only (for client tests)
        self._db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_DDL)
        self._add_event_rows()
        self._lock = threading.Lock()
        self._dirty = True
        self._synced_at = 0.0
        self._last_added = 0
        self.conversion_failures = 0

    def _add_event_rows(self) -> None:
        """The row numbers of events an earlier gateway converted, filled a chunk per transaction (as the store's
        own migration does: another writer on the file waits for one chunk, not for all of them)."""
        after = -(2 ** 63)
        while True:
            with write_transaction(self._db):
                rows = self._db.execute(
                    "SELECT s.rowid, s.event_id FROM taxii_synced s WHERE s.rowid > ? AND NOT EXISTS "
                    "(SELECT 1 FROM taxii_synced_rows r WHERE r.event_id = s.event_id) ORDER BY s.rowid LIMIT ?",
                    (after, _FILL_CHUNK)).fetchall()
                if not rows:
                    return
                self._db.executemany(
                    "INSERT OR REPLACE INTO taxii_synced_rows (event_id, event_row) VALUES (?1, IFNULL((SELECT "
                    "e.rowid FROM events e WHERE e.id = ?1 AND EXISTS (SELECT 1 FROM taxii_objects o WHERE "
                    "o.event_id = e.id AND o.version_us = e.ts_us)), 0))", ((event_id,) for _, event_id in rows))
            after = rows[-1][0]

    def mark_dirty(self) -> None:
        self._dirty = True

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- sync from the event store ---
    def ensure_synced(self) -> None:
        if self._dirty or time.monotonic() - self._synced_at > RESYNC_SECONDS:
            self.sync()

    def sync(self) -> int:
        """Convert threat-intel events, or newer versions of them, not yet in the collection; returns the number of
        new objects (a new version of an object is a new object of the collection, with its own date_added)."""
        with self._lock:
            self._dirty = False
            self._synced_at = time.monotonic()
            try:
                return self._sync_locked()
            except BaseException:
                self._dirty = True             # not synced: the next request tries again (not in RESYNC_SECONDS)
                raise

    def _sync_locked(self) -> int:
        added = 0
        while True:
            rows = self._db.execute(
                "SELECT e.rowid, e.id, e.body, EXISTS (SELECT 1 FROM taxii_synced s WHERE s.event_id = e.id) "
                "FROM events e WHERE e.type = 'threat_intel' AND NOT EXISTS "
                "(SELECT 1 FROM taxii_synced_rows r WHERE r.event_id = e.id AND r.event_row = e.rowid) "
                "ORDER BY e.rowid LIMIT ?",
                (SYNC_CHUNK,)).fetchall()
            if not rows:
                return added
            # The write lock first, then the date_added: later than every object the collection holds, whoever
            # added them (a gateway before a restart whose clock was ahead, another gateway on this file), and
            # committed before any later date_added can be. A client polling with added_after = the last
            # date_added it saw then never misses a version added after it.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                held = self._db.execute("SELECT IFNULL(MAX(added_us), 0) FROM taxii_objects").fetchone()[0]
                added_us = max(int(time.time() * 1_000_000), self._last_added + 1, held + 1)
                self._last_added = added_us
                date_added = _iso_us(added_us)
                for row, event_id, body, again in rows:
                    added += self._add_event(row, event_id, jsonio.loads(body), date_added, added_us, bool(again))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _add_event(self, row: int, event_id: str, event: dict[str, Any], date_added: str, added_us: int,
                   again: bool = False) -> int:
        """`again`: an earlier version of the event was converted; its objects' new versions keep what STIX 2.1
        (section 3.6) says no version may change, `created` and `created_by_ref`, as the first version has them."""
        try:
            objects = convert(event, to="stix")["objects"]
        except Exception as exc:  # noqa: BLE001 - the event stays in the store; TAXII cannot show it
            self.conversion_failures += 1
            log.warning("threat-intel event %s cannot be served over TAXII: %s", event_id, exc)
            self._synced(event_id, 0, str(exc)[:500], row)
            return 0
        count = 0
        for obj in objects:
            if again and "created" in obj:
                self._keep_unchangeable(obj)
            body = jsonio.dumps(obj)
            # Each version once: an object already held in this version (shared by all events, or converted again
            # from the same event) is ignored by UNIQUE (stix_id, version_us).
            version = obj.get("modified") or obj.get("created") or date_added
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO taxii_objects (event_id, stix_id, stix_type, version, version_us, spec_version,"
                " date_added, added_us, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event_id, obj["id"], obj["type"], version, _us(version), obj.get("spec_version", "2.1"),
                 date_added, added_us, body))
            count += cursor.rowcount
        self._synced(event_id, count, None, row)
        return count

    def _keep_unchangeable(self, obj: dict[str, Any]) -> None:
        """`created` and `created_by_ref` of the object's first version held, when it has one. The converter sets
        `created` to the event's timestamp, which moves with each version; the WIA event the primary object
        carries (its extension) keeps its own timestamp, so converting back is unchanged."""
        first = self._db.execute("SELECT body FROM taxii_objects WHERE stix_id = ? ORDER BY version_us LIMIT 1",
                                 (obj["id"],)).fetchone()
        if first is None:
            return
        held = jsonio.loads(first[0])
        created = held.get("created")
        if isinstance(created, str) and created != obj["created"] and _us(created) <= _us(obj.get("modified") or created):
            obj["created"] = created
        if "created_by_ref" in held and "created_by_ref" in obj:    # a source renamed: still the first creator's
            obj["created_by_ref"] = held["created_by_ref"]

    def _synced(self, event_id: str, objects: int, error: str | None, row: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO taxii_synced (event_id, objects, error) VALUES (?, ?, ?)",
                         (event_id, objects, error))
        self._db.execute("INSERT OR REPLACE INTO taxii_synced_rows (event_id, event_row) VALUES (?, ?)",
                         (event_id, row))

    # --- reads ---
    def query(self, params: Any, *, object_id: str | None = None, versions_only: bool = False
              ) -> tuple[list[tuple[Any, ...]], bool, str | None]:
        """Rows (seq, stix_id, version, date_added, added_us, body) of one page, `more`, and the next cursor."""
        limit = _limit(params.get("limit"))
        where: list[str] = []
        args: list[Any] = []
        if params.get("added_after"):
            where.append("added_us > ?")
            args.append(_timestamp_param(params["added_after"], "added_after"))
        ids = [object_id] if object_id else _list(params.get("match[id]"))
        if ids:
            where.append(f"stix_id IN ({','.join('?' * len(ids))})")
            args += ids
        types = _list(params.get("match[type]"))
        if types:
            where.append(f"stix_type IN ({','.join('?' * len(types))})")
            args += types
        spec_versions = _list(params.get("match[spec_version]"))
        if spec_versions:
            where.append(f"spec_version IN ({','.join('?' * len(spec_versions))})")
            args += spec_versions
        versions = _list(params.get("match[version]")) or (["all"] if versions_only else ["last"])
        if "all" not in versions:
            # One clause per kind, the timestamps in one IN list: a clause per value made an OR chain as deep as the
            # values given, and past 1,000 of them SQLite refused it (a 500 for a long query string).
            clauses = []
            if "last" in versions:
                clauses.append("version_us = (SELECT MAX(version_us) FROM taxii_objects t WHERE t.stix_id = o.stix_id)")
            if "first" in versions:
                clauses.append("version_us = (SELECT MIN(version_us) FROM taxii_objects t WHERE t.stix_id = o.stix_id)")
            stamps = sorted({_timestamp_param(v, "match[version]") for v in versions if v not in ("last", "first")})
            if stamps:
                clauses.append(f"version_us IN ({','.join('?' * len(stamps))})")
                args += stamps
            where.append("(" + " OR ".join(clauses) + ")")
        token = params.get("next")
        if token:
            added_us, seq = _decode_next(token)
            where.append("(added_us > ? OR (added_us = ? AND seq > ?))")
            args += [added_us, added_us, seq]
        sql = ("SELECT seq, stix_id, version, date_added, added_us, body FROM taxii_objects o"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY added_us, seq LIMIT ?")
        with self._lock:
            rows = self._db.execute(sql, [*args, limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        next_token = _encode_next(rows[-1][4], rows[-1][0]) if more and self.use_next else None
        return rows, more, next_token


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    try:
        limit = int(value)
    except ValueError:
        raise TaxiiRequestError(400, "limit must be a positive integer") from None
    if limit < 1:
        raise TaxiiRequestError(400, "limit must be a positive integer")
    return min(limit, MAX_PAGE_SIZE)


def _list(value: str | None) -> list[str]:
    """A filter's comma-separated values, each once (a value repeated thousands of times is one SQL parameter)."""
    return list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip())) if value else []


def _timestamp_param(value: str, name: str) -> int:
    try:
        return _us(value)
    except ValueError:
        raise TaxiiRequestError(400, f"{name} must be an RFC 3339 timestamp") from None


def _encode_next(added_us: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{added_us}:{seq}".encode()).decode().rstrip("=")


def _decode_next(token: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        added, seq = text.split(":")
        cursor = int(added), int(seq)
        if not all(0 <= part < 2 ** 63 for part in cursor):     # SQLite integers are signed 64-bit
            raise ValueError(text)
        return cursor
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise TaxiiRequestError(400, "next is not a cursor this server issued") from None


# --- HTTP ---
def taxii_response(doc: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(jsonio.dumpb(doc), status, headers=headers, media_type=MEDIA_TAXII)


def taxii_error(status: int, title: str, description: str = "", headers: dict[str, str] | None = None) -> Response:
    doc = {"title": title, "http_status": str(status)}
    if description:
        doc["description"] = description
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="wia-security", Basic realm="wia-security"'}
    return taxii_response(doc, status, headers)


def _accepts_taxii(request: Request) -> bool:
    """Whether the Accept header takes TAXII 2.1 (RFC 9110 section 12.5.1): `application/taxii+json` with version 2.1
    or none (the media type's version is optional: the latest the server has), or a wildcard, at a q-value above 0;
    parameter names and the media type are case-insensitive, a value may be quoted."""
    for part in request.headers.get("accept", "*/*").split(","):
        media, *raw = (p.strip() for p in part.split(";"))
        params = {}
        for param in raw:
            name, _, value = param.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        try:
            if float(params.pop("q", "1")) <= 0:       # q=0: "not acceptable", said explicitly
                continue
        except ValueError:
            continue
        media = media.lower()
        if media in ("*/*", "application/*"):
            return True
        if media == "application/taxii+json" and params.get("version", "2.1") == "2.1":
            return True
    return False


def _guard(request: Request) -> tuple[Any, Response | None]:
    gw = request.app.state.gateway
    if not gw.authorized(request.headers, ("bearer", "basic")):
        return gw, taxii_error(401, "Unauthorized", "a bearer token, or HTTP Basic with the token as password")
    if not _accepts_taxii(request):
        return gw, taxii_error(406, "Not Acceptable", f"this server answers {MEDIA_TAXII}")
    if gw.taxii is None:
        return gw, taxii_error(404, "Not Found", "TAXII is not enabled on this gateway")
    return gw, None


def _root_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + f"/taxii2/{API_ROOT}/"


async def discovery(request: Request) -> Response:
    gw, denied = _guard(request)
    if denied:
        return denied
    root = _root_url(request)
    return taxii_response({"title": gw.taxii.title, "description": "WIA Security events as STIX 2.1 threat intelligence",
                           "default": root, "api_roots": [root]})


async def api_root(request: Request) -> Response:
    gw, denied = _guard(request)
    if denied:
        return denied
    return taxii_response({"title": f"{gw.taxii.title}: threat intel", "versions": [MEDIA_TAXII],
                           "max_content_length": gw.settings.max_body_bytes})


def _collection_doc() -> dict[str, Any]:
    return {"id": COLLECTION_ID, "title": "WIA threat intelligence", "alias": COLLECTION_ALIAS,
            "description": "Threat-intel events stored by the gateway, as STIX 2.1 objects",
            "can_read": True, "can_write": False, "media_types": [MEDIA_STIX]}


async def collections(request: Request) -> Response:
    gw, denied = _guard(request)
    if denied:
        return denied
    return taxii_response({"collections": [_collection_doc()]})


def _check_collection(request: Request) -> Response | None:
    if request.path_params["collection"] not in (COLLECTION_ID, COLLECTION_ALIAS):
        return taxii_error(404, "Collection not found", request.path_params["collection"])
    return None


async def collection(request: Request) -> Response:
    gw, denied = _guard(request)
    if denied:
        return denied
    return _check_collection(request) or taxii_response(_collection_doc())


async def objects(request: Request) -> Response:
    gw, denied = _guard(request)
    if denied:
        return denied
    missing = _check_collection(request)
    if missing:
        return missing
    if request.method == "POST":
        return taxii_error(403, "Forbidden", "this collection is read-only (can_write is false)")
    return await _page(request, gw, object_id=request.path_params.get("object_id"), kind="objects")


async def versions(request: Request) -> Response:
    gw, denied = _guard(request)
    if denied:
        return denied
    return _check_collection(request) or await _page(request, gw, object_id=request.path_params["object_id"],
                                                     kind="versions")


async def manifest(request: Request) -> Response:
    gw, denied = _guard(request)
    if denied:
        return denied
    return _check_collection(request) or await _page(request, gw, object_id=None, kind="manifest")


async def _page(request: Request, gw: Any, *, object_id: str | None, kind: str) -> Response:
    params = request.query_params
    coll: TaxiiCollection = gw.taxii
    try:
        def read() -> tuple[list[tuple[Any, ...]], bool, str | None]:
            coll.ensure_synced()
            return coll.query(params, object_id=object_id, versions_only=kind == "versions")
        rows, more, next_token = await run_in_threadpool(read)
    except TaxiiRequestError as exc:
        return taxii_error(exc.status, exc.title, exc.description)
    except sqlite3.OperationalError as exc:
        # The store file held by another writer past the connection's busy timeout: a client may ask again (a
        # framework 500 in plain text before). Anything else SQLite says is a 500, with a TAXII error message too.
        busy = "locked" in str(exc) or "busy" in str(exc)
        log.warning("TAXII %s: the store could not be read: %s", kind, exc)
        return taxii_error(503, "Service Unavailable", "the event store is busy; ask again", {"Retry-After": "1"}) \
            if busy else taxii_error(500, "Internal Server Error", "the event store could not be read")
    if object_id and not rows and not params.get("next"):
        return taxii_error(404, "Object not found", object_id)
    doc: dict[str, Any] = {"more": more}
    if next_token:
        doc["next"] = next_token
    if kind == "objects":
        if rows:
            doc["objects"] = [jsonio.loads(r[5]) for r in rows]
    elif kind == "versions":
        if rows:
            doc["versions"] = [r[2] for r in rows]
    else:
        if rows:
            doc["objects"] = [{"id": r[1], "date_added": r[3], "version": r[2], "media_type": MEDIA_STIX} for r in rows]
    headers = {"X-TAXII-Date-Added-First": rows[0][3], "X-TAXII-Date-Added-Last": rows[-1][3]} if rows else None
    return taxii_response(doc, headers=headers)


#: Every method reaches the endpoints, which answer those they do not take themselves (405 with a TAXII body).
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _only(methods: tuple[str, ...], handler: Any) -> Any:
    """`handler` for `methods` (HEAD with GET); any other method is 405 with a TAXII error message, as every error
    status of the TAXII endpoint is (TAXII 2.1 section 3.6.1), not the framework's plain-text one."""
    allowed = sorted({*methods, *(("HEAD",) if "GET" in methods else ())})

    async def endpoint(request: Request) -> Response:
        if request.method in allowed:
            return await handler(request)
        _, denied = _guard(request)
        return denied or taxii_error(405, "Method Not Allowed", f"{request.url.path} takes {', '.join(allowed)}",
                                     {"Allow": ", ".join(allowed)})
    return endpoint


def routes() -> list[Route]:
    base = f"/taxii2/{API_ROOT}"
    coll = base + "/collections/{collection}"
    endpoints = [
        Route("/taxii2/", _only(("GET",), discovery), methods=_METHODS),
        Route(base + "/", _only(("GET",), api_root), methods=_METHODS),
        Route(base + "/collections/", _only(("GET",), collections), methods=_METHODS),
        Route(coll + "/", _only(("GET",), collection), methods=_METHODS),
        Route(coll + "/objects/", _only(("GET", "POST"), objects), methods=_METHODS),
        Route(coll + "/objects/{object_id}/", _only(("GET",), objects), methods=_METHODS),
        Route(coll + "/objects/{object_id}/versions/", _only(("GET",), versions), methods=_METHODS),
        Route(coll + "/manifest/", _only(("GET",), manifest), methods=_METHODS),
    ]

    async def elsewhere(request: Request) -> Response:
        """Any other path under /taxii2/: the same path with or without its final slash where that is an endpoint
        (a redirect, as the framework gave before), else 404 with a TAXII error message (the status resource
        among them: this collection takes no Add, so no status exists)."""
        path = request.url.path
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        if any(route.path_regex.match(other) for route in endpoints):
            return RedirectResponse(request.url.replace(path=other), status_code=307)
        _, denied = _guard(request)
        return denied or taxii_error(404, "Not Found", f"no TAXII endpoint at {path}")

    return [*endpoints, Route("/taxii2/{rest:path}", elsewhere, methods=_METHODS)]
