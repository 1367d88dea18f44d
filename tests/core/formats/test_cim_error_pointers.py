"""CIM errors name the field by its JSON pointer in the document sent: `/fields/<name>` in a `from_wia`
document, `/result/<name>` in a search/jobs/export row, `/result/fields/<name>` when both wrap it, and
`/<name>` in a flat result. Before, every error said `/fields/<name>`, a pointer that did not resolve in an
export row (the shape Splunk's export and alert webhooks send) or a flat result. Each test builds its own
documents (no shared state)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from wia_security.cli import main
from wia_security.errors import ConversionError
from wia_security.formats import get_format

#: a firewall search result a network event is read from, without the IPs it needs
TRAFFIC = {"_time": 1.0, "src": "host-a", "dest": "b", "tag": ["network", "communicate"]}


def _shapes(fields: dict[str, Any]) -> list[tuple[Any, str]]:
    return [({"fields": dict(fields), "datamodels": ["Network_Traffic.All_Traffic"]}, "/fields"),
            ({"preview": False, "offset": 0, "result": dict(fields)}, "/result"),
            ({"result": {"fields": dict(fields)}}, "/result/fields"),
            (dict(fields), "")]


@pytest.mark.parametrize("change,member", [
    (lambda f: f.pop("_time"), "_time"),                                  # required, missing
    (lambda f: f.__setitem__("_time", 1e20), "_time"),                    # out of range
    (lambda f: f.__setitem__("tag", []), "wia_type"),                     # nothing names the type
    (lambda f: None, "src"),                                              # a builder's refusal (no IPs)
])
def test_an_error_names_the_field_where_the_document_holds_it(change: Any, member: str) -> None:
    fields = dict(TRAFFIC)
    change(fields)
    for doc, at in _shapes(fields):
        if at == "/fields" and member == "wia_type":
            doc["datamodels"] = []
        with pytest.raises(ConversionError) as info:
            get_format("cim").to_wia(doc)
        assert info.value.path == f"{at}/{member}", (at, str(info.value))


def test_convert_names_the_line_and_the_pointer_of_an_export_row(tmp_path, capsys) -> None:
    src = tmp_path / "export.ndjson"
    row = {"preview": False, "offset": 0, "result": {"src": "1.2.3.4", "user": "x", "action": "failure",
                                                     "tag": ["authentication"]}}
    src.write_text(json.dumps(row) + "\n")
    dead = tmp_path / "dead.ndjson"
    assert main(["convert", str(src), "--from", "cim", "-o", str(tmp_path / "out"), "--dead-letter", str(dead)]) == 1
    err = capsys.readouterr().err
    assert f"{src}:1: cannot convert from cim: cim at /result/_time: _time (epoch seconds or an ISO 8601 time) " \
           f"is required" in err
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["errors"][0]["path"] == "/result/_time"


@pytest.mark.parametrize("value,why", [
    ("Jan 15 2024", "_time 'Jan 15 2024' is neither epoch seconds nor an ISO 8601 time"),
    ("2024-13-45T00:00:00Z", "_time '2024-13-45T00:00:00Z' is neither epoch seconds nor an ISO 8601 time"),
    (None, "_time (epoch seconds or an ISO 8601 time) is required"),
])
def test_an_unreadable_time_is_not_called_missing(value: Any, why: str) -> None:
    """A `_time` that is there but unreadable was refused as 'required', as if absent."""
    for doc, at in _shapes({**TRAFFIC, "_time": value}):
        with pytest.raises(ConversionError) as info:
            get_format("cim").to_wia(doc)
        assert info.value.path == f"{at}/_time" and info.value.reason == why, (at, str(info.value))
