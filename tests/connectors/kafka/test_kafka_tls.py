"""kafka+ssl:// for real: the sink, the source and `wia-security forward/pull` (confluent-kafka) against tansu
behind a TLS-terminating proxy (tests/servers/kafka_tls_proxy.py) with a throwaway CA.

tansu advertises the proxy's address, so every connection, bootstrap and broker, is TLS. Mutual TLS
runs on a second tansu+proxy that demands a client certificate. SASL logins (SASL_SSL too): test_kafka_sasl.py.
"""
from __future__ import annotations

import json
import sqlite3
import time

import pytest

from confluent_kafka import Consumer, TopicPartition
from servers.kafka_tls_proxy import make_client_certificate, start_tls_kafka
from strategies import event_dicts

from wia_security.cli import main
from wia_security.connectors.config import Secret, parse_config
from wia_security.connectors.kafka import DEFAULT_DELIVERY_TIMEOUT_MS, KafkaSink, KafkaSource, parse_url
from wia_security.errors import ConfigError

KEY_PASSPHRASE = "client-key-passphrase-7f3a91"


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory):
    server = start_tls_kafka(tmp_path_factory.mktemp("kafka-tls"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_kafka(tmp_path_factory):
    """A broker whose proxy demands a client certificate from the client CA; client.key is encrypted."""
    directory = tmp_path_factory.mktemp("kafka-mtls")
    make_client_certificate(directory, passphrase=KEY_PASSPHRASE)
    server = start_tls_kafka(directory, client_ca=directory / "client-ca.pem")
    yield server
    server.stop()


def write_events(path, events) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def end_offset(config: dict, topic: str) -> int:
    consumer = Consumer({**config, "group.id": f"check-{topic}"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)[1]
    finally:
        consumer.close()


def dead_letters(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_forward_with_default_settings_refuses_the_untrusted_broker_and_dead_letters_every_event(tls_kafka, tmp_path, capsys):
    topic = tls_kafka.create_topic()
    events = event_dicts(30, seed=351)
    started = time.monotonic()
    code = main(["forward", write_events(tmp_path / "in.ndjson", events), "--to", f"kafka+ssl://{tls_kafka.bootstrap}/{topic}",
                 "--dead-letter", str(tmp_path / "dead.ndjson"), "--summary", "json"])
    elapsed = time.monotonic() - started
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and summary["delivered"] == 0
    dead = dead_letters(tmp_path / "dead.ndjson")
    # nothing lost: every event is in the dead letter, with the certificate problem as its reason
    assert sorted(d["event"]["id"] for d in dead) == sorted(e["id"] for e in events)
    assert all("certificate verify failed" in d["reason"] and "ssl.ca.location" in d["reason"] for d in dead), dead[0]
    # refused as soon as every broker refused the handshake, not after message.timeout.ms
    assert elapsed < DEFAULT_DELIVERY_TIMEOUT_MS / 1000 / 2, elapsed
    assert end_offset(tls_kafka.client_config(), topic) == 0


def test_a_refused_handshake_never_shows_the_sasl_password_or_the_key_passphrase(tls_kafka, tmp_path, capfd):
    sasl_password = "sasl-Pa55-w0rd-for-tls-test-31"
    topic = tls_kafka.create_topic()
    make_client_certificate(tmp_path, passphrase=KEY_PASSPHRASE)
    events = event_dicts(3, seed=356)
    # SASL over TLS and a client key with its passphrase, but no CA: refused at the TLS handshake
    with KafkaSink.from_url(f"kafka+sasl_ssl://{tls_kafka.bootstrap}/{topic}?ssl.certificate.location={tmp_path / 'client.pem'}"
                            f"&ssl.key.location={tmp_path / 'client.key'}", username="wia", password=Secret(sasl_password, "test"),
                            sasl_mechanism="PLAIN", ssl_key_password=Secret(KEY_PASSPHRASE, "test")) as sink:
        report = sink.send(events)
        shown = repr(sink) + sink.name
    assert report.delivered == 0 and all("certificate verify failed" in r.reason for r in report.failed)
    out, err = capfd.readouterr()
    for text in [shown, out, err, *(r.reason for r in report.failed)]:
        assert sasl_password not in text and KEY_PASSPHRASE not in text


def test_with_the_ca_forward_and_pull_carry_every_event_exactly_and_a_refused_pull_loses_nothing(tls_kafka, tmp_path, capsys):
    topic = tls_kafka.create_topic(partitions=2)
    events = event_dicts(60, seed=352)
    ca = f"ssl.ca.location={tls_kafka.ca}"
    connections_before = tls_kafka.proxy.tls_connections
    assert main(["forward", write_events(tmp_path / "in.ndjson", events), "--to",
                 f"kafka+ssl://{tls_kafka.bootstrap}/{topic}?{ca}", "--dead-letter", str(tmp_path / "fdead.ndjson")]) == 0
    capsys.readouterr()
    # every connection went through the TLS listener: tansu only advertises the proxy
    assert tls_kafka.proxy.tls_connections > connections_before

    # a pull without the CA stops with exit code 2 naming the certificate problem; it commits nothing
    store = tmp_path / "store.db"
    pull = ["pull", "--to", f"sqlite:///{store}", "--dead-letter", str(tmp_path / "pdead.ndjson"), "--idle-timeout", "3",
            "--summary", "json"]
    started = time.monotonic()
    assert main([pull[0], f"kafka+ssl://{tls_kafka.bootstrap}/{topic}?group=tls-pull", *pull[1:]]) == 2
    err = capsys.readouterr().err
    assert "no broker accepted the connection" in err and "certificate verify failed" in err and "ssl.ca.location" in err
    assert time.monotonic() - started < 20

    # with the CA the same group reads every event from the start: the refused pull lost nothing
    assert main([pull[0], f"kafka+ssl://{tls_kafka.bootstrap}/{topic}?group=tls-pull&{ca}", *pull[1:]]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 60
    stored = {row[0]: json.loads(row[1]) for row in sqlite3.connect(store).execute("select id, body from events")}
    assert set(stored) == {e["id"] for e in events}
    # as sent (the store adds ATT&CK names under mitre; the exact bytes are checked in the round trip below)
    assert all({k: v for k, v in stored[e["id"]].items() if k != "mitre"} == {k: v for k, v in e.items() if k != "mitre"}
               for e in events)


def test_sink_and_source_round_trip_over_tls_byte_for_byte(tls_kafka):
    topic = tls_kafka.create_topic()
    events = event_dicts(40, seed=353)
    url = f"kafka+ssl://{tls_kafka.bootstrap}/{topic}?ssl.ca.location={tls_kafka.ca}"
    with KafkaSink.from_url(url) as sink:
        report = sink.send(events)
    assert (report.delivered, report.failed) == (40, [])
    got = []
    with KafkaSource.from_url(url + "&group=tls-roundtrip") as source:
        for batch in source.batches(idle_timeout=3):
            got += [item.value for item in batch.items]
            source.commit(batch)
    assert got == events                      # one partition: the same events, in order, unchanged


def test_a_host_name_the_certificate_does_not_list_is_refused_by_default(tls_kafka):
    topic = tls_kafka.create_topic()
    events = event_dicts(5, seed=354)
    # the trusted CA, but reached as 127.0.0.2: the certificate names localhost and 127.0.0.1 only
    url = f"kafka+ssl://{tls_kafka.unlisted_bootstrap}/{topic}?ssl.ca.location={tls_kafka.ca}"
    with KafkaSink.from_url(url) as sink:
        report = sink.send(events)
        started = time.monotonic()
        again = sink.send(events)              # the next batch meets a fresh refusal, as fast
        assert time.monotonic() - started < 5
    assert report.delivered == 0 and len(report.failed) == 5
    assert all("certificate verify failed" in r.reason and "a name or address the certificate lists" in r.reason
               and not r.retryable for r in report.failed + again.failed), report.failed[0].reason
    assert again.delivered == 0 and len(again.failed) == 5
    # control: the same address with host-name checking switched off is accepted, so it was the name
    with KafkaSink.from_url(url + "&ssl.endpoint.identification.algorithm=none") as sink:
        assert sink.send(events).delivered == 5


def test_mutual_tls_both_clients_present_the_client_certificate(mtls_kafka, tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_KEY_PASSPHRASE", KEY_PASSPHRASE)
    d = mtls_kafka.directory
    cert_keys = f"ssl.ca.location={mtls_kafka.ca}&ssl.certificate.location={d / 'client.pem'}&ssl.key.location={d / 'client.key'}"
    admin_config = {**mtls_kafka.client_config(), "ssl.key.password": KEY_PASSPHRASE}
    topic = mtls_kafka.create_topic(config=admin_config)
    events = event_dicts(20, seed=355)

    # without a client certificate the proxy ends the handshake: refused, every event failed with the reason
    with KafkaSink.from_url(f"kafka+ssl://{mtls_kafka.bootstrap}/{topic}?ssl.ca.location={mtls_kafka.ca}") as sink:
        refused = sink.send(events)
    assert refused.delivered == 0 and len(refused.failed) == 20
    assert all(r.reason.startswith("kafka: no broker accepted the connection") for r in refused.failed), refused.failed[0].reason

    # the config file's way: the key passphrase by reference, never a literal
    config = parse_config({"destinations": {"bus": {"url": f"kafka+ssl://{mtls_kafka.bootstrap}/{topic}?{cert_keys}",
                                                    "ssl_key_password_env": "KAFKA_KEY_PASSPHRASE"}}})
    subjects_before = len(mtls_kafka.proxy.client_subjects)
    with config.destinations[0].open() as sink:
        assert KEY_PASSPHRASE not in repr(sink)
        report = sink.send(events)
    assert (report.delivered, report.failed) == (20, [])
    assert mtls_kafka.proxy.client_subjects[subjects_before:] and \
        set(mtls_kafka.proxy.client_subjects[subjects_before:]) == {"wia-client"}

    subjects_before = len(mtls_kafka.proxy.client_subjects)
    got = []
    with KafkaSource.from_url(f"kafka+ssl://{mtls_kafka.bootstrap}/{topic}?group=mtls&{cert_keys}",
                              ssl_key_password=Secret(KEY_PASSPHRASE, "test")) as source:
        for batch in source.batches(idle_timeout=3):
            got += [item.value for item in batch.items]
    assert got == events
    assert set(mtls_kafka.proxy.client_subjects[subjects_before:]) == {"wia-client"}


def test_a_wrong_key_passphrase_is_a_config_error_that_does_not_repeat_it(mtls_kafka, capfd):
    d = mtls_kafka.directory
    wrong = "not-the-passphrase-5521"
    url = (f"kafka+ssl://{mtls_kafka.bootstrap}/t?ssl.ca.location={mtls_kafka.ca}"
           f"&ssl.certificate.location={d / 'client.pem'}&ssl.key.location={d / 'client.key'}")
    for opener in (KafkaSink.from_url, lambda u, **o: KafkaSource.from_url(u + "&group=g", **o)):
        with pytest.raises(ConfigError, match="librdkafka refused the settings") as info:
            opener(url, ssl_key_password=Secret(wrong, "test"))
        assert "ssl.key.location" in str(info.value) and wrong not in str(info.value)
    out, err = capfd.readouterr()
    assert wrong not in out + err and KEY_PASSPHRASE not in out + err


def test_tls_secrets_are_refused_in_the_url_without_repeating_them():
    for key in ("ssl.key.password", "sasl.password", "ssl.keystore.password", "ssl.key.pem"):
        with pytest.raises(ConfigError, match=f"{key} is a secret") as info:
            parse_url(f"kafka+ssl://b1:9093/t?ssl.ca.location=/ca.pem&{key}=hunter2-secret-value")
        assert "hunter2-secret-value" not in str(info.value)
    target = parse_url("kafka+ssl://b1:9093/t?ssl.ca.location=/etc/kafka/ca.pem&ssl.endpoint.identification.algorithm=https")
    assert target.config["security.protocol"] == "SSL" and target.config["ssl.ca.location"] == "/etc/kafka/ca.pem"
    # a literal passphrase in a config file is refused, naming the key only
    with pytest.raises(ConfigError, match="ssl_key_password") as info:
        parse_config({"destinations": {"bus": {"url": "kafka+ssl://b1:9093/t", "ssl_key_password": "hunter2-secret-value"}}})
    assert "hunter2-secret-value" not in str(info.value)
