"""Lenient mode reaches the readers' own-layout check. The readers validate an event they restore from this
project's own layout (CEF/LEEF wia. keys, the STIX WIA extension, OCSF unmapped.wia, ECS wia.*, ASFF
ProductFields wia.*); that check was strict only, so `convert --from X --lenient`, which accepted a document
carrying null for an absent optional member (the validator drops it), refused it once the readers checked.
The upstream auth-event sample carries two such nulls; `from_wia` writes them into STIX, ECS and ASFF."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wia_security import ConversionError, convert, parse, validate_event
from wia_security.formats import get_format

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "auth-event-sample.json"
OPTIONS: dict[str, dict[str, Any]] = {"asff": {"account_id": "123456789012"}}


def _event() -> dict[str, Any]:
    event = json.loads(SAMPLE.read_text())
    assert event["data"]["source"]["hostname"] is None and event["data"]["session_id"] is None
    return event


def _without_nulls(event: dict[str, Any]) -> dict[str, Any]:
    event = json.loads(json.dumps(event))
    del event["data"]["source"]["hostname"], event["data"]["session_id"]
    return event


def _document(name: str) -> Any:
    """The sample in `name`'s own layout, with its nulls: as `from_wia` writes them (STIX, ECS, ASFF), or
    (CEF, LEEF, whose writers leave nulls out) with a carried member set to null by hand (a member the schema
    types as a string reads `null` as that text, so a boolean one)."""
    event = _event()
    if name in ("cef", "leef"):
        event = _without_nulls(event)
        del event["data"]["mfa_used"]
        return convert(event, to=name) + (" " if name == "cef" else "^") + "wia.data.mfa_used=null"
    return convert(event, to=name, **OPTIONS.get(name, {}))


#: OCSF is not here: a null in its `unmapped.wia` patch removes the member (the patch's rule), so no null
#: reaches the event it checks.
OWN = ("stix", "ecs", "asff", "cef", "leef")
NULLED = {"cef": "mfa_used", "leef": "mfa_used"}


@pytest.mark.parametrize("name", OWN)
def test_a_reader_refuses_a_null_member_strictly_and_drops_it_leniently(name):
    doc = _document(name)
    with pytest.raises(ConversionError, match="null is not of type"):
        get_format(name).to_wia(doc)
    [event] = get_format(name).to_wia(doc, lenient=True)
    assert validate_event(event).valid, validate_event(event).errors
    assert NULLED.get(name, "session_id") not in event["data"]
    if name in ("stix", "ecs", "asff"):
        assert "hostname" not in event["data"]["source"]
    # each outcome too (what convert --from reads), and the library's parse()
    [outcome] = get_format(name).to_wia_each(doc, lenient=True)
    assert outcome.ok and outcome.events == [event]
    assert [e.to_dict() for e in parse(doc, from_=name, lenient=True)] == [event]


@pytest.mark.parametrize("name", OWN)
def test_convert_from_with_lenient_takes_what_it_took_before_the_readers_checked(name, tmp_path):
    doc = _document(name)
    src = tmp_path / f"in.{name}"
    src.write_text((doc if isinstance(doc, str) else json.dumps(doc)) + "\n")

    def run(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "wia_security", "convert", str(src), "--from", name, *flags,
                               "-o", str(tmp_path / "out.ndjson"), "--dead-letter", str(tmp_path / "dead.ndjson")],
                              capture_output=True, text=True, timeout=60)

    strict = run()
    assert strict.returncode == 1 and "null is not of type" in strict.stderr
    lenient = run("--lenient")
    assert lenient.returncode == 0, lenient.stderr
    [line] = (tmp_path / "out.ndjson").read_text().splitlines()
    event = json.loads(line)
    assert validate_event(event).valid and NULLED.get(name, "session_id") not in event["data"]
