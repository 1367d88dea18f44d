"""Two ways into XSOAR agree: the XSOAR connector creating incidents (`connectors/soar/xsoar.py`, against the XSOAR
contract server) and the XSOAR pack fetching the same events from the gateway (its incoming mapper applied to
rawJSON as XSOAR applies it). For generated events, unicode strings and timestamps spelled as the schema allows
(lower-case t/z, an offset, a trailing line break): the same occurred instant (in a form XSOAR reads), severity,
rawJSON and incident fields."""
from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from datetime import datetime
from pathlib import Path

import pytest
import requests
from e2e_helpers import AUTH, TOKEN, expected
from strategies import event_dicts

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("demisto_client", reason="the soar extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "tests" / "xsoar_pack" / "stubs", ROOT / "tests" / "servers"):
    if str(extra) not in sys.path:
        sys.path.append(str(extra))

import demistomock  # noqa: E402
from xsoar_contract import XsoarServer  # noqa: E402

from wia_security.connectors.delivery import DeliveryPolicy  # noqa: E402
from wia_security.connectors.gateway import GatewaySettings  # noqa: E402
from wia_security.connectors.gateway.server import GatewayServer  # noqa: E402
from wia_security.connectors.soar.xsoar import XsoarSink  # noqa: E402

#: RFC 3339 date-time as XSOAR's server reads it (Go's time.RFC3339).
STRICT_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
PACK = ROOT / "xsoar_pack" / "Packs" / "WIASecurity"
INCIDENT_TYPE = "WIA Security Event"
STAMPS = ["2026-01-31t12:00:00.5z", "2026-01-31T21:00:00+09:00\n", "2026-01-31T12:00:00.123456789Z",
          "2025-06-01T10:00:00.000001-03:30"]


def pack_fields(raw: dict) -> dict:
    """What the pack's incoming mapper sets: each field's simple path read from rawJSON."""
    cli_names = {json.loads(p.read_text())["name"]: json.loads(p.read_text())["cliName"]
                 for p in (PACK / "IncidentFields").glob("*.json")}
    [mapper] = sorted((PACK / "Classifiers").glob("classifier-mapper-incoming-*.json"))
    fields = {}
    for name, rule in json.loads(mapper.read_text())["mapping"][INCIDENT_TYPE]["internalMapping"].items():
        value = raw
        for part in rule["simple"].split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value not in (None, ""):
            fields[cli_names[name]] = value
    return fields


def instant(text: str) -> datetime:
    from wia_security.timeutil import parse_iso
    return parse_iso(text)


def test_the_connector_and_the_pack_make_the_same_incident(tmp_path):
    events = [expected(e) for e in [*event_dicts(6, seed=1497, wild=True), *event_dicts(8, seed=1498)]]
    for i, event in enumerate(events[:len(STAMPS)]):
        event["timestamp"] = STAMPS[i]
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/gateway.db",
                                       dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)).start()
    try:
        assert requests.post(gw.url + "/v1/events", json=events, headers=AUTH, timeout=30).status_code == 200
        spec = importlib.util.spec_from_file_location("WIASecurityTwoWays", PACK / "Integrations" / "WIASecurity" /
                                                      "WIASecurity.py")
        integration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(integration)
        demistomock.reset(params={"url": gw.url, "source_type": "gateway", "max_fetch": "100",
                                  "credentials": {"identifier": "", "password": TOKEN},
                                  "incidentType": INCIDENT_TYPE, "first_fetch": ""},
                          args={}, command="fetch-incidents", last=None)
        try:
            integration.main()
        except SystemExit:
            pass
        fetched = {json.loads(i["rawJSON"])["id"]: i for i in demistomock.incidents_out[-1]}
    finally:
        gw.stop()
    with XsoarServer() as server:
        with XsoarSink(server.url, token=server.api_key, delivery=DeliveryPolicy(max_wait=0)) as sink:
            assert sink.send(copy.deepcopy(events)).merge(sink.flush()).delivered == len(events)
        created = {json.loads(i["rawJSON"])["id"]: i for i in server.incidents.values()}
    assert sorted(fetched) == sorted(created) == sorted(e["id"] for e in events)
    for event in events:
        by_pack, by_sink = fetched[event["id"]], created[event["id"]]
        raw = json.loads(by_pack["rawJSON"])
        assert raw == json.loads(by_sink["rawJSON"]) == event
        assert by_pack["severity"] == by_sink["severity"]
        assert by_pack["occurred"] == by_sink["occurred"] or instant(by_pack["occurred"]) == instant(by_sink["occurred"])
        assert instant(by_sink["occurred"]) == instant(event["timestamp"])
        assert STRICT_RFC3339.fullmatch(by_pack["occurred"]) and STRICT_RFC3339.fullmatch(by_sink["occurred"])
        pack = {**pack_fields(raw), **(by_pack.get("CustomFields") or {})}
        assert pack == by_sink["CustomFields"], event["id"]
