"""`wia-security enrich` dead-letters what it cannot enrich, as forward and convert do: an input that did not parse or
was not a valid event was named on standard error (every one, only after the whole run, kept in memory till then)
and left out of the output, so `enrich in.ndjson -o out.ndjson && forward out.ndjson` lost it. Contract test
against the VirusTotal contract server, driven by the real vt-py client."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from vt_contract import VirusTotalServer  # noqa: E402
from wia_security.builders import AlertBuilder  # noqa: E402

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def _inputs(tmp_path: Path, bad: int) -> tuple[Path, list[str]]:
    good = [AlertBuilder().title(f"x{i}").indicator("file_hash_sha256", SHA256).build().to_dict() for i in range(3)]
    lines = [json.dumps(good[0]), "{not json", json.dumps({"type": "alert"}), json.dumps(good[1])]
    lines += [json.dumps({"n": i}) for i in range(bad)] + [json.dumps(good[2])]
    src = tmp_path / "in.ndjson"
    src.write_text("\n".join(lines) + "\n")
    return src, [e["id"] for e in good]


def _run(cli, monkeypatch, *args):
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        return cli("enrich", "--vt-url", vt.url, *args)


def test_contract_rejects_go_to_the_dead_letter_file_with_their_reason(cli, tmp_path, monkeypatch):
    src, ids = _inputs(tmp_path, 0)
    r = _run(cli, monkeypatch, str(src), "-o", "out.ndjson", "--dead-letter", "dl.ndjson")
    assert r.code == 1
    assert [json.loads(line)["id"] for line in (tmp_path / "out.ndjson").read_text().splitlines()] == ids
    records = [json.loads(line) for line in (tmp_path / "dl.ndjson").read_text().splitlines()]
    assert [(r["where"], r["reason"].split(":")[0]) for r in records] == [
        (f"{src}:2", "unparseable input"), (f"{src}:3", "invalid")]
    assert records[0]["raw"] == "{not json" and records[1]["event"] == {"type": "alert"}
    assert f"{src}:2: unparseable input" in r.err and "2 inputs rejected, written to dl.ndjson" in r.err


def test_contract_only_the_first_rejects_are_named_on_stderr(cli, tmp_path, monkeypatch):
    src, ids = _inputs(tmp_path, 40)
    r = _run(cli, monkeypatch, str(src), "-o", "out.ndjson")            # the default dead letter
    assert r.code == 1
    assert len((tmp_path / "wia-dead-letter.ndjson").read_text().splitlines()) == 42
    assert r.err.count(f"{src}:") == 20 and "more rejects: see the dead-letter file" in r.err


def test_contract_the_dead_letter_cannot_be_an_input_or_the_output(cli, tmp_path, monkeypatch):
    src, _ = _inputs(tmp_path, 0)
    r = _run(cli, monkeypatch, str(src), "--dead-letter", str(src))
    assert r.code == 2 and "is also an input" in r.err
    (tmp_path / "out.ndjson").write_text("")
    r = _run(cli, monkeypatch, str(src), "-o", "out.ndjson", "--dead-letter", "out.ndjson")
    assert r.code == 2 and "the same file" in r.err


def test_contract_no_dead_letter_file_when_nothing_is_rejected(cli, tmp_path, monkeypatch):
    good = AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(good) + "\n")
    r = _run(cli, monkeypatch, str(src), "-o", "out.ndjson")
    assert r.code == 0 and not (tmp_path / "wia-dead-letter.ndjson").exists()
