"""The intel subcommands end to end: `enrich` (vt-py) and `intel pull misp|otx` (pymisp, requests), against
the contract servers, into the embedded store."""
from __future__ import annotations

import json

from misp_contract import MispServer
from otx_contract import OtxServer
from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.cli import main
from wia_security.connectors.sqlite import EventStore

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def test_enrich_command(tmp_path, monkeypatch, capsys):
    event = AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(event) + "\n{broken\n")
    monkeypatch.chdir(tmp_path)                            # the default dead-letter file goes to the working directory
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        rc = main(["enrich", str(src), "--vt-url", vt.url, "--cache", str(tmp_path / "c.db")])
    out, err = capsys.readouterr()
    assert rc == 1 and f"{src}:2:" in err                  # the broken line is named, the good event still goes out
    [enriched] = [json.loads(line) for line in out.splitlines()]
    assert enriched["meta"]["custom"]["enrichment"]["virustotal"]["indicators"][0]["detection_ratio"] == "3/60"
    assert "1 VirusTotal request," in err
    [dead] = [json.loads(line) for line in (tmp_path / "wia-dead-letter.ndjson").read_text().splitlines()]
    assert dead["where"] == f"{src}:2" and dead["raw"] == "{broken"
    monkeypatch.delenv("VT_API_KEY")
    assert main(["enrich", str(src)]) == 2 and "$VT_API_KEY" in capsys.readouterr().err


def test_intel_pull_misp_into_the_store(tmp_path, monkeypatch, capsys):
    with MispServer(key="m") as misp:
        misp.add_event({"info": "Feed A", "Tag": [{"name": "feed:a"}],
                        "Attribute": [{"type": "domain", "category": "Network activity", "value": "a.example.net"}]})
        misp.add_event({"info": "Feed B", "Attribute": [{"type": "url", "category": "Network activity",
                                                          "value": "http://b.example.net/x"}]})
        monkeypatch.setenv("MISP_KEY", "m")
        db = tmp_path / "intel.db"
        assert main(["intel", "pull", "misp", "--url", misp.url, "--tag", "feed:a", "--to", f"sqlite:///{db}"]) == 0
        assert main(["intel", "pull", "misp", "--url", misp.url, "--tag", "feed:a", "--to", f"sqlite:///{db}"]) == 0
    err = capsys.readouterr().err
    assert "misp: 1 delivered, 0 duplicates" in err and "misp: 0 delivered, 1 duplicates" in err
    store = EventStore(str(db))
    [row] = list(store.query(limit=None))
    assert row.event["data"]["threat_name"] == "Feed A"
    store.close()


def test_intel_pull_otx_moves_the_cursor(tmp_path, monkeypatch, capsys):
    with OtxServer(api_key="o") as otx:
        otx.pulses = [{"id": f"p{i}", "name": f"Pulse {i}", "modified": f"2026-02-0{i}T00:00:00",
                       "indicators": [{"indicator": f"evil{i}.example.net", "type": "domain"}]} for i in (1, 2)]
        monkeypatch.setenv("OTX_API_KEY", "o")
        state, db = tmp_path / "state.json", tmp_path / "intel.db"
        args = ["intel", "pull", "otx", "--url", otx.url, "--state", str(state), "--to", f"sqlite:///{db}"]
        assert main(args) == 0
        assert json.loads(state.read_text())["modified_since"] == "2026-02-02T00:00:00"
        otx.pulses.append({"id": "p3", "name": "Pulse 3", "modified": "2026-02-03T00:00:00", "indicators": []})
        assert main(args) == 0
        assert otx.calls()[-1].query["modified_since"] == ["2026-02-02T00:00:00"]
    assert "otx: 2 delivered" in capsys.readouterr().err
    store = EventStore(str(db))
    assert store.count() == 3
    store.close()


def test_forward_with_virustotal_enrichment(tmp_path, monkeypatch, capsys):
    event = AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(event) + "\n")
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 5, "undetected": 55})
        monkeypatch.setenv("VT_API_KEY", "k")
        monkeypatch.setenv("VT_API_URL", vt.url)
        rc = main(["forward", str(src), "--enrich", "virustotal", "--to", f"sqlite:///{tmp_path}/s.db",
                   "--summary", "json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["delivered"] == 1
    [stored] = list(EventStore(str(tmp_path / "s.db")).query())
    assert stored.event["meta"]["custom"]["enrichment"]["virustotal"]["indicators"][0]["detection_ratio"] == "5/60"


def test_forward_enrichment_never_blocks_delivery_when_virustotal_is_down(tmp_path, monkeypatch, capsys):
    event = AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(event) + "\n")
    monkeypatch.setenv("VT_API_KEY", "k")
    monkeypatch.setenv("VT_API_URL", "http://127.0.0.1:9")          # nothing listens there
    rc = main(["forward", str(src), "--enrich", "virustotal", "--to", f"sqlite:///{tmp_path}/s.db", "--summary", "json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["delivered"] == 1
    [stored] = list(EventStore(str(tmp_path / "s.db")).query())
    vt = stored.event["meta"]["custom"]["enrichment"]["virustotal"]
    assert vt["status"] == "partial" and vt["indicators"] == []
    assert any("unreachable" in note for note in vt["notes"])


def test_intel_pull_dead_letters_pulses_it_cannot_map_and_still_moves_the_cursor(tmp_path, monkeypatch, capsys):
    from misp_contract import Fault
    good = {"id": "p1", "name": "Pulse 1", "modified": "2026-02-01T00:00:00",
            "indicators": [{"indicator": "evil1.example.net", "type": "domain"}]}
    with OtxServer(api_key="o") as otx:
        otx.faults.append(Fault(200, {"count": 3, "next": None, "previous": None,
                                      "results": [good, "not a pulse", None]}))
        monkeypatch.setenv("OTX_API_KEY", "o")
        state, db, dead = tmp_path / "state.json", tmp_path / "intel.db", tmp_path / "dl.ndjson"
        rc = main(["intel", "pull", "otx", "--url", otx.url, "--state", str(state), "--to", f"sqlite:///{db}",
                   "--dead-letter", str(dead)])
    assert rc == 1 and "otx: 1 delivered, 0 duplicates, 2 dead-lettered" in capsys.readouterr().err
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [r["where"].rsplit(" ", 1)[1] for r in records] == ["1", "2"]
    assert all(r["reason"].startswith("not an OTX pulse") for r in records)
    assert json.loads(state.read_text())["modified_since"] == "2026-02-01T00:00:00"   # all settled: cursor moves
