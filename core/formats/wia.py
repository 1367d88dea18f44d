"""The WIA Security format itself: the identity conversion (so `--to wia` and `--from wia` work everywhere)."""
from __future__ import annotations

from typing import Any

from .._version import WIA_VERSION
from .base import Format, guarded_reader


class WiaFormat(Format):
    name = "wia"
    title = "WIA Security"
    spec_version = WIA_VERSION
    can_parse = True

    def from_wia(self, event: dict[str, Any], **options: Any) -> dict[str, Any]:
        return event

    @guarded_reader
    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        return list(doc) if isinstance(doc, list) else [doc]
