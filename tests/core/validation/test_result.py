"""Validator.validate builds its ValidationResult without the dataclass __init__ (a speed-up):
the result must be the one the class would build, every field set."""
from __future__ import annotations

import dataclasses

from strategies import event_dicts, mutations
from wia_security.validation import ValidationResult, Validator


def test_validate_sets_every_field_as_the_dataclass_would():
    import random
    events = event_dicts(30, seed=7)
    events += [mutations(e, random.Random(i), 1)[0] for i, e in enumerate(events)]
    for validator in (Validator(), Validator(warnings=False), Validator(lenient=True)):
        for event in events:
            result = validator.validate(event)
            rebuilt = ValidationResult(result.valid, list(result.errors), list(result.warnings), result.event)
            for f in dataclasses.fields(ValidationResult):
                assert getattr(result, f.name) == getattr(rebuilt, f.name), f.name   # unset slot: AttributeError
            assert result == rebuilt and type(result) is ValidationResult
            assert result.valid == (not result.errors)
    assert any(not validator.validate(e).valid for e in events)


def test_each_result_has_its_own_lists():
    v = Validator(warnings=False)
    a, b = v.validate(event_dicts(1, seed=1)[0]), v.validate(event_dicts(1, seed=2)[0])
    assert a.errors is not b.errors and a.warnings is not b.warnings
