"""`wia-security report` / `compliance` with bad input and bad outputs: clear errors, exit codes as the
other commands (2 usage/output, 1 some input rejected), nothing dropped silently."""
from __future__ import annotations

import json
import os

import pytest

from wia_security.builders import AlertBuilder, IncidentBuilder
from wia_security.cli import main


def _alert(**changes) -> dict:
    event = AlertBuilder().title("x").timestamp("2026-03-01T10:00:00Z").severity(8).mitre("T1059.001").build().to_dict()
    event.update(changes)
    return event


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.ndjson"
    path.write_text(json.dumps(_alert()) + "\n")
    return path


@pytest.fixture
def bad_lines(tmp_path):
    """One valid event and three rejects: unparseable, invalid, not an object."""
    path = tmp_path / "bad.ndjson"
    path.write_text(json.dumps(_alert()) + "\n{\"truncated\n" + json.dumps(_alert(severity="high")) + "\n[1, 2]\n")
    return path


@pytest.mark.parametrize("command", ["report", "compliance"])
def test_every_reject_is_named_with_file_line_and_counted(command, bad_lines, tmp_path, capsys):
    extra = ["-o", str(tmp_path / "r.html"), "--json", "-"] if command == "report" else ["--format", "json"]
    assert main([command, str(bad_lines), *extra]) == 1
    out, err = capsys.readouterr()
    assert f"{bad_lines}:2:" in err and "[parse_error]" in err
    assert f"{bad_lines}:3: /severity:" in err
    assert f"{bad_lines}:4:" in err
    inputs = json.loads(out)["inputs"]
    assert inputs["rejected"] == 3 and inputs["events_read"] == 1
    assert "1 event read: 1 in window; 3 rejected (listed above)" in err


@pytest.mark.parametrize("make_out,reason", [
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: tmp / "missing" / "r.html", "does not exist"),
    (lambda tmp: tmp / "good.ndjson" / "r.html", "does not exist"),        # a file used as a directory
])
def test_unwritable_html_output_is_refused_before_any_input_is_read(make_out, reason, good, bad_lines, tmp_path, capsys):
    out = make_out(tmp_path)
    assert main(["report", str(bad_lines), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"wia-security: cannot write {out}: " in err and reason in err
    assert "parse_error" not in err                      # the input was never read


def test_unwritable_json_twin_leaves_no_html_behind(good, tmp_path, capsys):
    html = tmp_path / "r.html"
    assert main(["report", str(good), "-o", str(html), "--json", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert not html.exists()
    assert main(["report", str(good), "-o", str(html), "--json", str(html)]) == 2
    assert "would be the same file" in capsys.readouterr().err


def test_a_failing_write_is_an_output_error_and_keeps_the_old_file(good, tmp_path, capsys):
    assert main(["report", str(good), "-o", "/dev/full", "--json", "-"]) == 2
    assert "cannot write /dev/full: No space left on device" in capsys.readouterr().err
    html = tmp_path / "r.html"
    html.write_text("previous report")
    (tmp_path / "r.json").mkdir()                        # the twin cannot be replaced
    assert main(["report", str(good), "-o", str(html)]) == 2
    assert html.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".wia-report-")] == []


def test_output_through_a_symlink_replaces_the_target(good, tmp_path):
    target = tmp_path / "real.html"
    target.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    assert main(["report", str(good), "-o", str(link), "--json", str(tmp_path / "r.json")]) == 0
    assert link.is_symlink() and "<!DOCTYPE html>" in target.read_text()


def test_empty_input_gives_an_empty_report_and_exit_0(tmp_path, capsys):
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    assert main(["report", str(empty), "-o", str(tmp_path / "r.html")]) == 0
    twin = json.loads((tmp_path / "r.json").read_text())
    assert twin["inputs"] == {"events_read": 0, "in_window": 0, "outside_window": 0, "without_timestamp": 0, "duplicates": 0,
                            "rejected": 0}
    assert "0 events read: 0 in window" in capsys.readouterr().err
    assert main(["compliance", str(empty), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 0


def test_lone_surrogates_are_refused_when_read_and_written_when_handed_over(tmp_path, capsys):
    """JSON's \\ud800 escape would give an event a lone surrogate: the reader refuses it (naming file, line and
    JSON path), and one handed over through the library is written as the escape instead of crashing the writer."""
    from wia_security.dashboard import DashboardAggregator, write_report
    src = tmp_path / "s.ndjson"
    event = _alert()
    event["source"]["name"] = "a\udfffb"
    src.write_text(json.dumps(event) + "\n")                 # ensure_ascii: the file holds the escape
    assert main(["report", str(src), "-o", str(tmp_path / "r.html")]) == 1
    assert f"{src}:1:" in capsys.readouterr().err
    assert main(["compliance", str(src), "--format", "json"]) == 1
    assert "lone surrogate \\udfff in a string (at /source/name)" in capsys.readouterr().err
    write_report(DashboardAggregator().add_all([event]).report(), tmp_path / "r.html", tmp_path / "r.json")
    twin = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert twin["totals"]["by_source"] == {"a\udfffb": 1}
    (tmp_path / "r.html").read_text(encoding="utf-8")        # valid UTF-8


def test_window_and_framework_errors_are_usage_errors(good, tmp_path, capsys):
    out = ["-o", str(tmp_path / "r.html")]
    assert main(["report", str(good), "--since", "2026-03-02T00:00:00Z", "--until", "2026-03-01T00:00:00Z", *out]) == 2
    assert "is not before until" in capsys.readouterr().err
    for command in (["report", str(good), *out], ["compliance", str(good)]):
        assert main([*command, "--since", "99999999999d"]) == 2           # was an OverflowError traceback
        assert "bad time window: --since '99999999999d' reaches back before the year 1" in capsys.readouterr().err
    for command in (["report", str(good), *out], ["compliance", str(good)]):
        assert main([*command, "--framework", "\x1b[2Jsox"]) == 2
        err = capsys.readouterr().err
        assert "unknown framework '\\x1b[2Jsox'; known: nist-csf-2.0, nist-sp800-53r5, cis-v8, iso27001-2022" in err
        assert "\x1b" not in err                                  # echoed as repr, never raw to the terminal


def test_outside_window_and_rejected_are_in_the_summary(tmp_path, capsys):
    src = tmp_path / "w.ndjson"
    events = [_alert(), _alert(timestamp="2020-01-01T00:00:00Z"),
              IncidentBuilder().title("i").timestamp("2026-03-01T11:00:00Z").build().to_dict()]
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["compliance", str(src), "--since", "2026-01-01T00:00:00Z", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["inputs"] == {"events_read": 3, "in_window": 2, "outside_window": 1,
                                         "without_timestamp": 0, "duplicates": 0, "rejected": 0}
    assert "3 events read: 2 in window, 1 outside it" in err
    assert os.path.exists(src)


@pytest.fixture
def shared_sticky_folder(tmp_path):
    """A folder like /tmp: world-writable and sticky, owned by root."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    return folder


def _planted_link(folder, name: str, target) -> object:
    """A symlink another local user (nobody) made in the shared folder (lchown needs root, as the attack
    matters when root or another user runs the report)."""
    link = folder / name
    link.symlink_to(target)
    os.lchown(link, 65534, 65534)
    return link


@pytest.mark.parametrize("which", ["html", "json"])
def test_another_users_symlink_in_a_shared_folder_is_not_followed(which, shared_sticky_folder, good, tmp_path, capsys):
    """Another user's link in /tmp pointing at a file of ours: the report replaced the target (an
    /etc/passwd, a ~/.bashrc) with the page, as the kernel's protected_symlinks does not guard a rename."""
    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n")
    html, twin = shared_sticky_folder / "r.html", shared_sticky_folder / "r.json"
    planted = _planted_link(shared_sticky_folder, (html if which == "html" else twin).name, victim)
    assert main(["report", str(good), "-o", str(html), "--json", str(twin)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {planted}: " in err and "symbolic link owned by another user (uid 65534)" in err
    assert victim.read_text() == "precious\n" and os.path.islink(planted)


def test_another_users_symlink_to_a_device_is_not_opened(shared_sticky_folder, good, tmp_path, capsys):
    """A link to a device or FIFO would be opened and written in place (with fs.protected_symlinks off)."""
    fifo = tmp_path / "victim.fifo"
    os.mkfifo(fifo)
    planted = _planted_link(shared_sticky_folder, "r.html", fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)           # a reader, so a wrong open would not block
    try:
        assert main(["report", str(good), "-o", str(planted), "--json", str(tmp_path / "r.json")]) == 2
        assert os.read(fd, 100) == b""
    finally:
        os.close(fd)
    assert "symbolic link owned by another user" in capsys.readouterr().err


def test_ones_own_symlink_in_a_shared_folder_is_still_followed(shared_sticky_folder, good, tmp_path):
    target = tmp_path / "mine.html"
    link = shared_sticky_folder / "r.html"
    link.symlink_to(target)
    assert main(["report", str(good), "-o", str(link), "--json", str(tmp_path / "r.json")]) == 0
    assert target.read_text().startswith("<!DOCTYPE html>") and os.path.islink(link)


@pytest.mark.parametrize("command", ["report", "compliance"])
@pytest.mark.parametrize("flag,value", [("--since", "2026-03-08T09:00:00"), ("--until", "2026-03-08 09:00:00.5"),
                                        ("--since", "2026-03-08")])
def test_a_bound_without_utc_offset_is_refused_not_taken_as_utc(command, flag, value, good, tmp_path, capsys):
    """RFC 3339 times carry their offset. One without was silently read as UTC: `--since 2026-03-08T09:00:00`
    typed in Seoul (UTC+9) meant a window nine hours off its intent, and no count showed it."""
    extra = ["-o", str(tmp_path / "r.html")] if command == "report" else []
    assert main([command, str(good), flag, value, *extra]) == 2
    err = capsys.readouterr().err
    assert f"bad time window: {flag} {value!r} has no UTC offset: add Z for UTC or the offset (+09:00)" in err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("value", ["2026-03-08T09:00:00Z", "2026-03-08t09:00:00z", "2026-03-08T09:00:00+09:00",
                                   "2026-03-08T09:00:00.123-00:00", "7d"])
def test_bounds_with_an_offset_or_relative_are_taken(value, good, tmp_path):
    assert main(["compliance", str(good), "--since", value]) == 0


def test_another_users_symlinked_folder_on_the_way_is_not_followed(shared_sticky_folder, good, tmp_path, capsys):
    """-o /tmp/evil/passwd where /tmp/evil -> /etc is another user's link: the last part is no link, but the
    report resolved the path and replaced /etc/passwd all the same."""
    victim_folder = tmp_path / "etc"
    victim_folder.mkdir()
    (victim_folder / "passwd").write_text("root:x:0:0\n")
    planted = _planted_link(shared_sticky_folder, "evil", victim_folder)
    out = planted / "passwd"
    assert main(["report", str(good), "-o", str(out), "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}: {planted} on the way is a symbolic link owned by another user (uid 65534)" in err
    assert (victim_folder / "passwd").read_text() == "root:x:0:0\n"
    # a link of one's own leading to another user's link is refused as well
    mine = tmp_path / "mine"
    mine.symlink_to(planted)
    assert main(["report", str(good), "-o", str(mine / "passwd"), "--json", str(tmp_path / "r.json")]) == 2
    assert f"{planted} on the way is a symbolic link owned by another user" in capsys.readouterr().err


def test_a_report_written_again_keeps_the_permissions_it_was_given(good, tmp_path):
    """The report is written beside the old one and renamed over it: a report its owner had made private
    (chmod 600: source names, host names, evidence ids) came back world-readable at the next run."""
    html, twin = tmp_path / "r.html", tmp_path / "r.json"
    assert main(["report", str(good), "-o", str(html), "--json", str(twin)]) == 0
    html.chmod(0o600)
    twin.chmod(0o640)
    assert main(["report", str(good), "-o", str(html), "--json", str(twin)]) == 0
    assert (oct(html.stat().st_mode & 0o777), oct(twin.stat().st_mode & 0o777)) == ("0o600", "0o640")
    fresh = tmp_path / "new.html"
    assert main(["report", str(good), "-o", str(fresh)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask


def test_since_without_until_ends_the_window_now(tmp_path, capsys):
    """`--since 7d` alone ended the window at the latest event: one event from a host whose clock says
    2036 stretched the chart to ten years (48 buckets of 84 days, the real week one bar) and the window
    read '... to 2036'. The window now ends when the report is made; the stray event is counted outside."""
    from datetime import datetime, timedelta, timezone
    now = datetime.now(timezone.utc)
    week = []
    for hours in range(1, 6 * 24, 7):
        week.append(_alert(timestamp=(now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")))
    stray = _alert(timestamp="2036-01-01T00:00:00Z")
    src = tmp_path / "week.ndjson"
    src.write_text("".join(json.dumps(e) + "\n" for e in [*week, stray]))
    assert main(["report", str(src), "--since", "7d", "-o", str(tmp_path / "r.html"), "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["inputs"]["in_window"] == len(week) and report["inputs"]["outside_window"] == 1
    assert report["time_series"]["bucket_seconds"] <= 6 * 3600
    until = datetime.fromisoformat(report["window"]["until"].replace("Z", "+00:00"))
    assert abs(until - now) < timedelta(minutes=5)


def test_a_future_since_alone_says_the_window_ends_now(good, tmp_path, capsys):
    assert main(["compliance", str(good), "--since", "2999-01-01T00:00:00Z"]) == 2
    assert ("bad time window: --since '2999-01-01T00:00:00Z' is not before now, where the window ends when no "
            "--until is given") in capsys.readouterr().err


@pytest.mark.parametrize("command", ["report", "compliance"])
def test_the_same_file_given_twice_is_refused_not_counted_twice(command, good, tmp_path, capsys):
    """`report logs/*.ndjson logs/today.ndjson`: every event of the file given twice was counted twice,
    alerts, open findings and MTTD samples alike, with nothing saying so. Another name for the same file
    (a hard link, a symlink, ./path) is the same file."""
    alias = tmp_path / "alias.ndjson"
    os.link(good, alias)
    extra = ["-o", str(tmp_path / "r.html")] if command == "report" else []
    for second in (str(good), str(alias), f"{tmp_path}/./good.ndjson"):
        assert main([command, str(good), second, *extra]) == 2
        err = capsys.readouterr().err
        assert f"wia-security: {second}: the same file as {good}, given before: its events would be read twice" in err
    assert not (tmp_path / "r.html").exists()


def test_framework_with_no_compliance_is_refused_not_ignored(good, tmp_path, capsys):
    # --framework was silently ignored when --no-compliance left the section out
    out = tmp_path / "r.html"
    assert main(["report", str(good), "-o", str(out), "--no-compliance", "--framework", "cis-v8"]) == 2
    assert "give one of them" in capsys.readouterr().err and not out.exists()
    assert main(["report", str(good), "-o", str(out), "--framework", "cis-v8"]) == 0
