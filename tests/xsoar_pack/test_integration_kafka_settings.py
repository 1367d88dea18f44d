"""Test (test-module) names the Kafka settings an admin got wrong, run through main().

- Credentials with a kafka:// or kafka+ssl:// Source URL: no SASL, so the user name and password were never sent, and
  Test answered 'ok' (tansu: a broker that logs nobody in); a broker demanding SASL failed after 30 s with
  kafka-python's "Unable to bootstrap"."""
from __future__ import annotations

import pytest

from .conftest import run_command

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")

CREDENTIALS = {"identifier": "reader", "password": "kafka-password-0123"}


def _error(entries: list) -> str:
    (entry,) = entries
    assert isinstance(entry, dict) and entry["Type"] == 4, entry
    return entry["Contents"]


def test_credentials_on_a_kafka_url_without_sasl_are_named(integration, demisto):
    from servers.tansu import start_tansu
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=1)
        params = {"url": f"kafka://{broker.bootstrap}/{topic}", "source_type": "kafka"}
        assert run_command(integration, demisto, "test-module", params=params) == ["ok"]
        message = _error(run_command(integration, demisto, "test-module", params=dict(params, credentials=CREDENTIALS)))
    finally:
        broker.kill()
    assert "Credentials parameter is sent to Kafka brokers over SASL only" in message
    assert "kafka://" in message and "kafka+sasl_ssl://" in message
    assert "reader" not in message and CREDENTIALS["password"] not in message


def test_credentials_on_a_kafka_ssl_url_are_named_before_connecting(integration, demisto):
    from servers.ports import free_port
    params = {"url": f"kafka+ssl://127.0.0.1:{free_port()}/topic", "source_type": "kafka", "credentials": CREDENTIALS}
    message = _error(run_command(integration, demisto, "test-module", params=params))
    assert "over SASL only, and a kafka+ssl:// Source URL uses none" in message


def test_credentials_on_a_sasl_url_are_not_refused_for_it(integration, demisto):
    from servers.ports import free_port
    params = {"url": f"kafka+sasl://127.0.0.1:{free_port()}/topic?sasl_mechanism=PLAIN", "source_type": "kafka",
              "credentials": CREDENTIALS}
    assert "over SASL only" not in _error(run_command(integration, demisto, "test-module", params=params))
