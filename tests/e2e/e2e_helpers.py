"""Helpers the end-to-end paths share (a uniquely named module: every test folder has its own conftest)."""
from __future__ import annotations

import copy
import json
import re
import sqlite3
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

from wia_security.pipeline import normalize

TOKEN = "e2e-gateway-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def newer(event: dict[str, Any], minutes: int, **changes: Any) -> dict[str, Any]:
    """A newer version of `event`: the same id, `timestamp` `minutes` later, top-level fields changed."""
    from wia_security.timeutil import parse_iso, to_iso
    version = copy.deepcopy(event)
    # any spelling the schema takes (t/z, 7-12 fraction digits, a trailing line break): the builders' one back
    version["timestamp"] = to_iso(parse_iso(event["timestamp"]) + timedelta(minutes=minutes))
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


def time_spellings() -> list[str]:
    """Every kind of RFC 3339 date-time the schema's date-time format takes (valid WIA timestamps): `Z`/`z`/`t`,
    `-00:00`, no fraction and 1-12 fraction digits, offsets up to +-23:59 (past Java's +-18:00), years 0001 and 9999
    with offsets that cross the year in UTC, a trailing line break (the validator takes it, as jsonschema does)."""
    base = "2026-03-14T15:09:26"
    spellings = [base + "Z", base + "z", "2026-03-14t15:09:26Z", "2026-03-14t15:09:26.25z", base + "-00:00",
                 base + "+00:00"]
    spellings += [f"{base}.{'123456789012'[:n]}Z" for n in range(1, 13)]
    spellings += [base + ".999999999999Z", "2026-12-31T23:59:59.9999Z", "2026-12-31T23:59:59.9995z"]
    spellings += [f"{base}.5{offset}" for offset in ("+23:59", "-23:59", "+18:00", "-18:00", "+18:01", "-19:22",
                                                     "+14:00", "-12:00", "+05:45", "-09:30")]
    spellings += ["0001-01-01T00:00:00Z", "0001-01-01T23:00:00+23:00", "0001-01-01T00:00:00.001-23:59",
                  "0001-12-31T23:30:00-01:00", "9998-12-31T23:00:00-01:00", "9999-12-31T23:59:59.999Z",
                  "9999-12-31T00:30:00+23:59", "9999-12-31T00:00:00-00:00", base + "Z\n",
                  "2026-03-14t15:09:26.5-19:22\n"]
    return spellings


#: Valid WIA timestamps whose instant in UTC is outside the years 0001-9999 that most products hold.
OUT_OF_RANGE_SPELLINGS = ["0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-00:01"]

#: (older, newer) timestamps of one event: the newer instant sorts first as a string (+14:00 against Z, more
#: fraction digits against Z, T against t, +23:59 against a day earlier in Z)
VERSION_PAIRS = [("2026-03-15T09:00:00.000+14:00", "2026-03-14T20:00:00Z"),
                 ("2026-03-14T20:00:00.5Z", "2026-03-14T20:00:00.50001-00:00"),
                 ("2026-03-14T20:00:00.9Z", "2026-03-14T20:00:00.91Z"),
                 ("2026-03-14t20:00:00z", "2026-03-14T20:00:00.001Z"),
                 ("2026-03-15T03:00:00+23:59", "2026-03-14T03:02:00-00:00"),
                 ("2026-03-14T23:59:59.999+23:59", "2026-03-14T00:01:00.0001Z")]


def with_times(events: list[dict[str, Any]], spellings: list[str]) -> list[dict[str, Any]]:
    """`events` (as many as `spellings`), each with the next spelling as its timestamp."""
    assert len(events) >= len(spellings)
    for event, spelling in zip(events, spellings):
        event["timestamp"] = spelling
    return events[:len(spellings)]


def instant(text: str) -> datetime:
    from wia_security.timeutil import parse_iso
    return parse_iso(text)


# -- the XSOAR pack's fetch, run as XSOAR runs it (its integration file, the pack tests' demistomock stand-in) --------
ROOT = Path(__file__).resolve().parents[2]
XSOAR_PACK = ROOT / "xsoar_pack" / "Packs" / "WIASecurity"
#: RFC 3339 date-time as Go's time.Parse(time.RFC3339, ...) takes it (upper-case T and Z, at most 9 fraction digits)
GO_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)")


def demistomock() -> Any:
    """The pack tests' demistomock stand-in (importable once their stubs folder is on sys.path)."""
    stubs = str(ROOT / "tests" / "xsoar_pack" / "stubs")
    if stubs not in sys.path:
        sys.path.append(stubs)
    import demistomock as mock
    return mock


def xsoar_fetch(integration: Any, params: dict[str, Any], last_run: dict[str, Any] | None
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One fetch-incidents of the loaded `integration`: its incidents and its last run (no error entry allowed)."""
    mock = demistomock()
    mock.reset(params=params, args={}, command="fetch-incidents", last=last_run)
    try:
        integration.main()
    except SystemExit:
        pass
    errors = [r for r in mock.results_log if isinstance(r, dict) and r.get("Type") == 4]
    assert not errors, errors
    return mock.incidents_out[-1], mock.last_run


# -- the CLI as a test runs it ----------------------------------------------------------------------------------------
def cli_summary(args: list[str], capsys: Any) -> dict[str, Any]:
    """`wia-security ARGS --summary json` in process: its summary, with its exit code as `exit`."""
    from wia_security.cli import main
    code = main([*args, "--summary", "json"])
    summary = json.loads(capsys.readouterr().out)
    summary["exit"] = code
    return summary


def pull_summary(source: str, to: str, checkpoint: Path, dead_letter: Path, capsys: Any) -> dict[str, Any]:
    """`pull SOURCE --to TO` with a checkpoint and a dead letter: its summary (exit 0 required)."""
    summary = cli_summary(["pull", source, "--to", to, "--checkpoint", str(checkpoint),
                           "--dead-letter", str(dead_letter)], capsys)
    assert summary.pop("exit") == 0, summary
    return summary
