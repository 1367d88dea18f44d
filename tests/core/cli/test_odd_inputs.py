"""Odd inputs to every reading command (validate, forward, convert): a clear message naming the file (and line),
the documented exit code, and nothing dropped without a word."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from bad_inputs import VALID
from cli_process import run

THREE = [dict(VALID, id=f"550e8400-e29b-41d4-a716-44665544000{i}") for i in range(3)]
NDJSON = b"".join(json.dumps(e).encode() + b"\n" for e in THREE)

COMMANDS = {
    "validate": ["validate"],
    "forward": ["forward", "--to", "sqlite:///out.db", "--summary", "json"],
    "convert": ["convert", "--to", "ecs", "-o", "out.ndjson", "--summary", "json"],
}


def processed(command: str, r, tmp_path: Path) -> int:
    """How many events the command says it handled successfully."""
    if command == "validate":
        line = next(x for x in r.err.splitlines() if " events: " in x)
        return int(line.split(": ")[1].split(" valid")[0].replace(",", ""))
    if command == "forward":
        return json.loads(r.out)["delivered"]
    return json.loads(r.err.strip().splitlines()[-1])["written"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name, data", [
    ("bom.ndjson", b"\xef\xbb\xbf" + NDJSON),
    ("crlf.ndjson", NDJSON.replace(b"\n", b"\r\n")),
    ("gzip-without-suffix.data", gzip.compress(NDJSON)),
    ("blank-lines.ndjson", b"\n" + NDJSON.replace(b"\n", b"\n\n   \n\t\n") + b"\n\n"),
    ("array-with-crlf.json", b"[\r\n" + b",\r\n".join(json.dumps(e).encode() for e in THREE) + b"\r\n]\r\n"),
    ("pretty-with-bom.json", b"\xef\xbb\xbf" + b"".join(json.dumps(e, indent=2).encode() + b"\n" for e in THREE)),
])
def test_odd_but_valid_encodings_are_read_whole(cli, tmp_path, command, name, data):
    (tmp_path / name).write_bytes(data)
    r = cli(*COMMANDS[command], name)
    assert r.code == 0, r.err
    assert processed(command, r, tmp_path) == 3


EMPTY_INPUTS = [("empty.ndjson", b"", "the file is empty"),
                ("blank.ndjson", b"\n  \r\n\t\n", "the file holds only blank lines or an empty JSON array"),
                ("empty-array.json", b"[ ]\n", "the file holds only blank lines or an empty JSON array")]


@pytest.mark.parametrize("name, data, why", EMPTY_INPUTS)
def test_validate_fails_an_input_with_no_event_naming_it(cli, tmp_path, name, data, why):
    """A check that checked nothing is not a pass: an empty file is most often a failed export."""
    (tmp_path / name).write_bytes(data)
    (tmp_path / "ok.ndjson").write_bytes(NDJSON)
    r = cli("validate", "ok.ndjson", name)
    assert r.code == 1
    assert f"{name}: error: no events: {why} (a failed export?) [no_events]" in r.out
    assert "3 events: 3 valid, 0 invalid, 0 unparseable, 0 warnings; 1 input with no event" in r.err
    r = cli("validate", "--format", "json", name)
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert r.code == 1
    assert lines[0]["source"] == name and lines[0]["valid"] is False
    assert lines[0]["errors"][0]["code"] == "no_events"
    assert lines[-1]["summary"]["empty_inputs"] == 1 and lines[-1]["summary"]["events"] == 0


def test_validate_names_empty_standard_input(tmp_path):
    r = run("validate", "-", cwd=tmp_path, input=b"")
    assert r.returncode == 1
    assert b"<stdin>: error: no events: standard input was empty" in r.stdout


def test_validate_allow_empty_makes_an_input_with_no_event_a_warning(cli, tmp_path):
    """For exports that may rightly be empty (a quiet hour): said, counted, but no failure."""
    (tmp_path / "empty.ndjson").write_bytes(b"")
    (tmp_path / "ok.ndjson").write_bytes(NDJSON)
    r = cli("validate", "--allow-empty", "ok.ndjson", "empty.ndjson")
    assert r.code == 0, r.out
    assert "empty.ndjson: warning: no events: the file is empty (a failed export?) [no_events]" in r.out
    assert "; 1 input with no event" in r.err
    r = cli("validate", "--allow-empty", "--format", "json", "empty.ndjson")
    result, summary = [json.loads(x) for x in r.out.splitlines()]
    assert r.code == 0
    assert result["valid"] is True and result["errors"] == [] and result["warnings"][0]["code"] == "no_events"
    assert summary["summary"]["empty_inputs"] == 1
    r = cli("validate", "--allow-empty", "ok.ndjson", "empty.ndjson", "-q")
    assert r.code == 0 and r.out == ""
    (tmp_path / "bad.ndjson").write_bytes(b"{\n")
    assert cli("validate", "--allow-empty", "empty.ndjson", "bad.ndjson").code == 1     # the rest still counts


def test_an_empty_gzip_file_and_an_empty_fifo_are_not_called_an_empty_file(cli, tmp_path):
    """A gzip file's size and a FIFO's (0) say nothing of what came out of them."""
    (tmp_path / "empty.ndjson.gz").write_bytes(gzip.compress(b""))
    r = cli("validate", "empty.ndjson.gz")
    assert r.code == 1
    assert ("empty.ndjson.gz: error: no events: the gzip file decompresses to nothing or only blank lines or an "
            "empty JSON array (a failed export?) [no_events]") in r.out
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:           # blocks until the command opens the FIFO for reading
            fh.write(b"\n")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    p = run("validate", "events.fifo", cwd=tmp_path, timeout=30)
    writer.join(timeout=10)
    assert p.returncode == 1
    assert (b"events.fifo: error: no events: the pipe or device gave nothing or only blank lines or an empty JSON "
            b"array (a failed export?) [no_events]") in p.stdout


@pytest.mark.parametrize("command", ["forward", "convert"])
@pytest.mark.parametrize("name, data, why", EMPTY_INPUTS)
def test_forward_and_convert_warn_of_an_input_with_no_event_and_go_on(cli, tmp_path, command, name, data, why):
    """Nothing to deliver is no failure (a scheduled run with no new events), but it is said."""
    (tmp_path / name).write_bytes(data)
    (tmp_path / "ok.ndjson").write_bytes(NDJSON)
    r = cli(*COMMANDS[command], name, "ok.ndjson")
    assert r.code == 0, r.err
    assert processed(command, r, tmp_path) == 3
    assert f"wia-security: warning: {name}: no events: {why} (a failed export?)" in r.err


def _summary(command: str, r) -> dict:
    return json.loads(r.out) if command == "forward" else json.loads(r.err.strip().splitlines()[-1])


@pytest.mark.parametrize("command", ["forward", "convert"])
def test_forward_and_convert_json_summaries_count_the_inputs_with_no_event(cli, tmp_path, command):
    """A scheduled job reading --summary json sees an input that held nothing (a failed export?), as a person
    reading the warnings on stderr does; 0 when every input held events."""
    for name, data, _ in EMPTY_INPUTS:
        (tmp_path / name).write_bytes(data)
    (tmp_path / "ok.ndjson").write_bytes(NDJSON)
    r = cli(*COMMANDS[command], *(name for name, _, _ in EMPTY_INPUTS), "ok.ndjson")
    assert r.code == 0, r.err
    assert _summary(command, r)["empty_inputs"] == 3 and _summary(command, r)["read"] == 3
    r = cli(*COMMANDS[command], "ok.ndjson")
    assert r.code == 0 and _summary(command, r)["empty_inputs"] == 0


@pytest.mark.parametrize("command", ["forward", "convert"])
def test_forward_and_convert_json_summaries_count_empty_standard_input(tmp_path, command):
    p = run(*COMMANDS[command], "-", cwd=tmp_path, input=b"")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout if command == "forward" else p.stderr.strip().splitlines()[-1])
    assert summary["empty_inputs"] == 1 and summary["read"] == 0


def test_forward_and_convert_text_summaries_count_the_inputs_with_no_event(cli, tmp_path):
    (tmp_path / "empty.ndjson").write_bytes(b"")
    (tmp_path / "ok.ndjson").write_bytes(NDJSON)
    r = cli("forward", "--to", "sqlite:///out.db", "empty.ndjson", "ok.ndjson")
    assert r.code == 0, r.err
    assert "1 input held no event (named on standard error)" in r.out
    r = cli("convert", "--to", "ecs", "-o", "out.ndjson", "empty.ndjson", "ok.ndjson")
    assert r.code == 0 and "written (ecs, WIA -> ecs); 1 input with no event" in r.err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: None, "no such file"),
])
def test_a_path_that_is_not_a_readable_file_is_named_with_exit_2(cli, tmp_path, command, make, message):
    make(tmp_path / "bad")
    r = cli(*COMMANDS[command], "bad")
    assert r.code == 2
    assert f"bad: {message}" in r.err
    assert "Traceback" not in r.err


@pytest.mark.parametrize("command", COMMANDS)
def test_standard_input_twice_is_a_usage_error(cli, tmp_path, command):
    r = cli(*COMMANDS[command], "-", "-")
    assert r.code == 2 and "standard input can be read only once" in r.err
    assert "0 events" not in r.err + r.out      # nothing was read: no summary of a run that did not happen


@pytest.mark.parametrize("command", COMMANDS)
def test_standard_input(tmp_path, command):
    r = run(*COMMANDS[command], "-", cwd=tmp_path, input=NDJSON)
    assert r.returncode == 0, r.stderr
    assert b"Traceback" not in r.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_a_fifo_is_read_like_a_file(tmp_path, command):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:           # blocks until the command opens the FIFO for reading
            fh.write(NDJSON)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    # A separate process with a timeout: a command that opened the FIFO twice would wait forever.
    p = run(*COMMANDS[command], "events.fifo", cwd=tmp_path, timeout=30)
    writer.join(timeout=10)
    r = SimpleNamespace(code=p.returncode, out=p.stdout.decode(), err=p.stderr.decode())
    assert r.code == 0, r.err
    assert processed(command, r, tmp_path) == 3


@pytest.mark.parametrize("command", COMMANDS)
def test_a_truncated_gzip_keeps_the_events_before_the_cut_and_names_the_file(cli, tmp_path, command):
    many = b"".join(json.dumps(dict(VALID, id=f"550e8400-e29b-41d4-a716-{i:012d}")).encode() + b"\n"
                    for i in range(2000))
    packed = gzip.compress(many)
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    complete = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(packed[: len(packed) // 2]).count(b"\n")
    r = cli(*COMMANDS[command], "cut.gz")
    assert r.code == 1
    text = r.out + r.err
    assert f"the gzip stream is truncated in line {complete + 1} of cut.gz" in text
    assert "cut.gz:0:" not in text                   # there is no line 0
    assert 0 < processed(command, r, tmp_path) == complete       # every line before the cut, whole


def test_a_truncated_gzip_in_a_line_format_is_reported_with_the_line_it_broke_after(cli, tmp_path):
    (tmp_path / "in.ndjson").write_bytes(NDJSON * 300)
    assert cli("convert", "--to", "leef", "-o", "in.leef", "in.ndjson").code == 0
    packed = gzip.compress((tmp_path / "in.leef").read_bytes())
    (tmp_path / "cut.leef").write_bytes(packed[: len(packed) // 2])
    *complete, torn = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(packed[: len(packed) // 2]).split(b"\n")
    r = cli("convert", "--from", "leef", "-o", "back.ndjson", "--dead-letter", "dl.ndjson", "cut.leef")
    assert r.code == 1
    assert "Traceback" not in r.err
    [record] = [json.loads(x) for x in (tmp_path / "dl.ndjson").read_text().splitlines()]
    line = len(complete) + 1
    assert record["reason"].startswith(f"unparseable input: unreadable input: the gzip stream is truncated in line "
                                       f"{line} of cut.leef")
    assert record["where"] == f"cut.leef:{line}" and record["raw"].encode() == torn    # the torn line, not parsed
    assert len((tmp_path / "back.ndjson").read_bytes().splitlines()) == len(complete)


def test_a_line_format_with_a_byte_order_mark_parses_its_first_line(cli, tmp_path):
    (tmp_path / "in.ndjson").write_bytes(NDJSON)
    assert cli("convert", "--to", "cef", "-o", "in.cef", "in.ndjson").code == 0
    (tmp_path / "bom.cef").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "in.cef").read_bytes())
    r = cli("convert", "--from", "cef", "--summary", "json", "bom.cef")
    assert r.code == 0, r.err
    assert len(r.out.splitlines()) == 3


def test_mixed_good_bad_and_blank_lines_lose_nothing(cli, tmp_path):
    lines = [json.dumps(THREE[0]), "", "{not json", "   ", json.dumps(THREE[1]), json.dumps(dict(VALID, severity=99)),
             "", json.dumps(THREE[2])]
    (tmp_path / "mixed.ndjson").write_text("\n".join(lines) + "\n")
    r = cli("forward", "--to", "sqlite:///out.db", "--dead-letter", "dl.ndjson", "--summary", "json", "mixed.ndjson")
    s = json.loads(r.out)
    assert r.code == 1
    assert (s["read"], s["delivered"], s["rejected"], s["dead_lettered"]) == (5, 3, 2, 2)
    where = sorted(json.loads(x)["where"] for x in (tmp_path / "dl.ndjson").read_text().splitlines())
    assert where == ["mixed.ndjson:3", "mixed.ndjson:6"]
    assert sqlite3.connect(tmp_path / "out.db").execute("select count(*) from events").fetchone()[0] == 3


def _without_read_permission() -> list[str]:
    """A command prefix under which mode bits hold: as root, drop the capabilities that override them."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")            # util-linux, Essential on Debian
    assert setpriv, "setpriv (util-linux) is needed to test permissions as root"
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreadable_file_is_named_with_exit_2(tmp_path, command):
    secret = tmp_path / "secret.ndjson"
    secret.write_bytes(NDJSON)
    secret.chmod(0)
    try:
        r = subprocess.run([*_without_read_permission(), sys.executable, "-m", "wia_security", *COMMANDS[command],
                            str(secret)], cwd=tmp_path, capture_output=True, timeout=60)
    finally:
        secret.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert r.returncode == 2, r.stderr
    assert f"{secret}: permission denied" in r.stderr.decode()
    assert b"Traceback" not in r.stderr

