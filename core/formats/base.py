"""Format: the small class every converter is (pySigma-style: mostly declarative attributes + two methods)."""
from __future__ import annotations

from typing import Any, ClassVar

from ..errors import ConversionError


class Format:
    """Converts WIA event dicts to one public format and, where it carries enough, back.

    `from_wia` gets a JSON-shaped WIA event dict (valid per the schema) and returns the format's
    document: a dict for JSON formats, a str for line formats (LEEF, CEF). `to_wia` takes one
    document of the format and returns the WIA event dicts it holds (possibly several, e.g. a
    STIX bundle).
    """

    name: ClassVar[str]                 # registry key: "stix", "ocsf", ...
    title: ClassVar[str]                # human name: "STIX 2.1"
    spec_version: ClassVar[str]         # the pinned version of the format
    text: ClassVar[bool] = False        # True when a document is one line of text, not JSON
    can_parse: ClassVar[bool] = False

    def from_wia(self, event: dict[str, Any], **options: Any) -> Any:
        raise NotImplementedError

    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        raise ConversionError(self.name, "this format cannot be parsed back into WIA events")
