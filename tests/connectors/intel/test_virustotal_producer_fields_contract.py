"""The verdict never overwrites what the producer put under meta.custom (contract test: vt-py against the
VirusTotal contract server). The schema lets meta.custom hold anything, so a valid event can carry its own
`enrichment` (a string, a list) or its own `enrichment.virustotal`: such an event is passed on as it came,
counted, and the other events of the batch are enriched as usual."""
from __future__ import annotations

import copy

from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.connectors.intel.virustotal import VirusTotalEnricher
from wia_security.validation import validate_event

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def _event(custom: object = None) -> dict:
    event = AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()
    if custom is not None:
        event.setdefault("meta", {})["custom"] = custom
    assert validate_event(event).valid
    return event


def test_contract_producer_values_are_kept_and_the_rest_of_the_batch_enriched():
    theirs_text = _event({"enrichment": "by-upstream", "team": "soc"})
    theirs_object = _event({"enrichment": {"virustotal": {"verdict": "clean", "source": "upstream"}}})
    plain = _event()
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        enricher = VirusTotalEnricher("k", host=vt.url)
        try:
            before = copy.deepcopy([theirs_text, theirs_object])
            out = enricher.enrich_all([theirs_text, plain, theirs_object])
            again = enricher.enrich_all([out[1]])          # a re-enrichment replaces a verdict of ours
        finally:
            enricher.close()
    assert [out[0], out[2]] == before                       # as they came: nothing overwritten
    assert out[1]["meta"]["custom"]["enrichment"]["virustotal"]["indicators"][0]["detection_ratio"] == "3/60"
    assert again[0]["meta"]["custom"]["enrichment"]["virustotal"]["indicators"][0]["cached"] is True
    assert enricher.unplaced == 2
    assert enricher.unplaced_paths == ["/meta/custom/enrichment", "/meta/custom/enrichment/virustotal"]
    assert len(vt.calls()) == 1                             # no quota spent on events it cannot enrich
