"""The SASL test proxy (tests/servers/kafka_sasl_proxy.py) closing while a connection's thread is still at
work: close() closes that thread's sockets, and its next call on one failed with EBADF in the thread
('Exception in thread ... _serve: OSError: [Errno 9] Bad file descriptor' at settimeout, after a refused login
and after a good one; seen under xdist load as a PytestUnhandledThreadExceptionWarning of whichever test ran)."""
from __future__ import annotations

import socket
import struct
import threading

import pytest

from servers.kafka_sasl_proxy import Login, SaslAuthenticatingProxy, _frame, _read_frame, _string


def test_a_connection_closed_by_the_proxy_closing_ends_its_thread_quietly():
    proxy = SaslAuthenticatingProxy(("127.0.0.1", 9), {"wia": "not-a-real-password-1"})
    ours, theirs = socket.socketpair()
    try:
        proxy._track(theirs)
        proxy.close()                                   # the test ends: every open socket closed
        proxy._close_after_error(theirs)               # a refused login's thread, letting its client close first
        proxy._serve(theirs)                            # a thread whose socket was closed under it
    finally:
        ours.close()
    assert theirs.fileno() == -1


def test_a_socket_error_while_the_proxy_is_open_still_surfaces():
    proxy = SaslAuthenticatingProxy(("127.0.0.1", 9), {"wia": "not-a-real-password-1"})
    try:
        closed = socket.socket()
        closed.close()
        with pytest.raises(OSError):
            proxy._serve(closed)
    finally:
        proxy.close()


def test_a_login_is_recorded_before_the_client_sees_it_accepted():
    """A test reads proxy.logins as soon as its client is logged in. The proxy recorded the login after sending
    the answer, so a loaded machine that ran the client first saw no login (failed once under xdist:
    test_a_user_name_kafka_python_cannot_send_with_scram_is_refused_before_it_starts, [] == [Login(...)]).
    Here the proxy's thread is held right after it answers, as a busy machine may hold it."""
    proxy = SaslAuthenticatingProxy(("127.0.0.1", 9), {"wia": "not-a-real-password-1"})
    answered, release = threading.Event(), threading.Event()
    send_authenticate = proxy._send_authenticate

    def answer_then_stall(*args, **kwargs):
        send_authenticate(*args, **kwargs)
        answered.set()
        release.wait(10)

    proxy._send_authenticate = answer_then_stall
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            client.sendall(_frame(struct.pack(">hhih", 17, 1, 1, -1) + _string("PLAIN")))       # SaslHandshake v1
            _read_frame(client)
            token = b"\x00wia\x00not-a-real-password-1"
            client.sendall(_frame(struct.pack(">hhih", 36, 0, 2, -1) + struct.pack(">i", len(token)) + token))
            answer = _read_frame(client)                                                        # SaslAuthenticate v0
            assert struct.unpack(">ih", answer[:6]) == (2, 0)                                   # accepted
            assert answered.wait(10)
            assert proxy.logins == [Login("PLAIN", "wia", True)]
    finally:
        release.set()
        proxy.close()
