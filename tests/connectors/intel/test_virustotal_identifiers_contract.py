"""The identifiers sent to VirusTotal (contract test: vt-py against the VirusTotal contract server, which
decodes URL ids as VirusTotal does: unpadded URL-safe base64 of the URL).

- An internationalized domain name is looked up in its ASCII (punycode) form: it was skipped, not even
  listed as unchecked.
- An IPv6 address's zone (`%eth0`) is dropped: it went out in the request path and came back "not found".
- A URL's user info and fragment are not sent: credentials and fragment tokens went to a third party, and
  the lookup was of another URL than the resource ("not found"). Uppercase hashes are looked up lowercased."""
from __future__ import annotations

import base64

from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.connectors.intel.virustotal import VirusTotalEnricher

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
URL = "http://malware.example.com/payload.exe"
IPV6 = "2001:4860:4860::8888"


def _decoded_url_ids(server: VirusTotalServer) -> list[str]:
    ids = [r.path.rsplit("/", 1)[1] for r in server.calls() if r.path.startswith("/api/v3/urls/")]
    return [base64.urlsafe_b64decode(i + "=" * (-len(i) % 4)).decode() for i in ids]


def test_contract_idn_ipv6_zone_url_credentials_and_fragment_uppercase_hash():
    event = (AlertBuilder().title("x")
             .indicator("domain", "BÜCHER.de.")
             .indicator("ip", f"{IPV6}%eth0")
             .indicator("url", "HTTP://admin:s3cret@Malware.Example.COM/payload.exe#access_token=tok123")
             .indicator("file_hash_sha256", SHA256.upper())
             .build().to_dict())
    with VirusTotalServer(api_key="k") as vt:
        vt.add("domains", "xn--bcher-kva.de", last_analysis_stats={"malicious": 1, "harmless": 80})
        vt.add("ip_addresses", IPV6, last_analysis_stats={"malicious": 0, "harmless": 88})
        vt.add("urls", URL, last_analysis_stats={"malicious": 9, "harmless": 60})
        vt.add_file(SHA256, last_analysis_stats={"malicious": 61, "undetected": 9})
        enricher = VirusTotalEnricher("k", host=vt.url)
        try:
            [out] = enricher.enrich_all([event])
        finally:
            enricher.close()
        sent = " ".join([r.path for r in vt.calls()] + _decoded_url_ids(vt))
    block = out["meta"]["custom"]["enrichment"]["virustotal"]
    assert block["status"] == "complete", block
    found = {i["value"]: i["found"] for i in block["indicators"]}
    assert found == {"xn--bcher-kva.de": True, IPV6: True, URL: True, SHA256: True}, found
    assert _decoded_url_ids(vt) == [URL]
    for secret in ("s3cret", "admin", "tok123", "eth0"):
        assert secret not in sent
