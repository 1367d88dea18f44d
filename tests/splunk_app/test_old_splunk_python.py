"""Splunk Enterprise before 10.2 ignores python.required and runs the app with python.version = python3:
Python 3.7 (9.0-9.2) or 3.9 (9.3 and later). The vendored core needs 3.11, so the entry scripts must say
so in splunkd.log instead of dying on an import traceback, and the alert action must keep the result."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _old_interpreters() -> list[list[str]]:
    """The Pythons older Splunk versions run (3.7, 3.9) where this machine has them (pyenv); else this Python
    told it is 3.9, so that the test never depends on what is installed."""
    found = [[path] for minor in ("3.7", "3.9", "3.10")
             for path in sorted(glob.glob(f"/root/.pyenv/versions/{minor}.*/bin/python{minor}"))[:1]]
    return found or [[sys.executable, "-c",
                      "import runpy, sys; sys.argv = sys.argv[1:]; sys.version_info = (3, 9, 18, 'final', 0); "
                      "runpy.run_path(sys.argv[0], run_name='__main__')"]]


OLD = _old_interpreters()


def _run(python: list[str], script: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None):
    return subprocess.run([*python, str(script), *args], input=stdin, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("python", OLD, ids=lambda p: Path(p[0]).name)
def test_the_input_on_an_older_splunk_python_says_what_it_needs(built_app, python):
    app, _ = built_app
    for args in (["--scheme"], ["--validate-arguments"], []):
        out = _run(python, app / "bin" / "wia_events.py", *args, stdin="<input/>")
        assert out.returncode == 1, out.stderr
        assert "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("ERROR wia_events: the WIA Security app needs Python 3.11 or later"), out.stderr
        assert "Splunk Enterprise 10.2 or later" in out.stderr and "python.required = 3.13" in out.stderr
        assert out.stdout == ""


@pytest.mark.parametrize("python", OLD, ids=lambda p: Path(p[0]).name)
def test_the_alert_action_on_an_older_splunk_python_dead_letters_the_result(built_app, python, tmp_path):
    app, _ = built_app
    (tmp_path / "var" / "log" / "splunk").mkdir(parents=True)
    payload = {"session_key": "s3ss10n-k3y-never-logged", "sid": "scheduler__admin_search_1", "search_name": "Brute force",
               "server_uri": "https://127.0.0.1:8089", "configuration": {"destination": "soar", "severity": "7"},
               "result": {"src_ip": "203.0.113.9", "user": "alice", "_time": "1733400000"}}
    out = _run(python, app / "bin" / "wia_send_event.py", "--execute", stdin=json.dumps(payload),
               env={"SPLUNK_HOME": str(tmp_path)})
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "needs Python 3.11 or later" in out.stderr, out.stderr
    lines = (tmp_path / "var" / "log" / "splunk" / "wia_security_dead_letter.log").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert "needs Python 3.11 or later" in record["reason"]
    assert record["result"] == payload["result"] and record["configuration"] == payload["configuration"]
    assert record["sid"] == payload["sid"] and record["search_name"] == "Brute force"
    assert "s3ss10n-k3y-never-logged" not in lines[0] + out.stderr + out.stdout


def test_without_a_dead_letter_file_the_result_goes_to_splunkd_log(built_app):
    app, _ = built_app
    env = {k: v for k, v in os.environ.items() if k != "SPLUNK_HOME"}
    out = subprocess.run([*OLD[0], str(app / "bin" / "wia_send_event.py"), "--execute"],
                         input=json.dumps({"session_key": "s3ss10n-k3y-never-logged", "result": {"user": "bob"}}),
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2
    dead = [line for line in out.stderr.splitlines() if line.startswith("ERROR wia_send_event dead_letter=")]
    assert len(dead) == 1 and json.loads(dead[0].split("=", 1)[1])["result"] == {"user": "bob"}
    assert "s3ss10n-k3y-never-logged" not in out.stderr


def test_the_current_python_runs_the_app(built_app):
    """The check lets Splunk 10.2's Python 3.13 (and the 3.11 the suite runs on) through."""
    app, _ = built_app
    out = subprocess.run([sys.executable, str(app / "bin" / "wia_events.py"), "--scheme"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("<scheme>"), out.stderr


@pytest.mark.parametrize("python", OLD, ids=lambda p: Path(p[0]).name)
def test_on_an_older_splunk_python_an_alert_triggered_once_dead_letters_every_result(built_app, python, tmp_path):
    """An alert triggered once has all its results in results_file and only the first in `result`: the dead-letter
    record kept the first alone."""
    import csv
    import gzip
    import io
    app, _ = built_app
    (tmp_path / "var" / "log" / "splunk").mkdir(parents=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerows([["src_ip", "__mv_src_ip", "user", "_raw"], ["203.0.113.9", "", "alice", "r" * 200_000],
                      ["198.51.100.7", "", "bob", "raw 2"], ["192.0.2.1", "", "carol", "raw 3"]])
    results = tmp_path / "results.csv.gz"
    results.write_bytes(gzip.compress(text.getvalue().encode("utf-8")))
    payload = {"session_key": "s3ss10n-k3y-never-logged", "sid": "scheduler__admin_search_1", "search_name": "Brute force",
               "configuration": {"destination": "soar"}, "result": {"src_ip": "203.0.113.9", "user": "alice"},
               "results_file": str(results)}
    out = _run(python, app / "bin" / "wia_send_event.py", "--execute", stdin=json.dumps(payload),
               env={"SPLUNK_HOME": str(tmp_path)})
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    (line,) = (tmp_path / "var" / "log" / "splunk" / "wia_security_dead_letter.log").read_text().splitlines()
    record = json.loads(line)
    assert [(r["user"], len(r["_raw"])) for r in record["results"]] == [("alice", 200_000), ("bob", 5), ("carol", 5)]
    assert "s3ss10n" not in line
