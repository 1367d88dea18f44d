"""Which of two versions of one event (same id) is newer, for the SOAR sinks' updates.

Events are updated and re-sent with their id (an incident's status moves to closed, an alert's to
resolved). The rule is the SQLite store's (docs/connectors/delivery.md): a later `timestamp` instant, or
the same instant and a later `data.updated_at` of an incident (absent counts as earliest). Instants are
compared, not spellings, to the microsecond.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from wia_security.timeutil import parse_iso


def is_newer(event: dict[str, Any], stored: Any) -> bool:
    """True when `event` is a newer version of `stored`; False for a re-send, an older version, or a stored
    event whose times cannot be read (an analyst edited it, say): then nothing is updated."""
    mine, theirs = _version(event), _version(stored)
    return mine is not None and theirs is not None and mine > theirs


def readable(stored: Any) -> bool:
    """Whether a stored event carries a version is_newer can compare (else every re-send is a duplicate)."""
    return _version(stored) is not None


def _version(event: Any) -> tuple[datetime, datetime] | None:
    if not isinstance(event, dict):
        return None
    data = event.get("data") if event.get("type") == "incident" else None
    updated = data.get("updated_at") if isinstance(data, dict) else None
    timestamp = event.get("timestamp")
    if not isinstance(timestamp, str) or not isinstance(updated, (str, type(None))):
        return None
    try:
        return parse_iso(timestamp), (parse_iso(updated) if updated is not None else _EARLIEST)
    except ValueError:
        return None


_EARLIEST = parse_iso("0001-01-01T00:00:00Z")
