"""ASFF errors name the finding by its JSON pointer in the document the caller sent: `/Findings/N/...`,
`/detail/findings/N/...` (the EventBridge event), `/N/...` (a list), `/...` (a single finding). Before,
every error said `/Findings/<index>` whatever held the findings (index 0 for a single one), a pointer that
did not resolve in three of the four shapes. Each test builds its own documents (no shared state)."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from wia_security.cli import main
from wia_security.errors import ConversionError
from wia_security.formats import get_format

FOREIGN = Path(__file__).parent / "foreign" / "asff"


def _findings() -> tuple[dict[str, Any], dict[str, Any]]:
    good = json.loads((FOREIGN / "guardduty-ssh-bruteforce.json").read_text())
    bad = copy.deepcopy(good)
    del bad["CreatedAt"]
    return good, bad


def _resolve(doc: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


@pytest.mark.parametrize("shape,member", [
    ("findings", "/Findings/1"), ("eventbridge", "/detail/findings/1"), ("list", "/1"), ("single", ""),
])
def test_a_refused_finding_is_named_by_its_pointer_in_the_document(shape: str, member: str) -> None:
    good, bad = _findings()
    doc: Any = {"Findings": [good, bad]} if shape == "findings" else \
        {"detail-type": "Security Hub Findings - Imported", "detail": {"findings": [good, bad]}} \
        if shape == "eventbridge" else [good, bad] if shape == "list" else bad
    reader = get_format("asff")
    with pytest.raises(ConversionError) as info:
        reader.to_wia(doc)
    assert info.value.path == f"{member}/CreatedAt"
    assert _resolve(doc, member) is bad                  # the pointer leads to the finding refused
    outcomes = reader.to_wia_each(doc)
    refused = [o for o in outcomes if o.error is not None]
    assert [o.error.path for o in refused] == [f"{member}/CreatedAt"]
    assert len([o for o in outcomes if o.ok]) == (0 if shape == "single" else 1)


def test_a_shape_error_of_a_single_finding_and_a_member_that_is_no_object_are_named() -> None:
    good, _ = _findings()
    doc = copy.deepcopy(good)
    doc["Network"] = {"SourcePort": 70000}
    with pytest.raises(ConversionError) as info:
        get_format("asff").to_wia(doc)
    assert info.value.path == "/Network/SourcePort"
    with pytest.raises(ConversionError) as info:
        get_format("asff").to_wia([good, "not a finding"])
    assert info.value.path == "/1"
    with pytest.raises(ConversionError) as info:
        get_format("asff").to_wia({"Findings": [good, "not a finding"]})
    assert info.value.path == "/Findings/1"


def test_convert_names_the_line_and_the_pointer(tmp_path, capsys) -> None:
    good, bad = _findings()
    src = tmp_path / "findings.ndjson"
    event_bridge = {"detail-type": "Security Hub Findings - Imported", "detail": {"findings": [bad, good]}}
    src.write_text("\n".join(json.dumps(d) for d in (good, bad, event_bridge)) + "\n")
    out, dead = tmp_path / "out.ndjson", tmp_path / "dead.ndjson"
    assert main(["convert", str(src), "--from", "asff", "-o", str(out), "--dead-letter", str(dead)]) == 1
    err = capsys.readouterr().err
    assert f"{src}:2: cannot convert from asff: asff at /CreatedAt: required member CreatedAt is missing" in err
    assert f"{src}:3: cannot convert from asff: asff at /detail/findings/0/CreatedAt: " in err
    assert len(out.read_text().splitlines()) == 2
    assert [json.loads(line)["errors"][0]["path"] for line in dead.read_text().splitlines()] == \
        ["/CreatedAt", "/detail/findings/0/CreatedAt"]
