"""Hostile LEEF lines: strictly valid WIA events or a ConversionError naming where."""
from __future__ import annotations

import pytest

from wia_security import validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format

LEEF = get_format("leef")
L1 = "LEEF:1.0|Acme|IDS|2.0|scan|"
L2 = "LEEF:2.0|Acme|IDS|2.0|scan|^|"


def one(line: str | bytes) -> dict:
    [event] = LEEF.to_wia(line)
    result = validate_event(event)
    assert result.valid and not result.warnings, [(i.path, i.message) for i in result.errors + result.warnings]
    return event


def test_escapes_are_undone() -> None:
    attrs = one(L2 + r"src=10.0.0.1^msg=a\=b\^c\\d^devTime=1700000000000")["meta"]["custom"]["leef"]
    assert attrs["msg"] == "a=b^c\\d" and attrs["src"] == "10.0.0.1"


def test_bom_syslog_and_multiline() -> None:
    assert one("\ufeff" + L2 + "src=10.0.0.1")["context"]["network"]["source"]["ip"] == "10.0.0.1"
    event = one("<165>1 2024-06-01T10:00:00Z host app - - - " + L1 + "src=10.0.0.1\tmsg=line1\nline2")
    assert event["meta"]["custom"]["leef"]["msg"] == "line1\nline2"
    assert event["timestamp"] == "2024-06-01T10:00:00.000Z"


def test_empty_attributes_give_an_alert() -> None:
    for line in (L1, L2, L2 + "^^^"):
        assert one(line)["meta"]["custom"]["leef"] == {}


def test_an_attribute_twice_with_different_values_is_refused() -> None:
    with pytest.raises(ConversionError) as info:
        LEEF.to_wia(L2 + "src=10.0.0.1^src=10.0.0.2")
    assert info.value.path == "attributes/src"
    assert one(L2 + "src=10.0.0.1^src=10.0.0.1")["context"]["network"]["source"]["ip"] == "10.0.0.1"


def test_ten_megabyte_values() -> None:
    assert len(one(L2 + "msg=" + "x" * 10_000_000)["meta"]["custom"]["leef"]["msg"]) == 10_000_000
    assert one(L2 + "msg=" + "a=" * 2_000_000)["meta"]["custom"]["leef"]["msg"] == "a=" * 2_000_000


def test_dev_time_with_its_format_and_a_zone() -> None:
    assert one(L2 + "devTime=05/12/2026 03:04^devTimeFormat=dd/MM/yyyy HH:mm")["timestamp"] == "2026-12-05T03:04:00.000Z"
    event = one(L2 + "devTime=2026-12-05 03:04:05 Europe/Berlin^devTimeFormat=yyyy-MM-dd HH:mm:ss z")
    assert event["timestamp"] == "2026-12-05T02:04:05.000Z" and event["meta"]["labels"]["timestamp_source"] == "devTime"


@pytest.mark.parametrize("doc,path", [
    ({"x": 1}, "line"), ([L2, None], "/1"), (b"LEEF:1.0|a|b|c|d|msg=\xc3", "line"),
    ("LEEF:2.0|a|b|c|d|x123456|src=1", "header"), ("LEEF:3.0|a|b|c|d|", "header"),
    ("LEEF:2.0|a|b|c|d|^|keyless", "attributes"), (L2 + "devTime=garbage", "attributes/devTime"),
    ("LEEF:2.0|WIA|Security|1.0.0|alert|^|wia.id=6f1d7c52-5a39-4d5e-9a43-8f0c2f6b1e21", "/timestamp"),
])
def test_unusable_documents_are_refused_with_where(doc, path: str) -> None:
    with pytest.raises(ConversionError) as info:
        LEEF.to_wia(doc)
    assert info.value.path == path, str(info.value)
