"""The shared event generators produce what they promise: valid events of every type, and mutants."""
import random

from hypothesis import given, settings

from strategies import EVENT_TYPES, event_dicts, events, mutations
from wia_security import validate_event


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
