"""`engines` and `detection_ratio` count the engines that gave a verdict (contract test: vt-py against the
VirusTotal contract server). VirusTotal's last_analysis_stats also counts engines that did not analyse the
object: "type-unsupported" (cannot analyse that file type), "timeout", "confirmed-timeout", "failure"
(docs.virustotal.com/reference/analyses-object); they were added in, so 61 detections of 70 verdicts read 61/86."""
from __future__ import annotations

from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.connectors.intel.virustotal import VirusTotalEnricher

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def test_contract_engines_without_a_verdict_are_not_counted():
    event = AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"harmless": 0, "malicious": 61, "suspicious": 1, "undetected": 8,
                                                 "type-unsupported": 11, "timeout": 2, "confirmed-timeout": 1,
                                                 "failure": 2})
        enricher = VirusTotalEnricher("k", host=vt.url)
        try:
            [out] = enricher.enrich_all([event])
        finally:
            enricher.close()
    [verdict] = out["meta"]["custom"]["enrichment"]["virustotal"]["indicators"]
    assert (verdict["malicious"], verdict["suspicious"], verdict["engines"], verdict["detection_ratio"]) == (
        61, 1, 70, "61/70")
