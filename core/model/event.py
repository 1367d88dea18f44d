"""The envelope (wia-security-v1.schema.json): `Event`, with `data` typed by the event's `type`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Union

from .. import jsonio
from ..errors import InvalidEventError
from ..severity import band
from ..timeutil import parse_iso
from .alert import AlertData
from .auth_event import AuthEventData
from .base import Record
from .common import Context, Meta, Mitre, Source
from .endpoint_event import EndpointEventData
from .incident import IncidentData
from .network_event import NetworkEventData
from .threat_intel import ThreatIntelData
from .vulnerability import VulnerabilityData

if TYPE_CHECKING:  # pragma: no cover
    from ..validation import ValidationResult

EventData = Union[AlertData, ThreatIntelData, VulnerabilityData, IncidentData,
                  NetworkEventData, EndpointEventData, AuthEventData]

#: event `type` -> the class of its `data`
DATA_CLASSES: dict[str, type[Record]] = {
    "alert": AlertData,
    "threat_intel": ThreatIntelData,
    "vulnerability": VulnerabilityData,
    "incident": IncidentData,
    "network_event": NetworkEventData,
    "endpoint_event": EndpointEventData,
    "auth_event": AuthEventData,
}


@dataclass(kw_only=True)
class Event(Record):
    """One WIA Security event. Required by the schema: version, id, type, timestamp, severity, source, data."""

    schema: str | None = None        # "$schema"
    version: str | None = None       # ^\d+\.\d+\.\d+$
    id: str | None = None            # uuid
    type: str | None = None          # one of DATA_CLASSES
    timestamp: str | None = None     # RFC 3339 date-time
    severity: float | None = None    # 0..10
    source: Source | None = None
    data: Any = None                 # EventData for the seven types; the raw value otherwise
    context: Context | None = None
    mitre: Mitre | None = None
    meta: Meta | None = None

    json_keys: ClassVar[dict[str, str]] = {"schema": "$schema"}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        event = super().from_dict(d)
        data_cls = DATA_CLASSES.get(event.type) if isinstance(event.type, str) else None
        if data_cls is not None and isinstance(event.data, dict):
            event.data = data_cls.from_dict(event.data)
        return event

    def in_declared_order(self) -> "Event":
        super().in_declared_order()
        if isinstance(self.data, Record):       # `data` is typed Any, so the plan does not see it as nested
            self.data.in_declared_order()
        return self

    @classmethod
    def parse(cls, src: bytes | str | dict[str, Any], *, validate: bool = False, lenient: bool = False) -> "Event":
        """An Event from JSON text, bytes or a dict. ParseError on bad JSON; with `validate`,
        InvalidEventError when the event breaks the schema (`lenient` drops optional nulls first)."""
        obj = src if isinstance(src, dict) else jsonio.loads(src)
        if not isinstance(obj, dict):
            raise InvalidEventError([_not_an_object(obj)])
        if validate:
            from ..validation import validate_event
            result = validate_event(obj, lenient=lenient)
            if not result.valid:
                raise InvalidEventError(result.errors, event_id=obj.get("id") if isinstance(obj.get("id"), str) else None)
            obj = result.event
        return cls.from_dict(obj)

    def to_json(self) -> str:
        return jsonio.dumps(self.to_dict())

    def validate(self, *, lenient: bool = False) -> "ValidationResult":
        from ..validation import validate_event
        return validate_event(self.to_dict(), lenient=lenient)

    @property
    def severity_band(self) -> str:
        """informational, low, medium, high, critical or emergency (the standard's section 7)."""
        return band(self.severity)  # type: ignore[arg-type]

    @property
    def time(self) -> datetime:
        """`timestamp` as an aware datetime."""
        return parse_iso(self.timestamp or "")


def _not_an_object(obj: Any) -> Any:
    from ..validation.interpreter import json_type_name
    from ..validation.result import ValidationIssue
    return ValidationIssue("", "type", f"an event must be a JSON object, got {json_type_name(obj)}")
