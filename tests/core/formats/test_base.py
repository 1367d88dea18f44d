"""Format.to_wia behind `guarded_reader`: a malformed document of any format raises ConversionError
naming the format, never a bare AttributeError/TypeError/OverflowError from inside a reader."""
from __future__ import annotations

import copy
import random
from typing import Any, Iterator

import pytest

from strategies import event_dicts
from wia_security.errors import ConversionError
from wia_security.formats import FORMATS, get_format

OPTIONS = {"asff": {"account_id": "111111111111"}}
ODD_VALUES = [None, "x", 5, -1, 1e308, [], {}, True, "2025-13-45T99:00:00Z", ["a"], {"a": 1}]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def mutated(doc: Any, rnd: random.Random) -> Any:
    """`doc` with one value deleted or replaced by an odd one (text formats: a character changed)."""
    if isinstance(doc, str):
        i = rnd.randrange(len(doc))
        return doc[:i] + rnd.choice("|=\\^\t\n x0") + doc[i + 1:]
    doc = copy.deepcopy(doc)
    path = rnd.choice(list(paths(doc)))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if rnd.random() < 0.3:
        node.pop(path[-1])
    else:
        node[path[-1]] = rnd.choice(ODD_VALUES)
    return doc


@pytest.mark.parametrize("name", [n for n in FORMATS if n != "wia"])
def test_malformed_documents_raise_conversion_error_naming_the_format(name: str) -> None:
    fmt = get_format(name)
    if not fmt.can_parse:
        pytest.fail(f"{name} cannot parse")  # every registered format parses back today
    rnd = random.Random(name)
    docs = [fmt.from_wia(e, **OPTIONS.get(name, {})) for e in event_dicts(150, seed=11)]
    refused = 0
    for doc in docs:
        for _ in range(4):
            try:
                fmt.to_wia(mutated(doc, rnd))
            except ConversionError as exc:
                assert exc.format_name == name and str(exc).startswith(name)
                refused += 1
    assert refused > 0          # the mutations do reach the readers' error paths


def test_a_reader_error_keeps_its_cause_and_says_what_tripped() -> None:
    # a reader of its own (the ASFF reader now refuses a string Severity with its JSON path first)
    from wia_security.formats.base import Format, guarded_reader

    class Tripping(Format):
        name, title = "asff", "AWS Security Finding Format"

        @guarded_reader
        def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
            return [doc["Severity"].get("Label")]

    with pytest.raises(ConversionError) as info:
        Tripping().to_wia({"Severity": "HIGH"})     # ASFF wants an object here
    assert str(info.value) == ("asff: not a valid AWS Security Finding Format document "
                               "(AttributeError: 'str' object has no attribute 'get')")
    assert isinstance(info.value.__cause__, AttributeError)
