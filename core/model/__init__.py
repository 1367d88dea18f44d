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

__all__ = [name for name in dir() if not name.startswith("_")]
