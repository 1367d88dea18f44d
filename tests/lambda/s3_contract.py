"""An S3 contract layer in front of moto for what moto lacks: the answers of S3 to a role that is not
granted everything. moto (no IAM evaluation by default) answers a GetObject of a missing key 404
NoSuchKey and of a missing version 404 NoSuchVersion; AWS answers both 403 AccessDenied to a caller
without s3:ListBucket on the bucket (the GetObject API reference, "Permissions": "If you don't have the
s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 Access Denied error"), and any read
naming a VersionId 403 AccessDenied to a caller without s3:GetObjectVersion. moto also sends no
x-amz-version-id for an object's "null" version (one written before its bucket's versioning was enabled, or
while it was suspended); S3 does in a bucket with a versioning state ("Objects that are stored in your
bucket before you set the versioning state have a version ID of null"), and takes `versionId=null`.

`S3Grants(moto_url, list_bucket=False, get_object_version=False)` is a fault proxy (tests/servers/
fault_proxy.py: faults can still be added) whose forwarded GetObject answers follow those rules (and name
the "null" version of a bucket with a versioning state); the
forwarder reaches it through AWS_ENDPOINT_URL_S3. Tests that rely on it say "contract" in their names.

`S3Trickle(moto_url)` sends one object's body a byte at a time after its first bytes (a stalled or
trickling GetObject body, which S3 or a network in between can produce)."""
from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from servers.fault_proxy import FaultProxy, _Handler, _Server

ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                 b"<Message>Access Denied</Message><RequestId>5ZRQ2N1M7BYX0K3T</RequestId>"
                 b"<HostId>contract</HostId></Error>")
#: what S3 hides behind AccessDenied from a caller without s3:ListBucket
HIDDEN = (b"<Code>NoSuchKey</Code>", b"<Code>NoSuchVersion</Code>")


class S3Grants(FaultProxy):
    """moto's S3 as a role granted s3:GetObject, and s3:ListBucket / s3:GetObjectVersion only if told."""

    def __init__(self, upstream: str, *, list_bucket: bool = False, get_object_version: bool = False) -> None:
        super().__init__(upstream)
        self.list_bucket, self.get_object_version = list_bucket, get_object_version
        self.denied: list[str] = []          # the paths answered AccessDenied, in order

    def forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(path)
        is_object = method == "GET" and parts.path.strip("/").count("/") >= 1     # /bucket/key, path style
        if is_object and not self.get_object_version and "versionId" in parse_qs(parts.query):
            return self._deny(path)
        status, out, data = super().forward(method, path, headers, body)
        if is_object and status == 404 and not self.list_bucket and any(code in data for code in HIDDEN):
            return self._deny(path)
        if (is_object and status in (200, 206) and not any(k.lower() == "x-amz-version-id" for k in out)
                and self._has_versioning(parts.path.strip("/").split("/", 1)[0])):
            out = {**out, "x-amz-version-id": "null"}
        return status, out, data

    def _has_versioning(self, bucket: str) -> bool:
        """Whether the bucket's versioning was ever set (GetBucketVersioning answers a Status)."""
        status, _, data = super().forward("GET", f"/{bucket}?versioning", {}, b"")
        return status == 200 and b"<Status>" in data

    def _deny(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.denied.append(path)
        return 403, {"Content-Type": "application/xml"}, ACCESS_DENIED


class S3Trickle(FaultProxy):
    """moto's S3, but a GetObject of one key (`trickle(bucket, key, first)`) sends its headers and the first
    `first` bytes of the object at once, then one byte every `interval` seconds until the client hangs up (at
    most `seconds`, then the connection is dropped): each socket read returns well within botocore's read
    timeout (60 s), so only the reader's own bound ends it. `abandoned` counts the trickles the client ended."""

    def __init__(self, upstream: str, *, interval: float = 0.5, seconds: float = 30.0) -> None:
        super().__init__(upstream)
        self.interval, self.seconds = interval, seconds
        self.path: str | None = None
        self.first = 0
        self.abandoned = 0
        self.ended = threading.Condition(self.lock)

    def trickle(self, bucket: str, key: str, first: int) -> "S3Trickle":
        self.path, self.first = f"/{bucket}/{key}", first
        return self

    def start(self) -> "S3Trickle":
        self._server = _Server(("127.0.0.1", 0), _TrickleHandler)
        self._server.proxy = self
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="s3-trickle").start()
        return self

    def abandoned_after(self, expected: int, timeout: float = 30) -> int:
        with self.ended:
            self.ended.wait_for(lambda: self.abandoned >= expected, timeout)
            return self.abandoned


class _TrickleHandler(_Handler):
    server: Any

    def _handle(self) -> None:
        proxy = self.server.proxy
        if self.command != "GET" or urlsplit(self.path).path != proxy.path:
            return super()._handle()
        status, headers, data = proxy.forward(self.command, self.path, self.headers, self._read_body())
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(data[:proxy.first])
        self.wfile.flush()
        deadline = time.monotonic() + proxy.seconds
        for position in range(proxy.first, len(data)):
            if self._wait_for_hang_up(min(proxy.interval, max(0.0, deadline - time.monotonic()))):
                with proxy.ended:
                    proxy.abandoned += 1
                    proxy.ended.notify_all()
                return self._drop()
            if time.monotonic() >= deadline:
                return self._drop()
            try:
                self.wfile.write(data[position:position + 1])
                self.wfile.flush()
            except OSError:
                return self._drop()

    do_GET = _handle
