"""Format: the small class every converter is (pySigma-style: mostly declarative attributes + two methods)."""
from __future__ import annotations

import functools
from typing import Any, Callable, ClassVar

from ..errors import ConversionError, WiaError

#: What a reader raises when a document is not shaped as the format says (a string where an object
#: belongs, a missing key, a number out of range, nesting too deep).
MALFORMED = (AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError, RecursionError)

ToWia = Callable[..., list[dict[str, Any]]]


def guarded_reader(to_wia: ToWia) -> ToWia:
    """Decorates a Format's `to_wia`: a document the reader trips over raises ConversionError naming
    the format and what went wrong, never a bare AttributeError from deep inside the reader."""
    @functools.wraps(to_wia)
    def guarded(self: "Format", doc: Any, **options: Any) -> list[dict[str, Any]]:
        try:
            return to_wia(self, doc, **options)
        except WiaError:
            raise
        except MALFORMED as exc:
            raise ConversionError(self.name, f"not a valid {self.title} document "
                                             f"({type(exc).__name__}: {exc})") from exc
    return guarded


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
    #: the keyword options `from_wia` understands (the CLI's `convert --option KEY=VALUE` refuses others)
    options: ClassVar[frozenset[str]] = frozenset()

    def from_wia(self, event: dict[str, Any], **options: Any) -> Any:
        raise NotImplementedError

    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        raise ConversionError(self.name, "this format cannot be parsed back into WIA events")
