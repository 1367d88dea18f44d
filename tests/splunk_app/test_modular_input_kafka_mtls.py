"""The wia_events input's Kafka source with a client certificate (mutual TLS), run as Splunk runs it (the built
app, `bin/wia_events.py`), against tansu behind the TLS proxy that demands a client certificate issued by its
client CA (tests/servers/kafka_tls_proxy.py). The certificate and key (PEM) and the key's passphrase come from
storage/passwords (the splunkd stand-in), named by client_certificate_credential and
client_key_passphrase_credential; none of them may appear in splunkd.log (stderr) or the stream."""
from __future__ import annotations

import json
import os
import ssl
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import APP_SRC
from .test_modular_input import input_xml, run_input, streamed
from .test_modular_input_kafka_tls import SESSION_KEY, alerts, checkpoint_of, ids

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")

KEY_PASSPHRASE = "splunk-client-key-Pa55phrase-7d1e"
WRONG_PASSPHRASE = "not-the-passphrase-3b9a"
#: A refusal comes in one round trip (kafka-python said "Unable to bootstrap" after 30 s).
FAST_SECONDS = 5
REALM = "wia_security"
#: solnlib's CredentialManager layout for long secrets (what the setup page writes)
SEP = "``splunk_cred_sep``"
END_MARK = "".join(f"{SEP}{c}" for c in "SPLUNK") + SEP


@pytest.fixture(scope="module")
def mtls_kafka(tmp_path_factory):
    from servers.kafka_tls_proxy import make_client_certificate, start_tls_kafka
    directory = tmp_path_factory.mktemp("splunk-kafka-mtls")
    make_client_certificate(directory, passphrase=KEY_PASSPHRASE)
    server = start_tls_kafka(directory, client_ca=directory / "client-ca.pem")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def splunkd():
    from .splunkd_stub import Splunkd
    with Splunkd(session_key=SESSION_KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def trusted(monkeypatch, mtls_kafka):
    """The broker's CA is trusted (SSL_CERT_FILE in splunkd's environment): only the client side is tested here."""
    monkeypatch.setenv("SSL_CERT_FILE", str(mtls_kafka.ca))


def pem_of(directory: Path) -> str:
    """What an admin stores: the client certificate, then its private key."""
    return (directory / "client.pem").read_text() + (directory / "client.key").read_text()


def secrets_of(server) -> list[str]:
    """The passphrase and every base64 line of the stored key: none may be logged."""
    key_lines = [line for line in (server.directory / "client.key").read_text().splitlines() if "-----" not in line]
    return [KEY_PASSPHRASE, WRONG_PASSPHRASE, SESSION_KEY, *key_lines]


def assert_no_secret(run, server) -> None:
    everything = run.stdout + run.stderr
    leaked = [s for s in secrets_of(server) if s in everything]
    assert not leaked, f"{len(leaked)} secret value(s) in the output"


def store(splunkd, server, *, chunked: bool = False, passphrase: str | None = KEY_PASSPHRASE,
          pem: str | None = None) -> dict[str, str]:
    """The client certificate (and passphrase) in storage/passwords; the input parameters naming them."""
    pem = pem_of(server.directory) if pem is None else pem
    if chunked:
        pieces = [pem[i:i + 255] for i in range(0, len(pem), 255)] + [END_MARK]
        for n, piece in enumerate(pieces, 1):
            splunkd.passwords[(REALM, f"kafka_client{SEP}{n}")] = piece
    else:
        splunkd.passwords[(REALM, "kafka_client")] = pem
    params = {"client_certificate_credential": "kafka_client"}
    if passphrase is not None:
        splunkd.passwords[(REALM, "kafka_client_key_passphrase")] = passphrase
        params["client_key_passphrase_credential"] = "kafka_client_key_passphrase"
    return params


def publish(server, topic: str, events: list[dict]) -> None:
    """Written over mutual TLS by the project's kafka sink."""
    from wia_security.connectors.config import Secret
    from wia_security.connectors.kafka import KafkaSink
    d = server.directory
    url = (f"kafka+ssl://{server.bootstrap}/{topic}?ssl.ca.location={server.ca}"
           f"&ssl.certificate.location={d / 'client.pem'}&ssl.key.location={d / 'client.key'}")
    with KafkaSink.from_url(url, ssl_key_password=Secret(KEY_PASSPHRASE, "test")) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == len(events)


def new_topic(server, partitions: int = 2) -> str:
    return server.create_topic(partitions=partitions, config={**server.client_config(), "ssl.key.password": KEY_PASSPHRASE})


def timed(app: Path, conf: str):
    started = time.monotonic()
    run = run_input(app, [], conf)
    return run, time.monotonic() - started


@pytest.mark.parametrize("chunked", [False, True], ids=["one-entry", "solnlib-chunks"])
def test_with_the_client_certificate_every_event_is_indexed_once(built_app, splunkd, tmp_path, mtls_kafka, chunked):
    app, _ = built_app
    topic = new_topic(mtls_kafka)
    events = alerts(4, "mtls")
    publish(mtls_kafka, topic, events)
    conf = input_xml(splunkd, tmp_path, "kafka", {"source_url": f"kafka+ssl://{mtls_kafka.bootstrap}/{topic}",
                                                  **store(splunkd, mtls_kafka, chunked=chunked)})
    subjects = len(mtls_kafka.proxy.client_subjects)
    run = run_input(app, [], conf)
    assert run.returncode == 0, run.stderr
    assert [g["event"] for g in sorted(streamed(run.stdout), key=lambda g: g["event"]["id"])] == \
        sorted(events, key=lambda e: e["id"])
    assert sum(json.loads(checkpoint_of(tmp_path))["position"]["offsets"].values()) == len(events)
    # every connection, the pre-flight's and kafka-python's, presented the client certificate
    presented = mtls_kafka.proxy.client_subjects[subjects:]
    assert len(presented) >= 2 and set(presented) == {"wia-client"}
    again = run_input(app, [], conf)
    assert again.returncode == 0 and streamed(again.stdout) == []          # each event once
    assert_no_secret(run, mtls_kafka)
    assert_no_secret(again, mtls_kafka)


def test_without_a_client_certificate_the_refusal_is_fast_and_the_checkpoint_stays(built_app, splunkd, tmp_path,
                                                                                  mtls_kafka):
    app, _ = built_app
    topic = new_topic(mtls_kafka)
    first, later = alerts(2, "first"), alerts(2, "later")
    publish(mtls_kafka, topic, first)
    with_certificate = {"source_url": f"kafka+ssl://{mtls_kafka.bootstrap}/{topic}", **store(splunkd, mtls_kafka)}
    seeded = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", with_certificate))
    assert seeded.returncode == 0 and ids(seeded) == sorted(e["id"] for e in first), seeded.stderr
    saved = checkpoint_of(tmp_path)
    publish(mtls_kafka, topic, later)

    refusals = len(mtls_kafka.proxy.handshake_failures)
    run, took = timed(app, input_xml(splunkd, tmp_path, "kafka", {"source_url": with_certificate["source_url"]}))
    assert run.returncode == 1 and streamed(run.stdout) == [], run.stderr
    assert took < FAST_SECONDS, f"took {took:.1f} s: {run.stderr}"
    # the proxy's alert, read also when the request's write met the reset after it first (no "closed ... without
    # answering" when the write loses that race)
    assert f"the Kafka broker refused the TLS connection ({mtls_kafka.bootstrap}: TLSV13_ALERT_CERTIFICATE_REQUIRED): " \
        in run.stderr, run.stderr
    assert "no client certificate was given" in run.stderr and "client_certificate_credential" in run.stderr
    assert "not retried" in run.stderr and "WARNING" not in run.stderr and "Unable to bootstrap" not in run.stderr
    assert checkpoint_of(tmp_path) == saved
    assert mtls_kafka.proxy.failures_past(refusals) > refusals               # the broker met it, and refused

    resumed = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", with_certificate))
    assert resumed.returncode == 0 and ids(resumed) == sorted(e["id"] for e in later), resumed.stderr


def test_a_client_certificate_the_broker_does_not_trust_is_refused_fast_saying_so(built_app, splunkd, tmp_path,
                                                                                 mtls_kafka, tmp_path_factory):
    from servers.kafka_tls_proxy import make_client_certificate
    app, _ = built_app
    other = tmp_path_factory.mktemp("other-client-ca")
    make_client_certificate(other, name="stranger")                # another CA's pair, key unencrypted
    params = store(splunkd, mtls_kafka, pem=pem_of(other), passphrase=None)
    run, took = timed(app, input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+ssl://{mtls_kafka.bootstrap}/{new_topic(mtls_kafka, 1)}", **params}))
    assert run.returncode == 1 and took < FAST_SECONDS, run.stderr
    assert "the Kafka broker refused the TLS connection" in run.stderr
    assert "the client certificate given (client_certificate_credential 'kafka_client') was not accepted" in run.stderr
    assert checkpoint_of(tmp_path) is None and streamed(run.stdout) == []
    stranger_key = [line for line in (other / "client.key").read_text().splitlines() if "-----" not in line]
    assert not any(line in run.stderr for line in stranger_key)


def test_with_the_client_certificate_accepted_an_http_answer_is_not_called_a_refused_certificate(
        built_app, splunkd, tmp_path, mtls_kafka):
    """Mutual TLS taken (the listener records the client certificate), then an HTTP error page (an HTTPS server on
    the broker's port): it read "the client certificate given ... was not accepted"."""
    from servers.kafka_tls_proxy import TlsTerminatingProxy
    from servers.not_kafka import NotKafka
    app, _ = built_app
    d = mtls_kafka.directory
    with NotKafka() as http:
        proxy = TlsTerminatingProxy(("127.0.0.1", http.port), d / "server.pem", d / "server.key",
                                    client_ca=d / "client-ca.pem")
        try:
            run, took = timed(app, input_xml(splunkd, tmp_path, "kafka", {
                "source_url": f"kafka+ssl://127.0.0.1:{proxy.port}/wia-events", **store(splunkd, mtls_kafka)}))
        finally:
            proxy.close()
    assert run.returncode == 1 and took < FAST_SECONDS, run.stderr
    assert proxy.client_subjects == ["wia-client"]
    assert (f"the Kafka brokers could not be reached over TLS (127.0.0.1:{proxy.port}: the TLS handshake succeeded, "
            "but the peer did not answer as a Kafka broker (not a Kafka answer (8 bytes), beginning b'HTTP/1.1'))") \
        in run.stderr, run.stderr
    assert "not accepted" not in run.stderr and "refused" not in run.stderr and "not retried" in run.stderr
    assert_no_secret(run, mtls_kafka)


@pytest.mark.parametrize("passphrase,why", [
    (WRONG_PASSPHRASE, "could not be decrypted with the passphrase in 'kafka_client_key_passphrase' "
                       "(client_key_passphrase_credential): check the passphrase"),
    (None, "is encrypted: store its passphrase in storage/passwords and name it in client_key_passphrase_credential"),
], ids=["wrong-passphrase", "no-passphrase"])
def test_a_key_that_cannot_be_decrypted_fails_before_connecting_without_a_secret(built_app, splunkd, tmp_path,
                                                                                 mtls_kafka, passphrase, why):
    app, _ = built_app
    met = mtls_kafka.proxy.tls_connections + len(mtls_kafka.proxy.handshake_failures)
    run, took = timed(app, input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+ssl://{mtls_kafka.bootstrap}/t", **store(splunkd, mtls_kafka, passphrase=passphrase)}))
    assert run.returncode == 2 and took < FAST_SECONDS, run.stderr
    assert f"the private key in the client certificate credential 'kafka_client' {why}" in run.stderr
    assert "Traceback" not in run.stderr and checkpoint_of(tmp_path) is None
    assert mtls_kafka.proxy.tls_connections + len(mtls_kafka.proxy.handshake_failures) == met   # never connected
    assert_no_secret(run, mtls_kafka)


def test_stored_pem_mistakes_are_named_without_the_pem(built_app, splunkd, tmp_path, mtls_kafka, tmp_path_factory):
    from servers.kafka_tls_proxy import make_client_certificate
    app, _ = built_app
    other = tmp_path_factory.mktemp("mismatch")
    make_client_certificate(other)
    cert = (mtls_kafka.directory / "client.pem").read_text()
    cases = [
        (cert + (other / "client.key").read_text(), None,
         "the private key in the client certificate credential 'kafka_client' does not belong to its certificate"),
        ("this is not a certificate: " + KEY_PASSPHRASE, None,
         "the client certificate credential 'kafka_client' is not PEM text"),
        (cert, None, "the client certificate credential 'kafka_client' holds no private key"),
        ((mtls_kafka.directory / "client.key").read_text(), KEY_PASSPHRASE,
         "the client certificate credential 'kafka_client' holds no certificate"),
    ]
    for pem, passphrase, why in cases:
        run = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
            "source_url": f"kafka+ssl://{mtls_kafka.bootstrap}/t", **store(splunkd, mtls_kafka, pem=pem,
                                                                           passphrase=passphrase)}))
        assert run.returncode == 2 and why in run.stderr, run.stderr
        assert_no_secret(run, mtls_kafka)
    # kafka:// cannot present a certificate: refused by the input's validation, before any secret is read
    splunkd.requests.clear()
    run = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka://{mtls_kafka.bootstrap}/t", **store(splunkd, mtls_kafka)}))
    assert run.returncode == 2 and "use kafka+ssl:// or kafka+sasl_ssl://" in run.stderr
    assert not any("storage/passwords" in r.path for r in splunkd.requests)


def test_the_client_key_is_never_written_to_disk_and_falls_back_to_private_files(monkeypatch, tmp_path, mtls_kafka):
    """memfd where the kernel has it (nothing on disk); without it, 0600 files in a private 0700 directory,
    removed right after loading, and when loading fails."""
    sys.path.insert(0, str(APP_SRC / "bin"))
    try:
        from wia_app import client_cert
    finally:
        sys.path.pop(0)
    pem = pem_of(mtls_kafka.directory)
    seen: list[tuple[str, int, int]] = []
    real_load = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):
        for path in (certfile, keyfile):
            seen.append((path, os.stat(path).st_mode & 0o777, os.stat(os.path.dirname(path)).st_mode & 0o777))
        return real_load(self, certfile, keyfile, password)

    def load(passphrase: str) -> None:
        client_cert.load_client_certificate(ssl.create_default_context(), pem, passphrase, credential="c",
                                            passphrase_credential="p")

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    load(KEY_PASSPHRASE)
    assert len(seen) == 2 and all(path.startswith("/proc/self/fd/") for path, _, _ in seen)
    assert list(tmp_path.iterdir()) == []

    seen.clear()
    monkeypatch.delattr(os, "memfd_create")
    load(KEY_PASSPHRASE)
    assert [(mode, dir_mode) for _, mode, dir_mode in seen] == [(0o600, 0o700)] * 2
    assert all(path.startswith(str(tmp_path)) for path, _, _ in seen)
    assert list(tmp_path.iterdir()) == []                  # files and their directory removed
    with pytest.raises(client_cert.ClientCertificateError, match="could not be decrypted"):
        load(WRONG_PASSPHRASE)
    assert list(tmp_path.iterdir()) == []                  # removed on failure too


def test_a_message_echoing_the_key_or_passphrase_is_masked_in_splunkd_log(splunkd, tmp_path, mtls_kafka, monkeypatch):
    """Whatever a library puts in an error (here a source error quoting a line of the key, the whole PEM and the
    passphrase), the input's log line masks it: the stored secrets go into the redactor as soon as they are read."""
    import io
    sys.path.insert(0, str(APP_SRC / "bin"))
    try:
        from wia_app import modinput
        from wia_app.pull import SourceError
    finally:
        sys.path.pop(0)
    pem = pem_of(mtls_kafka.directory)
    key_line = [line for line in (mtls_kafka.directory / "client.key").read_text().splitlines() if "-----" not in line][1]

    def echoing_source(url, **options):
        assert options["client_certificate"] == pem and options["client_key_passphrase"] == KEY_PASSPHRASE
        raise SourceError(f"cannot use {key_line!r} with {options['client_key_passphrase']}; whole: {pem}")

    monkeypatch.setattr(modinput, "open_source", echoing_source)
    params = {"source_url": f"kafka+ssl://{mtls_kafka.bootstrap}/t", **store(splunkd, mtls_kafka, chunked=True)}
    stdout, stderr = io.StringIO(), io.StringIO()
    code = modinput.run("wia_events://kafka", params, splunkd.url, SESSION_KEY, str(tmp_path), stdout, stderr)
    assert code == 2 and "cannot use '***' with ***; whole: ***" in stderr.getvalue()
    assert key_line not in stderr.getvalue() and KEY_PASSPHRASE not in stderr.getvalue()
    assert "BEGIN CERTIFICATE" not in stderr.getvalue()
