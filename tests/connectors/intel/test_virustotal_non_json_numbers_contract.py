"""A VirusTotal answer carrying NaN or Infinity (not JSON, but Python's json reads them; a broken proxy or mock
sends them) never reaches the event: the reputation was passed on, and the enriched event's line was written as
`"reputation": NaN`, invalid JSON that strict readers (jq, Splunk) refuse. vt-py against the contract server."""
from __future__ import annotations

import json

import pytest

from vt_contract import Fault, VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.connectors.intel.virustotal import VirusTotalEnricher
from wia_security.validation import validate_event

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_contract_a_reputation_that_is_not_a_json_number_is_left_out(number):
    body = ('{"data": {"type": "file", "id": "%s", "attributes": {"reputation": %s, "last_analysis_stats": '
            '{"malicious": 2, "undetected": 68}}}}' % (SHA256, number)).encode()
    event = AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()
    with VirusTotalServer(api_key="k") as vt:
        vt.faults.append(Fault(200, body, headers={"Content-Type": "application/json"}))
        enricher = VirusTotalEnricher("k", host=vt.url)
        try:
            [out] = enricher.enrich_all([event])
        finally:
            enricher.close()
    [verdict] = out["meta"]["custom"]["enrichment"]["virustotal"]["indicators"]
    assert "reputation" not in verdict and verdict["detection_ratio"] == "2/70"
    json.dumps(out, allow_nan=False)                 # a line every strict JSON reader takes
    assert validate_event(out).valid
