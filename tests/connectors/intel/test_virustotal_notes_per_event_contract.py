"""An event's notes say why its own observables were not checked, and never name another event's (contract
test: vt-py against the VirusTotal contract server). The run's notes went into every event of the batch, so
an event from one source (or tenant) carried another's URL ("VirusTotal refused the lookup of url …"), and an
event whose lookups all failed for one reason was told of unrelated ones; its status was the run's too."""
from __future__ import annotations

from vt_contract import Fault, VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.connectors.intel.virustotal import VirusTotalEnricher

TENANT_A_URL = "https://portal.tenant-a.example.net/reset?user=alice"
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def test_contract_notes_name_only_the_events_own_observables():
    tenant_a = AlertBuilder().title("a").indicator("url", TENANT_A_URL).build().to_dict()
    tenant_b = AlertBuilder().title("b").indicator("domain", "b.example.net").indicator(
        "file_hash_sha256", SHA256).build().to_dict()
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 1, "undetected": 69})
        vt.faults += [Fault(400, {"error": {"code": "NotAvailableYet", "message": "not yet"}}, path_prefix="/api/v3/urls/"),
                      Fault(400, {"error": {"code": "InvalidArgumentError", "message": "no"}},
                            path_prefix="/api/v3/domains/b.example.net")]
        enricher = VirusTotalEnricher("k", host=vt.url)
        try:
            out_a, out_b = enricher.enrich_all([tenant_a, tenant_b])
        finally:
            enricher.close()
    block_a = out_a["meta"]["custom"]["enrichment"]["virustotal"]
    block_b = out_b["meta"]["custom"]["enrichment"]["virustotal"]
    assert block_a["notes"] == [f"VirusTotal refused the lookup of url {TENANT_A_URL} (NotAvailableYet)"]
    assert block_b["notes"] == ["VirusTotal refused the lookup of domain b.example.net (InvalidArgumentError)"]
    assert "tenant-a" not in str(out_b)
