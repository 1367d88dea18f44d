"""`wia-security validate`: verdicts with file, line and path; exit 0/1/2; hostile input never crashes."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from bad_inputs import BAD_INPUTS, VALID, valid_line

SAMPLES = sorted(str(p) for p in __import__("pathlib").Path(__file__).resolve().parents[3].joinpath("samples").glob("*.json"))


def test_all_valid_exits_0(cli, tmp_path):
    (tmp_path / "ok.ndjson").write_bytes(valid_line() + b"\n" + valid_line() + b"\n")
    r = cli("validate", "ok.ndjson")
    assert r.code == 0
    assert r.out.count("valid alert") == 2
    assert "2 events: 2 valid, 0 invalid" in r.err
    (tmp_path / "one.ndjson").write_bytes(valid_line() + b"\n")
    assert "1 event: 1 valid, 0 invalid, 0 unparseable, 0 warnings" in cli("validate", "one.ndjson").err


def test_samples_report_the_null_paths_with_their_lines(cli):
    r = cli("validate", *SAMPLES)
    assert r.code == 1
    assert "auth-event-sample.json:28: error: /data/source/hostname: null is not of type string [type]" in r.out
    assert "incident-sample.json:168: error: /data/closed_at" in r.out
    assert "7 events: 5 valid, 2 invalid" in r.err


def test_lenient_accepts_the_samples_with_warnings(cli):
    r = cli("validate", "--lenient", *SAMPLES)
    assert r.code == 0
    assert r.out.count("[null_dropped]") == 5


def test_json_format_is_one_object_per_event_then_a_summary(cli):
    r = cli("validate", "--format", "json", *SAMPLES)
    lines = [json.loads(line) for line in r.out.splitlines()]
    assert lines[-1] == {"summary": {"events": 7, "valid": 5, "invalid": 2, "unparseable": 0, "warnings": 1}}
    auth = next(x for x in lines[:-1] if x.get("type") == "auth_event")
    assert auth["valid"] is False
    assert {(e["path"], e["code"], e["line"]) for e in auth["errors"]} == {
        ("/data/source/hostname", "type", 28), ("/data/session_id", "type", 44)}


def test_ndjson_lines_are_numbered_and_a_bad_line_does_not_stop_the_rest(cli, tmp_path):
    bad = dict(VALID, severity=11)
    (tmp_path / "mixed.ndjson").write_bytes(b"\n".join([valid_line(), json.dumps(bad).encode(), b"{oops", valid_line()]))
    r = cli("validate", "mixed.ndjson")
    assert r.code == 1
    assert "mixed.ndjson:2: error: /severity: 11 is greater than the maximum of 10 [maximum]" in r.out
    assert "mixed.ndjson:3:2: error:" in r.out and "[parse_error]" in r.out
    assert "4 events: 2 valid, 1 invalid, 1 unparseable" in r.err


def test_a_parse_error_names_its_column(cli, tmp_path):
    # On a long line the line number alone does not say where: the column (from 1) of the parser's stop does.
    (tmp_path / "cols.ndjson").write_bytes(b'{"a":}\n' + valid_line() + b' x\n')
    r = cli("validate", "cols.ndjson")
    assert "cols.ndjson:1:6: error: Expecting value [parse_error]" in r.out
    extra = len(valid_line()) + 2
    assert f"cols.ndjson:2:{extra}: error:" in r.out
    r = cli("validate", "--format", "json", "cols.ndjson")
    first = json.loads(r.out.splitlines()[0])
    assert first["errors"] == [{"path": "", "code": "parse_error", "message": "Expecting value", "line": 1, "column": 6}]


def test_gzip_and_json_array_inputs(cli, tmp_path):
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(json.dumps([VALID, VALID], indent=2).encode()))
    r = cli("validate", "a.json.gz")
    assert r.code == 0, r.out
    assert "a.json.gz:2: valid alert" in r.out


def test_missing_file_is_a_usage_error(cli):
    r = cli("validate", "nope.json")
    assert r.code == 2
    assert "nope.json: no such file" in r.err


def test_directory_is_a_usage_error(cli, tmp_path):
    (tmp_path / "d").mkdir()
    assert cli("validate", "d").code == 2


def test_no_arguments_is_a_usage_error(cli):
    assert cli("validate").code == 2


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_hostile_input_gets_a_clear_error_and_exit_1(cli, tmp_path, name):
    data, expected = BAD_INPUTS[name]
    (tmp_path / "bad.json").write_bytes(data)
    r = cli("validate", "bad.json")
    assert r.code == 1
    assert expected in r.out
    assert "bad.json:1" in r.out
    assert len(r.out) < 5_000, "a huge value must never be echoed whole"


def test_stdin_through_a_real_subprocess():
    proc = subprocess.run([sys.executable, "-m", "wia_security", "validate", "--format", "json", "-"],
                          input=valid_line() + b"\n", capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout.splitlines()[0])
    assert first["source"] == "<stdin>" and first["valid"] is True
