"""The WIA Security event model: the envelope and the seven event types as typed, round-tripping records."""
from .alert import AlertData, DetectionRule
from .auth_event import AuthEventData, AuthGeo, AuthSource, AuthTarget, AuthUser
from .base import Record
from .common import (Cloud, Context, GeoLocation, Hashes, Host, Indicator, Meta, Mitre, NetworkContext,
                     NetworkEndpoint, OperatingSystem, Source, User)
from .endpoint_event import (Dll, EndpointEventData, EndpointHost, EndpointOs, File, NetworkConnection,
                             ParentProcess, Process, Registry, Signature)
from .event import DATA_CLASSES, Event, EventData
from .incident import AffectedAsset, Impact, IncidentData, Ioc, ResponseAction, TimelineEntry
from .network_event import Certificate, Dns, Http, NetworkEventData, NetworkHost, Tls
from .threat_intel import IndicatorContext, ThreatIndicator, ThreatIntelData, Ttp
from .vulnerability import AffectedProduct, Cvss, ExploitDetails, PatchDetails, VulnerabilityData

# Spelled out, not computed: type checkers (mypy --strict, pyright) read only a literal __all__ as the
# package's exports, and dir() would also export the submodule names.
__all__ = [
    "AffectedAsset", "AffectedProduct", "AlertData", "AuthEventData", "AuthGeo", "AuthSource", "AuthTarget",
    "AuthUser", "Certificate", "Cloud", "Context", "Cvss", "DATA_CLASSES", "DetectionRule", "Dll", "Dns",
    "EndpointEventData", "EndpointHost", "EndpointOs", "Event", "EventData", "ExploitDetails", "File",
    "GeoLocation", "Hashes", "Host", "Http", "Impact", "IncidentData", "Indicator", "IndicatorContext", "Ioc",
    "Meta", "Mitre", "NetworkConnection", "NetworkContext", "NetworkEndpoint", "NetworkEventData",
    "NetworkHost", "OperatingSystem", "ParentProcess", "PatchDetails", "Process", "Record", "Registry",
    "ResponseAction", "Signature", "Source", "ThreatIndicator", "ThreatIntelData", "TimelineEntry", "Tls",
    "Ttp", "User", "VulnerabilityData",
]
