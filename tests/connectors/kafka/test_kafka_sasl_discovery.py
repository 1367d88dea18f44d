"""The Kafka sink and source (librdkafka) without a configured SASL mechanism: the login of wia_security.kafka_sasl,
which the Splunk app and the XSOAR pack use too, picks the strongest mechanism the broker offers that takes the
user, against tansu behind the SASL-authenticating proxy (tests/servers/kafka_sasl_proxy.py), and behind the TLS
proxy as well for kafka+sasl_ssl://.

The connector used SCRAM-SHA-512 when none was configured, the Splunk app and the XSOAR pack PLAIN: a URL that
worked with `wia-security pull` failed in the Splunk input, and one that worked there (Confluent Cloud, Event Hubs:
PLAIN only) failed here with "Unsupported SASL mechanism".
"""
from __future__ import annotations

import dataclasses
import logging
import socket
import time

import pytest

from servers.kafka_sasl_proxy import MECHANISMS, Login
from servers.tansu import free_port
from strategies import event_dicts
import test_kafka_sasl
from test_kafka_sasl import PASSWORD, PROMPT_SECONDS, USER, WRONG_PASSWORD

from wia_security import kafka_sasl
from wia_security.connectors.config import Secret
from wia_security.connectors.kafka import (UNDISCOVERED_SASL_MECHANISM, KafkaSink, KafkaSource,
                                           discover_sasl_mechanism)

# the same servers as test_kafka_sasl.py (tansu behind the SASL proxy, and behind the TLS proxy too), for this module
sasl_kafka = test_kafka_sasl.sasl_kafka
sasl_ssl_kafka = test_kafka_sasl.sasl_ssl_kafka


def produce_and_consume(server, url_query: str = "", password: str = PASSWORD, n: int = 6) -> tuple[list[Login], str]:
    """Sink then source, neither told a mechanism; (the proxy's logins meanwhile, the sink's name)."""
    topic = server.create_topic(server.client_config(USER, PASSWORD, "PLAIN"))
    scheme = "kafka+sasl_ssl" if server.tls else "kafka+sasl"
    url = f"{scheme}://{server.bootstrap}/{topic}?client_id=wia-discovery{url_query}"
    events = event_dicts(n, seed=580)
    before = len(server.logins)
    with KafkaSink.from_url(url, username=USER, password=Secret(password, "test")) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == n
    with KafkaSource.from_url(f"{url}&group=discovery-{topic}", username=USER,
                              password=Secret(password, "test")) as source:
        read = {item.value["id"] for batch in source.batches(idle_timeout=1) for item in batch.items}
    assert read == {e["id"] for e in events}
    return server.logins[before:], sink.name


@pytest.mark.parametrize("offered,chosen", [
    (MECHANISMS, "SCRAM-SHA-512"),                       # as before: the connector's old default, when offered
    (("PLAIN", "SCRAM-SHA-256"), "SCRAM-SHA-256")])
def test_without_a_mechanism_the_sink_and_source_use_the_strongest_the_broker_offers(
        sasl_kafka, monkeypatch, caplog, offered, chosen):
    monkeypatch.setattr(sasl_kafka.sasl, "mechanisms", offered)
    with caplog.at_level(logging.INFO, logger="wia_security.connectors.kafka"):
        logins, _ = produce_and_consume(sasl_kafka)
    # the discovery's login for the sink and for the source, then librdkafka's, all with the chosen mechanism
    assert len(logins) >= 4 and all(login == Login(chosen, USER, True) for login in logins)
    assert (f"no SASL mechanism configured: the Kafka broker {sasl_kafka.bootstrap} lists {', '.join(offered)}; "
            f"using {chosen}") in caplog.text
    assert PASSWORD not in caplog.text


def test_a_broker_offering_only_plain_is_used_over_tls(sasl_ssl_kafka, monkeypatch, caplog):
    """As Confluent Cloud and Event Hubs (PLAIN over TLS only): the connector's old default failed there."""
    monkeypatch.setattr(sasl_ssl_kafka.sasl, "mechanisms", ("PLAIN",))
    with caplog.at_level(logging.INFO, logger="wia_security.connectors.kafka"):
        logins, _ = produce_and_consume(sasl_ssl_kafka, f"&ssl.ca.location={sasl_ssl_kafka.ca}")
    assert len(logins) >= 4 and all(login == Login("PLAIN", USER, True) for login in logins)
    assert "without TLS" not in caplog.text


@pytest.mark.parametrize("offered", [("PLAIN",), ("PLAIN", "OAUTHBEARER")])
def test_without_tls_plain_is_never_chosen_unasked(sasl_kafka, monkeypatch, caplog, offered):
    """Anyone on the path of kafka+sasl:// could strip SCRAM from the broker's list (or refuse the SCRAM login) to be
    sent the password readable: the discovery never picks PLAIN there; sasl_mechanism=PLAIN opts in."""
    monkeypatch.setattr(sasl_kafka.sasl, "mechanisms", offered)
    handshakes, logins = len(sasl_kafka.sasl.handshakes), len(sasl_kafka.logins)
    with caplog.at_level(logging.WARNING, logger="wia_security.connectors.kafka"):
        config, note = discover_sasl_mechanism({"bootstrap.servers": sasl_kafka.bootstrap,
                                                "security.protocol": "SASL_PLAINTEXT", "sasl.username": USER,
                                                "sasl.password": PASSWORD}, "kafka+sasl://test")
    assert config["sasl.mechanism"] == UNDISCOVERED_SASL_MECHANISM
    assert "PLAIN would send the password readable on the network, so it is not chosen without " \
           "sasl_mechanism=PLAIN (or use kafka+sasl_ssl://)" in note and note in caplog.text
    assert [name for _, name in sasl_kafka.sasl.handshakes[handshakes:]] == ["SCRAM-SHA-512"]     # asked, refused
    assert sasl_kafka.logins[logins:] == []                                  # no password sent at all


def test_without_tls_a_refused_scram_login_does_not_fall_back_to_plain(sasl_kafka, monkeypatch):
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        monkeypatch.delitem(sasl_kafka.sasl._scram[mechanism], USER)
    before = len(sasl_kafka.logins)
    config, note = discover_sasl_mechanism({"bootstrap.servers": sasl_kafka.bootstrap,
                                            "security.protocol": "SASL_PLAINTEXT", "sasl.username": USER,
                                            "sasl.password": PASSWORD}, "kafka+sasl://test")
    assert [login.mechanism for login in sasl_kafka.logins[before:]] == ["SCRAM-SHA-512", "SCRAM-SHA-256"]
    assert config["sasl.mechanism"] == "SCRAM-SHA-512" and PASSWORD not in note


UNVERIFIED_TLS = [{"enable.ssl.certificate.verification": "false"},
                  {"ssl.endpoint.identification.algorithm": "none"}]     # any certificate the CA issued, any name


def unverified_tls_settings(server, unverified: dict[str, str]) -> dict[str, str]:
    return {"bootstrap.servers": server.bootstrap, "security.protocol": "SASL_SSL", "sasl.username": USER,
            "sasl.password": PASSWORD, "ssl.ca.location": server.ca, **unverified}


@pytest.mark.parametrize("unverified", UNVERIFIED_TLS)
def test_over_tls_that_does_not_verify_the_broker_plain_is_never_chosen_unasked(sasl_ssl_kafka, monkeypatch, caplog,
                                                                                 unverified):
    """Whatever is on the path can answer for a broker whose certificate is not verified (or not its name), and strip
    SCRAM from the list as over kafka+sasl://: the discovery picked PLAIN there and sent it the password."""
    monkeypatch.setattr(sasl_ssl_kafka.sasl, "mechanisms", ("PLAIN",))
    logins = len(sasl_ssl_kafka.logins)
    with caplog.at_level(logging.WARNING, logger="wia_security.connectors.kafka"):
        config, note = discover_sasl_mechanism(unverified_tls_settings(sasl_ssl_kafka, unverified),
                                               "kafka+sasl_ssl://test")
    assert config["sasl.mechanism"] == UNDISCOVERED_SASL_MECHANISM
    assert ("its TLS certificate is not verified (enable.ssl.certificate.verification=false or "
            "ssl.endpoint.identification.algorithm=none): PLAIN would hand the password to whatever answers for the "
            "broker, so it is not chosen without sasl_mechanism=PLAIN (or verify the broker's certificate)") in note
    assert note in caplog.text
    assert sasl_ssl_kafka.logins[logins:] == []                              # no password sent at all


@pytest.mark.parametrize("unverified", UNVERIFIED_TLS)
def test_over_tls_that_does_not_verify_the_broker_a_refused_scram_login_does_not_fall_back_to_plain(
        sasl_ssl_kafka, monkeypatch, unverified):
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        monkeypatch.delitem(sasl_ssl_kafka.sasl._scram[mechanism], USER)
    before = len(sasl_ssl_kafka.logins)
    config, note = discover_sasl_mechanism(unverified_tls_settings(sasl_ssl_kafka, unverified), "kafka+sasl_ssl://test")
    assert [login.mechanism for login in sasl_ssl_kafka.logins[before:]] == ["SCRAM-SHA-512", "SCRAM-SHA-256"]
    assert config["sasl.mechanism"] == "SCRAM-SHA-512" and PASSWORD not in note


def test_over_sasl_ssl_the_discovery_verifies_the_broker_as_librdkafka_does(sasl_ssl_kafka, caplog):
    with caplog.at_level(logging.INFO, logger="wia_security.connectors.kafka"):
        logins, _ = produce_and_consume(sasl_ssl_kafka, f"&ssl.ca.location={sasl_ssl_kafka.ca}")
    assert len(logins) >= 4 and all(login == Login("SCRAM-SHA-512", USER, True) for login in logins)
    assert "using SCRAM-SHA-512" in caplog.text and "without TLS" not in caplog.text

    # without the CA the discovery's TLS handshake is refused: nothing is sent, librdkafka gets the old default and
    # reports the certificate as before
    handshakes = len(sasl_ssl_kafka.logins)
    with caplog.at_level(logging.WARNING, logger="wia_security.connectors.kafka"):
        with KafkaSink.from_url(f"kafka+sasl_ssl://{sasl_ssl_kafka.bootstrap}/t", username=USER,
                                password=Secret(PASSWORD, "test")) as sink:
            report = sink.send(event_dicts(2, seed=581))
    assert "no bootstrap broker answered to tell the mechanism" in caplog.text
    assert "certificate verify failed" in caplog.text and f"using {UNDISCOVERED_SASL_MECHANISM}" in caplog.text
    assert report.delivered == 0 and "certificate verify failed" in report.failed[0].reason
    assert len(sasl_ssl_kafka.logins) == handshakes


def test_without_a_mechanism_a_user_with_plain_credentials_only_falls_back_to_plain(sasl_ssl_kafka, monkeypatch,
                                                                                    caplog):
    """Kafka keeps SCRAM credentials per mechanism, and PLAIN users apart: a user the broker knows for PLAIN only is
    refused by SCRAM-SHA-512 and -256 first (once per client made), then logs in with PLAIN, as librdkafka then does."""
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        monkeypatch.delitem(sasl_ssl_kafka.sasl._scram[mechanism], USER)
    with caplog.at_level(logging.INFO, logger="wia_security.connectors.kafka"):
        logins, _ = produce_and_consume(sasl_ssl_kafka, f"&ssl.ca.location={sasl_ssl_kafka.ca}")
    refused = [Login("SCRAM-SHA-512", USER, False), Login("SCRAM-SHA-256", USER, False)]
    assert logins[:3] == [*refused, Login("PLAIN", USER, True)]
    assert [login for login in logins if not login.accepted] == refused * 2          # the sink's and the source's
    assert all(login.mechanism == "PLAIN" for login in logins if login.accepted)
    assert "using PLAIN (refused before it: SCRAM-SHA-512 (SASL_AUTHENTICATION_FAILED" in caplog.text
    assert "configure PLAIN to skip them" in caplog.text


def test_without_a_mechanism_a_wrong_password_fails_the_batch_at_once_naming_each_mechanism_tried(
        sasl_ssl_kafka, caplog, capfd):
    topic = sasl_ssl_kafka.create_topic(sasl_ssl_kafka.client_config(USER, PASSWORD, "PLAIN"))
    before = len(sasl_ssl_kafka.logins)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="wia_security.connectors.kafka"):
        with KafkaSink.from_url(f"kafka+sasl_ssl://{sasl_ssl_kafka.bootstrap}/{topic}?ssl.ca.location={sasl_ssl_kafka.ca}",
                                username=USER, password=Secret(WRONG_PASSWORD, "test")) as sink:
            report = sink.send(event_dicts(5, seed=582))
        del sink
    assert time.monotonic() - started < PROMPT_SECONDS
    assert report.delivered == 0 and len(report.failed) == 5 and not any(r.retryable for r in report.failed)
    reason = report.failed[0].reason
    # librdkafka tried the strongest; the reason says how it was chosen and what the broker said to each
    assert f"refused the SASL login of user '{USER}' with mechanism SCRAM-SHA-512 (the Kafka broker" in reason, reason
    assert ("with each SASL mechanism it offers: SCRAM-SHA-512 (SASL_AUTHENTICATION_FAILED: Authentication failed during "
            "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512)") in reason
    assert ("PLAIN (SASL_AUTHENTICATION_FAILED: Authentication failed: Invalid username or password) (no SASL mechanism "
            "configured; the broker lists PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); librdkafka logs in with SCRAM-SHA-512")\
        in reason
    discovery = [login.mechanism for login in sasl_ssl_kafka.logins[before:before + 3]]
    assert discovery == ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
    assert not any(login.accepted for login in sasl_ssl_kafka.logins[before:])
    out, err = capfd.readouterr()
    for text in (reason, caplog.text, out, err):
        assert WRONG_PASSWORD not in text and PASSWORD not in text


def test_a_broker_that_fails_the_scram_signature_is_never_given_the_password_in_plain(sasl_kafka, monkeypatch):
    """The next mechanism is tried after a refusal only: a broker that cannot prove it holds the user's credential
    may be an impostor, and PLAIN would hand it the password."""
    credentials = sasl_kafka.sasl._scram["SCRAM-SHA-512"]
    monkeypatch.setitem(credentials, USER, dataclasses.replace(credentials[USER], server_key=b"\x00" * 64))
    handshakes = len(sasl_kafka.sasl.handshakes)

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", sasl_kafka.sasl.port), timeout=5)

    with connect() as sock, pytest.raises(kafka_sasl.ExchangeFailed, match="server signature does not verify"):
        kafka_sasl.log_in(sock, sasl_kafka.bootstrap, versions=kafka_sasl.api_versions(sock, "t"), mechanism=None,
                          username=USER, password=PASSWORD, client_id="t", reconnect=connect)
    # the proxy records a handshake before it answers it (its record of a login may come after the client gave up)
    assert [name for _, name in sasl_kafka.sasl.handshakes[handshakes:]] == ["SCRAM-SHA-512"]


def test_a_broker_offering_none_of_the_mechanisms_is_named_and_librdkafka_says_what_to_set(sasl_kafka, monkeypatch):
    monkeypatch.setattr(sasl_kafka.sasl, "mechanisms", ("OAUTHBEARER",))
    config, note = discover_sasl_mechanism({"bootstrap.servers": sasl_kafka.bootstrap,
                                            "security.protocol": "SASL_PLAINTEXT", "sasl.username": USER,
                                            "sasl.password": PASSWORD}, "kafka+sasl://test")
    assert config["sasl.mechanism"] == UNDISCOVERED_SASL_MECHANISM
    assert note == (f"the Kafka broker {sasl_kafka.bootstrap} offers none of the SASL mechanisms SCRAM-SHA-512, "
                    "SCRAM-SHA-256, PLAIN (mechanisms it lists: OAUTHBEARER); librdkafka logs in with SCRAM-SHA-512")


def test_a_configured_mechanism_is_used_as_it_is_without_asking_the_broker(sasl_kafka):
    handshakes = len(sasl_kafka.sasl.handshakes)
    settings = {"bootstrap.servers": sasl_kafka.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                "sasl.username": USER, "sasl.password": PASSWORD, "sasl.mechanism": "PLAIN"}
    assert discover_sasl_mechanism(settings, "kafka+sasl://test") == (settings, None)
    with KafkaSink.from_url(f"kafka+sasl://{sasl_kafka.bootstrap}/t?sasl_mechanism=SCRAM-SHA-256", username=USER,
                            password=Secret(PASSWORD, "test")):
        pass
    # the discovery would ask for SCRAM-SHA-512 first: only librdkafka's own handshakes, for the configured one
    assert all(name == "SCRAM-SHA-256" for _, name in sasl_kafka.sasl.handshakes[handshakes:])


def test_no_broker_answering_keeps_the_old_default_and_says_why(caplog):
    port = free_port()
    with caplog.at_level(logging.WARNING, logger="wia_security.connectors.kafka"):
        config, note = discover_sasl_mechanism({"bootstrap.servers": f"127.0.0.1:{port}",
                                                "security.protocol": "SASL_PLAINTEXT", "sasl.username": USER,
                                                "sasl.password": PASSWORD}, "kafka+sasl://test")
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert f"no bootstrap broker answered to tell the mechanism (127.0.0.1:{port}: [Errno 111] Connection refused)" in note
    assert note in caplog.text


def test_tls_settings_the_discovery_cannot_reproduce_skip_it_with_the_old_default():
    config, note = discover_sasl_mechanism({"bootstrap.servers": "127.0.0.1:9", "security.protocol": "SASL_SSL",
                                            "sasl.username": USER, "sasl.password": PASSWORD,
                                            "ssl.keystore.location": "/etc/wia/client.p12"}, "kafka+sasl_ssl://test")
    assert config["sasl.mechanism"] == UNDISCOVERED_SASL_MECHANISM
    assert "TLS settings the discovery does not reproduce: ssl.keystore.location" in note


# -- librdkafka's reading of the settings, not another (helper 75, review) -----------------------------------------


@pytest.mark.parametrize("off", ["f", "F"])
def test_a_certificate_check_librdkafka_reads_as_off_keeps_plain_unchosen(sasl_ssl_kafka, monkeypatch, off):
    """librdkafka takes t/f as booleans (rd_kafka_conf: true, t, 1 / false, f, 0, any case): with
    enable.ssl.certificate.verification=f it verifies nothing. The discovery read only "false" and "0" as off, so it
    verified the broker itself and picked PLAIN, which librdkafka then sent over TLS that verifies nothing (to the
    bootstrap broker and to every broker the cluster advertises)."""
    topic = sasl_ssl_kafka.create_topic(sasl_ssl_kafka.client_config(USER, PASSWORD, "PLAIN"))
    # librdkafka's reading: without the CA the certificate cannot verify, yet the sink delivers
    with KafkaSink.from_url(f"kafka+sasl_ssl://{sasl_ssl_kafka.bootstrap}/{topic}?enable.ssl.certificate.verification="
                            f"{off}&sasl_mechanism=SCRAM-SHA-256", username=USER, password=Secret(PASSWORD, "test")) as sink:
        assert sink.send(event_dicts(1, seed=583)).merge(sink.flush()).delivered == 1
    monkeypatch.setattr(sasl_ssl_kafka.sasl, "mechanisms", ("PLAIN",))
    logins = len(sasl_ssl_kafka.logins)
    config, note = discover_sasl_mechanism(
        unverified_tls_settings(sasl_ssl_kafka, {"enable.ssl.certificate.verification": off}), "kafka+sasl_ssl://test")
    assert config["sasl.mechanism"] == UNDISCOVERED_SASL_MECHANISM, note
    assert "its TLS certificate is not verified" in note
    assert sasl_ssl_kafka.logins[logins:] == []                              # no password sent at all


def test_a_value_librdkafka_does_not_take_as_a_boolean_skips_the_discovery():
    config, note = discover_sasl_mechanism({"bootstrap.servers": "127.0.0.1:9", "security.protocol": "SASL_SSL",
                                            "sasl.username": USER, "sasl.password": PASSWORD,
                                            "enable.ssl.certificate.verification": "no"}, "kafka+sasl_ssl://test")
    assert config["sasl.mechanism"] == UNDISCOVERED_SASL_MECHANISM
    assert "enable.ssl.certificate.verification='no'" in note


@pytest.mark.parametrize("where", ["url", "config"])
def test_plain_configured_by_librdkafkas_own_name_sasl_mechanisms_is_honoured(sasl_kafka, monkeypatch, caplog, where):
    """sasl.mechanisms is librdkafka's name of the setting (sasl.mechanism its alias): a PLAIN configured so was
    overridden by the discovery's choice (set after it, so librdkafka took that), and a broker listing PLAIN alone
    answered every batch "Unsupported SASL mechanism". A PLAIN configured without TLS is said in the log."""
    monkeypatch.setattr(sasl_kafka.sasl, "mechanisms", ("PLAIN",))
    topic = sasl_kafka.create_topic(sasl_kafka.client_config(USER, PASSWORD, "PLAIN"))
    url = f"kafka+sasl://{sasl_kafka.bootstrap}/{topic}" + ("?sasl.mechanisms=PLAIN" if where == "url" else "")
    options = {"config": {"sasl.mechanisms": "PLAIN"}} if where == "config" else {}
    before = len(sasl_kafka.logins)
    with caplog.at_level(logging.WARNING, logger="wia_security.connectors.kafka"):
        with KafkaSink.from_url(url, username=USER, password=Secret(PASSWORD, "test"), **options) as sink:
            report = sink.send(event_dicts(2, seed=584)).merge(sink.flush())
    assert report.delivered == 2, report.failed and report.failed[0].reason
    assert ("the SASL mechanism PLAIN is used as configured, though the connection has no TLS: PLAIN would send the "
            "password readable on the network") in caplog.text
    assert sasl_kafka.logins[before:] and all(login == Login("PLAIN", USER, True) for login in sasl_kafka.logins[before:])


@pytest.mark.parametrize("settings, said", [
    ({"security.protocol": "SASL_PLAINTEXT"}, "the connection has no TLS"),
    ({"security.protocol": "SASL_SSL", "enable.ssl.certificate.verification": "f"}, "the connection's TLS does not verify"),
    ({"security.protocol": "SASL_SSL", "ssl.endpoint.identification.algorithm": "none"},
     "the connection's TLS does not verify"),
    ({"security.protocol": "SASL_SSL"}, None)])
def test_a_configured_plain_is_honoured_with_a_warning_where_the_broker_is_not_verified(caplog, settings, said):
    given = {"bootstrap.servers": "127.0.0.1:9", "sasl.username": USER, "sasl.password": PASSWORD,
             "sasl.mechanism": "PLAIN", **settings}
    with caplog.at_level(logging.INFO, logger="wia_security.connectors.kafka"):
        assert discover_sasl_mechanism(given, "kafka+sasl://test") == (given, None)
    if said is None:
        assert "PLAIN" not in caplog.text
    else:
        assert f"kafka+sasl://test: the SASL mechanism PLAIN is used as configured, though {said}" in caplog.text
    assert PASSWORD not in caplog.text
