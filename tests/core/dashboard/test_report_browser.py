"""The HTML dashboard in real headless Chromium (Debian `chromium`, DevTools protocol over a pipe):
it renders every chart with no console errors and no network request, and the numbers it draws are
exactly those of its JSON twin."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import dataset
from chromium import Browser, chromium_path
from wia_security.builders import AlertBuilder
from wia_security.cli import main

COLLECT = """(() => {
  const bars = {};
  for (const el of document.querySelectorAll('[data-chart]')) {
    (bars[el.dataset.chart] = bars[el.dataset.chart] || {})[el.dataset.key] = Number(el.dataset.value);
  }
  const bands = {};
  for (const g of document.querySelectorAll('g.bucket')) {
    bands[g.dataset.key] = {};
    for (const r of g.querySelectorAll('rect')) bands[g.dataset.key][r.dataset.band] = Number(r.dataset.value);
  }
  const kpis = {};
  for (const el of document.querySelectorAll('[data-kpi]')) kpis[el.dataset.kpi] = el.dataset.value;
  const controls = {};
  const whys = {};
  for (const tr of document.querySelectorAll('tr[data-control]')) {
    controls[tr.dataset.control] = Number(tr.dataset.evidence);
    whys[tr.dataset.control] = tr.querySelector('td[data-why]').textContent;
  }
  const relevant = {};
  for (const tr of document.querySelectorAll('tr[data-relevant-control]')) relevant[tr.dataset.relevantControl] = Number(tr.dataset.events);
  const gaps = [...document.querySelectorAll('tr[data-gap-control]')].map(tr => [tr.dataset.gapControl,
    [...tr.querySelectorAll('td')].map(td => td.textContent)]);
  const more = {};
  for (const el of document.querySelectorAll('[data-more]')) more[el.dataset.more + ':' + el.dataset.framework] = Number(el.dataset.value);
  const scopes = {};
  for (const el of document.querySelectorAll('[data-scope]')) scopes[el.dataset.scope] = el.textContent;
  const svgs = [...document.querySelectorAll('svg[data-chart-root]')].map(s => [s.dataset.chartRoot, s.getBoundingClientRect().width]);
  return {rendered: document.body.dataset.rendered, bars, bands, kpis, controls, relevant, svgs, scopes, gaps, more, whys,
          sources: [...document.querySelectorAll('[data-chart-root=by_source] text')].map(t => t.textContent)};
})()"""


@pytest.fixture(scope="module")
def browser():
    assert chromium_path(), "Debian chromium is required (scripts/test-setup.d/60-chromium.sh installs it)"
    with Browser() as b:
        yield b


def _report(tmp_path: Path, events: list[dict]) -> tuple[Path, dict]:
    src = tmp_path / "events.ndjson"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    html = tmp_path / "dash.html"
    assert main(["report", str(src), "-o", str(html)]) == 0
    return html, json.loads(html.with_suffix(".json").read_text())


def test_dashboard_renders_and_matches_its_json_twin(browser, tmp_path):
    html, twin = _report(tmp_path, dataset.week())
    page = browser.open(html.as_uri())
    seen = page.evaluate(COLLECT)
    assert page.console_problems() == []
    assert [u for u in page.requests() if not u.startswith(("file:", "data:", "about:"))] == []
    assert seen["rendered"] == "ok"
    # every chart drew at a real size
    assert {name for name, width in seen["svgs"] if width > 100} >= {
        "time_series", "by_band", "by_type", "by_source", "top_tactics", "top_techniques", "by_status", "compliance"}

    totals = twin["totals"]
    assert seen["bars"]["by_type"] == totals["by_type"]
    assert seen["bars"]["by_source"] == totals["by_source"]
    assert seen["bars"]["by_band"] == {k: v for k, v in totals["by_band"].items() if v}
    assert seen["bars"]["by_status"] == {f"{t}:{s}": n for t, c in totals["by_status"].items() for s, n in c.items()}
    assert seen["bars"]["top_tactics"] == {t["id"]: t["count"] for t in twin["attack"]["top_tactics"]}
    assert seen["bars"]["top_techniques"] == {t["id"]: t["count"] for t in twin["attack"]["top_techniques"]}
    buckets = twin["time_series"]["buckets"]
    assert seen["bars"]["time_series"] == {b["start"]: b["total"] for b in buckets}
    assert seen["bands"] == {b["start"]: {k: v for k, v in b["by_band"].items() if v} for b in buckets}
    r = twin["response"]
    assert seen["kpis"]["events"] == str(totals["events"])
    assert float(seen["kpis"]["mttd"]) == r["mttd"]["mean_seconds"]
    assert float(seen["kpis"]["mttr"]) == r["mttr"]["mean_seconds"]
    assert float(seen["kpis"]["first_action"]) == r["time_to_first_action"]["mean_seconds"]
    frameworks = twin["compliance"]["frameworks"]
    assert seen["bars"]["compliance"] == {
        **{f"{f['id']}:coverage": f["coverage_percent"] for f in frameworks},
        **{f"{f['id']}:score": f["score_percent"] for f in frameworks}}
    for key, count in seen["controls"].items():
        fid, cid = key.split(":", 1)
        assert count == next(c for f in frameworks if f["id"] == fid for c in f["controls"] if c["id"] == cid)["evidence_count"]
    assert len(seen["controls"]) == sum(min(8, f["controls_evidenced"]) for f in frameworks)
    # each evidenced row says why, in its rules' own words (the twin's why)
    assert seen["whys"] == {f"{f['id']}:{c['id']}": "; ".join(c["why"]) for f in frameworks for c in f["controls"][:8]}
    assert seen["whys"]["nist-sp800-53r5:SI-4"].startswith("an alert is a monitored, analysed adverse event")
    # each percentage says what it is of: the assessable controls, not the whole framework; and how many more
    # controls are only relevant (ATT&CK techniques seen), not counted
    assert seen["scopes"] == {f["id"]: f"{f['name']}: {f['controls_evidenced']} of the {f['controls_in_scope']} controls "
                              f"event data can evidence ({f['controls_total']} in the framework; the others need "
                              f"other evidence). {f['controls_relevant']} more relevant: they address ATT&CK "
                              "techniques seen, not counted as coverage" for f in frameworks}
    # the relevant controls are drawn apart from the evidenced ones, with the twin's event counts
    assert seen["relevant"] == {f"{f['id']}:{c['id']}": c["event_count"] for f in frameworks for c in f["relevant"][:8]}
    assert seen["relevant"] and not {k for k in seen["relevant"]} & set(seen["controls"])
    # every in-scope control without evidence is listed as such, with its title (the bars and the scope line
    # only said "28 of the 29"; which one had none was in the JSON twin's gaps alone)
    assert seen["gaps"] == [[f"{f['id']}:{cid}", [f["name"], cid, f["no_evidence"][i]["title"], "no evidence"]]
                            for f in frameworks for i, cid in enumerate(f["gaps"])]
    # the tables list 8 controls per framework: each says how many more it leaves out (a control missing from the
    # evidenced table was read as one without evidence)
    assert seen["more"] == {**{f"evidenced:{f['id']}": f["controls_evidenced"] - 8 for f in frameworks
                               if f["controls_evidenced"] > 8},
                            **{f"relevant:{f['id']}": f["controls_relevant"] - 8 for f in frameworks
                               if f["controls_relevant"] > 8}}
    assert seen["more"]["evidenced:nist-sp800-53r5"] == 14 and seen["more"]["relevant:nist-sp800-53r5"] == 46
    assert ["nist-csf-2.0:RS.AN-07", ["NIST CSF 2.0", "RS.AN-07", "Incident data and metadata are collected, and their "
            "integrity and provenance are preserved", "no evidence"]] in seen["gaps"]


def test_hostile_event_text_is_shown_as_text_not_markup(browser, tmp_path):
    evil = "</script><img src=http://198.51.100.1/x onerror=alert(1)>"
    event = AlertBuilder().title("x").source("custom", evil).build().to_dict()
    html, twin = _report(tmp_path, [event])
    assert "</script><img" not in html.read_text()                 # the embedded JSON is escaped
    page = browser.open(html.as_uri())
    seen = page.evaluate(COLLECT)
    assert seen["rendered"] == "ok"
    assert page.console_problems() == []
    assert page.requests() == [html.as_uri()]
    assert seen["bars"]["by_source"] == {evil: 1}
    assert any(text.startswith("</script><img") for text in seen["sources"])


def test_empty_report_renders_placeholders(browser, tmp_path):
    src = tmp_path / "none.ndjson"
    src.write_text("")
    html = tmp_path / "empty.html"
    assert main(["report", str(src), "-o", str(html), "--no-compliance"]) == 0
    page = browser.open(html.as_uri())
    assert page.evaluate("document.body.dataset.rendered") == "ok"
    assert page.console_problems() == []
    assert page.evaluate("document.querySelectorAll('.empty').length") >= 6
    assert page.evaluate("getComputedStyle(document.getElementById('compliance-card')).display") == "none"


def test_the_time_axis_says_its_times_are_utc(browser, tmp_path):
    """The axis labels are the buckets' UTC times without their Z ("03-01 09:00"): with no zone named, a
    reader at +09:00 took them for local times, nine hours off."""
    html, twin = _report(tmp_path, dataset.week())
    page = browser.open(html.as_uri())
    heading = page.evaluate("document.getElementById('chart-time').previousElementSibling.textContent")
    assert "(UTC)" in heading
    first_label = page.evaluate("[...document.querySelectorAll('[data-chart-root=time_series] > text')]"
                                ".map(t => t.textContent).find(t => /\\d\\d-\\d\\d/.test(t))")
    start = twin["time_series"]["buckets"][0]["start"]                       # 2026-02-28T00:00:00.000Z
    assert first_label in (start[:10], start[5:16].replace("T", " "))


def test_bidi_controls_in_event_text_do_not_reorder_the_counts(browser, tmp_path):
    """A tooltip reads "name: count". A source named with U+202E (RIGHT-TO-LEFT OVERRIDE) reversed everything
    after it, the count included ("\u202eabc: 12" shows as "21 :cba"), so a reader hovering a bar read another
    number; event text in such a line is now isolated (U+2068 ... U+2069), its own bidi controls kept inside."""
    evil = "\u202eabc"
    events = [AlertBuilder().title("x").source("custom", evil).build().to_dict() for _ in range(12)]
    events.append(AlertBuilder().title("x").source("custom", "plain").build().to_dict())
    html, twin = _report(tmp_path, events)
    page = browser.open(html.as_uri())
    tips = page.evaluate("[...document.querySelectorAll('rect[data-chart=by_source] > title')].map(t => t.textContent)")
    assert page.console_problems() == []
    assert tips == ["\u2068\u202eabc\u2069: 12", "\u2068plain\u2069: 1"]
    status = page.evaluate("[...document.querySelectorAll('[data-chart-root=by_status] > text')]"
                           ".map(t => t.firstChild.nodeValue).filter(t => t.startsWith('alert'))")
    assert status == ["alert: \u2068new\u2069"]


def test_the_page_says_how_many_versions_were_set_aside(browser, tmp_path):
    """Events read from files count once per id, as the newest version: the page's '3 events read' beside
    '1' event needs the difference said."""
    event = AlertBuilder().title("x").timestamp("2026-03-01T10:00:00Z").status("new").build().to_dict()
    later = {**event, "timestamp": "2026-03-01T11:00:00Z", "data": {**event["data"], "status": "resolved"}}
    html, twin = _report(tmp_path, [event, later, event])
    assert twin["inputs"]["duplicates"] == 2 and twin["totals"]["events"] == 1
    page = browser.open(html.as_uri())
    meta = page.evaluate("document.getElementById('meta').textContent")
    assert meta.endswith(" 3 events read (2 of them older versions or repeats of another event with the same id, "
                         "counted once as its newest)")
    html, twin = _report(tmp_path, [event])
    assert browser.open(html.as_uri()).evaluate("document.getElementById('meta').textContent").endswith(" 1 events read")
