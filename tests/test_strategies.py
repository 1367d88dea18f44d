"""The shared event generators produce what they promise: valid events of every type, and mutants."""
import random
import re
from datetime import datetime, timezone

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

from strategies import EVENT_TYPES, event_dicts, events, mutations
from wia_security import validate_event
from wia_security.formats._wia_paths import TIME_KEYS
from wia_security.timeutil import parse_iso

_EARLIEST = datetime(1, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


@settings(max_examples=150, deadline=None)
@given(events())
def test_hypothesis_events_are_valid(event):
    result = validate_event(event)
    assert result.valid, result.errors


@settings(max_examples=60, deadline=None)
@given(events(wild=True))
def test_wild_events_are_valid(event):
    assert validate_event(event).valid


def test_event_dicts_are_deterministic_valid_and_cover_every_type():
    batch = event_dicts(700, seed=7)
    assert batch == event_dicts(700, seed=7)
    assert {e["type"] for e in batch} == set(EVENT_TYPES)
    assert all(validate_event(e).valid for e in batch)


def test_event_generation_compiles_each_schema_once(monkeypatch):
    """Generated events are read off the compiled schemas, which stay the same: compiling one for each event made
    event_dicts() (the corpora of about 130 test files) twice as slow, and the events no different."""
    import strategies
    strategies._root_parts.cache_clear()
    compiled: list[str] = []
    load_node = strategies.load_node
    monkeypatch.setattr(strategies, "load_node", lambda uri: compiled.append(uri) or load_node(uri))
    batch = event_dicts(300, seed=7)
    assert len(compiled) == len(set(compiled)) == len({e["type"] for e in batch})


def test_mutations_mostly_break_events():
    rnd = random.Random(3)
    mutants = [m for e in event_dicts(200, seed=3) for m in mutations(e, rnd, 3)]
    invalid = sum(not validate_event(m).valid for m in mutants)
    assert invalid > len(mutants) * 0.5


def _spelling(value: str) -> frozenset[str]:
    """The features of one date-time's spelling that the generator promises to draw."""
    text = value.rstrip("\n")
    offset = text[19:].lstrip(".0123456789")
    fraction = len(text[19:]) - len(offset) - 1
    features = {"T" if text[10] == "T" else "t", offset if offset in ("Z", "z", "+00:00", "-00:00") else "offset",
                "no fraction" if fraction < 0 else "ms" if fraction == 3 else "more than 6 digits" if fraction > 6
                else "other fraction", "year 1" if text.startswith("0001") else "year 9999"
                if text.startswith("9999") else "other year"}
    if value.endswith("\n"):
        features.add("newline")
    if offset not in ("Z", "z", "+00:00", "-00:00") and parse_iso(value).astimezone(timezone.utc).year != int(text[:4]):
        features.add("another year in UTC")
    return frozenset(features)


def test_timestamps_draw_every_valid_spelling():
    """The default draws every spelling the schemas' date-time format accepts, each valid; canonical and legacy
    draw what builders write and the mix from before the widening."""
    from strategies import RandomChooser, timestamp
    from wia_security.validation.formats import is_date_time
    c = RandomChooser(random.Random(11))
    drawn = [timestamp(c) for _ in range(4000)]
    assert all(is_date_time(v) for v in drawn), [v for v in drawn if not is_date_time(v)][:5]
    seen = frozenset().union(*map(_spelling, drawn))
    assert seen == {"T", "t", "Z", "z", "+00:00", "-00:00", "offset", "no fraction", "ms", "other fraction",
                    "more than 6 digits", "year 1", "year 9999", "other year", "newline", "another year in UTC"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp(c, times="canonical"))
               for _ in range(500))
    assert all(is_date_time(timestamp(c, times="legacy")) for _ in range(500))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_hypothesis_timestamps_are_valid_date_times(data):
    from strategies import HypothesisChooser, timestamp
    from wia_security.validation.formats import is_date_time
    value = timestamp(HypothesisChooser(data.draw))
    assert is_date_time(value) and jsonschema.FormatChecker().conforms(value, "date-time"), repr(value)
    assert _EARLIEST <= parse_iso(value) <= _LATEST       # a datetime holds it in UTC


def test_event_dicts_times_choose_the_spellings():
    canonical = event_dicts(200, seed=5, times="canonical")
    times = [v for e in canonical for v in _times(e)]
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", v) for v in times)
    assert all(validate_event(e).valid for e in event_dicts(200, seed=5, times="any"))
    assert event_dicts(50, seed=5) == event_dicts(50, seed=5, times="any")      # the default: every spelling
    spelled = {v for e in event_dicts(300, seed=5) for v in _times(e)}
    assert any("z" in v or "t" in v for v in spelled) and any(v.endswith("\n") for v in spelled)
    with pytest.raises(ValueError, match="times must be one of"):
        event_dicts(1, times="utc")


def _times(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in TIME_KEYS and isinstance(value, str):
                yield value
            else:
                yield from _times(value)
    elif isinstance(node, list):
        for item in node:
            yield from _times(item)
