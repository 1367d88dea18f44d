"""`wia-security enrich` says on standard error why reputations are missing (contract test against the
VirusTotal contract server, driven by the real vt-py client): the exit status stays 0, since enrichment
never fails a run, so a wrong key or API host must not look like a quiet success."""
from __future__ import annotations

import json
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


def test_contract_a_refused_api_key_is_named_with_the_events_it_left_unchecked(cli, tmp_path, monkeypatch):
    src = _events(tmp_path, 2)
    with VirusTotalServer(api_key="the-right-key") as vt:
        monkeypatch.setenv("VT_API_KEY", "a-wrong-key")
        r = cli("enrich", str(src), "--vt-url", vt.url)
    assert r.code == 0 and len(r.out.splitlines()) == 2
    assert ("wia-security: 2 events not fully checked on VirusTotal "
            "(meta.custom.enrichment.virustotal.not_checked lists them): "
            "VirusTotal refused the API key (WrongCredentialsError)") in r.err, r.err
    assert "a-wrong-key" not in r.err


def test_contract_an_unreachable_api_host_is_named(cli, tmp_path, monkeypatch):
    src = _events(tmp_path, 1)
    monkeypatch.setenv("VT_API_KEY", "k")
    r = cli("enrich", str(src), "--vt-url", "http://127.0.0.1:9", "--budget", "5")   # nothing listens there
    assert r.code == 0
    assert "1 event not fully checked on VirusTotal" in r.err and "VirusTotal unreachable" in r.err, r.err


def test_contract_complete_lookups_add_no_note(cli, tmp_path, monkeypatch):
    src = _events(tmp_path, 1)
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        r = cli("enrich", str(src), "--vt-url", vt.url)
    assert r.code == 0 and "not fully checked" not in r.err, r.err
    assert json.loads(r.out)["meta"]["custom"]["enrichment"]["virustotal"]["status"] == "complete"
