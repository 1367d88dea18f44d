"""Public formats, one module each, registered by name: `convert(event, to="ocsf")`, `parse(doc, from_="stix")`.

Adding a format is one module with one Format subclass and one line in FORMATS. Modules are
imported on first use, so `import wia_security` stays cheap.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from ..errors import UnknownFormatError
from .base import Format, MemberOutcome

#: format name -> "module:Class" (relative to this package)
FORMATS: dict[str, str] = {
    "wia": "wia:WiaFormat",
    "stix": "stix:StixFormat",
    "asff": "asff:AsffFormat",
    "cim": "cim:CimFormat",
    "ecs": "ecs:EcsFormat",
    "leef": "leef:LeefFormat",
    "cef": "cef:CefFormat",
    "ocsf": "ocsf:OcsfFormat",
}


@lru_cache(maxsize=None)
def get_format(name: str) -> Format:
    """The converter registered under `name` (UnknownFormatError lists the known ones)."""
    try:
        module_name, class_name = FORMATS[name].split(":")
    except KeyError:
        raise UnknownFormatError(name, FORMATS) from None
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)()


def _as_dict(event: Any) -> dict[str, Any]:
    return event if isinstance(event, dict) else event.to_dict()


def _check_options(fmt: Format, options: dict[str, Any], known: frozenset[str], what: str) -> None:
    """A misspelt option would otherwise be ignored (most converters take **options)."""
    for key in options:
        if key not in known:
            takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
            raise TypeError(f"{what}: {key!r} is not an option of the {fmt.name} format ({takes})")


def convert(event: Any, to: str, **options: Any) -> Any:
    """One WIA event (Event or dict) in the format `to`: a dict for JSON formats, a str for LEEF/CEF.
    `options` are the format's own (`Format.options`); any other raises TypeError."""
    fmt = get_format(to)
    if options:
        _check_options(fmt, options, fmt.options, "convert")
    return fmt.from_wia(_as_dict(event), **options)


def parse(doc: Any, from_: str, **options: Any) -> list[Any]:
    """The WIA events (as Event objects) held by one document of format `from_`. The readers' one option is
    `lenient=True`: an event restored from this project's own layout (which the readers validate) may hold
    null for an absent optional member, which is dropped, as `validate_event(..., lenient=True)` does."""
    from ..model import Event
    fmt = get_format(from_)
    if options:
        _check_options(fmt, options, frozenset({"lenient"}), "parse")
    return [Event.from_dict(d) for d in fmt.to_wia(doc, **options)]


__all__ = ["FORMATS", "Format", "MemberOutcome", "get_format", "convert", "parse"]
