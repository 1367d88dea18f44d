"""wia_security.kafka_sasl's SCRAM client against RFC 7677's published SCRAM-SHA-256 exchange, and what it refuses.

The login against a broker (the SASL proxy in front of tansu, with librdkafka and kafka-python beside it) is
tested where it is used: tests/connectors/kafka/test_kafka_sasl_discovery.py, the Splunk app's and the XSOAR
pack's Kafka SASL tests."""
from __future__ import annotations

import base64
import subprocess
import sys
import textwrap

import pytest

from wia_security.kafka_sasl import LoginRefused, MechanismNotOffered, Refusal, ScramClient, scram_username_for

# RFC 7677 section 3: user "user", password "pencil"
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
CLIENT_FINAL = ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_client() -> ScramClient:
    return ScramClient("SCRAM-SHA-256", "user", "pencil", nonce=CLIENT_NONCE)


def test_the_scram_sha_256_exchange_of_rfc_7677_byte_for_byte():
    client = rfc_client()
    assert client.first() == f"n,,n=user,r={CLIENT_NONCE}".encode()
    assert client.receive(SERVER_FIRST.encode()) == CLIENT_FINAL.encode()
    assert not client.done
    assert client.receive(SERVER_FINAL.encode()) is None and client.done


@pytest.mark.parametrize("server_final", [
    "v=" + base64.b64encode(b"\x00" * 32).decode(),          # a broker without the user's ServerKey
    "v=not base64!", "e=invalid-proof", "x=1"])
def test_a_server_final_message_that_does_not_prove_the_broker_is_refused(server_final):
    client = rfc_client()
    client.receive(SERVER_FIRST.encode())
    with pytest.raises(ValueError):
        client.receive(server_final.encode())
    assert not client.done


@pytest.mark.parametrize("server_first,why", [
    ("r=someone-elses-nonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
    (f"r={CLIENT_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),                # not extended by the server
    (f"r={CLIENT_NONCE}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=100000000", "iterations"),   # a CPU burner, not Kafka
    (f"r={CLIENT_NONCE}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", "iterations"),
    (f"r={CLIENT_NONCE}xyz,i=4096", "salt"),
    (f"m=ext,r={CLIENT_NONCE}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension")])
def test_a_server_first_message_the_client_cannot_use_is_refused(server_first, why):
    with pytest.raises(ValueError, match=why):
        rfc_client().receive(server_first.encode())


def test_user_names_are_escaped_as_rfc_5802_says():
    client = ScramClient("SCRAM-SHA-512", "svc,wia=1", "pw", nonce="abc")
    assert client.first() == b"n,,n=svc=2Cwia=3D1,r=abc"


def kafka_python_first(name: str) -> bytes:
    """kafka-python's own SCRAM client-first message (the library both deployables embed)."""
    from kafka.net.sasl.scram import ScramClient as KafkaPythonScram
    return KafkaPythonScram(name, "pw", "SCRAM-SHA-256").first_message()


def test_kafka_python_gets_a_user_name_it_sends_as_rfc_5802_says():
    """kafka-python 3.0 puts the name into `n=` as given: for a name with ',' or '=' it is given it escaped (and
    then sends what this module's client sends); a name without them is given as it is."""
    assert kafka_python_first("svc,wia=1").startswith(b"n,,n=svc,wia=1,r=")       # the gap: sent unescaped
    given = scram_username_for("svc,wia=1", kafka_python_first)
    assert given == "svc=2Cwia=3D1"
    assert kafka_python_first(given).startswith(b"n,,n=svc=2Cwia=3D1,r=")
    assert scram_username_for("wia-reader", kafka_python_first) == "wia-reader"


def test_a_library_that_escapes_itself_is_not_given_the_name_escaped_twice():
    def escaping(name: str) -> bytes:
        return ScramClient("SCRAM-SHA-256", name, "pw", nonce="abc").first()
    assert scram_username_for("svc,wia=1", escaping) == "svc,wia=1"


def moved(name: str) -> bytes:
    raise ImportError("No module named 'kafka.net.sasl.scram'")


@pytest.mark.parametrize("first_message", [
    moved,                                         # a kafka-python that keeps its SCRAM client elsewhere
    lambda name: b"n,,n=svc=2C,r=abc",            # neither the name as given nor escaped
    lambda name: "n,,n==,,r=abc"])                 # not bytes
def test_a_library_whose_scram_names_cannot_be_told_gets_no_name_with_a_comma_or_equals(first_message):
    assert scram_username_for("svc,wia", first_message) is None
    assert scram_username_for("svc-wia", first_message) == "svc-wia"       # not asked: the same either way


def test_the_errors_name_broker_user_and_mechanisms_and_say_when_the_mechanism_was_chosen():
    refused = LoginRefused("b1:9096", "wia", [Refusal("SCRAM-SHA-512", "SASL_AUTHENTICATION_FAILED", "bad"),
                                              Refusal("PLAIN", "SASL_AUTHENTICATION_FAILED", "worse")],
                           ("PLAIN", "SCRAM-SHA-512"), discovered=True)
    assert str(refused) == ("the Kafka broker b1:9096 refused user 'wia' with each SASL mechanism it offers: "
                            "SCRAM-SHA-512 (SASL_AUTHENTICATION_FAILED: bad); PLAIN (SASL_AUTHENTICATION_FAILED: worse) "
                            "(no SASL mechanism configured; the broker lists PLAIN, SCRAM-SHA-512)")
    assert str(MechanismNotOffered("b1:9096", None, ("OAUTHBEARER",), discovered=True)) == (
        "the Kafka broker b1:9096 offers none of the SASL mechanisms SCRAM-SHA-512, SCRAM-SHA-256, PLAIN "
        "(mechanisms it lists: OAUTHBEARER)")


def test_the_module_needs_nothing_but_the_standard_library():
    """The Splunk app and the XSOAR pack embed it in Pythons without the project's dependencies."""
    code = textwrap.dedent("""
        import importlib.abc, sys
        allowed = set(sys.stdlib_module_names) | {"wia_security"}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top not in allowed and not top.startswith(("__editable__", "_distutils_hack")):
                    raise ImportError(f"third-party import blocked: {name}")
        sys.meta_path.insert(0, Block())
        from wia_security.kafka_sasl import ScramClient
        client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce=sys.argv[1])
        client.receive(sys.argv[2].encode())
        print(client.receive(sys.argv[3].encode()), client.done)
    """)
    run = subprocess.run([sys.executable, "-c", code, CLIENT_NONCE, SERVER_FIRST, SERVER_FINAL], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "None True", run.stdout + run.stderr
