"""Helpers the end-to-end paths share (a uniquely named module: every test folder has its own conftest)."""
from __future__ import annotations

import copy
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

from wia_security.pipeline import normalize

TOKEN = "e2e-gateway-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def newer(event: dict[str, Any], minutes: int, **changes: Any) -> dict[str, Any]:
    """A newer version of `event`: the same id, `timestamp` `minutes` later, top-level fields changed."""
    version = copy.deepcopy(event)
    instant = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")) + timedelta(minutes=minutes)
    version["timestamp"] = instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    version.update(changes)
    return version


def expected(event: dict[str, Any]) -> dict[str, Any]:
    """The event as every reader should hold it (the pipeline only adds `$schema` and ATT&CK names)."""
    return normalize(copy.deepcopy(event))


def write_ndjson(path: Path, events: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    # split at "\n" only: str.splitlines() also splits at U+2028, \x1c... which JSON writers leave raw in strings
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def store_rows(db: Path) -> dict[str, list[dict[str, Any]]]:
    """Every stored body by id (a list: more than one would be a duplicate)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    with sqlite3.connect(db) as conn:
        for event_id, body in conn.execute("SELECT id, body FROM events"):
            rows.setdefault(event_id, []).append(json.loads(body))
    return rows
