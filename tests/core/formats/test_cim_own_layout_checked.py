"""A CIM document with `wia_type` (this project's layout: its wia_* and mapped fields are taken as they are)
gives a valid WIA event or is refused at the field that carried the first invalid value, as the other
readers check their own layouts. Before, `to_wia` / `parse` gave such a document's event unchecked (a
`wia_severity` of 42, a `rule_id` that is a number), and `convert --from cim` refused it only afterwards,
naming the WIA pointer (`/severity`) instead of the field. Each test builds its own documents."""
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


def _doc(name: str = "alert/malware/new") -> dict[str, Any]:
    return json.loads(json.dumps(convert(dict(builder_events())[name], to="cim")))


@pytest.mark.parametrize("field,value,why", [
    ("wia_severity", 42, "/severity: 42 is greater than the maximum of 10"),
    ("wia_severity", -5, "/severity: -5 is less than the minimum of 0"),
    ("rule_id", -5, "/data/detection_rule/id: -5 is not of type string"),
    ("vendor_region", True, "/context/cloud/region: true is not of type string"),
])
def test_an_invalid_value_is_refused_at_its_field(field: str, value: Any, why: str) -> None:
    doc = _doc()
    assert field in doc["fields"]
    doc["fields"][field] = value
    for shaped, at in ((doc, "/fields"), ({"preview": False, "result": doc["fields"]}, "/result"),
                       (doc["fields"], "")):
        with pytest.raises(ConversionError) as info:
            get_format("cim").to_wia(shaped)
        assert info.value.path == f"{at}/{field}", str(info.value)
        assert info.value.reason.startswith("the event this CIM document gives (its wia_type names this project's "
                                            "layout) is not valid WIA at "), info.value.reason
        assert info.value.reason.endswith(why), info.value.reason


def test_a_value_several_fields_hold_names_the_fields() -> None:
    doc = _doc()
    doc["fields"]["wia_severity"] = 42
    doc["fields"]["dest_port"] = 42         # the same value in another field: which one gave it is not told
    with pytest.raises(ConversionError) as info:
        get_format("cim").to_wia(doc)
    assert info.value.path == "/fields" and "not valid WIA at /severity" in info.value.reason


def test_every_field_mutated_gives_valid_events_or_names_that_field() -> None:
    """Every corpus event's CIM document, each field replaced by values of other kinds: never an invalid
    event; each refusal of the check names the field changed (the builders' own refusals keep theirs)."""
    named = 0
    for _, event in builder_events()[::5]:
        doc = json.loads(json.dumps(convert(event, to="cim")))
        assert get_format("cim").to_wia(doc)
        for field in doc["fields"]:
            for value in ("three", -5, 10**12, ["a"], {"x": 1}, True, 42.5):
                changed = copy.deepcopy(doc)
                changed["fields"][field] = value
                try:
                    events = get_format("cim").to_wia(changed)
                except ConversionError as exc:
                    if exc.reason.startswith("the event this CIM document gives"):
                        assert exc.path == f"/fields/{field}", (field, value, str(exc))
                        named += 1
                    continue
                for out in events:
                    result = validate_event(out, warnings=False)
                    assert result.valid, (field, value, [(e.path, e.message) for e in result.errors[:2]])
    assert named > 300, named


def test_convert_names_the_line_and_the_field(tmp_path, capsys) -> None:
    good, bad = _doc(), _doc()
    bad["fields"]["wia_severity"] = 42
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    out, dead = tmp_path / "out.ndjson", tmp_path / "dead.ndjson"
    assert main(["convert", str(src), "--from", "cim", "-o", str(out), "--dead-letter", str(dead)]) == 1
    err = capsys.readouterr().err
    assert f"{src}:2: cannot convert from cim: cim at /fields/wia_severity: the event this CIM document gives" in err
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["where"] == f"{src}:2" and letter["errors"][0]["path"] == "/fields/wia_severity"
    assert len(out.read_text().splitlines()) == 1
