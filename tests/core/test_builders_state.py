"""Builder state: to_dict() changes nothing, the caller's lists and dicts are neither kept nor changed,
and set() paths that cannot hold a value are refused naming the path (not AttributeError)."""
from __future__ import annotations

import copy

import pytest

from wia_security import (AlertBuilder, AuthEventBuilder, EndpointEventBuilder, IncidentBuilder, InvalidValueError,
                          NetworkEventBuilder, ThreatIntelBuilder, VulnerabilityBuilder)


# -- to_dict() is a preview: derived defaults follow calls made after it ---------------------------------
def test_alert_priority_follows_a_severity_set_after_to_dict():
    b = AlertBuilder().title("t")
    assert b.to_dict()["data"]["priority"] == "high"          # severity 5
    assert b.severity(9.5).build().data.priority == "critical"


def test_auth_result_follows_a_kind_set_after_to_dict():
    b = AuthEventBuilder().account("alice").target("host", "h")
    assert b.to_dict()["data"]["result"] == "success"
    assert b.kind("login_failure").build().data.result == "failure"


def test_incident_created_at_and_priority_follow_later_calls():
    b = IncidentBuilder().title("t")
    b.to_dict()
    event = b.timestamp("2020-01-01T00:00:00Z").severity(9.8).build()
    assert event.data.created_at == "2020-01-01T00:00:00Z" and event.data.priority == "critical"


def test_vulnerability_severity_follows_a_later_cvss():
    b = VulnerabilityBuilder().cve("CVE-2024-1234").title("t").cvss(3.1)
    assert b.to_dict()["severity"] == 3.1
    event = b.cvss(9.8).build()
    assert event.severity == 9.8 and event.data.cvss.severity == "critical"


def test_to_dict_twice_gives_equal_independent_copies():
    b = AlertBuilder().title("t").tags("a").custom(case={"n": 1})
    first, second = b.to_dict(), b.to_dict()
    assert first == second
    first["meta"]["custom"]["case"]["n"] = 2
    first["meta"]["tags"].append("b")
    assert b.to_dict() == second


# -- the caller's objects --------------------------------------------------------------------------------
def test_later_builder_calls_do_not_change_a_list_or_dict_the_caller_passed_to_set():
    tags, custom, parent, cwe = ["prod"], {"ticket": 1}, {"pid": 4}, ["CWE-79"]
    before = copy.deepcopy((tags, custom, parent, cwe))
    AlertBuilder().title("t").set("meta.tags", tags).tags("x").set("meta.custom", custom).custom(more=2)
    EndpointEventBuilder().endpoint("h").process("x", parent=parent).set("data.process.parent.name", "cmd.exe")
    VulnerabilityBuilder().set("data.cwe", cwe).cwe("CWE-89")
    assert (tags, custom, parent, cwe) == before


def test_changing_the_callers_objects_after_a_call_does_not_change_the_event():
    groups, geo, cert, versions, signature, response = ["admins"], {"country": "KR"}, {"issuer": "CA"}, ["1.0"], \
        {"signed": True}, ["10.0.0.1"]
    auth = AuthEventBuilder().account("a", groups=groups).target("host", "h")
    net = NetworkEventBuilder().src("10.0.0.1", geo=geo).dst("10.0.0.2").tls("TLS 1.3", certificate=cert) \
        .dns("x.example", "A", response)
    vuln = VulnerabilityBuilder().cve("CVE-2024-1234").title("t").cvss(5.0).affected_product("v", "p", versions)
    endpoint = EndpointEventBuilder().endpoint("h").process("x", signature=signature)
    custom = {"nested": {"k": "v"}}
    alert = AlertBuilder().title("t").set("meta.custom", custom)
    snapshots = [b.to_dict() for b in (auth, net, vuln, endpoint, alert)]
    groups.append("MUTATED"); geo["country"] = "XX"; cert["issuer"] = "evil"; versions.clear()
    signature["signed"] = False; response.append("6.6.6.6"); custom["nested"]["k"] = "changed"
    for builder, snapshot in zip((auth, net, vuln, endpoint, alert), snapshots):
        assert builder.to_dict() == snapshot


# -- set() and the paths it leaves -----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["", ".", "meta.", ".meta", "meta..tags"])
def test_set_refuses_an_empty_key(path):
    with pytest.raises(InvalidValueError) as exc:
        AlertBuilder().set(path, 1)
    assert exc.value.prop_name == path


@pytest.mark.parametrize("setup, call, path", [
    (("context", "x"), lambda b: b.host("h"), "context.host"),
    (("context", {"host": []}), lambda b: b.host("h"), "context.host"),
    (("meta", []), lambda b: b.tags("a"), "meta.tags"),
    (("meta.tags", "a"), lambda b: b.tags("b"), "meta.tags"),
    (("meta.labels", ["x"]), lambda b: b.label("k", "v"), "meta.labels"),
    (("meta.custom", 1), lambda b: b.custom(k=1), "meta.custom"),
    (("data", []), lambda b: b.title("t"), "data"),
    (("data.indicators", {}), lambda b: b.indicator("ip", "10.0.0.1"), "data.indicators"),
    (("data.title", "t"), lambda b: b.set("data.title.x", 1), "data.title.x"),
])
def test_a_value_set_that_a_later_call_cannot_extend_is_refused_naming_the_path(setup, call, path):
    b = AlertBuilder().set(*setup)
    with pytest.raises(InvalidValueError) as exc:
        call(b)
    assert exc.value.prop_name == path and "not a" in exc.value.reason


@pytest.mark.parametrize("builder", [AlertBuilder, AuthEventBuilder, IncidentBuilder, VulnerabilityBuilder,
                                     ThreatIntelBuilder, NetworkEventBuilder, EndpointEventBuilder])
def test_data_set_to_a_non_object_is_reported_by_build_not_a_crash(builder):
    from wia_security import InvalidEventError
    with pytest.raises(InvalidEventError) as exc:
        builder().set("data", "x").build()
    assert {e.path for e in exc.value.errors} == {"/data"}
