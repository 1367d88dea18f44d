"""CEF and LEEF keys the specs type as an IP address, a MAC address or a port hold only such values.

The WIA schema types these members as any string or integer, and the writers put whatever the event
had under the key: `src=fileserver.corp.example` (a host name), `spt=70000`, `smac=0010.5a12.3456`.
ArcSight's dictionary types src/dst as IP addresses, smac/dmac as six colon-separated hex pairs,
spt/dpt as ports; IBM's LEEF guide types src/dst, srcMAC/dstMAC and srcPort/dstPort the same way;
Elasticsearch's CEF processor fails the whole line on an src it cannot read as an IP. Such a value is
now left out of the key and travels under its `wia.` key, so WIA -> line -> WIA stays exact."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from strategies import event_dicts
from wia_security import validate_event
from wia_security.formats import get_format

from test_cef import independent_split as cef_split
from test_leef import independent_split as leef_split

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")
IPV6 = re.compile(r"[0-9A-Fa-f:.]+")          # loose: colons and hex (the module checks exactly)
MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
#: format -> {key: kind}
TYPED = {"cef": {"src": "ip", "dst": "ip", "smac": "mac", "dmac": "mac", "spt": "port", "dpt": "port"},
         "leef": {"src": "ip", "dst": "ip", "srcMAC": "mac", "dstMAC": "mac", "srcPort": "port", "dstPort": "port"}}


def _fits(kind: str, value: str) -> bool:
    if kind == "ip":
        return bool(IPV4.fullmatch(value) or (":" in value and IPV6.fullmatch(value)))
    if kind == "mac":
        return bool(MAC.fullmatch(value))
    return value.isascii() and value.isdigit() and int(value) <= 65535


def _pairs(fmt: str, line: str) -> dict[str, str]:
    return (cef_split if fmt == "cef" else leef_split)(line)[1]


def _network_event() -> dict:
    return json.loads((SAMPLES / "network-event-sample.json").read_text())


#: (sample, path, value): the network event's data.* ports are bounded by its schema, the envelope's
#: context.network ports are not
BAD = [("network-event-sample", ("data", "source", "ip"), "fileserver.corp.example"),
       ("network-event-sample", ("data", "destination", "ip"), "10.0.0.300"),
       ("alert-sample", ("context", "network", "source", "port"), 70000),
       ("alert-sample", ("context", "network", "destination", "port"), -1),
       ("alert-sample", ("context", "network", "source", "ip"), "ws-17.corp.example"),
       ("network-event-sample", ("data", "source", "mac"), "0010.5a12.3456"),
       ("network-event-sample", ("data", "destination", "mac"), "not a mac")]


@pytest.mark.parametrize("fmt", ["cef", "leef"])
@pytest.mark.parametrize("sample,path,value", BAD)
def test_a_value_that_is_no_address_or_port_stays_out_of_the_typed_key_and_comes_back(fmt, sample, path, value) -> None:
    event = json.loads((SAMPLES / f"{sample}.json").read_text())
    node = event
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value
    assert validate_event(event).valid
    line = get_format(fmt).from_wia(event)
    pairs = _pairs(fmt, line)
    for key, kind in TYPED[fmt].items():
        if key in pairs:
            assert _fits(kind, pairs[key]), (key, pairs[key])
    assert "wia." + ".".join(path) in pairs, sorted(pairs)
    assert get_format(fmt).to_wia(line) == [event]


@pytest.mark.parametrize("fmt", ["cef", "leef"])
def test_good_values_still_go_under_their_keys(fmt) -> None:
    event = _network_event()
    event["data"]["source"].update(ip="2001:db8::7", port=0, mac="00:0D:60:AF:1B:61")
    event["data"]["destination"].update(ip="10.1.2.3", port=65535)
    pairs = _pairs(fmt, get_format(fmt).from_wia(event))
    keys = TYPED[fmt]
    by_kind = {kind: [k for k in keys if keys[k] == kind] for kind in ("ip", "mac", "port")}
    src_ip, dst_ip = by_kind["ip"]
    src_port, dst_port = by_kind["port"]
    assert (pairs[src_ip], pairs[dst_ip], pairs[src_port], pairs[dst_port], pairs[by_kind["mac"][0]]) == \
        ("2001:db8::7", "10.1.2.3", "0", "65535", "00:0D:60:AF:1B:61")
    assert not {f"wia.data.{side}.{member}" for side in ("source", "destination") for member in ("ip", "port", "mac")} \
        & pairs.keys(), sorted(pairs)


@pytest.mark.parametrize("fmt", ["cef", "leef"])
def test_generated_events_typed_keys_hold_only_fitting_values_and_round_trip(fmt) -> None:
    seen = 0
    for wild in (False, True):
        for event in event_dicts(300, seed=132, wild=wild):
            if not validate_event(event).valid:
                continue
            line = get_format(fmt).from_wia(event)
            for key, kind in TYPED[fmt].items():
                if key in (pairs := _pairs(fmt, line)):
                    seen += 1
                    assert _fits(kind, pairs[key]), (key, pairs[key][:80])
            assert get_format(fmt).to_wia(line) == [copy.deepcopy(event)]
    assert seen > 100


#: (format, sample, path, key, too big, largest that fits): CEF cnt/spid are Integer (32-bit), in/out/fsize
#: Long; LEEF's byte and packet counts Long. The WIA schema sets no upper bound.
NUMBERS = [("cef", "alert-sample", ("data", "count"), "cnt", 3_000_000_000, 2**31 - 1),
           ("cef", "endpoint-event-sample", ("data", "process", "pid"), "spid", 2**31, 2**31 - 1),
           ("cef", "network-event-sample", ("data", "bytes_sent"), "out", 2**63, 2**63 - 1),
           ("leef", "network-event-sample", ("data", "bytes_received"), "dstBytes", 2**64, 2**63 - 1)]


@pytest.mark.parametrize("fmt,sample,path,key,too_big,largest", NUMBERS, ids=[n[3] for n in NUMBERS])
def test_a_number_beyond_its_keys_integer_type_travels_only_as_wia(fmt, sample, path, key, too_big, largest) -> None:
    for value, in_key in ((too_big, False), (largest, True)):
        event = json.loads((SAMPLES / f"{sample}.json").read_text())
        node = event
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = value
        assert validate_event(event).valid
        line = get_format(fmt).from_wia(event)
        pairs = _pairs(fmt, line)
        assert (pairs.get(key) == str(value)) is in_key and (key in pairs) is in_key, (key, pairs.get(key))
        assert ("wia." + ".".join(path) in pairs) is not in_key
        assert get_format(fmt).to_wia(line) == [event]
