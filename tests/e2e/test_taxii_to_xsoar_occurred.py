"""`forward` -> the TAXII sink -> medallion 3.0.0 -> the XSOAR pack's own TAXII fetch (`fetch-incidents`, source_type
taxii) -> incidents. Threat intel timed in every valid spelling, with arbitrary unicode: each event is one incident,
its rawJSON the event `forward` sent, its occurred the event's instant as Go's time.RFC3339 reads it; a fetch after
the last brings nothing."""
from __future__ import annotations

import importlib.util
import json

import pytest
from e2e_helpers import (GO_RFC3339, XSOAR_PACK, expected, instant, read_ndjson, time_spellings, with_times,
                         write_ndjson, xsoar_fetch)
from strategies import event_dicts

from wia_security.cli import main

pytest.importorskip("taxii2client", reason="the taxii extra is not installed")

from servers.medallion import PASSWORD, USER  # noqa: E402


def test_taxii_sink_to_xsoar_fetch_every_spelling(medallion, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("E2E_TAXII_PASSWORD", PASSWORD)
    collection = medallion.collection_url()
    spellings = time_spellings()
    intel = with_times(event_dicts(len(spellings), seed=1501, event_type="threat_intel", wild=True), spellings)
    code = main(["forward", str(write_ndjson(tmp_path / "intel.ndjson", intel)), "--to",
                 f"taxii+{collection}?user={USER}&password_env=E2E_TAXII_PASSWORD&max_wait=0", "--dead-letter",
                 str(tmp_path / "dead.ndjson"), "--no-progress", "--summary", "json"])
    forwarded = json.loads(capsys.readouterr().out)
    assert (code, forwarded["delivered"]) == (0, len(intel)) and not read_ndjson(tmp_path / "dead.ndjson")
    spec = importlib.util.spec_from_file_location("WIASecurityTaxiiE2E",
                                                  XSOAR_PACK / "Integrations" / "WIASecurity" / "WIASecurity.py")
    integration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(integration)
    params = {"url": collection, "source_type": "taxii", "credentials": {"identifier": USER, "password": PASSWORD},
              "max_fetch": "200", "first_fetch": "", "settle": "0", "incidentType": "WIA Security Event"}
    incidents, state = xsoar_fetch(integration, params, {})
    again, _ = xsoar_fetch(integration, params, state)
    assert again == []
    by_id = {json.loads(i["rawJSON"])["id"]: i for i in incidents}
    assert len(incidents) == len(by_id) == len(intel)
    for event in intel:
        incident = by_id[event["id"]]
        assert json.loads(incident["rawJSON"]) == expected(event)
        assert GO_RFC3339.fullmatch(incident["occurred"]), (event["timestamp"], incident["occurred"])
        assert instant(incident["occurred"]) == instant(event["timestamp"]), (event["timestamp"], incident["occurred"])
