"""Intel connectors keep their API keys out of logs and say loudly when TLS verification is off.
Contract servers driven by the real clients (pymisp, requests for OTX)."""
from __future__ import annotations

import logging

import pytest

from misp_contract import Fault, MispServer
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.misp import MispSource
from wia_security.errors import DeliveryError
from wia_security.redact import MASK

KEY = "misp-secret-key-0123456789abcdef"


def test_contract_misp_key_never_reaches_pymisp_logs(caplog):
    # pymisp logs its request headers (Authorization: the key) at DEBUG and a 4xx body at ERROR; a server
    # that echoes the key in its refusal would put it on stderr even with no logging configured.
    caplog.set_level(logging.DEBUG)
    with MispServer(key=KEY) as misp:
        misp.faults.append(Fault(403, {"name": "Authentication failed", "message": f"no user has key {KEY}"},
                                 path_prefix="/events"))
        source = MispSource(misp.url, KEY, retry=DeliveryPolicy(max_attempts=1))
        with pytest.raises(DeliveryError) as raised:
            list(source.events())
    assert KEY not in str(raised.value)
    pymisp_lines = [r.getMessage() for r in caplog.records if r.name == "pymisp"]
    assert any(f"'Authorization': '{MASK}'" in line for line in pymisp_lines)          # the DEBUG headers
    assert any(f"no user has key {MASK}" in line for line in pymisp_lines)             # the ERROR echo
    assert KEY not in caplog.text
