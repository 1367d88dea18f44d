"""Secret values this process has been given are masked in every delivery error and rejection reason.

A server that answers an error by echoing the request (the API key in its error body, the token in a
quoted header) would otherwise carry the secret through the error text into logs and dead-letter
files. Connectors register each credential they are given (`connectors.config.Secret` does so when
made, `reveal()` for plain strings); `DeliveryError`, `Outcome` and `Rejected` mask what they carry.

Log records are masked too, whoever logs them: client libraries log what they send and receive (pymisp
logs its request headers, the API key among them, at DEBUG, and an error body that echoes the key at
ERROR, which reaches stderr with no logging configured). Once a secret is known, a log-record factory
masks the message, the traceback and the stack of every record a logger creates.
"""
from __future__ import annotations

import base64
import json
import logging
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
_scrubbing_logs = False


def remember(secret: Any) -> None:
    """Mask `secret` from now on: as is, URL-quoted, JSON-escaped and as Python's repr shows it (the forms
    an echo or a library's message takes: requests quotes a header value it refuses with !r)."""
    global _forms, _scrubbing_logs
    if not isinstance(secret, str) or len(secret) < MIN_CHARS or secret in _known:
        return
    with _lock:
        _known.add(secret)
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], repr(secret)[1:-1]}
        _forms = tuple(sorted(set(_forms) | forms, key=len, reverse=True))
        if not _scrubbing_logs:
            _scrubbing_logs = True
            _install_log_scrubber()


def remember_basic_auth(user: Any, password: Any) -> None:
    """Mask HTTP Basic credentials: the password, `user:password`, and its base64 as `Authorization: Basic`
    carries it (UTF-8, and Latin-1 as requests encodes it), so an echoed request header is masked too. The
    pair and its base64 are masked even when the password alone is too short to be: they give it away."""
    if not isinstance(password, str) or not password:
        return
    remember(password)
    pair = f"{user or ''}:{password}"
    remember(pair)
    for encoding in ("utf-8", "latin-1"):
        try:
            remember(base64.b64encode(pair.encode(encoding)).decode("ascii"))
        except UnicodeEncodeError:      # not Latin-1: requests could not send it that way either
            pass


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


def _install_log_scrubber() -> None:
    """Mask known secrets in every log record from now on: a record factory, so records of child loggers
    (urllib3.connectionpool, azure.core...) and records handled by any handler (pytest's, the Functions
    host's, Python's last-resort stderr one) are all covered. The factory in place before is kept."""
    make_record = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if _forms:
            _mask_record(record)
        return record

    logging.setLogRecordFactory(masked_record)


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is the handler's to report, as logging does
        return
    masked = redact(message)
    if masked != message:
        record.msg, record.args = masked, None        # formatted once here, so the handler cannot undo it
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        masked = redact(text)
        if masked != text:
            record.exc_text = masked                  # Formatter.format uses exc_text when it is set
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def forget_all() -> None:
    """Forget every secret (tests)."""
    global _forms
    with _lock:
        _known.clear()
        _forms = ()
