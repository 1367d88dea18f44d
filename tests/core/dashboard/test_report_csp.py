"""The dashboard's Content-Security-Policy allows only the page's own script and style block, by hash.

With `script-src 'unsafe-inline'` the policy only stopped fetches: any markup that ever reached the page
unescaped (a template change, a new panel written with innerHTML) could run script. Event text is kept
out of markup by the page itself (test_report_injection.py); this checks the second line of defence by
putting markup straight into the written HTML, as such a mistake would, and opening it in Chromium."""
from __future__ import annotations

import base64
import hashlib
import re

import pytest

import dataset
from chromium import Browser, chromium_path
from wia_security.compliance import ComplianceTracker
from wia_security.dashboard import DashboardAggregator, render_html

INJECTED = ('<div id="injected" style="width:123px;height:7px">x</div>'
            '<script>window.__pwned = 1</script>'
            '<svg onload="window.__pwned = 2"></svg>'
            '<img src="data:," onerror="window.__pwned = 3" onload="window.__pwned = 4">')


@pytest.fixture(scope="module")
def browser():
    assert chromium_path(), "Debian chromium is required (scripts/test-setup.d/60-chromium.sh installs it)"
    with Browser() as b:
        yield b


def _page() -> str:
    events = dataset.week()
    report = DashboardAggregator().add_all(events).report()
    report["compliance"] = ComplianceTracker().add_all(events).report()
    return render_html(report)


def _policy(page: str) -> dict[str, list[str]]:
    content = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)[1]
    return {d.split()[0]: d.split()[1:] for d in content.split("; ")}


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_policy_names_the_pages_own_blocks_and_nothing_inline():
    page = _page()
    policy = _policy(page)
    assert policy["default-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"]
    script = re.search(r"<script>(.*?)</script>", page, re.S)[1]
    style = re.search(r"<style>(.*?)</style>", page, re.S)[1]
    assert policy["script-src"] == [_sha256(script)]
    assert policy["style-src"] == [_sha256(style)]
    assert "unsafe" not in " ".join(word for words in policy.values() for word in words)
    assert " style=" not in page                    # a style attribute would be refused: none is used


def test_the_page_draws_under_its_policy_and_injected_markup_runs_nothing(browser, tmp_path):
    page = _page()
    clean = tmp_path / "clean.html"
    clean.write_text(page, "utf-8")
    shown = browser.open(clean.as_uri())
    assert shown.console_problems() == []           # a refused own block would be reported here
    assert shown.evaluate("document.body.dataset.rendered") == "ok"
    swatches = shown.evaluate("[...document.querySelectorAll('#legend-bands i')]"
                              ".map(i => getComputedStyle(i).backgroundColor)")
    assert swatches and all(c not in ("", "rgba(0, 0, 0, 0)") for c in swatches)

    dirty = tmp_path / "injected.html"
    dirty.write_text(page.replace("<body>", "<body>" + INJECTED, 1), "utf-8")
    shown = browser.open(dirty.as_uri())
    assert shown.evaluate("window.__pwned === undefined ? null : window.__pwned") is None
    assert shown.evaluate("document.body.dataset.rendered") == "ok"      # the page's own script still ran
    assert shown.evaluate("getComputedStyle(document.getElementById('injected')).width") != "123px"
    assert any("Content Security Policy" in problem for problem in shown.console_problems())
