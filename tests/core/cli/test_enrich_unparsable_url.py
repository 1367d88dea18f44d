"""`enrich` with a URL indicator Python's urlsplit cannot parse (contract test: vt-py against the VirusTotal
contract server): the URL is not looked up, everything else is, and the event is written."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from vt_contract import VirusTotalServer  # noqa: E402
from wia_security.builders import AlertBuilder  # noqa: E402

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def test_contract_a_url_indicator_python_cannot_parse_stops_nothing(cli, tmp_path, monkeypatch):
    """`http://[::1/x` (a bracketed host that is not an address) is a valid event's indicator value; urlsplit
    raised ValueError out of observables(): `enrich` died with a traceback and wrote none of the batch."""
    odd = AlertBuilder().title("odd").indicator("url", "http://[::1/x").indicator(
        "file_hash_sha256", SHA256).build().to_dict()
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(odd) + "\n")
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        r = cli("enrich", str(src), "--vt-url", vt.url)
    assert r.code == 0, r.err
    [out] = [json.loads(line) for line in r.out.splitlines()]
    verdict = out["meta"]["custom"]["enrichment"]["virustotal"]
    assert verdict["status"] == "complete" and [i["value"] for i in verdict["indicators"]] == [SHA256]
