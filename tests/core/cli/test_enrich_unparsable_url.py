"""`enrich` with indicator fields the enricher could not read (contract test: vt-py against the VirusTotal
contract server): a URL Python's urlsplit cannot parse, an indicators field that is not a list. What can be
looked up is, and the event is written."""
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


def test_contract_an_indicators_field_that_is_not_a_list_stops_nothing(cli, tmp_path, monkeypatch):
    """An alert's `data.iocs` (the alert schema defines `indicators` only, and lets data hold more) set to a
    number is valid; iterating it raised TypeError out of observables(): `enrich` died, writing none of the batch."""
    odd = AlertBuilder().title("odd").indicator("file_hash_sha256", SHA256).build().to_dict()
    odd["data"]["iocs"] = 5
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
    assert out["data"]["iocs"] == 5


def test_contract_an_indicator_type_that_is_not_a_string_stops_nothing(cli, tmp_path, monkeypatch):
    """`"iocs": [{"type": ["ip"], …}]` in an alert (valid: the alert schema does not define iocs) raised
    TypeError (unhashable list) out of observables()."""
    odd = AlertBuilder().title("odd").indicator("file_hash_sha256", SHA256).build().to_dict()
    odd["data"]["iocs"] = [{"type": ["ip"], "value": "8.8.8.8"}, {"type": {"k": 1}, "value": "x"}]
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(odd) + "\n")
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        r = cli("enrich", str(src), "--vt-url", vt.url)
    assert r.code == 0, r.err
    [out] = [json.loads(line) for line in r.out.splitlines()]
    assert [i["value"] for i in out["meta"]["custom"]["enrichment"]["virustotal"]["indicators"]] == [SHA256]
