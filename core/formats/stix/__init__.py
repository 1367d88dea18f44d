"""STIX 2.1 (OASIS): a WIA event becomes a bundle; bundles and single objects become WIA events.

    >>> bundle = convert(event, to="stix")                      # one event, one bundle
    >>> bundle = to_bundle([e1, e2, e3])                        # many events, one bundle (shared objects once)
    >>> events = parse(bundle, from_="stix")                    # list[Event]

Ids are deterministic (ids.py), so converting an event again gives the same bundle. The mapping and
the fields that survive a round trip are in docs/formats/stix.md.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from ...errors import ConversionError
from ..base import Format, MemberOutcome, all_or_nothing, guarded_members
from .ids import derived_id
from .reader import read_members
from .writer import WIA_EXTENSION, event_objects

__all__ = ["StixFormat", "to_bundle", "WIA_EXTENSION"]


def to_bundle(events: Iterable[Any], *, wia_extension: bool = True) -> dict[str, Any]:
    """One bundle holding the objects of every event (objects shared between events appear once)."""
    per_event: list[list[dict[str, Any]]] = []
    event_ids = []
    for event in events:
        event = event if isinstance(event, dict) else event.to_dict()
        event_ids.append(event["id"])
        per_event.append(event_objects(event, wia_extension=wia_extension))
    if len(per_event) == 1:
        objects = per_event[0]      # one event's writer makes every object once already
    else:
        objects = []
        seen: set[str] = set()
        for made in per_event:
            for obj in made:
                if obj["id"] not in seen:
                    seen.add(obj["id"])
                    objects.append(obj)
    return {"type": "bundle", "id": derived_id("bundle", *event_ids), "objects": objects}


class StixFormat(Format):
    name = "stix"
    title = "STIX 2.1"
    spec_version = "2.1"
    can_parse = True
    options = frozenset({"wia_extension"})

    def from_wia(self, event: dict[str, Any], **options: Any) -> dict[str, Any]:
        """A bundle for one event. Option `wia_extension` (default True) keeps the whole WIA event
        in a property extension on the primary object, so parsing the bundle back loses nothing."""
        return to_bundle([event], **options)

    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        """The WIA events held by a bundle, a list of STIX objects or one STIX object; the first
        refusal (in `to_wia_each`'s order) raises ConversionError."""
        return all_or_nothing(self.to_wia_each(doc, **options))

    @guarded_members
    def to_wia_each(self, doc: Any, **options: Any) -> list[MemberOutcome]:
        """One outcome per event of the document (a root object with the objects it uses), and one per
        malformed object no event needs: one bad object refuses only the events that need it."""
        base: str | None = "/objects"       # where the objects are in `doc`: errors name JSON pointers
        if isinstance(doc, dict) and doc.get("type") == "bundle":
            objects = doc.get("objects")
            if not isinstance(objects, list):
                raise ConversionError("stix", "a bundle needs an `objects` array", path="/objects")
        elif isinstance(doc, dict) and isinstance(doc.get("type"), str):
            objects, base = [doc], None
        elif isinstance(doc, list):
            objects, base = doc, ""
        else:
            raise ConversionError("stix", "expected a STIX bundle, a STIX object or a list of objects",
                                  path="/type" if isinstance(doc, dict) else "")
        outcomes = read_members(objects, base=base, **options)
        if base is None:            # the document is the one object: a refusal is of the document as it came
            outcomes = [dataclasses.replace(o, member=None) for o in outcomes]
        return outcomes
