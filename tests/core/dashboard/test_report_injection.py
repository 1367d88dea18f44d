"""Hostile event text in real headless Chromium: no injected script runs, nothing is fetched, and every
string comes back from the page exactly as the JSON twin holds it.

Every event-derived string the page shows (type, source, status, tactic and technique ids, compliance
titles come from data files) is attacker-reachable, so each one gets payloads for the HTML, attribute,
URL and <script>/JSON contexts. Each payload would set `window.__pwned`, add an element, or change
`document.title` if it ever ran or parsed as markup."""
from __future__ import annotations

import json

import pytest

from chromium import Browser, chromium_path
from wia_security.compliance import ComplianceTracker
from wia_security.dashboard import DashboardAggregator, render_html, write_report

PAYLOADS = [
    "</script><script>window.__pwned=1;document.title='pwned'</script>",
    "</SCRIPT ><img src=x onerror=window.__pwned=2>",
    "<!--<script>window.__pwned=3</script>",
    "<!-- </script><script>window.__pwned=4</script> -->",
    "\"'><img src=x onerror=\"window.__pwned=5\">",
    "javascript:window.__pwned=6",
    "<svg onload=window.__pwned=7><a href=\"javascript:window.__pwned=8\">x</a>",
    "]]><script>window.__pwned=9</script><![CDATA[",
    "\u2028\u2029);window.__pwned=10;//",
    "\\u003c/script\\u003e<iframe srcdoc=x>",
    "&lt;script&gt;window.__pwned=11&lt;/script&gt;",
    "__proto__", "constructor", "toString", "42", "007", "",
    "\u202eevil\u202c", "e\u0301", "😀" * 3, "\x00\x01\x1f\x7f",
    "__DATA__", "__TITLE__",
    "x" * 199,                  # the longest key kept whole (names are cut at 200)
]
TITLE = "</title><script>window.__pwned=12</script> & __DATA__ \"quoted\" <b>"


@pytest.fixture(scope="module")
def browser():
    assert chromium_path(), "Debian chromium is required (scripts/test-setup.d/60-chromium.sh installs it)"
    with Browser() as b:
        yield b


def _events() -> list[dict]:
    """Events straight to the aggregator API (no validation), so even enum fields carry payloads."""
    events = []
    for i, text in enumerate(PAYLOADS):
        for etype in ("alert", text):
            events.append({"id": f"{i}-{text}", "type": etype, "timestamp": f"2026-03-01T{i % 24:02d}:00:00Z",
                           "severity": i % 11, "source": {"name": text},
                           "mitre": {"tactic": text, "technique": text},
                           "data": {"status": text, "title": text, "first_seen": "2026-03-01T00:00:00Z"}})
    return events


COLLECT = """(() => {
  const bars = {};
  for (const el of document.querySelectorAll('rect[data-chart]')) {
    (bars[el.dataset.chart] = bars[el.dataset.chart] || []).push([el.dataset.key, Number(el.dataset.value)]);
  }
  const handlers = [...document.querySelectorAll('*')].flatMap(el => [...el.attributes].map(a => a.name))
    .filter(n => n.startsWith('on') || n === 'href' || n === 'src' || n === 'srcdoc');
  return {pwned: window.__pwned === undefined ? null : window.__pwned, title: document.title,
          h1: document.getElementById('title').textContent, rendered: document.body.dataset.rendered,
          scripts: document.scripts.length, bars, handlers,
          foreign: document.querySelectorAll('img, iframe, a, object, embed, body script:not(#report-data) ~ script').length,
          labels: [...document.querySelectorAll('[data-chart-root=by_source] text title')].map(t => t.textContent)};
})()"""


def test_no_payload_runs_and_every_string_survives(browser, tmp_path):
    events = _events()
    report = DashboardAggregator().add_all(events).report()
    report["title"] = TITLE
    report["compliance"] = ComplianceTracker().add_all(events).report()
    html, twin_path = tmp_path / "evil.html", tmp_path / "evil.json"
    write_report(report, html, twin_path)
    page_text = html.read_text("utf-8")
    for bad in ("</script><script>", "<!--<script>", "<img", "<svg onload", "\u2028", "<iframe"):
        assert bad not in page_text, bad
    twin = json.loads(twin_path.read_text("utf-8"))

    page = browser.open(html.as_uri())
    seen = page.evaluate(COLLECT)
    assert page.console_problems() == []
    assert page.requests() == [html.as_uri()]
    assert seen["rendered"] == "ok"
    assert seen["pwned"] is None
    assert seen["title"] == seen["h1"] == TITLE                      # text, not markup, in <title> and <h1>
    assert seen["scripts"] == 2 and seen["foreign"] == 0 and seen["handlers"] == []
    # every drawn key is the exact string of the JSON twin, in the twin's order (ties by code point,
    # integer-like keys such as "42" included, which JSON.parse would otherwise move to the front)
    totals = twin["totals"]
    assert seen["bars"]["by_source"] == [[k, v] for k, v in totals["by_source"].items()]
    assert seen["bars"]["by_type"] == [[k, v] for k, v in totals["by_type"].items()]
    assert [k for k, _ in seen["bars"]["top_techniques"]] == [t["id"] for t in twin["attack"]["top_techniques"]]
    assert set(seen["labels"]) == set(totals["by_source"])
    assert "__proto__" in json.dumps(twin) and "\u2028" in json.dumps(twin, ensure_ascii=False)


def test_breakdowns_beyond_the_list_limit_are_summed_on_the_page(browser, tmp_path):
    events = [{"type": "alert", "timestamp": "2026-03-01T00:00:00Z", "severity": 3, "source": {"name": f"<b>{i}</b>"}}
              for i in range(300)]
    report = DashboardAggregator().add_all(events).report()
    html = tmp_path / "many.html"
    write_report(report, html)
    page = browser.open(html.as_uri())
    assert page.console_problems() == []
    drawn = page.evaluate("document.querySelectorAll('[data-chart=by_source]').length")
    rest = page.evaluate("(() => { const e = document.querySelector('[data-not-listed=by_source]');"
                         " return [Number(e.dataset.value), e.textContent]; })()")
    assert drawn == 20 and rest[0] == 280 == report["totals"]["not_listed"]["by_source"]["events"]
    assert rest[1] == "+ 280 events from 280 other sources"


def test_title_placeholders_are_not_expanded():
    report = DashboardAggregator().report()
    report["title"] = "a __DATA__ b __TITLE__"
    page = render_html(report)
    head = page[page.index("<title>"):page.index("</title>")]
    assert head == "<title>a __DATA__ b __TITLE__"
    assert page.count('"format": "wia-security-dashboard"') == 1
