"""VirusTotal's 400 answers about one lookup (InvalidArgumentError, NotAvailableYet, ...; docs.virustotal.com
/reference/errors) are not an outage: they counted as failures, so three in a row opened the circuit and the
next minute of lookups was skipped as "circuit open". vt-py against the VirusTotal contract server."""
from __future__ import annotations

from vt_contract import Fault, VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.connectors.intel.virustotal import VirusTotalEnricher

KEY = "vt-test-key"


def _vt_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def test_400s_about_single_lookups_leave_the_circuit_closed_and_are_named():
    event = (AlertBuilder().title("x").indicator("domain", "a.example.net").indicator("domain", "b.example.net")
             .indicator("url", "http://c.example.net/x").indicator("ip", "8.8.8.8").build().to_dict())
    with VirusTotalServer(api_key=KEY) as server:
        server.add("ip_addresses", "8.8.8.8", reputation=540, last_analysis_stats={"malicious": 0, "harmless": 88})
        server.faults += [Fault(400, _vt_error("InvalidArgumentError", "Domain \"a.example.net\" is not valid"),
                                path_prefix="/api/v3/domains/a.example.net"),
                          Fault(400, _vt_error("BadRequestError", "bad"), path_prefix="/api/v3/domains/b.example.net"),
                          Fault(400, _vt_error("NotAvailableYet", "not yet"), path_prefix="/api/v3/urls/")]
        enricher = VirusTotalEnricher(KEY, host=server.url)
        try:
            [out] = enricher.enrich_all([event])
            again = enricher.enrich_all([event])[0]["meta"]["custom"]["enrichment"]["virustotal"]
        finally:
            enricher.close()
    block = out["meta"]["custom"]["enrichment"]["virustotal"]
    assert enricher.breaker.state == "closed"
    assert [i["value"] for i in block["indicators"]] == ["8.8.8.8"]
    assert [i["value"] for i in block["not_checked"]] == ["a.example.net", "b.example.net", "http://c.example.net/x"]
    assert block["status"] == "partial"
    assert "VirusTotal refused the lookup of domain a.example.net (InvalidArgumentError)" in block["notes"]
    assert "VirusTotal refused the lookup of url http://c.example.net/x (NotAvailableYet)" in block["notes"]
    # not cached: asked again on the next call, and answered now (404: not found)
    assert again["status"] == "complete" and len(again["indicators"]) == 4
