"""Validation against the bundled WIA schemas: `validate_event(obj) -> ValidationResult`, never raising on bad data.

Verdicts equal jsonschema's Draft7Validator with FormatChecker() on the schema chosen by the
event's `type` (the envelope schema when `type` is not one of the seven). Each schema is compiled
twice: to generated Python that accepts valid events fast, and to a graph the interpreter walks
to list every error of an invalid one.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from .. import schemas
from .codegen import compile_check
from .interpreter import iter_errors
from .lenient import drop_nulls
from .nodes import Node, load_node
from .result import ValidationIssue, ValidationResult
from .warnings import semantic_warnings

__all__ = ["ValidationIssue", "ValidationResult", "Validator", "validate_event", "is_valid"]

_new_result = object.__new__


@lru_cache(maxsize=None)
def _compiled(event_type: str | None) -> tuple[Node, Callable[[Any], bool]]:
    node = load_node(schemas.schema_uri(event_type))
    check, _source = compile_check(node)
    return node, check


def _schema_key(obj: Any) -> str | None:
    t = obj.get("type") if isinstance(obj, dict) else None
    return t if type(t) is str and t in schemas.EVENT_SCHEMA_FILES else None


def generated_source(event_type: str | None) -> str:
    """The Python source the schema for `event_type` compiles to (for the curious and for tests)."""
    return compile_check(load_node(schemas.schema_uri(event_type)))[1]


class Validator:
    """Reusable validator. `lenient` drops optional nulls (with warnings); `warnings=False` skips advisories."""

    def __init__(self, *, lenient: bool = False, warnings: bool = True) -> None:
        self.lenient = lenient
        self.warnings = warnings
        # Compile every schema now, so the first event does not pay for it.
        self._checks = {t: _compiled(t) for t in (None, *schemas.EVENT_TYPES)}
        self._envelope = self._checks[None]

    def is_valid(self, obj: Any) -> bool:
        """The schema verdict alone (no lenient mode, no warnings), for what validate() takes."""
        if type(obj) is dict:
            t = obj.get("type")
            node, check = (self._checks.get(t) if type(t) is str else None) or self._envelope
        else:
            if hasattr(obj, "to_dict"):
                return self.is_valid(obj.to_dict())
            node, check = self._checks[_schema_key(obj)]      # a dict subclass is still checked by its type
        return check(obj) or next(iter_errors(node, obj), None) is None

    def validate(self, obj: Any) -> ValidationResult:
        if type(obj) is dict:
            t = obj.get("type")
            node, check = (self._checks.get(t) if type(t) is str else None) or self._envelope
        else:
            if hasattr(obj, "to_dict"):
                return self.validate(obj.to_dict())
            node, check = self._checks[_schema_key(obj)]
        warnings: list[ValidationIssue] = []
        if self.lenient:
            obj, warnings = drop_nulls(node, obj)
        errors = [] if check(obj) else list(iter_errors(node, obj))
        if self.warnings and isinstance(obj, dict):
            warnings += semantic_warnings(obj)
        # Built without calling the class: Python 3.11 runs the dataclass __init__ in a new
        # interpreter frame, a twentieth of a valid event's whole validation. Every field is set
        # (tests/core/validation/test_result.py fails if one is added and not set here).
        result = _new_result(ValidationResult)
        result.valid = not errors
        result.errors = errors
        result.warnings = warnings
        result.event = obj
        return result


@lru_cache(maxsize=4)
def _default(lenient: bool, warnings: bool) -> Validator:
    return Validator(lenient=lenient, warnings=warnings)


def validate_event(obj: Any, *, lenient: bool = False, warnings: bool = True) -> ValidationResult:
    """Validate one event (a dict, or an Event). Never raises on bad data."""
    return _default(lenient, warnings).validate(obj)


def is_valid(obj: Any) -> bool:
    """True when `obj` satisfies its WIA schema."""
    return _default(False, False).is_valid(obj)
