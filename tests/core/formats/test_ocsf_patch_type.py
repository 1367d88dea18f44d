"""An OCSF event's class decides its WIA type (class_uid, and for 4001 `metadata.event_code`); the
`unmapped.wia` patch never changes it. A patch that sets another type, valid or not, or null, is refused
at `/unmapped/wia/type` naming the class, instead of an event of the patch's type whose data were read
for the class and filled with the other type's defaults (an alert's Detection Finding came back as an
incident with a made-up incident_id). Each test builds its own documents (no shared state)."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from wia_corpus import builder_events
from wia_security import convert, validate_event
from wia_security.cli import main
from wia_security.errors import ConversionError
from wia_security.formats import get_format
from wia_security.schemas import EVENT_TYPES


def _event(name: str) -> dict[str, Any]:
    return copy.deepcopy(dict(builder_events())[name])


def _ocsf(event: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(convert(event, to="ocsf")))


@pytest.mark.parametrize("other", sorted(set(EVENT_TYPES) - {"alert"}) + ["bogus", None, 5])
def test_a_patch_that_changes_the_type_is_refused_naming_the_class(other: Any) -> None:
    doc = _ocsf(_event("alert/malware/new"))
    assert doc["class_uid"] == 2004
    doc["unmapped"]["wia"]["type"] = other
    reader = get_format("ocsf")
    with pytest.raises(ConversionError) as info:
        reader.to_wia(doc)
    assert info.value.path == "/unmapped/wia/type"
    assert f"sets `type` to {other!r}, but this OCSF event's class (class_uid 2004) makes it 'alert'" \
        in info.value.reason
    [outcome] = reader.to_wia_each(doc)
    assert outcome.error is not None and str(outcome.error) == str(info.value)


def test_the_event_code_of_class_4001_decides_between_network_and_endpoint() -> None:
    endpoint = next(e for name, e in builder_events() if name.startswith("endpoint_event/network_connection"))
    doc = _ocsf(endpoint)
    assert doc["class_uid"] == 4001 and doc["metadata"]["event_code"] == "network_connection"
    doc.setdefault("unmapped", {}).setdefault("wia", {})["type"] = "network_event"
    with pytest.raises(ConversionError) as info:
        get_format("ocsf").to_wia(doc)
    assert info.value.path == "/unmapped/wia/type" and "makes it 'endpoint_event'" in info.value.reason


def test_a_patch_that_repeats_the_class_type_is_exact() -> None:
    event = _event("incident/malware")
    doc = _ocsf(event)
    doc["unmapped"]["wia"]["type"] = "incident"
    assert get_format("ocsf").to_wia(doc) == [event]


def test_in_an_array_only_the_element_that_changes_its_type_is_refused(tmp_path, capsys) -> None:
    alert = _event("alert/malware/new")
    good = _ocsf(alert)
    bad = _ocsf(alert)
    bad["unmapped"]["wia"]["type"] = "incident"
    outcomes = get_format("ocsf").to_wia_each([good, bad, good])
    assert [o.events for o in outcomes if o.ok] == [[alert], [alert]]
    assert outcomes[1].error is not None and outcomes[1].error.path == "/1/unmapped/wia/type"
    # the command line: file:line, the pointer, one dead letter holding the element
    src = tmp_path / "in.ocsf.json"
    src.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    out, dead = tmp_path / "out.ndjson", tmp_path / "dead.ndjson"
    assert main(["convert", str(src), "--from", "ocsf", "-o", str(out), "--dead-letter", str(dead)]) == 1
    err = capsys.readouterr().err
    assert f"{src}:2: cannot convert from ocsf: ocsf at /unmapped/wia/type: the `unmapped.wia` patch sets `type` " \
           f"to 'incident'" in err
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["where"] == f"{src}:2" and letter["errors"][0]["path"] == "/unmapped/wia/type"
    assert [json.loads(line) for line in out.read_text().splitlines()] == [alert]
    assert validate_event(alert, warnings=False).valid


@pytest.mark.parametrize("name,other", [
    ("network_event/dns/allowed", "http"), ("network_event/http/allowed", "dns"),
    ("endpoint_event/process_creation", "file_create"), ("auth_event/login_success", "password_change"),
    ("auth_event/login_success", "login_failure"),
])
def test_a_patch_that_changes_the_sub_type_is_refused_naming_the_class(name: str, other: str) -> None:
    """The class (with its activity, status or event_code) gives `data.event_type` exactly: a DNS Activity
    whose patch said `http` came back as an HTTP network event."""
    event = _event(name)
    doc = _ocsf(event)
    doc.setdefault("unmapped", {}).setdefault("wia", {}).setdefault("data", {})["event_type"] = other
    with pytest.raises(ConversionError) as info:
        get_format("ocsf").to_wia(doc)
    assert info.value.path == "/unmapped/wia/data/event_type"
    assert (f"sets `data.event_type` to {other!r}, but this OCSF event's class (class_uid {doc['class_uid']}, with its "
            f"activity, status or event_code) makes it {event['data']['event_type']!r}") in info.value.reason


def test_a_patch_that_repeats_the_sub_type_is_exact_for_every_corpus_event() -> None:
    for _, event in builder_events():
        if event["type"] not in ("network_event", "endpoint_event", "auth_event"):
            continue
        doc = _ocsf(event)
        doc.setdefault("unmapped", {}).setdefault("wia", {}).setdefault("data", {})["event_type"] = \
            event["data"]["event_type"]
        assert get_format("ocsf").to_wia(doc) == [event]
