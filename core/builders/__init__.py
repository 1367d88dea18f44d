"""Fluent builders, one per event type: `AlertBuilder().title("...").mitre("T1059.001").build()`."""
from ..errors import InvalidValueError
from .alert import AlertBuilder
from .auth_event import AuthEventBuilder
from .base import EventBuilder, attack_block
from .endpoint_event import EndpointEventBuilder
from .incident import IncidentBuilder
from .network_event import NetworkEventBuilder
from .threat_intel import ThreatIntelBuilder
from .vulnerability import VulnerabilityBuilder, cvss_severity

#: event type -> builder class
BUILDERS: dict[str, type[EventBuilder]] = {
    b.event_type: b for b in (AlertBuilder, ThreatIntelBuilder, VulnerabilityBuilder, IncidentBuilder,
                              NetworkEventBuilder, EndpointEventBuilder, AuthEventBuilder)
}


def builder_for(event_type: str) -> EventBuilder:
    """A fresh builder for an event type name; InvalidValueError naming the known ones for any other."""
    try:
        return BUILDERS[event_type]()
    except (KeyError, TypeError):       # TypeError: an unhashable value
        raise InvalidValueError("builder_for", "type", f"unknown event type {str(event_type)[:60]!r}; "
                                f"known: {', '.join(BUILDERS)}") from None


__all__ = ["AlertBuilder", "ThreatIntelBuilder", "VulnerabilityBuilder", "IncidentBuilder", "NetworkEventBuilder",
           "EndpointEventBuilder", "AuthEventBuilder", "EventBuilder", "BUILDERS", "builder_for", "attack_block",
           "cvss_severity"]
