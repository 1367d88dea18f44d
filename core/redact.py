"""Secret values this process has been given are masked in every delivery error and rejection reason.

A server that answers an error by echoing the request (the API key in its error body, the token in a
quoted header) would otherwise carry the secret through the error text into logs and dead-letter
files. Connectors register each credential they are given (`connectors.config.Secret` does so when
made, `reveal()` for plain strings); `DeliveryError`, `Outcome` and `Rejected` mask what they carry.
"""
from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "<redacted>"
#: Shorter values are not masked: replacing "1" or "admin" everywhere would garble messages, and no
#: credential worth the name is that short.
MIN_CHARS = 8

_lock = threading.Lock()
_known: set[str] = set()
_forms: tuple[str, ...] = ()         # every form of every known secret, longest first


def remember(secret: Any) -> None:
    """Mask `secret` from now on: as is, URL-quoted and JSON-escaped (the forms an echo takes)."""
    global _forms
    if not isinstance(secret, str) or len(secret) < MIN_CHARS or secret in _known:
        return
    with _lock:
        _known.add(secret)
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
        _forms = tuple(sorted(set(_forms) | forms, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` with every known secret replaced by MASK."""
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like value (an error document) with every string redacted; as is when nothing is known."""
    if not _forms:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k) if isinstance(k, str) else k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


def forget_all() -> None:
    """Forget every secret (tests)."""
    global _forms
    with _lock:
        _known.clear()
        _forms = ()
