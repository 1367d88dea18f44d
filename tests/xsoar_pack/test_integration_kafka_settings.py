"""Test (test-module) names the Kafka settings an admin got wrong, run through main().

- Credentials with a kafka:// or kafka+ssl:// Source URL: no SASL, so the user name and password were never sent, and
  Test answered 'ok' (tansu: a broker that logs nobody in); a broker demanding SASL failed after 30 s with
  kafka-python's "Unable to bootstrap".
- No bootstrap server accepting a connection (a wrong host or port, a firewall): kafka-python retried for 30 s and
  said "KafkaTimeoutError: Unable to bootstrap from [...]", without the reason; over kafka+sasl:// without
  ?sasl_mechanism= the advice was to add one. Kafka never goes through the proxy, and with Use system proxy settings
  ticked nothing said so."""
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


@pytest.mark.parametrize("url", ["kafka://{server}/topic", "kafka+ssl://{server}/topic",
                                 "kafka+sasl://{server}/topic?sasl_mechanism=PLAIN", "kafka+sasl://{server}/topic",
                                 "kafka+sasl_ssl://{server}/topic?sasl_mechanism=SCRAM-SHA-256"])
@pytest.mark.parametrize("proxy", [True, False])
def test_brokers_that_accept_no_connection_are_named_with_the_reason(integration, demisto, url, proxy):
    from servers.ports import free_port
    server = f"127.0.0.1:{free_port()}"             # nothing listens there
    params = {"url": url.format(server=server), "source_type": "kafka", "proxy": proxy}
    if "sasl" in url:
        params["credentials"] = CREDENTIALS
    message = _error(run_command(integration, demisto, "test-module", params=params))
    assert f"none of the Kafka bootstrap servers accepted a connection ({server}: " in message, message
    assert "check the host names and ports in the Source URL" in message
    assert ("Use system proxy settings does not apply to Kafka" in message) is proxy
    assert CREDENTIALS["password"] not in message


def test_one_broker_accepting_a_connection_is_enough(integration, demisto):
    from servers.ports import free_port
    from servers.tansu import start_tansu
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=1)
        params = {"url": f"kafka://127.0.0.1:{free_port()},{broker.bootstrap}/{topic}", "source_type": "kafka",
                  "proxy": True}
        assert run_command(integration, demisto, "test-module", params=params) == ["ok"]
    finally:
        broker.kill()
