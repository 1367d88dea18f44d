"""Values the schema types only as strings or integers, whose meaning the standard states: builders refuse
an IP that is not one, a hash of the wrong length, a port outside 0-65535, a CVSS vector of another
version or missing base metrics, and a CVSS rating the score contradicts, each naming the field.

Before, all of these built "valid" events: `src("10.0.0.300")`, `process(md5="abc")`,
`network(src_port=70000)`, `cvss(5.0, "2.0", vector="CVSS:3.1/...")` and `cvss(9.8, severity="low")`.
"""
from __future__ import annotations

import pytest

from wia_security import (AlertBuilder, AuthEventBuilder, EndpointEventBuilder, IncidentBuilder, InvalidValueError,
                          NetworkEventBuilder, ThreatIntelBuilder, VulnerabilityBuilder, validate_event)
from wia_security.builders import cvss_severity

BAD_IPS = ["10.0.0.300", "10.0.0", "010.0.0.1", "1.2.3.4 ", "fe80:::1", "example.com", ""]
GOOD_IPS = ["10.0.0.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::ffff:192.0.2.1", "fe80::1%eth0"]

IP_CALLS = [
    (lambda ip: AlertBuilder().host("h", ip=ip), "context.host.ip"),
    (lambda ip: AlertBuilder().host("h", ip=["10.0.0.1", ip]), "context.host.ip"),
    (lambda ip: AlertBuilder().network(src_ip=ip), "context.network.source.ip"),
    (lambda ip: AlertBuilder().network(dst_ip=ip), "context.network.destination.ip"),
    (lambda ip: NetworkEventBuilder().src(ip), "data.source.ip"),
    (lambda ip: NetworkEventBuilder().dst(ip), "data.destination.ip"),
    (lambda ip: EndpointEventBuilder().endpoint("h", ip=[ip]), "data.host.ip"),
    (lambda ip: EndpointEventBuilder().connection(remote_ip=ip), "data.network_connection.remote_ip"),
    (lambda ip: EndpointEventBuilder().connection(local_ip=ip), "data.network_connection.local_ip"),
    (lambda ip: AuthEventBuilder().origin(ip=ip), "data.source.ip"),
    (lambda ip: AuthEventBuilder().target("host", "h", ip=ip), "data.target.ip"),
    (lambda ip: IncidentBuilder().affected_asset("host", "h1", ip=ip), "data.affected_assets.ip"),
    (lambda ip: AlertBuilder().indicator("ip", ip), "data.indicators.value"),
    (lambda ip: ThreatIntelBuilder().indicator("ip", ip), "data.indicators.value"),
    (lambda ip: IncidentBuilder().ioc("ip", ip), "data.iocs.value"),
]


@pytest.mark.parametrize("call, field", IP_CALLS, ids=[f"{i}-{f}" for i, (_, f) in enumerate(IP_CALLS)])
def test_an_ip_that_is_not_one_is_refused_naming_the_field(call, field):
    for bad in BAD_IPS:
        with pytest.raises(InvalidValueError) as exc:
            call(bad)
        assert exc.value.prop_name == field and "not an IP" in exc.value.reason, bad
    for good in GOOD_IPS:
        call(good)


def test_an_ip_indicator_may_be_a_cidr_range_but_a_host_ip_may_not():
    AlertBuilder().indicator("ip", "198.51.100.0/24")
    IncidentBuilder().ioc("ip", "2001:db8::/32")
    with pytest.raises(InvalidValueError):
        NetworkEventBuilder().src("198.51.100.0/24")


HASHES = {"md5": "d41d8cd98f00b204e9800998ecf8427e", "sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
          "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
HASH_CALLS = [
    (lambda kw: EndpointEventBuilder().process("x", **kw), "data.process.hash"),
    (lambda kw: EndpointEventBuilder().file("x", **kw), "data.file.hash"),
    (lambda kw: EndpointEventBuilder().dll("x", **kw), "data.dll.hash"),
]


@pytest.mark.parametrize("call, field", HASH_CALLS, ids=[f for _, f in HASH_CALLS])
@pytest.mark.parametrize("algorithm", sorted(HASHES))
def test_a_hash_of_the_wrong_length_or_not_hex_is_refused_naming_the_field(call, field, algorithm):
    good = HASHES[algorithm]
    others = [h for a, h in HASHES.items() if a != algorithm]
    for bad in [good[:-1], good + "0", "z" + good[1:], *others, good[:16] + " " + good[17:]]:
        with pytest.raises(InvalidValueError) as exc:
            call({algorithm: bad})
        assert exc.value.prop_name == f"{field}.{algorithm}" and f"not an {algorithm.upper()} hash" in exc.value.reason
    call({algorithm: good})
    call({algorithm: good.upper()})


@pytest.mark.parametrize("builder", [AlertBuilder, ThreatIntelBuilder])
@pytest.mark.parametrize("algorithm", sorted(HASHES))
def test_a_hash_indicator_must_be_a_digest_of_its_kind(builder, algorithm):
    kind = f"file_hash_{algorithm}"
    builder().indicator(kind, HASHES[algorithm])
    for other in (h for a, h in HASHES.items() if a != algorithm):
        with pytest.raises(InvalidValueError, match=f"not an {algorithm.upper()} hash"):
            builder().indicator(kind, other)
    builder().indicator("hash", "3:abc:def")                     # the generic kind (ssdeep, ...) is kept as given


PORT_CALLS = [
    (lambda p: AlertBuilder().network(src_ip="10.0.0.1", src_port=p), "context.network.source.port"),
    (lambda p: AlertBuilder().network(dst_port=p), "context.network.destination.port"),
    (lambda p: NetworkEventBuilder().src("10.0.0.1", p), "data.source.port"),
    (lambda p: NetworkEventBuilder().dst("10.0.0.1", p), "data.destination.port"),
    (lambda p: EndpointEventBuilder().connection(remote_port=p), "data.network_connection.remote_port"),
    (lambda p: EndpointEventBuilder().connection(local_port=p), "data.network_connection.local_port"),
]


@pytest.mark.parametrize("call, field", PORT_CALLS, ids=[f for _, f in PORT_CALLS])
def test_a_port_outside_0_to_65535_is_refused_naming_the_field(call, field):
    for bad in (-1, 65536, 70000):
        with pytest.raises(InvalidValueError) as exc:
            call(bad)
        assert exc.value.prop_name == field
    for good in (0, 443, 65535):
        call(good)


VECTORS = {
    "2.0": ["AV:N/AC:L/Au:N/C:P/I:P/A:P", "(AV:N/AC:L/Au:N/C:C/I:C/A:C)", "AV:N/AC:L/Au:N/C:P/I:P/A:P/E:POC/RL:OF/RC:C"],
    "3.0": ["CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"],
    "3.1": ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:C/C:L/I:N/A:N/E:F/RL:O/RC:C"],
    "4.0": ["CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A/U:Red"],
}
BAD_VECTORS = [
    ("2.0", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "no CVSS: prefix"),
    ("3.1", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "must start with 'CVSS:3.1/'"),
    ("3.1", "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "must start with 'CVSS:3.1/'"),
    ("4.0", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "must start with 'CVSS:4.0/'"),
    ("3.1", "CVSS:3.1/AV:N/AC:L", "base metrics PR, UI, S, C, I, A missing"),
    ("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:X", "A:X is not one of A:H|L|N"),
    ("3.1", "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "metric AV appears twice"),
    ("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/", "'' is not a metric"),
    ("3.1", "CVSS:3.1/AV:N/AC:L/AT:N/PR:N/UI:N/S:U/C:H/I:H/A:H", "'AT:N' is not a metric"),
    ("4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H", "base metrics SC, SI, SA missing"),
    ("2.0", "AV:N/AC:L/Au:N/C:P/I:P", "base metric A missing"),
]


@pytest.mark.parametrize("version", sorted(VECTORS))
def test_vectors_of_the_stated_version_are_accepted(version):
    for vector in VECTORS[version]:
        event = VulnerabilityBuilder().cve("CVE-2024-1234").title("t").cvss(5.0, version, vector).build()
        assert event.data.cvss.vector == vector


@pytest.mark.parametrize("version, vector, why", BAD_VECTORS, ids=[w for _, _, w in BAD_VECTORS])
def test_a_vector_of_another_version_or_incomplete_is_refused(version, vector, why):
    with pytest.raises(InvalidValueError) as exc:
        VulnerabilityBuilder().cvss(5.0, version, vector)
    assert exc.value.prop_name == "data.cvss.vector" and why in exc.value.reason


@pytest.mark.parametrize("version, score, rating", [
    ("3.1", 0.0, "none"), ("3.1", 3.9, "low"), ("3.1", 4.0, "medium"), ("3.1", 7.0, "high"), ("3.1", 9.0, "critical"),
    ("4.0", 9.3, "critical"), ("2.0", 0.0, "low"), ("2.0", 6.9, "medium"), ("2.0", 7.0, "high"), ("2.0", 10.0, "high"),
])
def test_the_derived_rating_is_the_versions_own(version, score, rating):
    """CVSS v2 has no 'critical' and no 'none' (NVD rates v2 0-3.9 low, 4-6.9 medium, 7-10 high)."""
    event = VulnerabilityBuilder().cve("CVE-2024-1234").title("t").cvss(score, version).build()
    assert event.data.cvss.severity == rating == cvss_severity(score, version)


def test_a_rating_the_score_contradicts_is_refused():
    with pytest.raises(InvalidValueError) as exc:
        VulnerabilityBuilder().cvss(9.8, severity="low")
    assert exc.value.prop_name == "data.cvss.severity" and "rates 'critical'" in exc.value.reason
    with pytest.raises(InvalidValueError, match="rates 'high'"):
        VulnerabilityBuilder().cvss(9.3, "2.0", severity="critical")
    VulnerabilityBuilder().cvss(9.8, severity="critical")


def test_values_of_another_json_type_are_left_to_build_which_names_their_path():
    from wia_security import InvalidEventError
    with pytest.raises(InvalidEventError) as exc:
        VulnerabilityBuilder().cve("CVE-2024-1234").title("t").cvss("9.8").build()
    assert "/data/cvss/score" in {e.path for e in exc.value.errors}
    with pytest.raises(InvalidEventError) as exc:
        NetworkEventBuilder().src(3232235777).dst("10.0.0.2").build()
    assert {e.path for e in exc.value.errors} == {"/data/source/ip"}


def test_checked_values_still_build_valid_events():
    event = (EndpointEventBuilder().endpoint("h", ip=["10.0.0.1", "2001:db8::1"])
             .process("x", md5=HASHES["md5"], sha1=HASHES["sha1"], sha256=HASHES["sha256"])
             .connection("203.0.113.5", 443, "10.0.0.1", 50000).network(src_ip="10.0.0.1", src_port=0).build())
    assert validate_event(event.to_dict()).valid
