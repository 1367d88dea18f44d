"""The WIA extension is a property extension: the object carrying it is the event, as WIA. An extension
whose event is of another type than its carrier is (a sighting carrying an incident, a vulnerability
carrying an alert, a report carrying anything) would mean one thing to STIX consumers and another to
WIA, and no writer of this project makes one: it is refused at `.../event/type`, that event alone. Each
test builds its own bundle (no shared state)."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from wia_corpus import builder_events
from wia_security import convert
from wia_security.cli import main
from wia_security.errors import ConversionError
from wia_security.formats import get_format
from wia_security.formats.stix import WIA_EXTENSION, to_bundle
from wia_security.formats.stix.reader import CARRIED_TYPES

EXT = f"extensions/{WIA_EXTENSION}"


def _events() -> dict[str, dict[str, Any]]:
    return {name: copy.deepcopy(event) for name, event in builder_events()}


def _carrier_index(bundle: dict[str, Any]) -> int:
    [index] = [i for i, o in enumerate(bundle["objects"]) if WIA_EXTENSION in o.get("extensions", {})]
    return index


@pytest.mark.parametrize("written,carried,carrier_type", [
    ("alert/malware/new", "incident/malware", "sighting"),
    ("vulnerability/3.1", "alert/malware/new", "vulnerability"),
    ("incident/malware", "threat_intel/malware", "incident"),
    ("threat_intel/apt", "network_event/dns/allowed", "intrusion-set"),
    ("network_event/dns/allowed", "alert/intrusion/new", "observed-data"),
])
def test_an_extension_event_of_another_type_than_its_carrier_is_refused(written: str, carried: str,
                                                                       carrier_type: str) -> None:
    events = _events()
    bundle = json.loads(json.dumps(convert(events[written], to="stix")))
    i = _carrier_index(bundle)
    carrier = bundle["objects"][i]
    assert carrier["type"] == carrier_type
    carrier["extensions"][WIA_EXTENSION]["event"] = events[carried]
    reader = get_format("stix")
    with pytest.raises(ConversionError) as info:
        reader.to_wia(bundle)
    assert info.value.path == f"/objects/{i}/{EXT}/event/type"
    assert (f"the event of the WIA extension of {carrier['id']} is of type {events[carried]['type']!r}, "
            f"but a {carrier_type} carries ") in info.value.reason
    outcomes = reader.to_wia_each(bundle)
    refused = [o for o in outcomes if o.error is not None]
    assert [str(o.error) for o in refused] == [str(info.value)] and refused[0].member == carrier
    assert all(not o.events for o in outcomes)       # the carrier claims the objects made with it


def test_an_object_type_no_event_is_carried_by_carries_none() -> None:
    event = _events()["alert/malware/new"]
    bundle = json.loads(json.dumps(convert(event, to="stix")))
    i = _carrier_index(bundle)
    bundle["objects"][i]["type"] = "x-report"
    bundle["objects"][i]["id"] = bundle["objects"][i]["id"].replace("sighting--", "x-report--")
    with pytest.raises(ConversionError) as info:
        get_format("stix").to_wia(bundle)
    assert info.value.path == f"/objects/{i}/{EXT}/event/type"
    assert "but a x-report carries no WIA event" in info.value.reason


def test_every_event_written_comes_back_from_its_own_carrier() -> None:
    """The table is what the writer writes: every corpus event's carrier may carry it (and reads back)."""
    seen: set[tuple[str, str]] = set()
    for _, event in builder_events():
        bundle = json.loads(json.dumps(convert(event, to="stix")))
        carrier = bundle["objects"][_carrier_index(bundle)]
        assert event["type"] in CARRIED_TYPES[carrier["type"]]
        assert get_format("stix").to_wia(bundle) == [event]
        seen.add((carrier["type"], event["type"]))
    assert {t for t, _ in seen} >= {"sighting", "incident", "vulnerability", "malware", "intrusion-set", "campaign",
                                     "observed-data"}


def test_in_a_bundle_only_the_mismatched_event_is_refused(tmp_path, capsys) -> None:
    events = _events()
    good = [events["alert/malware/new"], events["incident/malware"]]
    bundle = json.loads(json.dumps(to_bundle(good)))
    carriers = [i for i, o in enumerate(bundle["objects"]) if WIA_EXTENSION in o.get("extensions", {})]
    sighting = next(i for i in carriers if bundle["objects"][i]["type"] == "sighting")
    bundle["objects"][sighting]["extensions"][WIA_EXTENSION]["event"] = events["vulnerability/3.1"]
    outcomes = get_format("stix").to_wia_each(bundle)
    assert [o.events for o in outcomes if o.ok] == [[events["incident/malware"]]]
    [refused] = [o for o in outcomes if o.error is not None]
    assert refused.path == f"/objects/{sighting}"
    assert refused.error is not None and refused.error.path == f"/objects/{sighting}/{EXT}/event/type"
    # the command line: file:line, the pointer, one dead letter, the other event written
    src = tmp_path / "bundle.json"
    src.write_text(json.dumps(bundle, indent=1) + "\n")
    out, dead = tmp_path / "out.ndjson", tmp_path / "dead.ndjson"
    assert main(["convert", str(src), "--from", "stix", "-o", str(out), "--dead-letter", str(dead)]) == 1
    err = capsys.readouterr().err
    assert f"{src}:1: cannot convert from stix: stix at /objects/{sighting}/{EXT}/event/type: " in err
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["where"] == f"{src}:1" and letter["errors"][0]["path"] == f"/objects/{sighting}/{EXT}/event/type"
    assert [json.loads(line) for line in out.read_text().splitlines()] == [events["incident/malware"]]
