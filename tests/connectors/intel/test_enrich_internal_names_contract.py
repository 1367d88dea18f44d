"""Enrichment sends nothing that only means something inside the organisation: names under a TLD that is
never delegated (.corp, .local, .internal, .home.arpa, .test...), URLs to such hosts, to a bare intranet name
or to a private address, and private IPv4 addresses carried in IPv4-mapped, NAT64 or 6to4 IPv6 addresses.
They were looked up on VirusTotal, handing internal host names and addresses to a third party and spending
quota on answers it cannot have. `enrich` with vt-py against the VirusTotal contract server."""
from __future__ import annotations

import json

import pytest

from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.cli import main
from wia_security.connectors.intel.indicators import observables

INTERNAL = [("domain", "dc01.corp"), ("domain", "printer.local"), ("domain", "build.internal"),
            ("domain", "nas.home.arpa"), ("domain", "x.test"), ("url", "http://intranet.internal/login"),
            ("url", "http://intranet/login"), ("url", "http://10.1.2.3/x"), ("url", "http://[fd00::1]/x"),
            ("ip", "::ffff:10.1.2.3"), ("ip", "64:ff9b::10.0.0.1"), ("ip", "2002:0a00:0001::1")]
PUBLIC = [("domain", "evil.example.com"), ("url", "http://8.8.8.8/x"), ("ip", "8.8.4.4")]


def _event(pairs) -> dict:
    builder = AlertBuilder().title("internal names")
    for kind, value in pairs:
        builder = builder.indicator(kind, value)
    return builder.build().to_dict()


def test_enrich_looks_up_none_of_the_internal_names(tmp_path, monkeypatch, capsys):
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(_event(INTERNAL + PUBLIC)) + "\n")
    with VirusTotalServer(api_key="k") as vt:
        monkeypatch.setenv("VT_API_KEY", "k")
        assert main(["enrich", str(src), "--vt-url", vt.url]) == 0
        asked = sorted(r.path.rsplit("/", 2)[-2] + "/" + r.path.rsplit("/", 1)[-1] for r in vt.calls())
    out = json.loads(capsys.readouterr().out)
    checked = out["meta"]["custom"]["enrichment"]["virustotal"]["indicators"]
    assert sorted(i["value"] for i in checked) == sorted(v for _, v in PUBLIC)
    assert len(asked) == 3 and not any(n in p for p in asked for n in ("corp", "local", "internal", "10.", "fd00"))


@pytest.mark.parametrize("address, looked_up_as", [("::ffff:8.8.8.8", "8.8.8.8"), ("64:ff9b::808:808", "8.8.8.8"),
                                                   ("2002:808:808::1", "8.8.8.8"),
                                                   ("2001:4860:4860::8888", "2001:4860:4860::8888")])
def test_public_addresses_inside_ipv6_are_looked_up_as_the_ipv4_they_carry(address, looked_up_as):
    assert observables(_event([("ip", address)])) == [("ip", looked_up_as)]
