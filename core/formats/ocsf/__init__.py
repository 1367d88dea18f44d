"""OCSF 1.8.0 (Open Cybersecurity Schema Framework): one WIA event <-> one OCSF event.

    >>> doc = convert(event, to="ocsf")                          # Detection Finding, Network Activity, ...
    >>> doc = convert(event, to="ocsf", unmapped=False)          # plain OCSF, no `unmapped.wia` patch
    >>> events = parse(doc, from_="ocsf")                        # list[Event] (also Security Lake output)

Class per event type, the mapping table and the fields that survive a round trip without the patch:
docs/formats/ocsf.md. Every output passes the project's validator built from the pinned schema
(tests/core/formats/ocsf_validator.py).
"""
from __future__ import annotations

import functools
from typing import Any

from ...errors import ConversionError
from ..base import Format, MemberOutcome, all_or_nothing, guarded_members, read_member
from .reader import from_ocsf
from .tables import OCSF_VERSION
from .writer import to_ocsf

__all__ = ["OcsfFormat", "to_ocsf", "from_ocsf", "OCSF_VERSION"]


class OcsfFormat(Format):
    name = "ocsf"
    title = "OCSF"
    spec_version = OCSF_VERSION
    can_parse = True
    options = frozenset({"unmapped"})

    #: With the `unmapped.wia` patch (the default) every WIA field survives WIA -> OCSF -> WIA.
    survives = ("*",)

    def from_wia(self, event: dict[str, Any], **options: Any) -> dict[str, Any]:
        """Option `unmapped` (default True): keep what OCSF has no attribute for in `unmapped.wia`
        (the CLI passes `--option unmapped=false` as a string, so "false"/"0"/"no"/"off" mean False)."""
        unmapped = options.get("unmapped", True)
        if isinstance(unmapped, str):
            unmapped = unmapped.strip().lower() not in ("false", "0", "no", "off")
        return to_ocsf(event, unmapped=bool(unmapped))

    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        """One OCSF event, or a JSON array of them (as a Security Lake export holds), -> WIA events (the
        first element that fails raises)."""
        return all_or_nothing(self.to_wia_each(doc, **options))

    @guarded_members
    def to_wia_each(self, doc: Any, *, lenient: bool = False, **options: Any) -> list[MemberOutcome]:
        """As `to_wia`, one outcome per element of an array (errors name /N/...), so one OCSF event
        that cannot be read refuses only itself. `lenient`: the event an `unmapped.wia` patch gives may
        hold null for an absent optional member."""
        if isinstance(doc, list):
            return [read_member(self, f"/{i}", item, functools.partial(self._element, item, f"/{i}", lenient))
                    for i, item in enumerate(doc)]
        if not isinstance(doc, dict):
            raise ConversionError(self.name, "expected an OCSF event (a JSON object) or an array of them")
        return [MemberOutcome("", [from_ocsf(doc, lenient=lenient)])]

    def _element(self, item: Any, where: str, lenient: bool) -> list[dict[str, Any]]:
        try:
            return [from_ocsf(item, lenient=lenient)]
        except ConversionError as exc:          # the path in the array the caller sent
            raise ConversionError(self.name, exc.reason, path=f"{where}{exc.path}") from exc
