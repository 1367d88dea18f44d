"""What a record body carries, as reader Items: WIA events directly (one JSON value, a JSON array, NDJSON,
gzip or not), or wrapped by the AWS service that passed it on:

- an SNS notification (`Type: Notification`, `Message` = the text) -> the message's values;
- an EventBridge event (`detail-type`, `detail`) -> `detail`; "Object Created" from aws.s3 -> the object;
- an S3 event notification (`Records[].s3`) -> every object it names; `s3:TestEvent` -> nothing.

S3 objects are streamed: the body is read through a buffered reader (gzip-transparent) and cut into
values line by line by `wia_security.reader`, so memory stays flat whatever the object's size.
Object keys in notifications are URL-encoded (spaces as "+"): they are decoded before use.
"""
from __future__ import annotations

import io
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import unquote_plus

from wia_security.connectors.relay import GZIP_MAGIC, GzipBodyError, OutOfTime, record_items
from wia_security.errors import ParseError
from wia_security.reader import GZIP_READ_BYTES, GunzipStream, Item, iter_items

from .logs import get_logger

READ_CHUNK = 1 << 16
log = get_logger()


def s3_objects_of(value: Any) -> list[tuple[str, str] | ParseError] | None:
    """(bucket, decoded key) of every object an S3 notification or an EventBridge "Object Created"
    event names, in order; [] for s3:TestEvent; None when `value` is neither. A record of a
    notification that names no bucket or key is a ParseError in its place naming the JSON path of
    what is missing (`/Records/2/s3/object/key`): the other records are still read, and only that one
    is dead-lettered (retrying cannot fix it)."""
    if not isinstance(value, dict):
        return None
    if value.get("Event") == "s3:TestEvent":
        return []
    records = value.get("Records")
    if isinstance(records, list) and records and any(_is_s3_record(r) for r in records):
        found: list[tuple[str, str] | ParseError] = []
        for i, record in enumerate(records):
            if isinstance(record, dict) and not str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
                continue                    # a deletion or restore: nothing to read
            try:
                if not isinstance(record, dict) or not isinstance(record.get("s3"), dict):
                    raise ParseError(f"S3 notification record is not an S3 event record (at /Records/{i}/s3)",
                                     path=f"/Records/{i}/s3")
                found.append((_named(record["s3"], "bucket", f"/Records/{i}/s3"),
                              unquote_plus(_named(record["s3"], "object", f"/Records/{i}/s3"))))
            except ParseError as exc:
                found.append(exc)
        return found
    if value.get("source") == "aws.s3" and value.get("detail-type") == "Object Created":
        detail = value.get("detail")
        # EventBridge delivers the key as is (not URL-encoded)
        try:
            return [(_named(detail, "bucket", "/detail"), _named(detail, "object", "/detail"))]
        except ParseError as exc:
            return [exc]
    return None


def _is_s3_record(record: Any) -> bool:
    return isinstance(record, dict) and ("s3" in record or record.get("eventSource") == "aws:s3")


def s3_record_path(error: ParseError) -> str:
    """The JSON pointer of the notification record (`/Records/2`) or EventBridge `/detail` that a
    ParseError of `s3_objects_of` is about."""
    parts = (error.path or "").split("/")
    return "/".join(parts[:3] if len(parts) > 2 and parts[1] == "Records" else parts[:2])


def s3_record_of(value: dict[str, Any], error: ParseError) -> Any:
    """The notification record (or EventBridge detail) a ParseError of `s3_objects_of` names, for its
    dead-letter record: that record only, not the whole notification."""
    parts = s3_record_path(error).split("/")[1:]
    if parts[:1] == ["Records"] and len(parts) == 2:
        return value["Records"][int(parts[1])]
    return value.get(parts[0]) if parts else value


def _named(parent: Any, member: str, where: str) -> str:
    """`parent[member]["name"]` (bucket) or `["key"]` (object): a non-empty string, else a ParseError."""
    field = "name" if member == "bucket" else "key"
    value = (parent.get(member) if isinstance(parent, dict) else None) or {}
    found = value.get(field) if isinstance(value, dict) else None
    if not isinstance(found, str) or not found:
        raise ParseError(f"S3 notification has no {member} {field} (at {where}/{member}/{field})",
                         path=f"{where}/{member}/{field}")
    return found


def unwrap(items: Iterable[Item], open_object: Callable[[str, str], Iterator[Item]], depth: int = 0) -> Iterator[Item]:
    """Items with SNS/EventBridge envelopes and S3 notifications replaced by what they carry."""
    for item in items:
        value = item.value
        if not item.ok or not isinstance(value, dict) or depth > 3:
            yield item
            continue
        objects = s3_objects_of(value)
        if objects is not None:
            for found in objects:
                if isinstance(found, ParseError):       # that record only; the others are read
                    yield Item(item.source, item.line, error=ParseError(found.reason, source=item.source,
                                                                       path=found.path),
                               raw=_raw(s3_record_of(value, found)))
                else:
                    yield from open_object(*found)
        elif value.get("Type") == "Notification" and isinstance(value.get("Message"), str) and "TopicArn" in value:
            try:
                values = record_items(value["Message"].encode("utf-8"), item.source)
            except GzipBodyError as exc:
                yield Item(item.source, item.line, error=ParseError(f"unreadable gzip body: {exc.reason}",
                                                                   source=item.source))
                continue
            yield from unwrap(values, open_object, depth + 1)
        elif "detail-type" in value and isinstance(value.get("detail"), (dict, list)):
            detail = value["detail"]
            values = detail if isinstance(detail, list) else [detail]
            yield from unwrap((Item(item.source, item.line, v) for v in values), open_object, depth + 1)
        else:
            yield item


def _raw(value: Any) -> bytes:
    """A bounded JSON copy of a value that could not be used, for the dead-letter record."""
    return json.dumps(value, default=str).encode()[:4096]


def body_items(data: bytes, source: str, open_object: Callable[[str, str], Iterator[Item]]) -> Iterator[Item]:
    """The values a record body carries (see the module docstring)."""
    try:
        values = record_items(data, source)      # gzip cut short or corrupt: up to the line it broke in
    except GzipBodyError as exc:             # a gzip bomb: on record, not retried
        yield Item(source, 0, error=ParseError(f"unreadable gzip body: {exc.reason}", source=source), raw=data[:4096])
        return
    yield from unwrap(values, open_object)


class _StreamingBodyIO(io.RawIOBase):
    """A botocore StreamingBody as a raw binary stream (for io.BufferedReader / gzip), read until `stop_at`
    (time.monotonic()) at most: then OutOfTime, and the record is retried.

    botocore bounds each socket read by its read timeout (60 s) only, and a read of 64 KiB waits for all of
    it: a body that stalls, or trickles a byte now and then, held the function past its timeout, and Lambda
    then retried the whole batch (every record of it delivered again) or the whole invocation. The time
    budget between two values (handler.in_time) cannot help inside one read, so a timer shuts the body's
    socket down at `stop_at`, which ends a read blocked on it."""

    def __init__(self, body: Any, stop_at: float | None = None, why: str = "") -> None:
        self._body = body
        self._why = why
        self._lock = threading.Lock()
        self._cut = False
        self._done = False
        self._timer: threading.Timer | None = None
        self.shut_by: str | None = None     # how the cut reached the socket (tests pin it per urllib3 version)
        if stop_at is not None:
            self._timer = threading.Timer(max(0.0, stop_at - time.monotonic()), self._cut_off)
            self._timer.daemon = True
            self._timer.start()

    def readable(self) -> bool:
        return True

    def _cut_off(self) -> None:
        # Why this never shuts a connection another request uses: `_cut` is set (under the lock) before the
        # socket is looked up, and readinto checks it after every read. A read that returned the connection
        # to urllib3's pool (the body's last bytes) after the lookup found its socket therefore sees `_cut`
        # and raises, and the exception leaves object_items only through close(), which waits for this lock:
        # no request is sent before the shutdown is done, and a shut socket idle in the pool is dropped by
        # urllib3 when checked out (is_connection_dropped). Once the connection is back in the pool the
        # lookup finds nothing (urllib3 drops it from the response).
        with self._lock:
            if self._done:                  # read to its end and closed: its connection may serve another request
                return
            self._cut = True
            how = _shut_down(self._body)
            if how is None:
                if not _released(self._body):
                    # nothing unblocks a read then: closing from another thread leaves a blocked recv blocked
                    log.warning("could not find the socket of an S3 object's body still being read (botocore or "
                                "urllib3 changed): its read is bounded by botocore's read timeout only",
                                extra={"body": type(getattr(self._body, "_raw_stream", self._body)).__name__})
                try:
                    self._body.close()
                except Exception:  # noqa: BLE001 - a body closing under its reader: the read reports it
                    pass
            self.shut_by = how

    def _out_of_time(self) -> OutOfTime:
        return OutOfTime(f"not finished: the S3 object's body was still being read when {self._why}")

    def readinto(self, buffer: Any) -> int:
        if self._cut:
            raise self._out_of_time()
        try:
            data = self._body.read(len(buffer))
        except Exception:
            if self._cut:
                raise self._out_of_time() from None
            raise
        if self._cut:                       # a read ended by the cut may be short: not a value to hand over
            raise self._out_of_time()
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()
        try:
            self._body.close()
        finally:
            super().close()


def _shut_down(body: Any) -> str | None:
    """Shut down the socket a botocore StreamingBody (`_raw_stream`: a urllib3 HTTPResponse) reads from,
    which ends a read blocked on it; how it was reached, or None when not (the connection already back in
    the pool, or attributes this code does not know). urllib3 2.3+ has HTTPResponse.shutdown() for this (it
    refuses once the connection is released); 1.26 and 2.0-2.2 are reached through http.client's socket
    file (the connection drops `sock` when the answer says close) or the connection's `sock`."""
    raw = getattr(body, "_raw_stream", None)
    if callable(getattr(raw, "shutdown", None)) and getattr(raw, "_sock_shutdown", None) is not None:
        try:
            raw.shutdown()
            return "urllib3 HTTPResponse.shutdown"
        except (ValueError, RuntimeError, OSError):  # released to the pool (RuntimeError), or already closed
            return None
    socket_file = getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None)
    for how, sock in (("http.client socket file", getattr(socket_file, "_sock", None)),
                      ("urllib3 connection sock", getattr(getattr(raw, "connection", None), "sock", None))):
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return how
    return None


def _released(body: Any) -> bool:
    """True when the body's response holds no connection any more: read to its end (back in the pool) or
    closed; nothing to cut then."""
    raw = getattr(body, "_raw_stream", None)
    return raw is not None and hasattr(raw, "connection") and raw.connection is None and \
        getattr(raw, "_fp", None) is not None and getattr(raw._fp, "fp", None) is None


#: get_object error codes that mean the object is not there to read, now or later.
GONE = frozenset({"NoSuchKey", "NoSuchBucket", "404"})
#: get_object error codes of a pinned read (`ObjectVersion`) meaning the version read before is not the
#: object's any more: rewritten (IfMatch failed), that version deleted, or the object gone.
CHANGED = frozenset({"PreconditionFailed", "412", "NoSuchVersion"}) | GONE
#: get_object error codes that can hide a missing object: S3 answers 403 AccessDenied, not 404, for a key
#: (or version) that is not there to a role without s3:ListBucket on the bucket (GetObject, "Permissions"),
#: and for any VersionId read to a role without s3:GetObjectVersion; it cannot be told from a read refused.
DENIED = frozenset({"AccessDenied", "403"})


@dataclass(frozen=True)
class ObjectVersion:
    """The S3 object a reading got: its ETag, and its VersionId in a bucket with a versioning state (None when
    never versioned: no VersionId answered), "null" included: an object written before versioning was enabled
    keeps that version under the ones written after it, and GetObject takes VersionId=null (while versioning
    is suspended a rewrite replaces it in place, and If-Match tells); `etag` None: the object was not there."""

    bucket: str
    key: str
    etag: str | None
    version_id: str | None = None


class ObjectChanged(Exception):
    """A pinned read found another object than the version read before (`code`: S3's error code, or
    "Created" for an object absent before)."""

    def __init__(self, pin: ObjectVersion, code: str) -> None:
        super().__init__(code)
        self.pin, self.code = pin, code


class ObjectDenied(Exception):
    """A pinned read S3 answered AccessDenied, by VersionId and by ETag alone: the object was deleted (what
    S3 answers for a missing key to a role without s3:ListBucket on its bucket) or the role cannot read it."""

    def __init__(self, pin: ObjectVersion, code: str) -> None:
        super().__init__(f"S3 answered {code} to the read of s3://{pin.bucket}/{pin.key} in the version read before "
                         f"(ETag {pin.etag}): the object was deleted (S3 answers 403 AccessDenied, not 404, for a "
                         "missing key to a role without s3:ListBucket on the bucket) or the function cannot read it")
        self.pin, self.code = pin, code


class ObjectMissing(Exception):
    """The object is not there (`code`: S3's error code): retrying cannot help."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _error_code(exc: Exception) -> str | None:
    return ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code")


def get_object(s3: Any, bucket: str, key: str, pin: ObjectVersion | None = None) -> tuple[Any, ObjectVersion]:
    """GetObject of the object as it is now, or of the `pin`ned version (IfMatch its ETag, and its VersionId
    when it has one): the response and the version it read. ObjectMissing when the object is not there
    (for a pin of an absent object too); ObjectChanged when a pinned read finds another object (S3 refused
    the If-Match, or answered an ETag or VersionId not the pinned one); ObjectDenied when S3 answered a
    pinned read AccessDenied (`DENIED`: a pinned version denied is read again by its ETag alone); other errors
    (throttling, 5xx, access) propagate, so the record is retried."""
    params: dict[str, str] = {}
    if pin is not None and pin.etag is not None:
        params["IfMatch"] = pin.etag
        if pin.version_id is not None:
            params["VersionId"] = pin.version_id
    try:
        try:
            response = s3.get_object(Bucket=bucket, Key=key, **params)
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError, told apart by its code
            if pin is None or "VersionId" not in params or _error_code(exc) not in DENIED:
                raise
            # the version denied (no s3:GetObjectVersion on a bucket the template does not create, or the
            # version deleted, to a role without s3:ListBucket): the object as it is now holds the same bytes
            # if it still has the pinned ETag (If-Match), and is another object if not (412: a change)
            log.warning("the pinned version of an S3 object was refused (AccessDenied): read by its ETag alone",
                        extra={"bucket": bucket, "key": key, "version_id": pin.version_id})
            del params["VersionId"]
            response = s3.get_object(Bucket=bucket, Key=key, **params)
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError, told apart by its code
        code = _error_code(exc)
        if pin is not None and params and code in CHANGED:
            raise ObjectChanged(pin, code) from None
        if pin is not None and params and code in DENIED:
            raise ObjectDenied(pin, code) from None
        if code not in GONE:
            raise
        raise ObjectMissing(code) from None
    if pin is not None and pin.etag is None:
        response["Body"].close()            # absent before, there now: none of its values was read
        raise ObjectChanged(pin, "Created")
    got = ObjectVersion(bucket, key, response.get("ETag"), response.get("VersionId") or None)
    if pin is not None and params and (got.etag != pin.etag
                                       or ("VersionId" in params and got.version_id != pin.version_id
                                           # the null version answered without naming it: the ETag is the check
                                           and not (pin.version_id == "null" and got.version_id is None))):
        # an endpoint that ignores If-Match or VersionId (an S3-compatible store, a caching proxy) answered
        # what the key holds now: another object, whose first values are not the ones settled
        response["Body"].close()
        raise ObjectChanged(pin, "PreconditionFailed")
    return response, got


def missing_item(source: str, code: str) -> Item:
    """The item of an object that is not there: its notification is dead-lettered naming it (the loss on
    record; retrying cannot help)."""
    return Item(source, 0, error=ParseError(f"object not found ({code}); nothing was read", source=source))


def stream_object(s3: Any, bucket: str, key: str) -> Iterator[Item]:
    """The values of one S3 object, streamed. Network errors propagate (the record is retried); a
    gzip stream cut short or corrupt ends in one unparseable item, the line it broke in (retrying
    cannot fix it)."""
    source = f"s3://{bucket}/{key}"
    try:
        response, _ = get_object(s3, bucket, key)
    except ObjectMissing as exc:
        yield missing_item(source, exc.code)
        return
    yield from object_items(source, response)


def object_items(source: str, response: Any) -> Iterator[Item]:
    """The values of a GetObject `response`, streamed (see stream_object), its body read until the invocation's
    time reserve at most (`handler.time_left`; no bound without a Lambda context): OutOfTime then."""
    from .handler import ENV_TIME_RESERVE, time_left
    left = time_left()
    stop_at = None if left is None else time.monotonic() + max(0.0, left)
    why = f"the invocation reached its time reserve ({ENV_TIME_RESERVE}); the record is retried"
    raw = io.BufferedReader(_StreamingBodyIO(response["Body"], stop_at, why), buffer_size=READ_CHUNK)
    try:
        if raw.peek(2)[:2] != GZIP_MAGIC:
            yield from iter_items(raw, source)
            return
        # A gzip object cut short or corrupt: its complete lines are read, the line it broke in is
        # dead-lettered with its bytes and the reason (retrying cannot fix it).
        gunzip = GunzipStream(raw)
        yield from gunzip.settle(iter_items(io.BufferedReader(gunzip, GZIP_READ_BYTES), source), source)
    finally:
        raw.close()
