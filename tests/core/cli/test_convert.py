"""`wia-security convert`: --to / --from for every registered format, dead-lettering with file:line, exit codes."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from wia_security import convert, parse, validate_event
from wia_security.cli import main
from wia_security.formats import FORMATS, get_format

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted(str(p) for p in (ROOT / "samples").glob("*-sample.json"))
#: options a format needs (ASFF needs an AWS account id when the event names none)
OPTIONS = {"asff": ["--option", "account_id=111111111111"]}


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def events_file(tmp_path):
    """The seven samples as NDJSON (lenient-cleaned, so all are valid)."""
    lines = [json.dumps(validate_event(json.loads(Path(p).read_text()), lenient=True).event) for p in SAMPLES]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_converts_to_and_back(name, events_file, tmp_path, capsys):
    fmt = get_format(name)
    out = tmp_path / f"out.{name}"
    dead = tmp_path / "dead.ndjson"
    code, _, err = run(["convert", str(events_file), "--to", name, "-o", str(out), "--dead-letter", str(dead),
                        *OPTIONS.get(name, [])], capsys)
    assert code == 0, err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7 and not dead.exists()
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    for line, event in zip(lines, events):
        expected = convert(event, to=name, **({"account_id": "111111111111"} if name == "asff" else {}))
        assert (line == expected) if fmt.text else (json.loads(line) == json.loads(json.dumps(expected)))
    if not fmt.can_parse:
        return
    back = tmp_path / "back.ndjson"
    code, _, err = run(["convert", str(out), "--from", name, "-o", str(back), "--dead-letter", str(dead)], capsys)
    assert code == 0, err
    parsed = [json.loads(line) for line in back.read_text().splitlines()]
    assert len(parsed) >= 7
    assert all(validate_event(e).valid for e in parsed)
    assert "7 documents read: " in err


def test_rejects_are_reported_with_file_and_line_and_dead_lettered(events_file, tmp_path, capsys):
    good = events_file.read_text().splitlines()[0]
    bad_schema = json.loads(good)
    bad_schema["severity"] = 11
    src = tmp_path / "mixed.ndjson"
    src.write_text("\n".join([good, "{not json", json.dumps(bad_schema), good]) + "\n")
    dead = tmp_path / "dead.ndjson"
    out = tmp_path / "out.ndjson"
    code, _, err = run(["convert", str(src), "--to", "ecs", "-o", str(out), "--dead-letter", str(dead)], capsys)
    assert code == 1
    assert f"{src}:2: unparseable input" in err
    assert f"{src}:3: invalid WIA event: /severity" in err
    assert len(out.read_text().splitlines()) == 2
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [r["where"] for r in records] == [f"{src}:2", f"{src}:3"]
    assert records[0]["raw"] == "{not json" and records[1]["event"]["severity"] == 11
    assert "2 rejected" in err


def test_conversion_errors_are_dead_lettered_too(events_file, tmp_path, capsys):
    dead = tmp_path / "dead.ndjson"
    code, out, err = run(["convert", str(events_file), "--to", "asff", "--dead-letter", str(dead)], capsys)
    assert code == 1                     # six samples name no AWS account (one has context.cloud aws)
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(records) == 6 and all("account id" in r["reason"] for r in records)
    assert len(out.splitlines()) == 1 and json.loads(out)["AwsAccountId"] == "123456789012"


def test_from_rejects_documents_it_cannot_read(tmp_path, capsys):
    src = tmp_path / "findings.ndjson"
    src.write_text(json.dumps({"Id": "x"}) + "\n")
    dead = tmp_path / "dead.ndjson"
    code, _, err = run(["convert", str(src), "--from", "asff", "--dead-letter", str(dead)], capsys)
    assert code == 1 and f"{src}:1: cannot convert from asff" in err and "CreatedAt" in err
    assert json.loads(dead.read_text())["event"] == {"Id": "x"}


def test_text_formats_read_one_document_per_line(events_file, tmp_path, capsys):
    text_formats = [n for n in FORMATS if get_format(n).text and get_format(n).can_parse]
    assert text_formats, "LEEF and CEF are text formats"
    for name in text_formats:
        out = tmp_path / f"{name}.log"
        assert main(["convert", str(events_file), "--to", name, "-o", str(out)]) == 0
        with gzip.open(tmp_path / f"{name}.log.gz", "wb") as fh:       # gzip is read transparently
            fh.write(b"\n" + out.read_bytes() + b"\n")
        back = tmp_path / f"{name}.back"
        assert main(["convert", str(tmp_path / f"{name}.log.gz"), "--from", name, "-o", str(back)]) == 0
        assert len(back.read_text().splitlines()) == 7
    capsys.readouterr()


def test_list_formats_and_help(capsys):
    for argv in (["convert", "--list-formats"], ["convert", "--to", "help"]):
        code, out, _ = run(argv, capsys)
        assert code == 0
        for name in FORMATS:
            assert f"\n{name} " in "\n" + out
        # the version in its own column, once: "2.1  STIX", not "STIX 2.1 2.1"
        stix = next(line for line in out.splitlines() if line.startswith("stix "))
        assert stix.split()[4:] == ["2.1", "STIX"], stix


def test_usage_errors_exit_2(events_file, tmp_path, capsys):
    code, _, err = run(["convert", str(events_file), "--to", "nope"], capsys)
    assert code == 2 and "unknown format 'nope'" in err and "ecs" in err
    code, _, err = run(["convert", str(tmp_path / "missing.json"), "--to", "ecs"], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = run(["convert", str(events_file)], capsys)
    assert code == 2 and "--to NAME or --from NAME" in err
    code, _, err = run(["convert", str(events_file), "--to", "ecs", "--option", "novalue"], capsys)
    assert code == 2 and "KEY=VALUE" in err


def test_option_values(tmp_path, capsys):
    from wia_security.cli.convert import parse_options
    assert parse_options(["account_id=012345678901", "n:=5", "flags:=[1,2]"]) == \
        {"account_id": "012345678901", "n": 5, "flags": [1, 2]}
    with pytest.raises(ValueError):
        parse_options(["x:={"])


def test_subprocess_stdin_to_stdout_and_exit_code(events_file):
    proc = subprocess.run([sys.executable, "-m", "wia_security", "convert", "-", "--to", "cim", "--summary", "json"],
                          input=events_file.read_bytes(), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(docs) == 7 and {d["sourcetype"] for d in docs} >= {"wia:security:alert", "wia:security:network_event"}
    summary = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    assert summary["read"] == 7 and summary["written"] == 7 and summary["rejected"] == 0
    back = subprocess.run([sys.executable, "-m", "wia_security", "convert", "-", "--from", "cim"],
                          input=proc.stdout, capture_output=True, timeout=120)
    assert back.returncode == 0
    events = [parse(json.loads(line), from_="wia")[0] for line in back.stdout.splitlines()]
    assert len(events) == 7


def test_subprocess_invalid_input_exits_1(tmp_path):
    src = tmp_path / "bad.ndjson"
    src.write_text('{"type": "alert"}\n')
    proc = subprocess.run([sys.executable, "-m", "wia_security", "convert", str(src), "--to", "ecs",
                           "--dead-letter", str(tmp_path / "dl.ndjson")], capture_output=True, timeout=120)
    assert proc.returncode == 1 and b"bad.ndjson:1: invalid WIA event" in proc.stderr
    assert (tmp_path / "dl.ndjson").exists()


def test_a_malformed_document_goes_to_the_dead_letter_and_the_rest_converts(tmp_path, capsys):
    fmt = get_format("cim")
    docs = [fmt.from_wia(validate_event(json.loads(Path(p).read_text()), lenient=True).event) for p in SAMPLES[:3]]
    docs[1]["fields"]["_time"] = 1e308         # epoch seconds far beyond any date: refused at its path
    src = tmp_path / "cim.ndjson"
    src.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    dead = tmp_path / "dead.ndjson"
    code, out, err = run(["convert", str(src), "--from", "cim", "--dead-letter", str(dead)], capsys)
    assert code == 1 and len(out.splitlines()) == 2
    assert f"{src}:2: cannot convert from cim: cim at /fields/_time: _time 1e+308 is out of range" in err
    assert "Traceback" not in err
    (rejected,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert rejected["where"] == f"{src}:2" and "/fields/_time" in rejected["reason"]


def test_a_dead_letter_that_cannot_be_written_stops_the_run_with_exit_2(tmp_path, capsys):
    assert Path("/dev/full").exists()             # every write fails with ENOSPC, as on a full disk
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"not": "an event"}\n{"nor": "this"}\n')
    code, _, err = run(["convert", str(bad), "--to", "ocsf", "--dead-letter", "/dev/full"], capsys)
    assert code == 2 and "Traceback" not in err
    assert "stopped: cannot write the dead-letter file /dev/full: No space left on device" in err
    assert "1 rejected, 0 of them written to /dev/full" in err      # it stopped at the first reject
    code, _, err = run(["convert", str(bad), "--to", "ocsf", "--dead-letter", str(tmp_path / "no" / "dl.ndjson")], capsys)
    assert code == 2 and "cannot write the dead-letter file" in err and "does not exist" in err


# --- multi-event documents: one bad member is one dead letter, the document's other events are written ----
def _indicator(n: int, pattern: str | None = None) -> dict:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{n:08d}-0000-4000-8000-000000000000",
            "created": "2024-01-15T12:00:00.000Z", "modified": "2024-01-15T12:00:00.000Z", "name": f"ind {n}",
            "pattern_type": "stix", "valid_from": "2024-01-15T12:00:00.000Z",
            "pattern": pattern or f"[ipv4-addr:value = '10.0.0.{n}']"}


def test_a_bundle_with_one_broken_indicator_writes_the_other_99(tmp_path, capsys):
    objects = [_indicator(n) for n in range(100)]
    objects[37]["pattern"] = "[process:pid = 4]"
    good = {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001", "objects": [_indicator(200)]}
    src = tmp_path / "feed.ndjson"
    src.write_text(json.dumps(good) + "\n" + json.dumps({"type": "bundle", "id": good["id"], "objects": objects}) + "\n")
    dead, back = tmp_path / "dead.ndjson", tmp_path / "back.ndjson"
    code, _, err = run(["convert", str(src), "--from", "stix", "-o", str(back), "--dead-letter", str(dead),
                        "--summary", "json"], capsys)
    assert code == 1
    summary = json.loads(err.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("read", "converted", "written", "rejected", "dead_lettered")} == \
        {"read": 2, "converted": 2, "written": 100, "rejected": 1, "dead_lettered": 1}
    written = [json.loads(line) for line in back.read_text().splitlines()]
    assert sorted(e["data"]["indicators"][0]["value"] for e in written) == \
        sorted(f"10.0.0.{n}" for n in [*range(100), 200] if n != 37)
    assert f"{src}:2: cannot convert from stix: stix at /objects/37/pattern: no WIA indicator type fits" in err
    (record,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert record["where"] == f"{src}:2" and "/objects/37/pattern" in record["reason"]
    assert record["errors"][0]["path"] == "/objects/37/pattern" and record["errors"][0]["code"] == "conversion_refused"
    # the member, not the whole 100-object bundle: a bundle of the objects its event is read from
    assert record["event"]["type"] == "bundle" and record["event"]["objects"] == [objects[37]]
    # fixed, the dead letter's bundle converts on its own
    fixed = tmp_path / "fixed.json"
    record["event"]["objects"][0]["pattern"] = "[ipv4-addr:value = '10.0.0.37']"
    fixed.write_text(json.dumps(record["event"]))
    code, out, _ = run(["convert", str(fixed), "--from", "stix", "--dead-letter", str(tmp_path / "d2")], capsys)
    assert code == 0 and json.loads(out)["data"]["indicators"][0]["value"] == "10.0.0.37"


def test_a_document_whose_every_member_is_refused_counts_no_conversion(tmp_path, capsys):
    objects = [_indicator(1, "[process:pid = 1]"), _indicator(2, "[process:pid = 2]")]
    src = tmp_path / "bad.json"
    src.write_text(json.dumps({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001",
                               "objects": objects}))
    dead = tmp_path / "dead.ndjson"
    code, out, err = run(["convert", str(src), "--from", "stix", "--dead-letter", str(dead), "--summary", "json"], capsys)
    summary = json.loads(err.strip().splitlines()[-1])
    assert code == 1 and out == ""
    assert (summary["read"], summary["converted"], summary["written"], summary["rejected"]) == (1, 0, 0, 2)
    assert [json.loads(line)["errors"][0]["path"] for line in dead.read_text().splitlines()] == \
        ["/objects/0/pattern", "/objects/1/pattern"]


def test_one_bad_hit_of_a_search_response_is_dead_lettered_alone(tmp_path, capsys):
    events = [validate_event(json.loads(Path(p).read_text()), lenient=True).event for p in SAMPLES[:3]]
    hits = [{"_index": "wia", "_id": str(i), "_source": convert(e, to="ecs")} for i, e in enumerate(events)]
    hits[1]["_source"] = "not a document"
    src = tmp_path / "search.json"
    src.write_text(json.dumps({"took": 1, "hits": {"total": {"value": 3}, "hits": hits}}))
    dead = tmp_path / "dead.ndjson"
    code, out, err = run(["convert", str(src), "--from", "ecs", "--dead-letter", str(dead)], capsys)
    assert code == 1 and [json.loads(line)["id"] for line in out.splitlines()] == [events[0]["id"], events[2]["id"]]
    assert f"{src}:1: cannot convert from ecs: ecs at /hits/hits/1: a search hit without a _source object" in err
    (record,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert record["event"] == hits[1] and record["errors"][0]["path"] == "/hits/hits/1"
    assert "1 document read: 2 events written (ecs, ecs -> WIA); 1 rejected" in err


@pytest.mark.parametrize("option, shape", [
    ("account_id=12345", "an AWS account id: 12 digits"),
    ("account_id=1234567890123", "an AWS account id: 12 digits"),
    ("account_id:=123456789012", "an AWS account id: 12 digits"),          # a JSON number, not the text
    ("region=us-east", "an AWS Region name such as us-east-1"),
    ("region=US-EAST-1", "an AWS Region name such as us-east-1"),
    ("product_arn=arn:aws:s3:::bucket", "a Security Hub product ARN"),
])
def test_a_bad_asff_option_value_is_one_usage_error_before_any_event(option, shape, events_file, tmp_path, capsys):
    """Was: exit 1, every event dead-lettered with 'pass account_id=...' although one was passed."""
    out, dead = tmp_path / "out.ndjson", tmp_path / "dead.ndjson"
    code, _, err = run(["convert", str(events_file), "--to", "asff", "--option", option, "-o", str(out),
                        "--dead-letter", str(dead)], capsys)
    key = option.split("=")[0].rstrip(":")
    assert code == 2, err
    assert f"--option {key}: must be {shape}" in err
    assert not dead.exists() and err.count("\n") == 1          # one error, no event read or refused


@pytest.mark.parametrize("region", ["us-east-1", "us-gov-west-1", "cn-north-1", "ap-southeast-3", "us-isob-east-1"])
def test_asff_region_names_of_every_partition_pass(region, events_file, tmp_path, capsys):
    out = tmp_path / "out.ndjson"
    code, _, err = run(["convert", str(events_file), "--to", "asff", "--option", "account_id=111111111111",
                        "--option", f"region={region}", "-o", str(out), "--dead-letter", str(tmp_path / "d")], capsys)
    assert code == 0, err
    assert all(json.loads(line)["Resources"][0]["Region"] == region for line in out.read_text().splitlines())
