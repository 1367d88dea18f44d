"""Structured JSON logs for the forwarder: one JSON object per line on stdout, secrets scrubbed.

Every resolved secret value is registered with `redact()`; the formatter replaces any occurrence
in the final line (message, fields, exception text) with "***", so a secret can never reach
CloudWatch even if an exception message quotes it.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_SECRETS: set[str] = set()
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(value: str) -> None:
    """Never log `value` (secrets shorter than 4 characters are refused upstream; all are registered)."""
    if value:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    # and what the core remembers besides (proxy credentials when a sink opens, Basic-auth forms); not
    # imported here: a cold start loads no core, and a core not loaded has remembered nothing
    core = sys.modules.get("wia_security.redact")
    return core.redact(text) if core is not None else text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            # masked as written: in the JSON line a secret with a quote, a backslash or a control character is escaped
            doc["exception"] = scrub(self.formatException(record.exc_info))
        return scrub(json.dumps(doc, default=str, ensure_ascii=False))


class ScrubFilter(logging.Filter):
    """Scrubs secrets from the record itself, so no handler (ours or any other) ever sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, scrub(value))
        return True


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (Lambda's, or a test's capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def get_logger(name: str = "wia_lambda") -> logging.Logger:
    """The forwarder's logger: JSON lines on stdout (Lambda ships stdout to CloudWatch Logs as is)."""
    logger = logging.getLogger(name)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.addFilter(ScrubFilter())
        logger.propagate = False
        logger.setLevel(logging.INFO)
    return logger
