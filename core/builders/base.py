"""EventBuilder: the envelope half of every fluent builder, with the standard's defaults.

Defaults (PHASE-1 doc, section 2): a uuid4 `id`, the current UTC time with milliseconds and a
"Z" (`2025-12-14T04:30:00.000Z`), `version` 1.0.0, `$schema` set, severity 5 and a `custom`
source named "wia-security" until `.source()` says otherwise. `build()` validates and raises
InvalidEventError listing every violation instead of returning an invalid event.
"""
from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime
from typing import Any, ClassVar, Self

from .._version import WIA_SCHEMA_URI, WIA_VERSION
from ..attack import table
from ..errors import InvalidEventError, InvalidValueError
from ..model import Event
from ..timeutil import now_iso, parse_iso, to_iso
from ..validation.formats import is_date_time
from . import checks


# A fraction with a non-zero digit below the millisecond: the UTC spelling cannot hold it, so it is kept.
_SUB_MS = re.compile(r"\.\d{3}\d*[1-9]", re.ASCII).search
# The spelling the upstream SDK validators accept (UTC "Z", 0 or 3 fraction digits); see validation/warnings.py.
_CANONICAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z", re.ASCII).fullmatch


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def timestamp_text(value: str | datetime, owner: type | str = "EventBuilder", field: str = "timestamp") -> str:
    """A datetime as the standard's UTC text; a string as given (build() checks it is RFC 3339 with an offset).

    A naive datetime is refused: it has no offset, and taking it as UTC puts a local `datetime.now()`
    hours off without a word (the schema's date-time refuses an offset-less string for the same reason).
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidValueError(owner, field, f"{value.isoformat()!r} is a naive datetime (no UTC offset); "
                                                  "give an aware one, e.g. datetime.now(timezone.utc)")
        return to_iso(value)
    return value


class EventBuilder:
    """Base builder; subclasses set `event_type` and add methods for their `data` fields."""

    event_type: ClassVar[str]

    def __init__(self) -> None:
        self._event: dict[str, Any] = {
            "$schema": WIA_SCHEMA_URI,
            "version": WIA_VERSION,
            "id": str(uuid.uuid4()),
            "type": self.event_type,
            "timestamp": now_iso(),
            "severity": 5,
            "source": {"type": "custom", "name": "wia-security"},
            "data": {},
        }
        self._severity_set = False

    # -- generic -----------------------------------------------------------------------------
    def set(self, path: str, value: Any) -> Self:
        """Set any field by dotted path (`"data.http.method"`); the escape hatch for rare fields.

        The value is copied, so changing the caller's list or dict later does not change the event,
        and later builder calls never change the caller's object."""
        keys = self._keys(path)
        self._object_at(path, keys[:-1])[keys[-1]] = copy.deepcopy(value)
        return self

    def _keys(self, path: str) -> list[str]:
        keys = path.split(".") if isinstance(path, str) else []
        if not keys or "" in keys:
            raise InvalidValueError(type(self), str(path), "a path is dotted keys, none of them empty (data.http.method)")
        return keys

    def _object_at(self, path: str, keys: list[str]) -> dict[str, Any]:
        """The object at `keys` under the event, made where missing; InvalidValueError naming `path` when
        a value on the way is not an object (as `set()` may have left it)."""
        node = self._event
        for i, key in enumerate(keys):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise InvalidValueError(type(self), path, f"{'.'.join(keys[:i + 1])} is a {type(node).__name__}, "
                                                          "not an object")
        return node

    def _list_at(self, path: str) -> list[Any]:
        """The list at `path`, made where missing; InvalidValueError when something else is there."""
        keys = path.split(".")
        node = self._object_at(path, keys[:-1]).setdefault(keys[-1], [])
        if not isinstance(node, list):
            raise InvalidValueError(type(self), path, f"{path} is a {type(node).__name__}, not a list")
        return node

    def _merge(self, path: str, fields: dict[str, Any]) -> Self:
        self._object_at(path, path.split(".")).update(copy.deepcopy(_clean(fields)))
        return self

    def _append(self, path: str, item: dict[str, Any] | str) -> Self:
        self._list_at(path).append(copy.deepcopy(_clean(item) if isinstance(item, dict) else item))
        return self

    def _extend(self, path: str, items: tuple[Any, ...]) -> Self:
        self._list_at(path).extend(copy.deepcopy(list(items)))
        return self

    def _data(self, **fields: Any) -> Self:
        return self._merge("data", fields)

    # -- envelope ------------------------------------------------------------------------------
    def id(self, event_id: str) -> Self:
        self._event["id"] = event_id
        return self

    def timestamp(self, value: str | datetime) -> Self:
        """An aware datetime or an RFC 3339 string with an offset (Z or +09:00), written as the standard's
        UTC spelling (2025-12-14T04:30:00.000Z): the upstream SDKs refuse any other. Kept as given: a string
        already in it (0 or 3 fraction digits), one with digits below the millisecond (rewriting would
        lose them), and one build() would refuse, for it to report."""
        text = timestamp_text(value, type(self), "timestamp")
        if isinstance(text, str) and not _CANONICAL_TIME(text) and is_date_time(text) and not _SUB_MS(text):
            try:
                text = to_iso(parse_iso(text))       # the same instant, to the millisecond it was given in
            except ValueError:                       # a leap second (:60), which datetime cannot hold
                pass
        self._event["timestamp"] = text
        return self

    def _time(self, field: str, value: str | datetime | None) -> str | None:
        """timestamp_text for an optional time field, named for the error (e.g. "data.first_seen")."""
        return None if value is None else timestamp_text(value, type(self), field)

    def severity(self, value: float) -> Self:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10:
            raise InvalidValueError(type(self), "severity", f"{value!r} is not a number from 0 to 10")
        self._event["severity"] = value
        self._severity_set = True
        return self

    def source(self, type: str, name: str, vendor: str | None = None, version: str | None = None) -> Self:
        """Source type: siem, edr, ids, firewall, scanner or custom."""
        self._event["source"] = _clean({"type": type, "name": name, "vendor": vendor, "version": version})
        return self

    def host(self, hostname: str | None = None, ip: list[str] | str | None = None,
             mac: list[str] | str | None = None, os_name: str | None = None, os_version: str | None = None,
             os_build: str | None = None) -> Self:
        """context.host; `ip` one address or a list of them (IPv4 or IPv6, each checked)."""
        ips = _listify(ip)
        for address in ips or ():
            checks.ip_address(type(self), "context.host.ip", address)
        self._merge("context.host", {"hostname": hostname, "ip": ips, "mac": _listify(mac)})
        if os_name or os_version or os_build:
            self._merge("context.host.os", {"name": os_name, "version": os_version, "build": os_build})
        return self

    def network(self, src_ip: str | None = None, src_port: int | None = None, dst_ip: str | None = None,
                dst_port: int | None = None, protocol: str | None = None, direction: str | None = None,
                src_hostname: str | None = None, dst_hostname: str | None = None) -> Self:
        """context.network; IPs and ports are checked (an IPv4/IPv6 address; 0 to 65535)."""
        for side, address, number in (("source", src_ip, src_port), ("destination", dst_ip, dst_port)):
            checks.ip_address(type(self), f"context.network.{side}.ip", address)
            checks.port(type(self), f"context.network.{side}.port", number)
        if src_ip or src_port is not None or src_hostname:
            self._merge("context.network.source", {"ip": src_ip, "port": src_port, "hostname": src_hostname})
        if dst_ip or dst_port is not None or dst_hostname:
            self._merge("context.network.destination", {"ip": dst_ip, "port": dst_port, "hostname": dst_hostname})
        return self._merge("context.network", {"protocol": protocol, "direction": direction})

    def user(self, name: str | None = None, domain: str | None = None, email: str | None = None,
             employee_id: str | None = None) -> Self:
        return self._merge("context.user", {"name": name, "domain": domain, "email": email, "employee_id": employee_id})

    def cloud(self, provider: str, account_id: str | None = None, region: str | None = None) -> Self:
        return self._merge("context.cloud", {"provider": provider, "account_id": account_id, "region": region})

    def mitre(self, technique: str, tactic: str | None = None) -> Self:
        """ATT&CK technique or sub-technique id; names and the tactic come from ATT&CK v18.1.

        `.mitre("T1059.001")` sets technique T1059, sub_technique T1059.001, tactic TA0002 and all three names.
        A technique in several tactics gets the first in matrix order unless `tactic` (id, shortname or name)
        picks another of its tactics. Unknown, revoked and deprecated ids are refused (InvalidValueError).
        """
        self._event["mitre"] = attack_block(type(self), technique, tactic)
        return self

    def confidence(self, value: float) -> Self:
        return self._merge("meta", {"confidence": value})

    def tags(self, *tags: str) -> Self:
        return self._extend("meta.tags", tags)

    def label(self, key: str, value: str) -> Self:
        return self._merge("meta.labels", {key: value})

    def raw(self, original: str) -> Self:
        return self._merge("meta", {"raw": original})

    def correlation_id(self, value: str) -> Self:
        return self._merge("meta", {"correlation_id": value})

    def custom(self, **fields: Any) -> Self:
        self._object_at("meta.custom", ["meta", "custom"]).update(copy.deepcopy(fields))
        return self

    # -- result --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The event as built so far (a copy; not validated). Calling it changes nothing: defaults
        derived from other fields (priority, result, severity) follow later calls."""
        return self._finish(copy.deepcopy(self._event))

    def build(self) -> Event:
        """Validate and return the Event; InvalidEventError (listing every violation) if it is not valid."""
        from ..validation import validate_event
        event = self.to_dict()
        result = validate_event(event, warnings=False)
        if not result.valid:
            raise InvalidEventError(result.errors, event_id=event.get("id"))
        # the schema's key order (declared fields first), not the order the builder's calls happened in
        return Event.from_dict(event).in_declared_order()

    def _finish(self, event: dict[str, Any]) -> dict[str, Any]:
        """Hook for defaults that depend on other fields (e.g. priority from severity), applied to a copy."""
        return event


def attack_block(cls: type | str, technique: str, tactic: str | None = None, field: str = "mitre") -> dict[str, str]:
    """The `mitre` object for a technique id, names filled from ATT&CK; refuses unknown, revoked and deprecated ids.

    Ids are read in any case and with surrounding blanks (" t1059.001 "), and written as ATT&CK spells
    them. `tactic` is an id, shortname or name; it must be one of the technique's tactics. `field`
    names the builder field in errors (`mitre`, `data.ttps`).
    """
    t = table()
    tech = t.technique(technique.strip()) if isinstance(technique, str) else None
    if tech is None:
        raise InvalidValueError(cls, field, f"{technique!r} is not an ATT&CK v{t.version} Enterprise technique")
    if tech.status == "revoked":
        repl = t.replacement(tech.id)
        hint = f"; use {repl.id} ({repl.name})" if repl else ""
        raise InvalidValueError(cls, field, f"{tech.id} ({tech.name}) is revoked in ATT&CK v{t.version}{hint}")
    if tech.status == "deprecated":
        # ATT&CK withdrew it without a successor; the validator warns (attack_deprecated) on events that carry it
        raise InvalidValueError(cls, field, f"{tech.id} ({tech.name}) is deprecated in ATT&CK v{t.version} "
                                            "and has no replacement")
    block: dict[str, str] = {}
    if tech.is_subtechnique:
        parent = t.technique(tech.parent_id or "")
        block.update(technique=tech.parent_id or "", sub_technique=tech.id, sub_technique_name=tech.name)
        if parent is not None:
            block["technique_name"] = parent.name
    else:
        block.update(technique=tech.id, technique_name=tech.name)
    order = {tac.id: i for i, tac in enumerate(t.tactics)}
    in_order = sorted(tech.tactic_ids, key=order.__getitem__)        # matrix order
    if tactic is not None:
        tac = t.tactic(tactic.strip()) if isinstance(tactic, str) else None
        if tac is None:
            raise InvalidValueError(cls, field, f"{tactic!r} is not an ATT&CK v{t.version} Enterprise tactic "
                                                "(an id such as TA0002, a shortname such as execution, or a name)")
        if tac.id not in tech.tactic_ids:
            theirs = ", ".join(f"{x} ({t.tactic(x).name})" for x in in_order)  # type: ignore[union-attr]
            raise InvalidValueError(cls, field, f"{tech.id} ({tech.name}) is not in tactic {tac.id} ({tac.name}); "
                                                f"its tactics: {theirs}")
    elif in_order:
        # Several tactics: take the first in matrix order (pass `tactic=` to choose another).
        tac = t.tactic(in_order[0])
    else:
        tac = None
    if tac is not None:
        block = {"tactic": tac.id, "tactic_name": tac.name, **block}
    return block


def _listify(value: list[str] | str | None) -> list[str] | None:
    return [value] if isinstance(value, str) else value
