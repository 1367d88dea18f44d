"""wia_security: the WIA Security event standard as a Python library (standard library only).

    >>> from wia_security import AlertBuilder, validate_event, convert
    >>> event = AlertBuilder().title("PowerShell download cradle").mitre("T1059.001").build()
    >>> validate_event(event.to_dict()).valid
    True
"""
from ._version import WIA_SCHEMA_URI, WIA_VERSION, __version__
from .attack import enrich
from .builders import (AlertBuilder, AuthEventBuilder, EndpointEventBuilder, IncidentBuilder,
                       NetworkEventBuilder, ThreatIntelBuilder, VulnerabilityBuilder, builder_for)
from .errors import (ConfigError, ConversionError, DeliveryError, InvalidEventError, InvalidValueError,
                     ParseError, UnknownFormatError, WiaError)
from .formats import convert, parse
from .model import Event
from .validation import ValidationIssue, ValidationResult, Validator, is_valid, validate_event

__all__ = [
    "__version__", "WIA_VERSION", "WIA_SCHEMA_URI",
    "Event", "validate_event", "is_valid", "Validator", "ValidationResult", "ValidationIssue",
    "AlertBuilder", "ThreatIntelBuilder", "VulnerabilityBuilder", "IncidentBuilder",
    "NetworkEventBuilder", "EndpointEventBuilder", "AuthEventBuilder", "builder_for",
    "enrich", "convert", "parse",
    "WiaError", "ParseError", "InvalidEventError", "InvalidValueError", "UnknownFormatError",
    "ConversionError", "ConfigError", "DeliveryError",
]
