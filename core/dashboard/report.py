"""The self-contained HTML dashboard: the JSON report embedded in one page whose inline script draws SVG charts.

No network at view time: no CDN, no fonts, no images; a Content-Security-Policy of `default-src 'none'`
makes the browser refuse any fetch, and it allows only the page's own script and style block by their
SHA-256 hashes (no 'unsafe-inline'), so markup injected by some future mistake could run no script.
The JSON twin written beside it holds exactly the embedded data.
Event text reaches the page only as JSON inside a `<script type="application/json">` element (with
`<`, `>`, `&`, U+2028 and U+2029 escaped) and is put on the page with `textContent`/`setAttribute`.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import stat
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import OutputError
from ..outputs import unwritable

TEMPLATE = "report.html"
_PLACEHOLDER = re.compile(r"__TITLE__|__DATA__|__CSP__")
#: The template's executable script and its style block (the JSON data element has a type and never runs).
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")


def dumps(obj: Any, indent: int | None = None) -> str:
    """JSON text that always encodes to UTF-8: lone surrogates (which events may carry, since JSON's
    "\\ud800" escape allows them) are written as escapes instead of failing the write; NaN is refused."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _embed(report: dict[str, Any]) -> str:
    """JSON safe inside a <script> element: no "</script>", "<!--" or U+2028/2029 can break out.

    These characters can only occur inside JSON strings, where a \\uXXXX escape means the same."""
    return _SCRIPT_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumps(report))


def content_security_policy(template: str) -> str:
    """The page's policy: nothing fetched, and only the template's own script and style blocks by hash.

    base-uri and form-action do not fall back to default-src, so they are closed by name."""
    allowed: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(template):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        allowed[kind].append(f"'sha256-{digest}'")
    script, style = (" ".join(allowed[kind]) or "'none'" for kind in ("script", "style"))
    return f"default-src 'none'; script-src {script}; style-src {style}; base-uri 'none'; form-action 'none'"


def render_html(report: dict[str, Any]) -> str:
    """The dashboard page for a report dict (as returned by DashboardAggregator.report())."""
    report = dict(report)
    report.setdefault("tool_version", __version__)
    template = resources.files(__package__).joinpath(TEMPLATE).read_text("utf-8")
    title = str(report.get("title") or "WIA Security dashboard")
    values = {"__TITLE__": _SURROGATE.sub("\ufffd", html.escape(title, quote=True)), "__DATA__": _embed(report),
              "__CSP__": content_security_policy(template)}
    # One pass, so a title containing "__DATA__" is not expanded.
    return _PLACEHOLDER.sub(lambda m: values[m.group()], template)


def foreign_link(path: str | Path) -> str | None:
    """Why `path` is not followed, or None: on the way to it (itself or a folder before it, through
    every link's own target) lies another user's symlink in a shared folder (world-writable and sticky,
    as /tmp). This is the kernel's protected_symlinks rule, applied here because that setting may be off
    and never guards the rename that replaces a link's target: a link planted in /tmp would have the
    report replace any file the user running it may write."""
    name = os.fspath(path)
    found = _foreign_link_on(name, 0)
    if found is None:
        return None
    link, uid = found
    where = "it is" if os.path.abspath(link) == os.path.abspath(name) else f"{link} on the way is"
    return (f"{where} a symbolic link owned by another user (uid {uid}) in a shared folder "
            "(world-writable, sticky): not followed")


#: Links followed in one path before giving up, as the kernel's ELOOP limit.
MAX_LINKS = 40


def _foreign_link_on(name: str, depth: int) -> tuple[str, int] | None:
    """(the first refused link, its owner) on the way to `name`, resolving components as the kernel does."""
    current = "/"
    for part in (name if os.path.isabs(name) else os.path.join(os.getcwd(), name)).split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            info = os.lstat(candidate)
            if not stat.S_ISLNK(info.st_mode):
                current = candidate
                continue
            folder = os.stat(current)
        except OSError:
            return None                       # nothing more to follow (a missing part is found later)
        shared = folder.st_mode & stat.S_ISVTX and folder.st_mode & stat.S_IWOTH
        if shared and info.st_uid not in (os.geteuid(), folder.st_uid):
            return candidate, info.st_uid
        if depth >= MAX_LINKS:
            return None
        try:
            target = os.readlink(candidate)
        except OSError:
            return None
        found = _foreign_link_on(os.path.join(current, target), depth + 1)
        if found is not None:
            return found
        current = os.path.realpath(candidate)
    return None


def output_problem(path: str | Path) -> str | None:
    """Why the report cannot or must not be written at `path` (checked before any input is read), or None."""
    return foreign_link(path) or unwritable(path)


def _write_atomically(path: str | Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename, so a failed write leaves no half file."""
    name = os.fspath(path)
    refused = foreign_link(name)             # again: the folder may have changed while the input was read
    if refused:
        raise OutputError(name, refused)
    try:
        if os.path.exists(name) and not os.path.isfile(name):
            # /dev/stdout, a FIFO: written in place. Not through a link that appeared since the check.
            no_follow = 0 if os.path.islink(name) else os.O_NOFOLLOW
            with open(os.open(name, os.O_WRONLY | no_follow), "w", encoding="utf-8") as out:
                out.write(text)
            return
        target = os.path.realpath(name)      # through a symlink: replace its target, not the link
        fd, tmp = tempfile.mkstemp(prefix=".wia-report-", dir=os.path.dirname(target))
    except OSError as exc:
        raise OutputError(name, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except OSError as exc:
        os.unlink(tmp)
        raise OutputError(name, exc.strerror or str(exc)) from None


def _mode_for(target: str) -> int:
    """The permissions of the report being replaced (a report made private stays private), else those a
    plain open() would create it with."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


@lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0)   # the only way to read it; done once, before any thread could create files
    os.umask(mask)
    return mask


def write_report(report: dict[str, Any], html_path: str | Path, json_path: str | Path | None = None) -> None:
    """Write the HTML dashboard and, when asked, its JSON twin (the same data, pretty-printed).

    Raises OutputError naming the file when one cannot be written (a directory, a missing directory,
    no permission, a full disk); the target is then left as it was."""
    report = dict(report)
    report.setdefault("tool_version", __version__)
    for path in (html_path, json_path):
        problem = output_problem(path) if path is not None else None
        if problem:
            raise OutputError(os.fspath(path), problem)
    _write_atomically(html_path, render_html(report))
    if json_path is not None:
        _write_atomically(json_path, dumps(report, indent=2) + "\n")
