"""A cache file shared by runs against different VirusTotal API hosts keeps their verdicts apart: a run
against a test server or mock (--vt-url, $VT_API_URL) and one against VirusTotal read each other's cached
answers as their own for a day. `enrich` with vt-py against two VirusTotal contract servers."""
from __future__ import annotations

import json

from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.cli import main
from wia_security.connectors.intel.virustotal import VirusTotalEnricher

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def _run(src, url, cache, capsys) -> dict:
    assert main(["enrich", str(src), "--vt-url", url, "--cache", str(cache)]) == 0
    out = json.loads(capsys.readouterr().out)
    return out["meta"]["custom"]["enrichment"]["virustotal"]["indicators"][0]


def test_verdicts_cached_from_one_host_are_not_served_for_another(tmp_path, monkeypatch, capsys):
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()) + "\n")
    cache = tmp_path / "vt-cache.db"
    monkeypatch.setenv("VT_API_KEY", "k")
    with VirusTotalServer(api_key="k") as mock, VirusTotalServer(api_key="k") as real:
        mock.add_file(SHA256, last_analysis_stats={"malicious": 0, "undetected": 70})     # a mock's benign answer
        real.add_file(SHA256, last_analysis_stats={"malicious": 61, "undetected": 9})
        assert _run(src, mock.url, cache, capsys)["malicious"] == 0
        verdict = _run(src, real.url, cache, capsys)
        assert verdict["malicious"] == 61 and "cached" not in verdict
        assert len(real.calls()) == 1
        assert _run(src, mock.url, cache, capsys)["cached"] is True         # each host's own verdict is reused
        assert len(mock.calls()) == 1


def test_the_default_host_keeps_the_plain_provider_key():
    enricher = VirusTotalEnricher("k" * 8, host="https://www.virustotal.com/")
    try:
        assert enricher.cache_provider == "virustotal"
    finally:
        enricher.close()
