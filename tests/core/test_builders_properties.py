"""Property test over the whole builder API: random sequences of calls with realistic and arbitrary values.

For every sequence: a method either takes its arguments or raises InvalidValueError (nothing else);
the caller's arguments are never changed; build() either gives an event that jsonschema and our
validator both accept, with no warnings, which survives to_json()/parse(); or raises InvalidEventError
for an event jsonschema refuses too (JSON has no NaN/Infinity: those are the one documented difference).
"""
from __future__ import annotations

import copy
import importlib.util
import inspect
import math
import types
import typing
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wia_security import Event, InvalidEventError, InvalidValueError, validate_event
from wia_security.builders import BUILDERS

def _reference() -> typing.Any:
    """tests/core/validation/reference.py (jsonschema with its FormatChecker), loaded by path: that folder
    is on sys.path only for its own tests."""
    path = Path(__file__).parent / "validation" / "reference.py"
    spec = importlib.util.spec_from_file_location("_builders_reference_validator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_is_valid


reference_is_valid = _reference()

# Realistic values by parameter name, so that most sequences build; arbitrary ones are mixed in below.
REALISTIC: dict[str, list[typing.Any]] = {
    "type": ["ip", "domain", "url", "hash", "email", "host", "application", "malware", "apt", "poc", "siem"],
    "value": ["10.0.0.1", "198.51.100.0/24", "x.example", "d41d8cd98f00b204e9800998ecf8427e"],
    "technique": ["T1059.001", "T1078", "t1110.003 ", "T1026", "T1086", "T1566"],
    "tactic": ["TA0002", "execution", "Privilege Escalation", "TA0004"],
    "ip": ["10.0.0.1", "2001:db8::1", "10.0.0.300"], "src_ip": ["10.0.0.1"], "dst_ip": ["203.0.113.9"],
    "remote_ip": ["203.0.113.9"], "local_ip": ["10.0.0.1"],
    "md5": ["d41d8cd98f00b204e9800998ecf8427e", "abc"], "sha1": ["da39a3ee5e6b4b0d3255bfef95601890afd80709"],
    "sha256": ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    "vector": ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "AV:N/AC:L/Au:N/C:P/I:P/A:P", "CVSS:3.1/AV:N"],
    "version": ["2.0", "3.0", "3.1", "4.0"], "category": ["malware", "intrusion", "other", "phishing"],
    "status": ["new", "closed", "active", "pending"], "priority": ["critical", "high", "low", "info"],
    "provider": ["aws", "gcp"], "direction": ["inbound", "outbound"], "protocol": ["TCP", "UDP"],
    "email": ["a@b.example"], "url": ["https://x.example/a"], "vendor_url": ["https://v.example"],
    "reference": ["https://r.example"], "action": ["isolate_host", "allowed"], "os_name": ["Windows"],
    "timestamp": ["2025-01-01T00:00:00+09:00"], "first_seen": ["2025-01-01T00:00:00Z"], "first": ["2025-01-01T00:00:00Z"],
    "severity": ["high", "critical"], "auth_method": ["password"], "logon_type": ["network"],
}
TEXT = st.one_of(st.text(max_size=6), st.sampled_from(["", " ", "2025-01-01T09:30:00", "CVE-2024-1234", "CWE-79"]))
SKIP = {"to_dict", "build", "set"}


def values(hint: typing.Any, name: str | None = None) -> st.SearchStrategy[typing.Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return st.one_of(*[values(a, name) for a in typing.get_args(hint)])
    if hint is type(None):
        return st.none()
    if hint is str:
        return st.one_of(*[st.sampled_from(REALISTIC[name])] * 4, TEXT) if name in REALISTIC else TEXT
    if hint is int:
        return st.one_of(st.integers(-2, 70000), st.booleans())
    if hint is float:
        return st.one_of(st.floats(-1, 11), st.integers(0, 10), st.floats(allow_nan=True, allow_infinity=True))
    if hint is bool:
        return st.booleans()
    if hint is datetime:
        return st.datetimes(timezones=st.one_of(st.none(), st.timezones()))
    if typing.get_origin(hint) is list:
        return st.lists(values(typing.get_args(hint)[0], name), max_size=3)
    if typing.get_origin(hint) is dict or hint is typing.Any:
        return st.dictionaries(st.sampled_from(["country", "issuer", "pid", "name", "signed"]),
                               st.one_of(TEXT, st.integers(-1, 70000), st.booleans()), max_size=3)
    raise TypeError(hint)


def _methods(cls: type) -> list[tuple[str, list[inspect.Parameter], dict[str, typing.Any]]]:
    out = []
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_") and name not in SKIP:
            params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
            out.append((name, params, typing.get_type_hints(fn)))
    return out


METHODS = {kind: _methods(cls) for kind, cls in BUILDERS.items()}
MINIMAL = {
    "alert": lambda b: b.title("t"), "threat_intel": lambda b: b.threat("x", "botnet"),
    "vulnerability": lambda b: b.cve("CVE-2024-3094").title("xz").cvss(10.0), "incident": lambda b: b.title("t"),
    "network_event": lambda b: b.src("10.0.0.1").dst("10.0.0.2"), "endpoint_event": lambda b: b.endpoint("ws1"),
    "auth_event": lambda b: b.account("alice").target("host", "srv1"),
}


@st.composite
def call_sequences(draw: typing.Any) -> tuple[str, list[tuple[str, list[typing.Any], dict[str, typing.Any]]]]:
    kind = draw(st.sampled_from(sorted(BUILDERS)))
    calls = []
    for _ in range(draw(st.integers(0, 8))):
        name, params, hints = draw(st.sampled_from(METHODS[kind]))
        args: list[typing.Any] = []
        kwargs: dict[str, typing.Any] = {}
        for p in params:
            if p.kind == p.VAR_POSITIONAL:
                args += draw(st.lists(values(hints[p.name], p.name), max_size=3))
            elif p.kind == p.VAR_KEYWORD:
                kwargs.update(draw(st.dictionaries(st.sampled_from(["case", "note"]), TEXT, max_size=2)))
            elif p.default is p.empty or draw(st.booleans()):
                kwargs[p.name] = draw(values(hints[p.name], p.name))
        calls.append((name, args, kwargs))
    return kind, calls


def _non_finite_only(errors: list[typing.Any]) -> bool:
    return all(e.code == "type" and any(w in e.message for w in ("nan", "inf")) for e in errors)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(call_sequences())
def test_every_builder_output_validates_or_is_refused_as_jsonschema_refuses_it(sequence):
    kind, calls = sequence
    builder = MINIMAL[kind](BUILDERS[kind]())
    for name, args, kwargs in calls:
        before = copy.deepcopy((args, kwargs))
        try:
            getattr(builder, name)(*args, **kwargs)
        except InvalidValueError as e:
            assert e.prop_name and e.reason
        assert (args, kwargs) == before or _has_nan((args, kwargs)), f"{name} changed its arguments"
    event = builder.to_dict()
    try:
        built = builder.build()
    except InvalidEventError as e:
        assert e.errors and all(err.path is not None for err in e.errors)
        assert not reference_is_valid(event) or _non_finite_only(e.errors), e.errors
        return
    assert reference_is_valid(event)
    assert validate_event(event).warnings == []
    assert built.to_dict() == event
    assert Event.parse(built.to_json(), validate=True).to_dict() == event


def _has_nan(value: typing.Any) -> bool:
    """NaN != NaN, so an unchanged argument holding one compares unequal to its copy."""
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_nan(v) for v in value)
    return False
