"""The fault proxy in front of osmem plays the faults it names: a "reset" is a connection reset the client sees at
once, not silence until the client's own timeout (which the transient-failure tests already cover as "timeout")."""
from __future__ import annotations

import http.client
import json

import pytest

from servers.osmem import Fault, FaultProxy  # noqa: E402
from test_elastic_sink import stored_ids  # noqa: E402

#: Far longer than a reset takes even on a loaded machine: reaching it means the proxy answered with silence.
CLIENT_TIMEOUT = 30


def _bulk_create(proxy: FaultProxy, doc_id: str) -> None:
    port = int(proxy.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    body = (json.dumps({"create": {"_index": "wia-security-alert-2025.12.14", "_id": doc_id}}) + "\n"
            + json.dumps({"message": "x"}) + "\n").encode()
    try:
        conn.request("POST", "/_bulk", body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["reset", "die_after_forward"])
def test_fault_proxy_reset_reaches_the_client_as_a_reset(kind: str, fault_proxy: FaultProxy) -> None:
    fault_proxy.queue(Fault(kind))
    with pytest.raises(ConnectionResetError):        # before: TimeoutError, the socket held open by the handler
        _bulk_create(fault_proxy, "doc-1")
    # die_after_forward indexed the document before hanging up; a plain reset never forwarded it
    assert stored_ids(fault_proxy.url) == ({"doc-1"} if kind == "die_after_forward" else set())
    _bulk_create(fault_proxy, "doc-2")               # the proxy goes on serving the requests after it
    assert "doc-2" in stored_ids(fault_proxy.url)
