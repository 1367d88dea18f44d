"""An API host given with VirusTotal's /api/v3 path (`--vt-url`, `$VT_API_URL`, as the API reference writes its
base URL) is refused with a line saying what to give (contract test: vt-py against the VirusTotal contract
server). vt-py adds /api/v3 itself, so every lookup went to /api/v3/api/v3/…, which is answered 404
NotFoundError: each indicator, known-malicious ones too, came out "not found" with status complete, and was
cached so for an hour, without a word."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from vt_contract import VirusTotalServer  # noqa: E402
from wia_security.builders import AlertBuilder  # noqa: E402

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def _src(tmp_path: Path) -> Path:
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()) + "\n")
    return src


def test_contract_enrich_and_forward_refuse_a_host_ending_in_api_v3(cli, tmp_path, monkeypatch):
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 61, "undetected": 9})
        monkeypatch.setenv("VT_API_KEY", "k")
        r = cli("enrich", str(_src(tmp_path)), "--vt-url", f"{vt.url}/api/v3/")
        assert r.code == 2 and r.out == "", (r.code, r.out)
        assert f"ends in /api/v3: give the host alone (vt-py adds /api/v3), e.g. {vt.url}" in r.err, r.err
        monkeypatch.setenv("VT_API_URL", f"{vt.url}/api/v3")
        r = cli("forward", str(_src(tmp_path)), "--to", f"sqlite:///{tmp_path}/s.db", "--enrich", "virustotal")
        assert r.code == 2 and "ends in /api/v3" in r.err, r.err
        assert not (tmp_path / "s.db").exists()
        assert vt.calls() == []
