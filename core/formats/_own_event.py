"""The check every reader makes of an event it restores from this project's own layout.

A CEF/LEEF line `from_wia` wrote, a STIX object carrying the WIA extension and an OCSF event with
`unmapped.wia` give their WIA event back as written, not rebuilt field by field as another product's
document is. Such a document edited by hand, damaged or forged would otherwise give the caller an
event the validator refuses: here it is checked against the schema (the compiled fast path; errors
are listed only for an invalid event) and refused with a ConversionError naming where and why, as
the readers of other products' documents refuse what they cannot make valid.
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import ConversionError
from ..validation import validate_event


def checked(event: Any, format_name: str, where: Callable[[str], str], what: str, *, lenient: bool = False) -> Any:
    """`event` when it is a valid WIA event (warnings are not asked for). Strict by default: no null for an
    absent member. `lenient` (the reader's caller runs in lenient mode: `convert --from X --lenient`, a
    lenient pull) takes a null optional member as absent, as the caller's own validator would, and gives
    the event without it. Else ConversionError at `where(pointer)` (`pointer`: the JSON pointer in the
    event of the first error), its reason `what` plus the pointer and the validator's message."""
    result = validate_event(event, lenient=lenient, warnings=False)
    if result.valid:
        return result.event
    first = result.errors[0]
    more = len(result.errors) - 1
    also = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    raise ConversionError(format_name, f"{what} is not valid WIA at {first.path or '/'}: {first.message}{also}",
                          path=where(first.path))


#: what `value_at` answers for a pointer that resolves to nothing
MISSING: Any = object()


def value_at(node: Any, pointer: str) -> Any:
    """The value at the JSON `pointer` (RFC 6901) in `node`, or MISSING."""
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return MISSING
    return node


def holds(fragment: Any, pointer: str) -> bool:
    """Whether `fragment` (the part of an event a layout carries whole, e.g. ECS `wia.*`) has a value at the
    JSON `pointer`: the error is then named there, else at the mapped fields."""
    return value_at(fragment, pointer) is not MISSING
