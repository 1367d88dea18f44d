"""Format: the small class every converter is (pySigma-style: mostly declarative attributes + two methods)."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from ..errors import ConversionError, WiaError

#: What a reader raises when a document is not shaped as the format says (a string where an object
#: belongs, a missing key, a number out of range, nesting too deep).
MALFORMED = (AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError, RecursionError)

ToWia = Callable[..., list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class MemberOutcome:
    """What one member of a document gave: its WIA events, or the ConversionError that refused it.

    A member is what one event (or a few) is read from: a STIX root object with the objects it uses, a
    hit of an Elasticsearch `_search` response, a finding of `{"Findings": [...]}`, an element of an
    OCSF array; a document with one member (a single ECS event) is that member. `path` is the member's
    JSON pointer in the document ("" for the document itself); `member` the JSON of the member (what a
    dead letter of it should hold: for STIX, a bundle of the objects its event is read from, or the
    object carrying the WIA extension), None when the member is the whole document."""

    path: str
    events: list[dict[str, Any]] = field(default_factory=list)
    error: ConversionError | None = None
    member: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None


def all_or_nothing(outcomes: list[MemberOutcome]) -> list[dict[str, Any]]:
    """`to_wia`'s contract from `to_wia_each`'s outcomes: every event, or the first member's error."""
    for outcome in outcomes:
        if outcome.error is not None:
            raise outcome.error
    return [event for outcome in outcomes for event in outcome.events]


def _malformed(fmt: "Format", exc: BaseException, path: str = "") -> ConversionError:
    return ConversionError(fmt.name, f"not a valid {fmt.title} document ({type(exc).__name__}: {exc})", path=path)


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
            raise _malformed(self, exc) from exc
    return guarded


def guarded_members(to_wia_each: Callable[..., list[MemberOutcome]]) -> Callable[..., list[MemberOutcome]]:
    """Decorates a Format's `to_wia_each`: what stops the whole document (it is not a bundle, a search
    response, ...) becomes one refused outcome at the error's path instead of an exception, so a caller
    handles every refusal the same way."""
    @functools.wraps(to_wia_each)
    def guarded(self: "Format", doc: Any, **options: Any) -> list[MemberOutcome]:
        try:
            return to_wia_each(self, doc, **options)
        except ConversionError as exc:
            return [MemberOutcome(exc.path, error=exc)]
        except MALFORMED as exc:
            return [MemberOutcome("", error=_malformed(self, exc))]
    return guarded


def read_member(fmt: "Format", path: str, member: Any, read: Callable[[], list[dict[str, Any]]]) -> MemberOutcome:
    """The outcome of `read()` for the member at `path`: its events, or its refusal (a ConversionError
    it raised, or one at `path` for a member the reader tripped over), without stopping the others."""
    try:
        return MemberOutcome(path, read(), member=member)
    except ConversionError as exc:
        return MemberOutcome(path, error=exc, member=member)
    except MALFORMED as exc:
        return MemberOutcome(path, error=_malformed(fmt, exc, path), member=member)


class Format:
    """Converts WIA event dicts to one public format and, where it carries enough, back.

    `from_wia` gets a JSON-shaped WIA event dict (valid per the schema) and returns the format's
    document: a dict for JSON formats, a str for line formats (LEEF, CEF). `to_wia` takes one
    document of the format and returns the WIA event dicts it holds (possibly several, e.g. a
    STIX bundle), all or nothing: one member it cannot read refuses the document. `to_wia_each`
    reads the same document member by member, so one bad member refuses only itself.
    """

    name: ClassVar[str]                 # registry key: "stix", "ocsf", ...
    title: ClassVar[str]                # human name: "STIX 2.1"
    spec_version: ClassVar[str]         # the pinned version of the format
    text: ClassVar[bool] = False        # True when a document is one line of text, not JSON
    can_parse: ClassVar[bool] = False
    #: the keyword options `from_wia` understands (the CLI's `convert --option KEY=VALUE` refuses others)
    options: ClassVar[frozenset[str]] = frozenset()

    def option_problem(self, key: str, value: Any) -> str | None:
        """Why `value` will not do for the option `key` ("must be ..."), None when it will. The CLI asks
        before reading any event, so a bad value is one usage error, not every event refused."""
        return None

    def options_problem(self, options: dict[str, Any]) -> str | None:
        """Why these options will not do together (each fine alone), None when they will; asked, as
        option_problem is, before any event is read."""
        return None

    def from_wia(self, event: dict[str, Any], **options: Any) -> Any:
        raise NotImplementedError

    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        raise ConversionError(self.name, "this format cannot be parsed back into WIA events")

    def to_wia_each(self, doc: Any, **options: Any) -> list[MemberOutcome]:
        """The document's members in document order, each with its events or the error that refused
        it; never raises ConversionError (a document that is wholly unreadable is one refused outcome).
        `to_wia(doc)` is these outcomes' events when none was refused. This default treats the
        document as one member; formats whose documents hold many events override it."""
        try:
            return [MemberOutcome("", self.to_wia(doc, **options))]
        except ConversionError as exc:
            return [MemberOutcome(exc.path, error=exc)]
