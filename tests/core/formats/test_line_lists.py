"""A CEF or LEEF document may be a JSON list of lines (`parse(["CEF:0|...", ...], from_="cef")`). A line of
it that cannot be read is named by its index in the list, its own location below it (`/3/extension/cnt`,
`/3/header`, `/3/data/incident_id`; `/3` for an item that is no text), and refuses only itself in
`to_wia_each`; `to_wia` raises the first such refusal. Each test builds its own documents (no shared state)."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from wia_corpus import builder_events
from wia_security import convert, validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format


def _alert() -> dict[str, Any]:
    event = copy.deepcopy(builder_events()[0][1])
    event["severity"] = 8           # a whole number: CEF's header and LEEF's `sev` carry it alone
    assert validate_event(event, warnings=False).valid
    return event


def _lines(fmt: str) -> tuple[str, str, str, str, str]:
    """(a good line, one whose own-layout event is invalid, its key's path, why, a line with no header)."""
    good = convert(_alert(), to=fmt)
    if fmt == "cef":
        assert good.count(" cnt=3 ") == 1
        return good, good.replace(" cnt=3 ", " cnt=three "), "extension/cnt", "/data/count: 'three'", "not a CEF line"
    assert good.count("^sev=8^") == 1
    return good, good.replace("^sev=8^", "^sev=42^"), "attributes/sev", "/severity: 42", "not a LEEF line"


@pytest.mark.parametrize("fmt", ["cef", "leef"])
def test_a_bad_line_of_a_list_names_its_index_and_refuses_only_itself(fmt: str) -> None:
    good, invalid, key_path, why, headless = _lines(fmt)
    reader = get_format(fmt)
    expected = reader.to_wia(good)
    outcomes = reader.to_wia_each([good, invalid, good, 42, headless.encode(), good])
    assert [o.path for o in outcomes] == ["/0", "/1", "/2", "/3", "/4", "/5"]
    assert [o.events for o in outcomes if o.ok] == [expected, expected, expected]
    refused = {o.path: o.error for o in outcomes if o.error is not None}
    assert {p: e.path for p, e in refused.items()} == {"/1": f"/1/{key_path}", "/3": "/3", "/4": "/4/header"}
    assert all(e.format_name == fmt for e in refused.values())
    assert f"is not valid WIA at {why}" in refused["/1"].reason, refused["/1"].reason
    assert "a line must be text, got int" in refused["/3"].reason
    # the member a dead letter would hold is the line itself
    assert [o.member for o in outcomes] == [good, invalid, good, 42, headless.encode(), good]
    # to_wia: all or nothing, the first refusal raised as to_wia_each gave it
    with pytest.raises(ConversionError) as info:
        reader.to_wia([good, good, invalid])
    assert info.value.path == f"/2/{key_path}"
    assert str(info.value).startswith(f"{fmt} at /2/{key_path}: ")


@pytest.mark.parametrize("fmt", ["cef", "leef"])
def test_a_missing_member_of_a_line_in_a_list_is_named_below_the_index(fmt: str) -> None:
    """A line in the own layout that no key gives a required member of: the event's pointer, under the index."""
    line = ("CEF:0|WIA|Security|1.0.0|incident|Title|5|cs1Label=wiaEventId cs1=6f1d7c52-5a39-4d5e-9a43-8f0c2f6b1e21 "
            "rt=1765704600000 wia.source.type=custom wia.source.name=x cat=malware") if fmt == "cef" else (
            "LEEF:2.0|WIA|Security|1.0.0|incident|^|wia.id=6f1d7c52-5a39-4d5e-9a43-8f0c2f6b1e21^"
            "devTime=2025-12-14T09:30:00.000+0000^sev=5^wia.source.type=custom^wia.source.name=x^cat=malware")
    reader = get_format(fmt)
    with pytest.raises(ConversionError) as alone:
        reader.to_wia(line)
    assert alone.value.path == "/data/incident_id"
    good = convert(_alert(), to=fmt)
    outcomes = reader.to_wia_each([good, line])
    assert outcomes[0].ok and outcomes[1].error is not None
    assert outcomes[1].error.path == "/1/data/incident_id"
    assert outcomes[1].error.reason == alone.value.reason


@pytest.mark.parametrize("fmt", ["cef", "leef"])
def test_one_line_keeps_its_own_paths_and_a_list_of_good_lines_reads_whole(fmt: str) -> None:
    good, invalid, key_path, _, headless = _lines(fmt)
    reader = get_format(fmt)
    with pytest.raises(ConversionError) as info:
        reader.to_wia(invalid)
    assert info.value.path == key_path                  # a single line: no index
    [outcome] = reader.to_wia_each(headless)
    assert outcome.error is not None and outcome.error.path == "header" and outcome.path == "header"
    assert reader.to_wia([good, good]) == reader.to_wia(good) * 2
    assert reader.to_wia([]) == [] and reader.to_wia_each([]) == []
