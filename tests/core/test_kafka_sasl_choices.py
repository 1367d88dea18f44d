"""wia_security.kafka_sasl.discovery_choices: the one rule the Kafka connector, the Splunk app and the XSOAR pack
follow when no SASL mechanism is configured. PLAIN is a choice only over TLS that verifies the broker (its
certificate and its host name); without TLS, or with either check off, anything on the path could strip SCRAM from
the broker's list to be sent the password readable. The wire behaviour is tested against tansu behind the SASL proxy
in tests/connectors/kafka/test_kafka_sasl_discovery.py, tests/splunk_app/test_modular_input_kafka_sasl_plain.py and
tests/xsoar_pack/test_integration_kafka_sasl_plain.py."""
from __future__ import annotations

import ssl

from wia_security import kafka_sasl


def unverified(check_hostname: bool, verify_mode: ssl.VerifyMode) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = check_hostname
    context.verify_mode = verify_mode
    return context


def test_plain_only_over_tls_that_verifies_certificate_and_host_name():
    verified = ssl.create_default_context()
    assert kafka_sasl.verifies_broker(verified)
    assert kafka_sasl.discovery_choices(verified) == ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
    assert kafka_sasl.plain_warning(verified) is None
    for context in (None, unverified(False, ssl.CERT_REQUIRED), unverified(False, ssl.CERT_NONE),
                    unverified(False, ssl.CERT_OPTIONAL)):
        assert not kafka_sasl.verifies_broker(context)
        assert kafka_sasl.discovery_choices(context) == ("SCRAM-SHA-512", "SCRAM-SHA-256")
        assert kafka_sasl.plain_warning(context).startswith("the SASL mechanism PLAIN is used as configured, though ")
    assert "no TLS" in kafka_sasl.plain_withheld_reason(None)
    assert "does not verify" in kafka_sasl.plain_withheld_reason(unverified(False, ssl.CERT_NONE))


def test_plain_withheld_is_a_mechanism_not_offered_and_says_nothing_was_sent():
    exc = kafka_sasl.PlainWithheld("b1:9096", ("PLAIN", "OAUTHBEARER"))
    assert isinstance(exc, kafka_sasl.MechanismNotOffered) and exc.mechanism is None and exc.discovered
    assert str(exc) == ("the Kafka broker b1:9096 lists PLAIN, OAUTHBEARER: of SCRAM-SHA-512, SCRAM-SHA-256, PLAIN only "
                        "PLAIN, which discovery does not pick without TLS that verifies the broker (nothing was sent)")
