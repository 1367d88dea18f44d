"""Record: a dataclass for one JSON object of the standard that round-trips every key it is given.

Declared fields are typed attributes; keys the standard does not define, and declared keys that
arrived as an explicit `null`, are kept in `extra`, so `Cls.from_dict(d).to_dict() == d` for any
JSON object `d`, with its keys in the same order (a signature or diff over the serialized event
survives a round trip). A value of the wrong JSON type is kept as given (the model holds invalid
events too; validation is what judges them).

The model owns its data: from_dict copies the JSON lists and objects it keeps, and to_dict returns
new ones, so changing either side afterwards never changes the other.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, TypeVar, get_args, get_origin

R = TypeVar("R", bound="Record")


@dataclasses.dataclass(kw_only=True)
class Record:
    """Base of every model class. Subclasses are `@dataclass(kw_only=True)`."""

    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=True)

    #: attribute name -> JSON key, where they differ (e.g. schema -> "$schema")
    json_keys: ClassVar[dict[str, str]] = {}
    _plan: ClassVar[tuple[tuple[str, str, Any], ...] | None] = None

    @classmethod
    def _fields_plan(cls) -> tuple[tuple[str, str, Any], ...]:
        """(attribute, JSON key, nested converter or None) for each declared field, computed once."""
        if cls.__dict__.get("_plan") is None:
            hints = typing.get_type_hints(cls)
            plan = []
            for f in dataclasses.fields(cls):
                if f.name == "extra":
                    continue
                plan.append((f.name, cls.json_keys.get(f.name, f.name), _nested(hints[f.name])))
            cls._plan = tuple(plan)
        return cls._plan  # type: ignore[return-value]

    @classmethod
    def from_dict(cls: type[R], d: dict[str, Any]) -> R:
        if not isinstance(d, dict):
            raise TypeError(f"{cls.__name__}.from_dict needs a dict, got {type(d).__name__}")
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        plan = cls._fields_plan()
        known = set()
        for attr, key, nested in plan:
            known.add(key)
            if key not in d:
                continue
            value = d[key]
            if value is None:
                extra[key] = None        # explicit null: kept verbatim, typed attribute stays None
                continue
            kwargs[attr] = _load(nested, value) if nested else _copy(value) if type(value) in _CONTAINERS else value
        for key, value in d.items():
            if key not in known:
                extra[key] = _copy(value) if type(value) in _CONTAINERS else value
        record = cls(**kwargs, extra=extra)
        # The input's key order, kept outside the dataclass fields (so not in ==, repr or replace()).
        record.__dict__["_key_order"] = tuple(d)
        return record

    def in_declared_order(self: R) -> R:
        """Forget the key order from_dict kept, here and in every nested record: to_dict() then writes
        the declared fields in the schema's order, then the other keys. Returns the record itself."""
        self.__dict__.pop("_key_order", None)
        for attr, _key, nested in self._fields_plan():
            if nested:
                value = getattr(self, attr)
                for item in value if isinstance(value, list) else (value,):
                    if isinstance(item, Record):
                        item.in_declared_order()
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, key, _nested_ in self._fields_plan():
            value = getattr(self, attr)
            if value is not None:
                out[key] = _dump(value)
        for key, value in self.extra.items():
            if key not in out:
                out[key] = _copy(value) if type(value) in _CONTAINERS else value
        order = self.__dict__.get("_key_order")
        if order is not None and tuple(out) != order:
            # the input's keys in its order; keys set since then after them
            ordered = {k: out[k] for k in order if k in out}
            if len(ordered) < len(out):
                ordered.update(out)
            out = ordered
        return out


def _nested(hint: Any) -> Any:
    """A converter spec for a field's type: a Record class, ("list", Record class), or None."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else None
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint
    if get_origin(hint) is list:
        (item,) = get_args(hint) or (Any,)
        if isinstance(item, type) and issubclass(item, Record):
            return ("list", item)
    return None


def _load(nested: Any, value: Any) -> Any:
    if isinstance(nested, tuple):
        if not isinstance(value, list):
            return _copy(value)
        cls = nested[1]
        return [cls.from_dict(v) if isinstance(v, dict) else _copy(v) for v in value]
    return nested.from_dict(value) if isinstance(value, dict) else _copy(value)


def _dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return _copy(value) if type(value) is dict else value


_CONTAINERS = (dict, list)


def _copy(value: Any) -> Any:
    """A copy of the JSON lists and objects in `value` (strings, numbers, booleans and null are immutable)."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return value
