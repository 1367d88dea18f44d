"""forward and replay put their summary on standard error whenever the events go to standard output, also through
a --config fan-out (url "-") and through --enrich: there the summary was printed into the event stream on standard
output, so `forward --config c.toml in.ndjson | next-tool` (or `--enrich virustotal --to - | ...`) fed the next tool
'destination: ...' and the count table among the events. The VirusTotal part is a contract test against the
VirusTotal contract server, driven by the real vt-py client."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from strategies import event_dicts  # noqa: E402
from vt_contract import VirusTotalServer  # noqa: E402
from wia_security.builders import AlertBuilder  # noqa: E402

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def _only_events(out: str, n: int) -> list[dict]:
    lines = out.splitlines()
    events = [json.loads(line) for line in lines]          # a summary line would not parse
    assert len(events) == n and all(isinstance(e, dict) and "id" in e for e in events)
    return events


def test_config_fan_out_to_stdout_keeps_the_summary_off_it(cli, tmp_path):
    src = tmp_path / "in.ndjson"
    src.write_text("".join(json.dumps(e) + "\n" for e in event_dicts(7, seed=61)))
    (tmp_path / "c.toml").write_text('[destinations.out]\nurl = "-"\n[destinations.store]\nurl = "sqlite:///s.db"\n')
    r = cli("forward", "--config", "c.toml", str(src))
    assert r.code == 0
    _only_events(r.out, 7)
    assert "destination: fanout(out, store)" in r.err and "per destination:" in r.err


def test_replay_through_a_config_fan_out_to_stdout(cli, tmp_path):
    dead = tmp_path / "dl.ndjson"
    dead.write_text("".join(json.dumps({"reason": "gave up", "sink": "out", "event": e, "where": f"in:{i}"}) + "\n"
                            for i, e in enumerate(event_dicts(4, seed=62), 1)))
    (tmp_path / "c.toml").write_text('[destinations.out]\nurl = "-"\n')
    r = cli("replay", "--config", "c.toml", str(dead))
    assert r.code == 0
    _only_events(r.out, 4)
    assert "dead-letter records read 4" in r.err


def test_contract_enriched_events_to_stdout_keep_the_summary_off_it(cli, tmp_path, monkeypatch):
    src = tmp_path / "in.ndjson"
    src.write_text("".join(json.dumps(AlertBuilder().title(f"x{i}").indicator("file_hash_sha256", SHA256)
                                      .build().to_dict()) + "\n" for i in range(3)))
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        monkeypatch.setenv("VT_API_URL", vt.url)
        r = cli("forward", str(src), "--to", "-", "--enrich", "virustotal")
    assert r.code == 0, r.err
    events = _only_events(r.out, 3)
    assert all(e["meta"]["custom"]["enrichment"]["virustotal"] for e in events)
    assert "destination: file:-+virustotal" in r.err
