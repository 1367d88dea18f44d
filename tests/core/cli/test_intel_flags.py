"""`wia-security intel pull` refuses a flag of the other feed instead of ignoring it: an OTX pull given
`--tag` took every subscribed pulse. (A MISP pull takes `--state` as its checkpoint: see
tests/connectors/intel/test_misp_checkpoint_contract.py.) Contract tests for OTX against the OTX contract
server (requests, as the source uses it)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from otx_contract import OtxServer  # noqa: E402

PULSES = [{"id": "p1", "name": "Pulse 1", "modified": "2026-02-01T00:00:00",
           "indicators": [{"indicator": "evil1.example.net", "type": "domain"}]}]


@pytest.mark.parametrize(("flags", "named"), [
    (["--tag", "tlp:green"], "--tag"),
    (["--attributes"], "--attributes"),
    (["--tag", "a", "--attributes"], "--tag, --attributes"),
])
def test_contract_misp_only_flags_are_refused_for_otx_and_nothing_is_pulled(cli, tmp_path, monkeypatch, flags, named):
    with OtxServer(api_key="o") as otx:
        otx.pulses = list(PULSES)
        monkeypatch.setenv("OTX_API_KEY", "o")
        r = cli("intel", "pull", "otx", "--url", otx.url, *flags)
        assert otx.calls() == []
    assert r.code == 2 and r.err == f"wia-security: {named}: not for otx (see wia-security intel pull --help)\n", r.err
    assert list(tmp_path.iterdir()) == []


def test_contract_otx_keeps_its_cursor_in_the_default_state_file_without_state(cli, tmp_path, monkeypatch):
    with OtxServer(api_key="o") as otx:
        otx.pulses = list(PULSES)
        monkeypatch.setenv("OTX_API_KEY", "o")
        r = cli("intel", "pull", "otx", "--url", otx.url)
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "wia-otx-state.json").read_text())["modified_since"] == "2026-02-01T00:00:00"
