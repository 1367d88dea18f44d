"""The four `format` checks the schemas use, with the verdicts of jsonschema's FormatChecker.

Each check is written from its RFC. Where the reference implementation (jsonschema with its
`format-nongpl` extra: rfc3339-validator, rfc3986-validator) accepts more or less than the RFC,
these checks follow the reference, because validation verdicts must match it exactly; every such
deviation is listed in the function's docstring. Non-string values always pass a format check.

Each format also has a `fast_*` check that accepts only the common canonical spelling; it may
refuse a valid value (the exact check then decides) but never accepts an invalid one.
"""
from __future__ import annotations

import calendar
import re
from typing import Callable
from uuid import UUID

# --- date-time (RFC 3339 section 5.6) -----------------------------------------------------------
# `$` (not `\Z`) and re.ASCII digits mirror the reference: it accepts one trailing "\n".
_DATE_TIME = re.compile(
    r"^(\d{4})-(0[1-9]|1[0-2])-(\d{2})"          # full-date (day range checked below)
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"        # partial-time; no leap second, like the reference
    r"(?:\.\d+)?"                                 # time-secfrac
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$",      # time-offset
    re.ASCII,
)


def is_date_time(value: object) -> bool:
    """RFC 3339 date-time. Like the reference: case-insensitive (the value is upper-cased first),
    year 0000 refused, seconds 60 refused, a single trailing newline accepted."""
    if not isinstance(value, str):
        return True
    m = _DATE_TIME.match(value.upper())
    if m is None:
        return False
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    return year != 0 and 1 <= day <= calendar.monthrange(year, month)[1]


# The calendar is in the pattern, so one match settles a canonical value: no slicing, no
# `calendar` call for days 29-31 (a tenth of all days). Only 29 February (leap years) is left to
# is_date_time.
_FAST_DATE_TIME = re.compile(
    r"(?!0000)[0-9]{4}-"                                  # year 0000 refused, like the reference
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"      # days 1-28 of any month
    r"|(?:0[13-9]|1[0-2])-(?:29|30)"                      # 29 and 30 of every month but February
    r"|(?:0[13578]|1[02])-31)"                            # 31 of the seven long months
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    # time-secfrac and time-offset as alternatives, the builders' ".000Z" first: cheaper in the
    # regex engine than an optional group followed by the offset
    r"(?:\.[0-9]+Z|Z|(?:\.[0-9]+)?[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
).fullmatch


def fast_date_time(value: str) -> bool:
    """Canonical upper-case RFC 3339 only, 29 February excepted (is_date_time decides that one)."""
    return _FAST_DATE_TIME(value) is not None


# --- uuid ----------------------------------------------------------------------------------------
def is_uuid(value: object) -> bool:
    """What `uuid.UUID` parses, with hyphens at offsets 8, 13, 18 and 23 (the reference's rule; it
    lets upper case and extra trailing hyphens through, as UUID does)."""
    if not isinstance(value, str):
        return True
    try:
        UUID(value)
    except ValueError:
        return False
    return all(value[i] == "-" for i in (8, 13, 18, 23))


_FAST_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}").fullmatch


def fast_uuid(value: str) -> bool:
    """The canonical 8-4-4-4-12 hex form."""
    return _FAST_UUID(value) is not None


# --- email ---------------------------------------------------------------------------------------
def is_email(value: object) -> bool:
    """The reference's rule (and nothing stricter): the value contains an "@"."""
    return not isinstance(value, str) or "@" in value


def fast_email(value: str) -> bool:
    return "@" in value


# --- uri (RFC 3986 section 3, Appendix A) -------------------------------------------------------
def _uri_pattern() -> str:
    hexdig = "[0-9A-Fa-f]"
    pct = f"%{hexdig}{{2}}"
    unreserved_subdelims = r"a-zA-Z0-9\-._~!$&'()*+,;="
    pchar = f"(?:[{unreserved_subdelims}:@]|{pct})"
    query = f"(?:[{unreserved_subdelims}:@/?]|{pct})*"       # query and fragment share one rule
    h16 = f"{hexdig}{{1,4}}"
    # dec-octet: the reference allows leading zeros ("01", "001"); RFC 3986 does not.
    octet = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
    ipv4 = rf"(?:{octet}\.){{3}}{octet}"
    ls32 = f"(?:{h16}:{h16}|{ipv4})"

    def upto(n: int) -> str:  # [ *n( h16 ":" ) h16 ]
        return f"(?:(?:{h16}:){{0,{n}}}{h16})?" if n else f"(?:{h16})?"

    ipv6 = "|".join([
        f"(?:{h16}:){{6}}{ls32}",
        f"::(?:{h16}:){{5}}{ls32}",
        f"{upto(0)}::(?:{h16}:){{4}}{ls32}",
        f"{upto(1)}::(?:{h16}:){{3}}{ls32}",
        f"{upto(2)}::(?:{h16}:){{2}}{ls32}",
        f"{upto(3)}::{h16}:{ls32}",
        f"{upto(4)}::{ls32}",
        f"{upto(5)}::{h16}",
        f"{upto(6)}::",
    ])
    # IPvFuture: the reference takes only a lower-case "v" (ABNF literals are case-insensitive).
    ip_future = rf"v{hexdig}+\.[{unreserved_subdelims}:]+"
    userinfo = f"(?:[{unreserved_subdelims}:]|{pct})*"
    reg_name = f"(?:[{unreserved_subdelims}]|{pct})*"
    authority = rf"(?:{userinfo}@)?(?:\[(?:{ipv6}|{ip_future})\]|{ipv4}|{reg_name})(?::[0-9]*)?"
    hier_part = "|".join([
        f"//{authority}(?:/{pchar}*)*",           # "//" authority path-abempty
        f"/(?:{pchar}+(?:/{pchar}*)*)?",          # path-absolute
        f"{pchar}+(?:/{pchar}*)*",                # path-rootless
        "",                                       # path-empty
    ])
    # `$`, as in the reference, also matches before one trailing "\n".
    return rf"^[a-zA-Z][a-zA-Z0-9+.\-]*:(?:{hier_part})(?:\?{query})?(?:\#{query})?$"


_URI = re.compile(_uri_pattern())


def is_uri(value: object) -> bool:
    """An absolute URI per RFC 3986 (scheme ":" hier-part ["?" query] ["#" fragment])."""
    return not isinstance(value, str) or _URI.match(value) is not None


_FAST_URI = re.compile(r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*)?").fullmatch


def fast_uri(value: str) -> bool:
    """Plain http(s) URLs without query, fragment or percent signs."""
    return "%" not in value and _FAST_URI(value) is not None


#: format name -> exact check (non-strings pass).
FORMAT_CHECKS: dict[str, Callable[[object], bool]] = {
    "date-time": is_date_time,
    "uuid": is_uuid,
    "email": is_email,
    "uri": is_uri,
}
#: format name -> fast check for strings (sound: True only when the exact check is True).
FAST_FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "date-time": fast_date_time,
    "uuid": fast_uuid,
    "email": fast_email,
    "uri": fast_uri,
}
