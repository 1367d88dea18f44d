"""`sqlite:` URLs (stores, SQLite dead letters, the `sqlite` destination) take a path and nothing else.

A query string or fragment used to be ignored: `sqlite:///x.db?mode=ro` opened `x.db` read-write, and
`sqlite:///x.db#old` wrote to `x.db`. Both are refused here, naming the URL (query values masked: one
may be a credential pasted by mistake) and what is accepted. A `?` or `#` that is part of the file name
is written percent-encoded (`%3F`, `%23`), as in any URL. `sqlite:x.db` (no slashes, as JDBC writes it)
is refused too: taken as a path, it made a file named `sqlite:x.db`.
"""
from __future__ import annotations

import re

from wia_security.errors import ConfigError

_NAMED = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,40}=")
ACCEPTED = ("sqlite:///relative/path.db or sqlite:////absolute/path.db, with no ?query or #fragment "
            "(write a ? or # in the file name as %3F or %23)")


def is_sqlite_url(spec: str) -> bool:
    """A sqlite: URL, with its slashes (sqlite:///x.db) or without (sqlite:x.db, refused: see the module)."""
    return spec[:7].lower() == "sqlite:"


def sqlite_url_problem(url: str) -> str | None:
    """Why `url` (a sqlite: URL) is refused: no // after the scheme, or a query string or fragment, which
    nothing reads; None when it is none of these."""
    if url[7:9] != "//":
        path = url[7:].split("?", 1)[0].split("#", 1)[0]
        meant = f" (for {path}: sqlite:///{path})" if path else ""     # /abs/x.db gives sqlite:////abs/x.db
        return f"{shown(url)}: a sqlite: URL has // after the scheme{meant}; accepted: {ACCEPTED}"
    _, query_mark, after = _cut(url.split("://", 1)[1])
    if not query_mark:
        return None
    what = "no query string" if query_mark == "?" else "no fragment"
    if query_mark == "?" and "#" in after:
        what = "no query string or fragment"
    return f"{shown(url)}: a sqlite: URL takes {what} (nothing would read it); accepted: {ACCEPTED}"


def check_sqlite_url(url: str, *, key: str | None = None) -> None:
    """ConfigError for a sqlite: URL without // or with a query string or fragment (see sqlite_url_problem)."""
    problem = sqlite_url_problem(url) if is_sqlite_url(url) else None
    if problem:
        raise ConfigError(problem, key=key)


def sqlite_path(url: str) -> str:
    """The database path of a sqlite:// URL (or a bare path), refusing a query string or fragment."""
    from ..sqlite import path_from_url
    check_sqlite_url(url)
    return path_from_url(url)


def shown(url: str) -> str:
    """The URL for an error: query values masked (the names are kept, to say what was given), a fragment
    cut to its mark, user info (which a sqlite: URL never has, but a pasted one might) masked."""
    scheme, slashes, rest = url.partition("://")
    if not slashes:                                 # sqlite:x.db
        scheme, rest = url.split(":", 1)
    path, query_mark, after = _cut(rest)
    if "@" in path.split("/", 1)[0]:
        path = "***@" + path.split("@", 1)[1]
    if not query_mark:
        return f"{scheme}:{slashes[1:]}{path}"
    if query_mark == "#":
        return f"{scheme}:{slashes[1:]}{path}#..."
    query, _, fragment = after.partition("#")
    # name=value shows its name; a bare item (a pasted token?) is masked whole
    masked = "&".join(f"{item.split('=', 1)[0]}=***" if _NAMED.match(item) else "***"
                      for item in query.split("&") if item)
    return f"{scheme}:{slashes[1:]}{path}?{masked}" + ("#..." if fragment or "#" in after else "")


def _cut(rest: str) -> tuple[str, str, str]:
    """(path, '?' or '#' or '', what follows that mark)."""
    marks = [i for i in (rest.find("?"), rest.find("#")) if i >= 0]
    if not marks:
        return rest, "", ""
    at = min(marks)
    return rest[:at], rest[at], rest[at + 1:]
