"""The self-contained HTML dashboard: the JSON report embedded in one page whose inline script draws SVG charts.

No network at view time: no CDN, no fonts, no images; a Content-Security-Policy of `default-src 'none'`
makes the browser refuse any fetch. The JSON twin written beside it holds exactly the embedded data.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from .._version import __version__

TEMPLATE = "report.html"


def _embed(report: dict[str, Any]) -> str:
    """JSON safe inside a <script> element: no "</script>", "<!--" or U+2028/2029 can break out."""
    text = json.dumps(report, ensure_ascii=False, sort_keys=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_html(report: dict[str, Any]) -> str:
    """The dashboard page for a report dict (as returned by DashboardAggregator.report())."""
    report = dict(report)
    report.setdefault("tool_version", __version__)
    template = resources.files(__package__).joinpath(TEMPLATE).read_text("utf-8")
    title = report.get("title") or "WIA Security dashboard"
    return template.replace("__TITLE__", _escape_html(str(title))).replace("__DATA__", _embed(report))


def write_report(report: dict[str, Any], html_path: str | Path, json_path: str | Path | None = None) -> None:
    """Write the HTML dashboard and, when asked, its JSON twin (the same data, pretty-printed)."""
    report = dict(report)
    report.setdefault("tool_version", __version__)
    Path(html_path).write_text(render_html(report), encoding="utf-8")
    if json_path is not None:
        Path(json_path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
