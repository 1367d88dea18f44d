"""The reference implementation the issue names: jsonschema (format-nongpl extra) with FormatChecker()."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from wia_security import schemas


@lru_cache(maxsize=None)
def reference_validator(event_type: str | None) -> Draft7Validator:
    resources = [(uri, Resource.from_contents(doc, default_specification=DRAFT7))
                 for uri, doc in schemas.registry().items()]
    registry = Registry().with_resources(resources)
    schema = registry.contents(schemas.schema_uri(event_type))
    return Draft7Validator(schema, registry=registry, format_checker=FormatChecker())


def reference_is_valid(obj: Any) -> bool:
    """jsonschema's verdict on the schema chosen by the event's `type` (the envelope otherwise)."""
    t = obj.get("type") if isinstance(obj, dict) else None
    key = t if isinstance(t, str) and t in schemas.EVENT_SCHEMA_FILES else None
    return reference_validator(key).is_valid(obj)
