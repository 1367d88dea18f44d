"""WIA -> format -> WIA round trips for every registered format that can parse, with hypothesis.

Each format states which WIA fields survive (class attributes, documented in docs/formats/README.md):
`survives` (dotted patterns for every event type: `data.indicators[].value`, `meta.*` for a subtree,
`*` for everything) and optionally `survives_by_type` (event type -> more patterns). A format that
states neither is held to be lossless (`*`). The assertions:

- realistic generated events: the parsed events are valid WIA, and every field the format lists
  came back equal (date-times: the same instant);
- the list is exact: over the corpus plus a seeded sample, the fields that survived in every event
  that had them are precisely the listed ones, so a regression (a listed field lost) and a stale
  list (an unlisted field now kept) both fail;
- wild events (any unicode where the schema allows any string): lossless formats give the event
  back exactly; the others either give valid events or refuse with ConversionError (never crash).
"""
from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from strategies import event_dicts, events
from survival import survivors, surviving
from wia_corpus import all_events
from wia_security import ConversionError, convert, validate_event
from wia_security.formats import FORMATS, get_format

#: Options a converter needs to run at all (ASFF: the AWS account the finding belongs to).
OPTIONS: dict[str, dict[str, Any]] = {"asff": {"account_id": "111111111111"}}
PARSERS = sorted(n for n in FORMATS if get_format(n).can_parse)
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CORPUS = [e for _, e in all_events()]


def declared(name: str, event_type: str) -> tuple[str, ...]:
    fmt = get_format(name)
    patterns = tuple(getattr(fmt, "survives", ("*",)))
    return patterns + tuple(getattr(fmt, "survives_by_type", {}).get(event_type, ()))


def listed(pattern: str, patterns: tuple[str, ...]) -> bool:
    for p in patterns:
        if p == "*" or p == pattern:
            return True
        if p.endswith(".*") and (pattern.startswith(p[:-1]) or pattern.startswith(p[:-2] + "[")):
            return True
        if "*" in p[:-2] and fnmatch.fnmatchcase(pattern, p):
            return True
    return False


def round_trip(name: str, event: dict[str, Any]) -> list[dict[str, Any]]:
    fmt = get_format(name)
    return fmt.to_wia(fmt.from_wia(event, **OPTIONS.get(name, {})))


def lossless(name: str) -> bool:
    return "*" in getattr(get_format(name), "survives", ("*",)) and not getattr(get_format(name), "survives_by_type", None)


def test_every_parsing_format_is_covered():
    assert {"ecs", "asff", "cim"} <= set(PARSERS)


@pytest.mark.parametrize("name", PARSERS)
@PROPERTY
@given(event=events())
def test_listed_fields_survive(name, event):
    back = round_trip(name, event)
    assert back, f"{name} gave no event back"
    for b in back:
        result = validate_event(b, warnings=False)
        assert result.valid, (name, result.errors)
    mine = next((b for b in back if b.get("id") == event["id"]), back[0])
    present, survived = survivors(event, mine)
    expected = {p for p in present if listed(p, declared(name, event["type"]))}
    assert expected <= survived, f"{name} lost {sorted(expected - survived)}"


@pytest.mark.parametrize("name", PARSERS)
def test_the_survival_list_is_exact(name):
    pairs = []
    for event in CORPUS + event_dicts(400, seed=11, times="any"):       # every valid time spelling
        back = round_trip(name, event)
        pairs.append((event, next((b for b in back if b.get("id") == event["id"]), back[0])))
    measured = surviving(pairs)
    for event_type, survived in sorted(measured.items()):
        present = set()
        for original, _ in pairs:
            if original["type"] == event_type:
                present |= survivors(original, original)[0]
        expected = {p for p in present if listed(p, declared(name, event_type))}
        assert survived == expected, (f"{name} {event_type}: listed but lost {sorted(expected - survived)}; "
                                      f"kept but not listed {sorted(survived - expected)}")


@pytest.mark.parametrize("name", PARSERS)
@PROPERTY
@given(event=events(wild=True))
def test_wild_events(name, event):
    try:
        back = round_trip(name, event)
    except ConversionError:
        assert not lossless(name), f"{name} claims to be lossless but refused its own output"
        return
    if lossless(name):
        assert back == [event]
    for b in back:
        assert validate_event(b, warnings=False).valid, b


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_conversion_does_not_change_the_input(name):
    import copy
    for event in CORPUS[::7]:
        before = copy.deepcopy(event)
        convert(event, to=name, **OPTIONS.get(name, {}))
        assert event == before
