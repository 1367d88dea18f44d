"""`wia-security forward --enrich virustotal` says on standard error why reputations are missing, as `enrich`
does (contract test against the VirusTotal contract server, driven by the real vt-py client): the events are
delivered and the exit status stays 0, so a wrong key or API host must not look like a quiet success."""
from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from vt_contract import VirusTotalServer  # noqa: E402
from wia_security.builders import AlertBuilder  # noqa: E402

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def _events(tmp_path: Path, n: int) -> Path:
    src = tmp_path / "in.ndjson"
    src.write_text("".join(json.dumps(AlertBuilder().title(f"x{i}").indicator("file_hash_sha256", SHA256)
                                      .build().to_dict()) + "\n" for i in range(n)))
    return src


def _stored(db: Path) -> list[dict]:
    return [json.loads(doc) for (doc,) in sqlite3.connect(db).execute("select raw from events")]


def test_contract_a_refused_api_key_is_named_with_the_events_it_left_unchecked(cli, tmp_path, monkeypatch):
    src = _events(tmp_path, 2)
    with VirusTotalServer(api_key="the-right-key") as vt:
        monkeypatch.setenv("VT_API_KEY", "a-wrong-key")
        monkeypatch.setenv("VT_API_URL", vt.url)
        r = cli("forward", str(src), "--to", f"sqlite:///{tmp_path}/s.db", "--enrich", "virustotal")
    assert r.code == 0, r.err
    assert ("wia-security: 2 events not fully checked on VirusTotal "
            "(meta.custom.enrichment.virustotal.not_checked lists them): "
            "VirusTotal refused the API key (WrongCredentialsError)") in r.err, r.err
    assert "a-wrong-key" not in r.err + r.out


def test_contract_an_unreachable_api_host_is_named(cli, tmp_path, monkeypatch):
    src = _events(tmp_path, 1)
    monkeypatch.setenv("VT_API_KEY", "k")
    monkeypatch.setenv("VT_API_URL", "http://127.0.0.1:9")           # nothing listens there
    r = cli("forward", str(src), "--to", f"sqlite:///{tmp_path}/s.db", "--enrich", "virustotal")
    assert r.code == 0, r.err
    assert "1 event not fully checked on VirusTotal" in r.err and "VirusTotal unreachable" in r.err, r.err


def test_contract_complete_lookups_add_no_note(cli, tmp_path, monkeypatch):
    src = _events(tmp_path, 1)
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        monkeypatch.setenv("VT_API_URL", vt.url)
        r = cli("forward", str(src), "--to", f"sqlite:///{tmp_path}/s.db", "--enrich", "virustotal")
    assert r.code == 0 and "not fully checked" not in r.err, r.err


def test_contract_with_a_config_fan_out_the_per_destination_counts_are_reported(cli, tmp_path, monkeypatch):
    """The enriching wrapper hid the fan-out's `stats`: `--config ... --enrich` printed no per-destination lines."""
    src = _events(tmp_path, 3)
    (tmp_path / "wia.toml").write_text(f'[destinations.copy]\nurl = "file://{tmp_path}/copy.ndjson"\n'
                                       f'[destinations.store]\nurl = "sqlite:///{tmp_path}/store.db"\n')
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        monkeypatch.setenv("VT_API_URL", vt.url)
        r = cli("forward", str(src), "--config", str(tmp_path / "wia.toml"), "--enrich", "virustotal",
                "--summary", "json")
    assert r.code == 0, r.err
    destinations = json.loads(r.out)["destinations"]
    assert {name: d["delivered"] for name, d in destinations.items()} == {"copy": 3, "store": 3}
