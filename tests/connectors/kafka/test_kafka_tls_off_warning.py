"""Turning the broker's certificate check off is said, as every other connector says it (warn_tls_off):
librdkafka takes enable.ssl.certificate.verification=false (or f, 0, any case) and
ssl.endpoint.identification.algorithm=none without a word. Only the clients are made here: the warning
comes when the sink or source is opened, before any connection."""
from __future__ import annotations

import logging

import pytest

from wia_security.connectors import open_sink
from wia_security.connectors.kafka import KafkaSink, KafkaSource


def opened(kind: str, url: str) -> None:
    client = open_sink(url) if kind == "sink" else KafkaSource.from_url(url, group_id="g")
    client.close()


@pytest.mark.parametrize("kind", ["sink", "source"])
@pytest.mark.parametrize("query, says", [
    ("enable.ssl.certificate.verification=false", "TLS certificate verification is OFF"),
    ("enable.ssl.certificate.verification=F", "TLS certificate verification is OFF"),
    ("enable.ssl.certificate.verification=0", "TLS certificate verification is OFF"),
    ("ssl.endpoint.identification.algorithm=none", "host name is not checked"),
    ("ssl.endpoint.identification.algorithm=NONE", "host name is not checked")])
def test_a_certificate_check_turned_off_is_warned(kind, query, says, caplog):
    caplog.set_level(logging.WARNING)
    opened(kind, f"kafka+ssl://127.0.0.1:1/t?{query}")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(says in w and "127.0.0.1:1" in w for w in warnings), warnings


@pytest.mark.parametrize("kind", ["sink", "source"])
@pytest.mark.parametrize("url", ["kafka+ssl://127.0.0.1:1/t", "kafka+ssl://127.0.0.1:1/t?enable.ssl.certificate.verification=true",
                                 "kafka://127.0.0.1:1/t?enable.ssl.certificate.verification=false"])
def test_verification_on_or_no_tls_says_nothing_about_it(kind, url, caplog):
    caplog.set_level(logging.WARNING)
    opened(kind, url)
    assert not [r for r in caplog.records if "verification is OFF" in r.getMessage() or "host name" in r.getMessage()]


def test_the_warning_comes_from_config_too(caplog):
    caplog.set_level(logging.WARNING)
    KafkaSink("127.0.0.1:1", "t", config={"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                                          "sasl.username": "u", "sasl.password": "p",
                                          "enable.ssl.certificate.verification": False}).close()
    assert any("TLS certificate verification is OFF" in r.getMessage() for r in caplog.records)
