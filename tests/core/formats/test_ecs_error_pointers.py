"""An ECS document in this project's layout whose event is not valid WIA is refused at the JSON pointer, in
the document as it came (nested or dotted keys), of the field that carried the first invalid value: the
`wia.*` member, else the ECS field the mapping reads it from. Before, a mapped field's value was named only
as the document itself (path ""), so `convert --from ecs` said `file:3: ... ecs: ... not valid WIA at
/timestamp` without naming `@timestamp`. Each test builds its own documents (no shared state)."""
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


def _doc() -> dict[str, Any]:
    return json.loads(json.dumps(convert(dict(builder_events())["alert/malware/new"], to="ecs")))


def _dotted(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The document with dotted keys, as Beats and Elastic Agent may send it (`wia.*` dotted too)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(_dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _refused(doc: Any) -> ConversionError:
    with pytest.raises(ConversionError) as info:
        get_format("ecs").to_wia(doc)
    [outcome] = get_format("ecs").to_wia_each(doc)
    assert outcome.error is not None and str(outcome.error) == str(info.value)
    return info.value


@pytest.mark.parametrize("field,value,nested,dotted,why", [
    (("@timestamp",), "yesterday", "/@timestamp", "/@timestamp", "/timestamp: 'yesterday' is not a valid date-time"),
    (("event", "risk_score"), 55, "/event/risk_score", "/event.risk_score", "/severity: 55 is greater than"),
    (("event", "id"), "not-a-uuid", "/event/id", "/event.id", "/id: 'not-a-uuid' is not a valid uuid"),
    (("host", "hostname"), 5, "/host/hostname", "/host.hostname", "/context/host/hostname: 5 is not of type"),
    (("user", "email"), "bad", "/user/email", "/user.email", "/context/user/email: 'bad'"),
    (("wia", "data", "count"), "three", "/wia/data/count", "/wia.data.count", "/data/count: 'three'"),
])
def test_the_field_that_carried_an_invalid_value_is_named(field: tuple[str, ...], value: Any, nested: str,
                                                          dotted: str, why: str) -> None:
    doc = _doc()
    node = doc
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    error = _refused(doc)
    assert error.path == nested and f"not valid WIA at {why}" in error.reason, str(error)
    assert _refused(_dotted(copy.deepcopy(doc))).path == dotted
    # in a search response, below the hit's _source
    response = {"hits": {"hits": [{"_index": "x", "_source": _doc()}, {"_index": "x", "_source": doc}]}}
    good, bad = get_format("ecs").to_wia_each(response)
    assert good.ok and bad.error is not None and bad.error.path == f"/hits/hits/1/_source{nested}"


def test_a_value_no_field_gave_still_names_the_document() -> None:
    """A required member no field gives (event.id removed): the document itself, as before."""
    doc = _doc()
    del doc["event"]["id"]
    error = _refused(doc)
    assert error.path == "" and "not valid WIA at /id: required property 'id' is missing" in error.reason, str(error)


def test_convert_names_the_line_and_the_field(tmp_path, capsys) -> None:
    good, bad = _doc(), _doc()
    bad["@timestamp"] = "yesterday"
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    out, dead = tmp_path / "out.ndjson", tmp_path / "dead.ndjson"
    assert main(["convert", str(src), "--from", "ecs", "-o", str(out), "--dead-letter", str(dead)]) == 1
    err = capsys.readouterr().err
    assert f"{src}:2: cannot convert from ecs: ecs at /@timestamp: " in err
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["where"] == f"{src}:2" and letter["errors"][0]["path"] == "/@timestamp"
