"""An OTX pulse whose `modified` is far ahead of this machine's clock never becomes the cursor. It did: the next
poll asked for pulses modified after that instant, and OTX had none, so every later pulse was skipped, silently,
until that date (a pulse stamped 2100 stopped the feed for good). The pulse itself is still delivered.
Against the OTX contract server (requests)."""
from __future__ import annotations

import json

from otx_contract import OtxServer
from wia_security.connectors.intel.otx import OtxSource

KEY = "otx-test-key"


def _pulse(n: int, modified: str) -> dict:
    return {"id": f"p{n}", "name": f"Pulse {n}", "modified": modified,
            "indicators": [{"indicator": f"evil{n}.example.net", "type": "domain"}]}


def test_contract_a_pulse_modified_in_the_far_future_is_delivered_but_never_the_cursor(tmp_path):
    state = str(tmp_path / "otx.json")
    with OtxServer(api_key=KEY) as otx:
        otx.pulses = [_pulse(1, "2026-02-01T00:00:00"), _pulse(2, "2100-01-01T00:00:00")]
        source = OtxSource(KEY, base_url=otx.url, state_path=state)
        assert [e["data"]["report_id"] for e in source.poll()] == ["otx:p1", "otx:p2"]
        source.commit()
        assert json.loads(open(state).read())["modified_since"] == "2026-02-01T00:00:00"
        otx.pulses.append(_pulse(3, "2026-02-02T00:00:00"))
        again = OtxSource(KEY, base_url=otx.url, state_path=state)
        assert "otx:p3" in [e["data"]["report_id"] for e in again.poll()]
