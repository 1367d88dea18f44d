"""An HTTP answer's body read within a byte limit and a total time (requests with `stream=True`).

requests bounds each socket read by its read timeout, never the whole body: a server or proxy that
sends a byte every few seconds held one page for hours, and one that sends gigabytes filled memory.
Used by the OTX source and the QRadar offense client, which page through answers of unbounded size.
"""
from __future__ import annotations

import time
from typing import Any

import requests
import urllib3.exceptions

from wia_security.errors import DeliveryError

READ_SIZE = 65_536


def read_body(response: requests.Response, *, max_bytes: int, seconds: float, what: str, sink: str,
              started: float | None = None) -> bytes:
    """The whole (decoded) body of a streamed `response`, also left on it (`.json()` and `.text` work).
    A body over `max_bytes` is a permanent DeliveryError; one still arriving `seconds` after `started`
    (a time.monotonic() reading, such as when the request was sent; default: now) a retryable one; the
    connection is then closed, not reused. A connection that breaks while reading raises requests'
    exception, as reading without `stream` would."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes and "Content-Encoding" not in response.headers:
        response.close()
        raise _too_big(what, sink, max_bytes, f"it says it is {int(declared):,} bytes")
    deadline = (time.monotonic() if started is None else started) + seconds
    raw: Any = response.raw
    # urllib3 2's read1 returns what one socket read brought; read(n) would wait for n bytes
    read = raw.read1 if hasattr(raw, "read1") else raw.read
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise DeliveryError(f"{what}: the answer was still arriving after {seconds:g} s ({size:,} bytes so "
                                    "far): giving up on a server that trickles", sink=sink, retryable=True)
            chunk = read(READ_SIZE, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise _too_big(what, sink, max_bytes, "more arrived")
            chunks.append(chunk)
    except urllib3.exceptions.ReadTimeoutError as exc:           # mapped as requests' iter_content maps them
        response.close()
        raise requests.exceptions.ConnectionError(exc) from None
    except urllib3.exceptions.ProtocolError as exc:
        response.close()
        raise requests.exceptions.ChunkedEncodingError(exc) from None
    except urllib3.exceptions.DecodeError as exc:
        response.close()
        raise requests.exceptions.ContentDecodingError(exc) from None
    except urllib3.exceptions.SSLError as exc:
        response.close()
        raise requests.exceptions.SSLError(exc) from None
    except BaseException:
        response.close()                 # unread bytes: the connection cannot be reused
        raise
    body = b"".join(chunks)
    response._content = body             # requests' own cache of the body: .json(), .text read it
    response._content_consumed = True
    response.close()                     # read to the end: the connection goes back to the pool
    return body


def _too_big(what: str, sink: str, max_bytes: int, how: str) -> DeliveryError:
    return DeliveryError(f"{what}: the answer is over the {max_bytes:,}-byte limit ({how}): refused",
                         sink=sink, retryable=False)
