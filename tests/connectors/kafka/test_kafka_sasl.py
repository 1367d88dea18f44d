"""SASL logins for real: the Kafka sink and source (confluent-kafka) against tansu behind the SASL-authenticating
proxy (tests/servers/kafka_sasl_proxy.py), over plain TCP (kafka+sasl://) and behind the TLS proxy too
(kafka+sasl_ssl://, as MSK with SCRAM-SHA-512 and Confluent Cloud / Event Hubs with PLAIN).

The first part checks the proxy itself against both real clients (librdkafka and kafka-python, the Splunk
app's and XSOAR pack's library) and against hand-made requests for the protocol rules the clients never break.
"""
from __future__ import annotations

import json
import logging
import socket
import struct
import time

import pytest

from confluent_kafka import KafkaError, Producer
from servers.kafka_sasl_proxy import MECHANISMS, Login, rewrite_api_versions, start_sasl_kafka
from strategies import event_dicts

from wia_security.cli import main
from wia_security.connectors.config import Secret
from wia_security.connectors.kafka import KafkaSink, KafkaSource
from wia_security.errors import DeliveryError

USER, PASSWORD = "wia-forwarder", "sasl-Pa55-w0rd-51-8e2c4a"
WRONG_PASSWORD = "not-the-Pa55-w0rd-51-77b1"
#: A refused login must end the batch long before message.timeout.ms (30 s), with the reason.
PROMPT_SECONDS = 5


@pytest.fixture(scope="module")
def sasl_kafka():
    server = start_sasl_kafka({USER: PASSWORD, "other-user": "other-Pa55"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sasl_ssl_kafka(tmp_path_factory):
    server = start_sasl_kafka({USER: PASSWORD}, tls_directory=tmp_path_factory.mktemp("kafka-sasl-ssl"))
    yield server
    server.stop()


def logins_since(server, count: int) -> list[Login]:
    return server.logins[count:]


# -- the proxy against the real clients ------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_the_sink_and_kafka_python_log_in_with_each_mechanism(sasl_kafka, mechanism):
    """The project's sink (librdkafka) writes, kafka-python (the Splunk app's and XSOAR pack's library) reads back."""
    from kafka import KafkaConsumer, TopicPartition
    topic = sasl_kafka.create_topic(sasl_kafka.client_config(USER, PASSWORD, mechanism))
    events = event_dicts(20, seed=510)
    before = len(sasl_kafka.logins)
    with KafkaSink.from_url(f"kafka+sasl://{sasl_kafka.bootstrap}/{topic}", username=USER,
                            password=Secret(PASSWORD, "test"), sasl_mechanism=mechanism) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == len(events)
    reader = KafkaConsumer(bootstrap_servers=sasl_kafka.bootstrap, security_protocol="SASL_PLAINTEXT",
                           sasl_mechanism=mechanism, sasl_plain_username=USER, sasl_plain_password=PASSWORD,
                           group_id=None, enable_auto_commit=False)
    try:
        reader.assign([TopicPartition(topic, 0)])
        reader.seek_to_beginning(TopicPartition(topic, 0))
        records = [json.loads(r.value) for batch in reader.poll(timeout_ms=10_000, max_records=100).values()
                   for r in batch]
    finally:
        reader.close()
    assert records == json.loads(json.dumps(events))
    logins = logins_since(sasl_kafka, before)
    assert len(logins) >= 2 and all(login == Login(mechanism, USER, True) for login in logins)


@pytest.mark.parametrize("mechanism,message", [
    ("PLAIN", "Authentication failed: Invalid username or password"),
    ("SCRAM-SHA-256", "Authentication failed during authentication due to invalid credentials with SASL mechanism "
                      "SCRAM-SHA-256"),
    ("SCRAM-SHA-512", "Authentication failed during authentication due to invalid credentials with SASL mechanism "
                      "SCRAM-SHA-512")])
def test_a_wrong_password_is_refused_with_kafkas_message_to_both_clients(sasl_kafka, mechanism, message, caplog):
    from kafka import KafkaConsumer
    from kafka.errors import KafkaTimeoutError
    errors: list[KafkaError] = []
    producer = Producer({**sasl_kafka.client_config(USER, WRONG_PASSWORD, mechanism), "error_cb": errors.append})
    deadline = time.monotonic() + 10
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.monotonic() < deadline:
        producer.poll(0.1)
    del producer
    refused = [e.str() for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert refused and f"SASL authentication error: {message}" in refused[0]

    with caplog.at_level(logging.WARNING, logger="kafka"), pytest.raises(KafkaTimeoutError):
        KafkaConsumer(bootstrap_servers=sasl_kafka.bootstrap, security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism=mechanism, sasl_plain_username=USER, sasl_plain_password=WRONG_PASSWORD,
                      group_id=None, bootstrap_timeout_ms=500)
    assert f"SaslAuthenticationFailedError: {message}" in caplog.text
    assert sasl_kafka.logins[-1] == Login(mechanism, USER, False)


def test_a_mechanism_the_broker_does_not_offer_is_refused_listing_the_enabled_ones(sasl_kafka, caplog):
    from kafka import KafkaConsumer
    from kafka.errors import KafkaTimeoutError
    sasl_kafka.sasl.mechanisms = ("SCRAM-SHA-512",)          # as on MSK
    try:
        errors: list[KafkaError] = []
        producer = Producer({**sasl_kafka.client_config(USER, PASSWORD, "PLAIN"), "error_cb": errors.append})
        deadline = time.monotonic() + 10
        while not errors and time.monotonic() < deadline:
            producer.poll(0.1)
        del producer
        assert "Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-512" in errors[0].str()
        with caplog.at_level(logging.WARNING, logger="kafka"), pytest.raises(KafkaTimeoutError):
            KafkaConsumer(bootstrap_servers=sasl_kafka.bootstrap, security_protocol="SASL_PLAINTEXT",
                          sasl_mechanism="PLAIN", sasl_plain_username=USER, sasl_plain_password=PASSWORD,
                          group_id=None, bootstrap_timeout_ms=500)
        assert "UnsupportedSaslMechanismError" in caplog.text
    finally:
        sasl_kafka.sasl.mechanisms = MECHANISMS


# -- the proxy against hand-made requests (what the clients never do) -----------------------------------


def request(sock: socket.socket, api_key: int, version: int, body: bytes = b"", *, flexible: bool = False) -> bytes:
    """Sends one request (header v1, or v2 with empty tagged fields) and returns the response after the
    correlation id (None-safe: raises ConnectionError when the proxy closes instead of answering)."""
    header = struct.pack(">hhih", api_key, version, 51, 4) + b"test" + (b"\x00" if flexible else b"")
    sock.sendall(struct.pack(">i", len(header + body)) + header + body)
    size = struct.unpack(">i", receive(sock, 4))[0]
    answer = receive(sock, size)
    assert answer[:4] == struct.pack(">i", 51)
    return answer[4:]


def receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed by the proxy")
        data += chunk
    return data


def closed(sock: socket.socket) -> bool:
    """Whether the proxy ends the connection. It waits for the client to go first after an error answer (up to
    CLOSE_AFTER_ERROR_SECONDS), so this client says it is done sending; a proxy still serving the connection would
    leave recv() waiting until the timeout."""
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def kafka_string(text: str) -> bytes:
    return struct.pack(">h", len(text)) + text.encode()


def api_versions_listed(body: bytes, version: int) -> dict[int, tuple[int, int]]:
    error_code, = struct.unpack(">h", body[:2])
    assert error_code == 0
    listed = {}
    if version < 3:
        count, = struct.unpack(">i", body[2:6])
        for i in range(count):
            key, low, high = struct.unpack(">hhh", body[6 + 6 * i:12 + 6 * i])
            listed[key] = (low, high)
    else:
        count, offset = body[2] - 1, 3                    # fewer than 127 keys: a one-byte varint
        for _ in range(count):
            key, low, high = struct.unpack(">hhh", body[offset:offset + 6])
            assert body[offset + 6] == 0                  # no tagged fields of its own
            listed[key], offset = (low, high), offset + 7
    return listed


@pytest.mark.parametrize("version", [0, 3])
def test_api_versions_lists_the_sasl_requests_next_to_the_brokers_own(sasl_kafka, version):
    with socket.create_connection(("127.0.0.1", sasl_kafka.sasl.port), 5) as sock:
        body = b"\x05test\x021\x00" if version >= 3 else b""    # v3: client software name and version (compact)
        listed = api_versions_listed(request(sock, 18, version, body, flexible=version >= 3), version)
    assert listed[17] == (0, 1) and listed[36] == (0, 2)
    assert 0 in listed and 1 in listed and 3 in listed           # tansu's Produce, Fetch, Metadata


def test_the_rewrite_adds_the_sasl_requests_to_an_answer_without_them_in_both_layouts():
    """tansu 0.6.0 happens to list them already (the test above); a broker build that does not gets them added,
    and one listing other versions gets the proxy's."""
    entries = [(0, 0, 9), (3, 0, 12), (17, 0, 0)]
    v0 = struct.pack(">hi", 0, len(entries)) + b"".join(struct.pack(">hhh", *e) for e in entries)
    assert api_versions_listed(rewrite_api_versions(0, v0), 0) == {0: (0, 9), 3: (0, 12), 17: (0, 1), 36: (0, 2)}
    v3 = (struct.pack(">h", 0) + bytes([len(entries) + 1]) + b"".join(struct.pack(">hhh", *e) + b"\x00" for e in entries)
          + struct.pack(">i", 0) + b"\x00")
    rewritten = rewrite_api_versions(3, v3)
    assert api_versions_listed(rewritten, 3) == {0: (0, 9), 3: (0, 12), 17: (0, 1), 36: (0, 2)}
    assert rewritten.endswith(struct.pack(">i", 0) + b"\x00")          # throttle time and tagged fields kept
    unsupported = struct.pack(">hi", 35, 0)                                # UNSUPPORTED_VERSION: as it is
    assert rewrite_api_versions(4, unsupported) == unsupported


def test_a_request_before_the_login_closes_the_connection(sasl_kafka):
    with socket.create_connection(("127.0.0.1", sasl_kafka.sasl.port), 5) as sock:
        with pytest.raises(ConnectionError):
            request(sock, 3, 1, struct.pack(">i", -1))           # Metadata v1, all topics
    assert sasl_kafka.sasl.refused_requests[-1] == 3


def test_sasl_authenticate_before_the_handshake_is_an_illegal_state(sasl_kafka):
    with socket.create_connection(("127.0.0.1", sasl_kafka.sasl.port), 5) as sock:
        answer = request(sock, 36, 1, struct.pack(">i", 0))
        assert struct.unpack(">h", answer[:2])[0] == 34           # ILLEGAL_SASL_STATE
        assert closed(sock)


def test_a_second_handshake_is_an_illegal_state(sasl_kafka):
    with socket.create_connection(("127.0.0.1", sasl_kafka.sasl.port), 5) as sock:
        assert request(sock, 17, 1, kafka_string("PLAIN"))[:2] == b"\x00\x00"
        assert struct.unpack(">h", request(sock, 17, 1, kafka_string("PLAIN"))[:2])[0] == 34
        assert closed(sock)


def test_an_unknown_mechanism_gets_the_enabled_ones_and_a_close(sasl_kafka):
    with socket.create_connection(("127.0.0.1", sasl_kafka.sasl.port), 5) as sock:
        answer = request(sock, 17, 1, kafka_string("GSSAPI"))
        assert struct.unpack(">hi", answer[:6]) == (33, 3)         # UNSUPPORTED_SASL_MECHANISM, 3 mechanisms
        assert b"SCRAM-SHA-512" in answer and closed(sock)


def test_a_refused_flexible_authenticate_gets_error_58_with_a_message_then_a_close(sasl_kafka):
    """SaslAuthenticate v2: compact bytes in, response header v1 and compact types out."""
    with socket.create_connection(("127.0.0.1", sasl_kafka.sasl.port), 5) as sock:
        assert request(sock, 17, 1, kafka_string("PLAIN"))[:2] == b"\x00\x00"
        token = f"\x00{USER}\x00{WRONG_PASSWORD}".encode()
        answer = request(sock, 36, 2, bytes([len(token) + 1]) + token + b"\x00", flexible=True)
        assert answer[0] == 0                                      # the response header's tagged fields
        error_code, size = struct.unpack(">hB", answer[1:4])
        assert error_code == 58 and answer[4:4 + size - 1] == b"Authentication failed: Invalid username or password"
        assert closed(sock)
    assert sasl_kafka.logins[-1] == Login("PLAIN", USER, False)


def test_handshake_v0_takes_the_token_unframed_and_then_relays_to_the_broker(sasl_kafka):
    """KIP-43 v0: after SaslHandshake v0 the SASL tokens travel framed by size alone; then the connection is
    the broker's (a Metadata request gets tansu's answer)."""
    with socket.create_connection(("127.0.0.1", sasl_kafka.sasl.port), 5) as sock:
        assert request(sock, 17, 0, kafka_string("PLAIN"))[:2] == b"\x00\x00"
        token = f"{USER}\x00{USER}\x00{PASSWORD}".encode()           # with an authorization id
        sock.sendall(struct.pack(">i", len(token)) + token)
        assert receive(sock, 4) == struct.pack(">i", 0)            # an empty server token: logged in
        metadata = request(sock, 3, 1, struct.pack(">i", -1))
        assert struct.unpack(">i", metadata[:4])[0] == 1 and b"127.0.0.1" in metadata   # one broker: tansu
    assert sasl_kafka.logins[-1] == Login("PLAIN", USER, True)


def test_the_proxy_repr_shows_no_password(sasl_kafka):
    assert PASSWORD not in repr(sasl_kafka.sasl) + repr(sasl_kafka)


# -- the product: sink and source ------------------------------------------------------------------------


def test_forward_and_pull_over_sasl_ssl_with_scram_sha_512_and_the_password_by_reference(
        sasl_ssl_kafka, tmp_path, capsys, monkeypatch):
    """As on MSK: kafka+sasl_ssl://, SCRAM-SHA-512 (no mechanism configured: the strongest the broker offers), the
    password from the environment."""
    config = sasl_ssl_kafka.client_config(USER, PASSWORD, "SCRAM-SHA-512")
    topic = sasl_ssl_kafka.create_topic(config, partitions=2)
    events = event_dicts(30, seed=511)
    (tmp_path / "in.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events))
    monkeypatch.setenv("WIA_TEST_KAFKA_PASSWORD", PASSWORD)
    url = f"kafka+sasl_ssl://{sasl_ssl_kafka.bootstrap}/{topic}?ssl.ca.location={sasl_ssl_kafka.ca}"
    (tmp_path / "wia.toml").write_text(f'[destinations.kafka]\nurl = "{url}"\nusername = "{USER}"\n'
                                       'password_env = "WIA_TEST_KAFKA_PASSWORD"\n')
    handshakes, before = sasl_ssl_kafka.tls.tls_connections, len(sasl_ssl_kafka.logins)
    assert main(["forward", str(tmp_path / "in.ndjson"), "--config", str(tmp_path / "wia.toml"),
                 "--dead-letter", str(tmp_path / "dead.ndjson")]) == 0
    capsys.readouterr()
    with KafkaSource.from_url(f"{url}&group=msk-like", username=USER, password=Secret(PASSWORD, "test")) as source:
        read = {item.value["id"] for batch in source.batches(idle_timeout=1) for item in batch.items}
    assert read == {e["id"] for e in events}
    assert sasl_ssl_kafka.tls.tls_connections > handshakes                  # over TLS, through the TLS proxy
    logins = logins_since(sasl_ssl_kafka, before)
    assert logins and all(login == Login("SCRAM-SHA-512", USER, True) for login in logins)


def test_plain_over_sasl_ssl_delivers(sasl_ssl_kafka):
    """As on Confluent Cloud and Azure Event Hubs: PLAIN, only ever over TLS."""
    topic = sasl_ssl_kafka.create_topic(sasl_ssl_kafka.client_config(USER, PASSWORD, "PLAIN"))
    before = len(sasl_ssl_kafka.logins)
    with KafkaSink.from_url(f"kafka+sasl_ssl://{sasl_ssl_kafka.bootstrap}/{topic}?sasl_mechanism=PLAIN"
                            f"&ssl.ca.location={sasl_ssl_kafka.ca}", username=USER,
                            password=Secret(PASSWORD, "test")) as sink:
        assert sink.send(event_dicts(5, seed=512)).merge(sink.flush()).delivered == 5
    assert sasl_ssl_kafka.logins[before:] and all(login.accepted for login in sasl_ssl_kafka.logins[before:])


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_a_wrong_password_fails_the_sink_and_the_source_at_once_naming_broker_user_and_mechanism(
        sasl_ssl_kafka, mechanism, capfd):
    """librdkafka's own reason for a refused PLAIN login names neither the mechanism nor the user."""
    topic = sasl_ssl_kafka.create_topic(sasl_ssl_kafka.client_config(USER, PASSWORD, mechanism))
    url = f"kafka+sasl_ssl://{sasl_ssl_kafka.bootstrap}/{topic}?ssl.ca.location={sasl_ssl_kafka.ca}"
    options = {"username": USER, "password": Secret(WRONG_PASSWORD, "test"), "sasl_mechanism": mechanism}
    events = event_dicts(10, seed=513)
    before = len(sasl_ssl_kafka.logins)
    started = time.monotonic()
    with KafkaSink.from_url(url, **options) as sink:
        report = sink.send(events)
        shown = repr(sink) + sink.name
    del sink                              # librdkafka stops retrying the login once its client is freed
    assert time.monotonic() - started < PROMPT_SECONDS
    assert report.delivered == 0 and len(report.failed) == len(events)
    reason = report.failed[0].reason
    assert not any(r.retryable for r in report.failed)                  # the same password fails again
    assert f"sasl_ssl://{sasl_ssl_kafka.bootstrap}/bootstrap: SASL authentication error" in reason, reason
    assert f"refused the SASL login of user '{USER}' with mechanism {mechanism}" in reason, reason
    assert "password_env" in reason

    started = time.monotonic()
    with pytest.raises(DeliveryError) as raised, KafkaSource.from_url(f"{url}&group=wrong", **options) as source:
        list(source.batches(idle_timeout=30))
    assert time.monotonic() - started < PROMPT_SECONDS
    assert f"refused the SASL login of user '{USER}' with mechanism {mechanism}" in str(raised.value)
    assert Login(mechanism, USER, False) in sasl_ssl_kafka.logins[before:]
    assert not any(login.accepted for login in sasl_ssl_kafka.logins[before:])
    out, err = capfd.readouterr()
    for text in [shown, out, err, str(raised.value), repr(source), *(r.reason for r in report.failed)]:
        assert WRONG_PASSWORD not in text and PASSWORD not in text


def test_a_mechanism_the_broker_does_not_offer_fails_at_once_saying_which_to_set(sasl_kafka):
    topic = sasl_kafka.create_topic(sasl_kafka.client_config(USER, PASSWORD, "PLAIN"))
    sasl_kafka.sasl.mechanisms = ("SCRAM-SHA-512",)
    try:
        with KafkaSink.from_url(f"kafka+sasl://{sasl_kafka.bootstrap}/{topic}?sasl_mechanism=PLAIN", username=USER,
                                password=Secret(PASSWORD, "test")) as sink:
            report = sink.send(event_dicts(3, seed=514))
    finally:
        sasl_kafka.sasl.mechanisms = MECHANISMS
    reason = report.failed[0].reason
    assert report.delivered == 0 and "broker's supported mechanisms: SCRAM-SHA-512" in reason
    assert "does not offer the SASL mechanism PLAIN: set sasl_mechanism to one it lists" in reason
