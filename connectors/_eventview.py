"""Read-only views of a WIA event dict that the cloud product mappings share (title, host, IPs, indicators, CVE).

Every function takes a schema-valid event dict and never raises on a missing optional field: the
WIA envelope has no `title` or `description` (SUMMARY.md §9.2), so each event type's own fields are
used, as the type schemas name them.
"""
from __future__ import annotations

from typing import Any, Iterator

#: Which `data` field carries a human title, per event type (alert/incident/vulnerability have `title`).
_TITLE_FIELDS = {
    "alert": "title", "incident": "title", "vulnerability": "title", "threat_intel": "threat_name",
}


def data(event: dict[str, Any]) -> dict[str, Any]:
    value = event.get("data")
    return value if isinstance(value, dict) else {}


def title(event: dict[str, Any]) -> str:
    """A one-line title: the type's title field, else "<type>: <event_type/result>" and the main subject."""
    d = data(event)
    field = _TITLE_FIELDS.get(event.get("type", ""))
    if field and isinstance(d.get(field), str) and d[field].strip():
        return d[field].strip()
    kind = event.get("type", "event").replace("_", " ")
    what = d.get("event_type") or d.get("result") or ""
    subject = ""
    if event.get("type") == "auth_event":
        user = (d.get("user") or {}).get("name")
        target = (d.get("target") or {}).get("name")
        subject = " ".join(x for x in (user and f"user {user}", target and f"to {target}") if x)
    elif event.get("type") == "network_event":
        src, dst = (d.get("source") or {}).get("ip"), (d.get("destination") or {}).get("ip")
        subject = f"{src} -> {dst}" if src and dst else ""
    elif event.get("type") == "endpoint_event":
        subject = ((d.get("host") or {}).get("hostname") or "")
    parts = [p for p in (what.replace("_", " ") if isinstance(what, str) else "", subject) if p]
    return f"{kind}: {' '.join(parts)}" if parts else kind


def description(event: dict[str, Any]) -> str:
    d = data(event)
    text = d.get("description")
    return text if isinstance(text, str) and text.strip() else title(event)


def hostname(event: dict[str, Any]) -> str | None:
    """The host the event is about: context.host, then the endpoint event's host."""
    host = ((event.get("context") or {}).get("host") or {})
    if host.get("hostname"):
        return host["hostname"]
    if event.get("type") == "endpoint_event":
        return (data(event).get("host") or {}).get("hostname")
    return None


def host_ips(event: dict[str, Any]) -> list[str]:
    host = ((event.get("context") or {}).get("host") or {})
    ips = list(host.get("ip") or [])
    if event.get("type") == "endpoint_event":
        ips += [ip for ip in (data(event).get("host") or {}).get("ip") or [] if ip not in ips]
    return ips


def endpoints(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(source, destination) network endpoints: network_event data first, then context.network."""
    if event.get("type") == "network_event":
        d = data(event)
        return d.get("source") or {}, d.get("destination") or {}
    net = (event.get("context") or {}).get("network") or {}
    return net.get("source") or {}, net.get("destination") or {}


def user_name(event: dict[str, Any]) -> str | None:
    if event.get("type") == "auth_event":
        name = (data(event).get("user") or {}).get("name")
        if name:
            return name
    return ((event.get("context") or {}).get("user") or {}).get("name")


def indicator_entries(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every indicator object the event carries (alert/threat-intel indicators, incident IOCs) with a string
    type and value."""
    d = data(event)
    for key in ("indicators", "iocs"):
        listed = d.get(key)
        # a type whose schema does not define the field lets it hold any value (an alert's "iocs": 5 is valid)
        for ind in listed if isinstance(listed, list) else ():
            if isinstance(ind, dict) and isinstance(ind.get("type"), str) and isinstance(ind.get("value"), str):
                yield ind


def indicators(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(type, value) of every indicator the event carries: alert/threat-intel indicators, incident IOCs."""
    for ind in indicator_entries(event):
        yield ind["type"], ind["value"]


def cve(event: dict[str, Any]) -> str | None:
    if event.get("type") == "vulnerability":
        vuln_id = data(event).get("vuln_id")
        return vuln_id if isinstance(vuln_id, str) else None
    return None


def status(event: dict[str, Any]) -> str | None:
    value = data(event).get("status")
    return value if isinstance(value, str) else None
