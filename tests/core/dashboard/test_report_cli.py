"""`wia-security report`: from the embedded store or files; invalid input is named, never silently dropped."""
from __future__ import annotations

import json

import dataset
from wia_security.cli import main
from wia_security.connectors.sqlite import EventStore


def test_report_from_the_embedded_store_with_a_window(tmp_path, monkeypatch, capsys):
    events = dataset.week()
    store = EventStore(str(tmp_path / "wia-events.db"))
    store.insert(events)
    store.close()
    monkeypatch.chdir(tmp_path)                      # default --db sqlite:///wia-events.db is relative
    rc = main(["report", "--since", "2026-03-04T00:00:00Z", "--until", "2026-03-06T00:00:00Z", "-o", "out.html"])
    assert rc == 0
    twin = json.loads((tmp_path / "out.json").read_text())
    expected = [e for e in events if "2026-03-04" <= e["timestamp"][:10] < "2026-03-06"]
    assert twin["totals"]["events"] == len(expected) > 0
    assert twin["window"]["since"] == "2026-03-04T00:00:00.000Z"
    html = (tmp_path / "out.html").read_text()
    assert "<script id=\"report-data\"" in html and "http://" not in html.split("<script", 1)[0].replace(
        "http://www.w3.org", "")
    assert "in window -> out.html" in capsys.readouterr().err


def test_invalid_and_unparseable_events_are_reported_with_file_and_line(tmp_path, capsys, samples):
    src = tmp_path / "mixed.ndjson"
    good = samples["alert-sample"]
    src.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({**good, "severity": 42}) + "\n")
    rc = main(["report", str(src), "-o", str(tmp_path / "r.html"), "--json", "-"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert f"{src}:2:" in err and "parse_error" in err
    assert f"{src}:3: /severity:" in err
    twin = json.loads(out)
    assert twin["totals"]["events"] == 1 and twin["inputs"]["rejected"] == 2


def test_lenient_accepts_the_upstream_samples_with_nulls(tmp_path, samples):
    paths = []
    for name, event in samples.items():
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(event))
        paths.append(str(p))
    assert main(["report", *paths, "-o", str(tmp_path / "r.html")]) == 1        # auth and incident samples carry nulls
    assert main(["report", *paths, "--lenient", "-o", str(tmp_path / "r.html")]) == 0
    twin = json.loads((tmp_path / "r.json").read_text())
    assert twin["totals"]["events"] == 7


def test_missing_store_and_bad_window_are_usage_errors(tmp_path, capsys):
    assert main(["report", "--db", f"sqlite:///{tmp_path}/nope.db", "-o", str(tmp_path / "r.html")]) == 2
    assert "no event store here" in capsys.readouterr().err
    assert main(["report", "--since", "soon", "-o", str(tmp_path / "r.html")]) == 2
    assert "bad time window" in capsys.readouterr().err
    assert main(["report", "--framework", "sox", "-o", str(tmp_path / "r.html")]) == 2
