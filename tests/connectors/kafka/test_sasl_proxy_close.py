"""The SASL test proxy (tests/servers/kafka_sasl_proxy.py) closing while a refused login's thread is still
letting its client close first: close() closes that client socket, and the thread's next call on it failed
with EBADF in the thread ('Exception in thread ... _serve: OSError: [Errno 9] Bad file descriptor', seen under
xdist load as a PytestUnhandledThreadExceptionWarning of whichever test was running)."""
from __future__ import annotations

import socket

from servers.kafka_sasl_proxy import SaslAuthenticatingProxy


def test_a_refused_client_closed_by_the_proxy_closing_ends_quietly():
    proxy = SaslAuthenticatingProxy(("127.0.0.1", 9), {"wia": "not-a-real-password-1"})
    ours, theirs = socket.socketpair()
    try:
        proxy._track(theirs)
        proxy.close()                                   # the test ends: every open socket closed
        proxy._close_after_error(theirs)               # what the refused login's thread does next
    finally:
        ours.close()
    assert theirs.fileno() == -1
