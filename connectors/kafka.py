"""Kafka sink and source on confluent-kafka: messages keyed by event id; the source commits offsets only after downstream delivery.

URL: `kafka://broker1:9092,broker2:9092/TOPIC?client_id=wia&compression=zstd`
(`kafka+ssl://` for TLS, `kafka+sasl_ssl://host/TOPIC?sasl_mechanism=SCRAM-SHA-512` for SASL
over TLS with the `username` / `password` options, `kafka+sasl://` for SASL without TLS; without a
mechanism, the strongest the broker offers that takes the user: `discover_sasl_mechanism`). Query
keys that contain a dot (`?linger.ms=20`, `?ssl.ca.location=/etc/kafka/ca.pem`) are passed to
librdkafka as they are, except secrets (`sasl.password`, `ssl.key.password`, ...), which a URL
must not carry; `config=` does the same from code.

TLS: the broker's certificate and host name are verified (librdkafka's defaults); a handshake that
fails on every broker makes the sink fail the batch at once with librdkafka's reason (instead of
after `message.timeout.ms`) and the source raise, naming the certificate problem.

Sink: `send()` produces every event (key = event id, value = the event as JSON, or another
format with `?format=`), then waits for every delivery report. A message the broker did not
take comes back in `report.failed` with librdkafka's reason; nothing is left unaccounted.

Source: at-least-once. A batch of messages is validated, handed to the downstream sink and
dead letter, and only then are the batch's offsets committed, synchronously. A consumer that
dies between delivery and commit re-reads at most that uncommitted batch (duplicates, never
loss); idempotent sinks (SQLite, Elasticsearch `_id`) make those duplicates no-ops. Scale-out:
run several processes with the same `group_id`; Kafka spreads the topic's partitions over them.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from wia_security import jsonio, kafka_sasl
from wia_security.errors import ConfigError, DeliveryError, ParseError
from wia_security.formats import get_format
from wia_security.pipeline import Forwarder, ForwardSummary
from wia_security.reader import Item
from wia_security.redact import redact

from .base import BaseSink, DeliveryReport, Rejected, unencodable
from .delivery.urls import refuse_repeated_keys, warn_tls_off

log = logging.getLogger(__name__)

#: librdkafka's own default for `message.timeout.ms` is 300 s; a sink that reports failures
#: promptly is more useful to the delivery machinery, which retries what is retryable.
DEFAULT_DELIVERY_TIMEOUT_MS = 30_000
#: librdkafka's default `message.max.bytes`: a larger message (value, key and headers) is refused at produce()
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000
#: Messages consumed per batch; the uncommitted window a crash can replay is at most this.
DEFAULT_BATCH_SIZE = 500
#: Consumer-group members must heartbeat within this; tansu and small clusters need >= 6 s.
DEFAULT_SESSION_TIMEOUT_MS = 6_000
#: Seconds a source without an assignment waits for a broker's metadata answer, once the idle timeout passed
#: (the idle timeout itself, within these bounds): no answer ends the pull, naming the brokers.
MIN_BROKER_ANSWER_SECONDS, MAX_BROKER_ANSWER_SECONDS = 2.0, 10.0
TYPE_HEADER = "wia-type"
#: librdkafka settings that hold a secret: refused in a URL (shell history, process lists, logs);
#: give them as options (`password`, `ssl_key_password`, each with _env / _file) or in `config`.
SECRET_CONFIG_KEYS = frozenset({"sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem",
                                "sasl.oauthbearer.client.secret"})
#: librdkafka errors meaning a broker was reached but the TLS handshake or the authentication failed:
#: retrying does not help, the configuration has to change.
_HANDSHAKE_CODES = frozenset({KafkaError._SSL, KafkaError._AUTHENTICATION})
#: A broker that refuses the client's certificate (or its absence) ends TLS 1.3 with an alert after the
#: client's side of the handshake: librdkafka reports that as a transport error carrying the alert.
_TLS_REFUSAL_ALERT = re.compile(r"alert (certificate required|bad certificate|unknown ca|certificate unknown|"
                                r"certificate revoked|certificate expired|unsupported certificate|access denied|"
                                r"handshake failure)")

#: librdkafka's mechanism when none is configured and no bootstrap broker answered the discovery (or the TLS
#: settings have no Python equivalent for it): the connector's default before mechanisms were discovered.
UNDISCOVERED_SASL_MECHANISM = "SCRAM-SHA-512"
#: Seconds the discovery's connection to one bootstrap broker may take (TCP connect, TLS handshake, each answer).
DISCOVERY_TIMEOUT_SECONDS = 10.0
#: librdkafka TLS settings the discovery reproduces in Python's ssl; with any other ssl.* setting it is skipped.
_DISCOVERY_TLS_KEYS = frozenset({"ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
                                 "ssl.endpoint.identification.algorithm", "enable.ssl.certificate.verification"})

#: librdkafka's boolean values (rd_kafka_anyconf_set_prop0, compared without case)
_LIBRDKAFKA_BOOLEANS = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}

_SCHEMES = {"kafka": "PLAINTEXT", "kafka+ssl": "SSL", "kafka+sasl": "SASL_PLAINTEXT", "kafka+sasl_ssl": "SASL_SSL"}


@dataclass(frozen=True)
class KafkaTarget:
    """A parsed Kafka URL: librdkafka settings (secrets included, never printed), topic, our options."""

    config: dict[str, Any]
    topic: str
    options: dict[str, str]
    display: str                      # the URL without credentials or query


#: dotless query keys each role reads (keys with a dot go to librdkafka as they are)
SINK_URL_KEYS = frozenset({"format", "client_id", "compression", "delivery_timeout_ms", "sasl_mechanism"})
SOURCE_URL_KEYS = frozenset({"group", "batch_size", "client_id", "sasl_mechanism"})


def parse_url(url: str, known: frozenset[str] = SINK_URL_KEYS | SOURCE_URL_KEYS) -> KafkaTarget:
    """A Kafka URL: scheme -> security.protocol, brokers, topic, librdkafka keys (with a dot) and the
    `known` plain keys; any other plain key, or credentials in the URL, is a ConfigError."""
    # "sasl_ssl" is not a valid RFC 3986 scheme character sequence, so split the scheme off by hand.
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    parts = urlsplit("kafka://" + rest)
    if not sep or scheme not in _SCHEMES:
        raise ConfigError(f"expected one of {', '.join(f'{s}://' for s in _SCHEMES)}", key="url", source=scheme + "://")
    hosts = parts.netloc.rsplit("@", 1)[-1]
    if not hosts:
        raise ConfigError("no broker address (kafka://HOST:PORT/TOPIC)", key="url", source=f"{scheme}://")
    topic = unquote(parts.path.strip("/"))
    config: dict[str, Any] = {"bootstrap.servers": hosts, "security.protocol": _SCHEMES[scheme]}
    options: dict[str, str] = {}
    refuse_repeated_keys(parts.query, f"{scheme}://{hosts}")
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key in SECRET_CONFIG_KEYS:
            raise ConfigError(f"{key} is a secret and does not belong in the URL; give the password / "
                              "ssl_key_password option (with _env or _file) or `config`", key=key,
                              source=f"{scheme}://{hosts}")
        if "." in key:
            config[key] = values[-1]
        elif key in known:
            options[key] = values[-1]
        else:
            raise ConfigError(f"unknown Kafka URL option {key!r}; known: {', '.join(sorted(known))} and librdkafka "
                              "settings (keys with a dot)", key=key, source=f"{scheme}://{hosts}")
    if parts.username is not None or parts.password is not None:
        # a URL ends up in shell history, process lists and logs
        raise ConfigError("put credentials in the username and password_env / password_file options, not in "
                          "the URL", key="url", source=f"{scheme}://{hosts}")
    if "sasl_mechanism" in options:
        config["sasl.mechanism"] = options.pop("sasl_mechanism")
    if "client_id" in options:
        config["client.id"] = options.pop("client_id")
    if "compression" in options:
        config["compression.type"] = options.pop("compression")
    return KafkaTarget(config, topic, options, f"{scheme}://{hosts}/{topic}")


def sasl_options(options: dict[str, Any]) -> dict[str, Any]:
    """Pops username/password(/sasl_mechanism) from `options` into librdkafka SASL settings."""
    from .config import reveal
    out: dict[str, Any] = {}
    if "username" in options or "password" in options:
        out["sasl.username"] = options.pop("username", "")
        out["sasl.password"] = reveal(options.pop("password", "")) or ""
    if "sasl_mechanism" in options:           # also alone: the credentials may come from `config`
        out["sasl.mechanism"] = options.pop("sasl_mechanism")
    return out


def discover_sasl_mechanism(config: dict[str, Any], display: str) -> tuple[dict[str, Any], str | None]:
    """librdkafka settings with `sasl.mechanism`, and the discovery's note, for a SASL client given a username
    and password but no mechanism: the login of wia_security.kafka_sasl (as the Splunk app and the XSOAR pack
    do it) with the first bootstrap broker that answers picks the strongest mechanism the broker offers that
    takes the user (SCRAM-SHA-512 > SCRAM-SHA-256 > PLAIN), logged at INFO. When the broker refuses them all,
    librdkafka gets the first it tried, so the sink and the source fail as with a configured mechanism, their
    reason carrying the note. No broker answering: UNDISCOVERED_SASL_MECHANISM, with a warning."""
    protocol = str(config.get("security.protocol", "")).upper()
    configured = _configured_mechanism(config)
    if protocol.startswith("SASL") and configured == "PLAIN":
        # the user's choice, honoured; said where it sends the password readable or to an unverified broker
        tls = _discovery_tls(config) if protocol == "SASL_SSL" else None
        warning = kafka_sasl.plain_warning(tls) if not isinstance(tls, str) else None
        if warning:
            log.warning("%s: %s", display, warning)
    if not protocol.startswith("SASL") or configured or "sasl.username" not in config:
        return config, None
    tls: ssl.SSLContext | None = None
    if protocol == "SASL_SSL":
        tls_or_why = _discovery_tls(config)
        if isinstance(tls_or_why, str):
            note = (f"no sasl_mechanism configured and the mechanism was not asked of the broker ({tls_or_why}): "
                    f"using {UNDISCOVERED_SASL_MECHANISM}")
            log.warning("%s: %s", display, note)
            return {**config, "sasl.mechanism": UNDISCOVERED_SASL_MECHANISM}, note
        tls = tls_or_why
    client_id = str(config.get("client.id") or "wia-security")
    # PLAIN only over TLS that verifies the broker (certificate and host name), the core's rule for the Splunk app
    # and the XSOAR pack too. SCRAM keeps the password off the network, and the connector's default before
    # discovery was SCRAM-SHA-512.
    choices = kafka_sasl.discovery_choices(tls)
    failures: list[str] = []
    for server in str(config.get("bootstrap.servers", "")).split(","):
        server = server.strip()

        def connect(server: str = server) -> socket.socket:
            host, port = kafka_sasl.broker_address(server)      # a bad port: ValueError, this broker skipped
            raw = socket.create_connection((host, port), timeout=DISCOVERY_TIMEOUT_SECONDS)
            try:
                return tls.wrap_socket(raw, server_hostname=host) if tls is not None else raw
            except BaseException:
                raw.close()
                raise

        try:
            with connect() as sock:
                versions = kafka_sasl.api_versions(sock, client_id)
                login = kafka_sasl.log_in(sock, server, versions=versions, mechanism=None,
                                          username=str(config.get("sasl.username") or ""),
                                          password=str(config.get("sasl.password") or ""), client_id=client_id,
                                          reconnect=connect, choices=choices)
        except kafka_sasl.SaslError as exc:
            if isinstance(exc, kafka_sasl.PlainWithheld):
                # Only PLAIN listed on a link without TLS, or whose TLS does not verify the broker: never chosen
                # unasked (anyone on the path could strip SCRAM from the list to read the password); the user opts
                # in, or uses TLS that verifies the broker.
                why, remedy = (("kafka+sasl:// has no TLS: PLAIN would send the password readable on the network",
                                "use kafka+sasl_ssl://") if tls is None else
                               ("its TLS certificate is not verified (enable.ssl.certificate.verification=false or "
                                "ssl.endpoint.identification.algorithm=none): PLAIN would hand the password to "
                                "whatever answers for the broker", "verify the broker's certificate"))
                note = (f"the Kafka broker {server} lists {', '.join(exc.offered)} and {why}, so it is not chosen "
                        f"without sasl_mechanism=PLAIN (or {remedy}); librdkafka logs in with "
                        f"{UNDISCOVERED_SASL_MECHANISM}")
                log.warning("%s: %s", display, note)
                return {**config, "sasl.mechanism": UNDISCOVERED_SASL_MECHANISM}, note
            refusals = getattr(exc, "refusals", None)
            mechanism = refusals[0].mechanism if refusals else exc.mechanism or UNDISCOVERED_SASL_MECHANISM
            note = f"{redact(exc.describe())}; librdkafka logs in with {mechanism}"
            log.warning("%s: %s", display, note)
            return {**config, "sasl.mechanism": mechanism}, note
        except (OSError, ValueError, kafka_sasl.NotKafka) as exc:
            failures.append(f"{server}: {exc}")
            continue
        note = login.describe(server, tls=tls is not None)
        (log.warning if login.refusals or note.endswith("use SASL over TLS") else log.info)("%s: %s", display, note)
        return {**config, "sasl.mechanism": login.mechanism}, note
    note = (f"no sasl_mechanism configured and no bootstrap broker answered to tell the mechanism "
            f"({redact('; '.join(failures))}): using {UNDISCOVERED_SASL_MECHANISM}")
    log.warning("%s: %s", display, note)
    return {**config, "sasl.mechanism": UNDISCOVERED_SASL_MECHANISM}, note


def _discovery_tls(config: dict[str, Any]) -> ssl.SSLContext | str:
    """Python's TLS context for librdkafka's TLS settings (the CA, client certificate and key, host name check);
    a string saying why not when a setting has no equivalent here or does not load (librdkafka then says why)."""
    others = sorted(k for k in config if k.startswith("ssl.") and k not in _DISCOVERY_TLS_KEYS)
    if others:
        return f"librdkafka TLS settings the discovery does not reproduce: {', '.join(others)}"
    # read as librdkafka reads a boolean (rd_kafka_conf: true/t/1, false/f/0, any case): a value taken for off by
    # librdkafka but not here made the discovery verify a broker librdkafka then sent PLAIN to unverified
    verification = str(config.get("enable.ssl.certificate.verification", "true")).lower()
    if verification not in _LIBRDKAFKA_BOOLEANS:
        return f"enable.ssl.certificate.verification={config['enable.ssl.certificate.verification']!r} is no boolean"
    context = ssl.create_default_context()
    if not _LIBRDKAFKA_BOOLEANS[verification]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif str(config.get("ssl.endpoint.identification.algorithm", "https")).lower() == "none":
        context.check_hostname = False
    try:
        ca = str(config.get("ssl.ca.location") or "")
        if ca and ca != "probe":
            context.load_verify_locations(capath=ca) if os.path.isdir(ca) else context.load_verify_locations(cafile=ca)
        if config.get("ssl.certificate.location"):
            context.load_cert_chain(str(config["ssl.certificate.location"]), config.get("ssl.key.location"),
                                    password=lambda: str(config.get("ssl.key.password") or ""))
    except (OSError, ssl.SSLError) as exc:
        return f"the TLS settings do not load: {type(exc).__name__}"
    return context


def tls_options(options: dict[str, Any]) -> dict[str, Any]:
    """Pops ssl_key_password (a Secret: ssl_key_password_env / _file) into librdkafka's ssl.key.password,
    the passphrase of the client key at ?ssl.key.location= (mutual TLS)."""
    from .config import reveal
    if "ssl_key_password" in options:
        return {"ssl.key.password": reveal(options.pop("ssl_key_password")) or ""}
    return {}


def explain_handshake_failure(problem: str, sasl: tuple[str, str] | None = None, discovery: str | None = None) -> str:
    """librdkafka's TLS/authentication failure with what to change (its own hint names only the CA).
    `sasl`: (mechanism, username) of a SASL client; librdkafka's SASL errors name neither (a refused
    PLAIN login reads "Authentication failed: Invalid username or password"). `discovery`: how the
    mechanism was chosen when none was configured (discover_sasl_mechanism's note)."""
    if sasl is not None and "SASL" in problem:
        mechanism, username = sasl
        chosen = f" ({discovery})" if discovery else ""
        if "Unsupported SASL mechanism" in problem:
            return (f"{problem}; the broker does not offer the SASL mechanism {mechanism}{chosen}: set sasl_mechanism "
                    "to one it lists")
        return (f"{problem}; the broker refused the SASL login of user {username!r} with mechanism {mechanism}"
                f"{chosen}: check the username, the password (password_env / password_file) and sasl_mechanism")
    if "certificate verify failed" in problem:
        return (f"{problem}; the broker's certificate is not trusted for the address used: give the CA that "
                "issued it with ?ssl.ca.location=/path/ca.pem and reach the broker by a name or address the "
                "certificate lists")
    if _TLS_REFUSAL_ALERT.search(problem):
        return (f"{problem}; the broker refused the client's certificate or its absence (mutual TLS): give one it "
                "trusts with ?ssl.certificate.location= and ?ssl.key.location= (an encrypted key's passphrase as "
                "the ssl_key_password option)")
    return problem


def _sasl_login(settings: dict[str, Any]) -> tuple[str, str] | None:
    """(mechanism, username) when the client logs in with SASL; librdkafka's default mechanism is GSSAPI."""
    if not str(settings.get("security.protocol", "")).upper().startswith("SASL"):
        return None
    return _configured_mechanism(settings) or "GSSAPI", str(settings.get("sasl.username") or "")


def _configured_mechanism(settings: dict[str, Any]) -> str | None:
    """The SASL mechanism configured under either of librdkafka's names for it (sasl.mechanisms, and its alias
    sasl.mechanism): the one set last, as librdkafka applies settings in order."""
    given = [value for key, value in settings.items() if key in ("sasl.mechanism", "sasl.mechanisms") and value]
    return str(given[-1]) if given else None


class _LibrdkafkaLog:
    """librdkafka's `logger`: its log lines through this module's logger, each distinct line at most once per
    LOG_REPEAT_SECONDS with how often it repeated meanwhile. Unset, librdkafka writes to stderr itself, and a
    consumer whose broker refuses connections writes a FAIL line about every 50 ms until it is stopped."""

    def __init__(self, client: str) -> None:
        self._client = client
        self._last: dict[str, tuple[float, int]] = {}      # line -> (when last logged, repeats since)

    def log(self, level: int, _fmt: str, facility: str, _name: str, message: str) -> None:
        # confluent-kafka calls log(level, "%s [%s] %s", facility, client name, message); the message starts
        # with librdkafka's thread ("[thrd:HOST:PORT/bootstrap]: "), which says nothing the rest does not
        line = f"{facility}: {_THREAD_PREFIX.sub('', message)}"
        # Repeats are told apart without the time a connection attempt took ("(after 3ms in state CONNECT)"):
        # it varies from one attempt to the next (a loaded machine, a remote broker), and each new value was a
        # new line logged again.
        key = _ATTEMPT_TIME.sub(r"(after Nms in state \1", line)
        now = time.monotonic()
        logged_at, repeats = self._last.get(key, (None, 0))
        if logged_at is not None and now - logged_at < LOG_REPEAT_SECONDS:
            self._last[key] = (logged_at, repeats + 1)
            return
        if len(self._last) >= _LOG_LINES_KEPT:
            self._last.clear()
        self._last[key] = (now, 0)
        again = f" (repeated {repeats} times in the last {now - logged_at:.0f}s)" if repeats else ""
        log.log(level, "%s: librdkafka %s%s", self._client, redact(line), again)


#: a repeated librdkafka log line is logged again, with its count, at most this often
LOG_REPEAT_SECONDS = 60.0
_LOG_LINES_KEPT = 1_000
_THREAD_PREFIX = re.compile(r"^\[thrd:[^\]]*\]: ")
#: librdkafka's "(after 12ms in state CONNECT" of a failed connection attempt, up to the state's name
_ATTEMPT_TIME = re.compile(r"\(after \d+ms in state ([A-Za-z_-]+)")


def _client(cls: Callable[[dict[str, Any]], Any], settings: dict[str, Any], name: str) -> Any:
    """A librdkafka client; settings it refuses (an unreadable ssl.key.location, a wrong key passphrase, an
    unknown key) become a ConfigError naming the sink or source, not a KafkaException traceback. Its log
    lines go through _LibrdkafkaLog unless `config` gives a logger."""
    settings = {"logger": _LibrdkafkaLog(name), **settings}
    _warn_unverified_broker(settings, name)
    try:
        return cls(settings)
    except KafkaException as exc:
        err = exc.args[0]
        reason = err.str() if isinstance(err, KafkaError) else str(err)
        # librdkafka may quote the value it refused: mask any credential this process was given
        raise ConfigError(f"librdkafka refused the settings: {redact(reason)}", source=name) from None


def _warn_unverified_broker(settings: dict[str, Any], name: str) -> None:
    """Says so when TLS to the broker does not verify its certificate or its host name (librdkafka takes
    either setting without a word), as every connector says it."""
    if not str(settings.get("security.protocol", "")).upper().endswith("SSL"):
        return
    verification = str(settings.get("enable.ssl.certificate.verification", "true")).lower()
    if _LIBRDKAFKA_BOOLEANS.get(verification) is False:
        warn_tls_off(name, "enable.ssl.certificate.verification=false")
    elif str(settings.get("ssl.endpoint.identification.algorithm", "https")).lower() == "none":
        log.warning("%s: the broker's host name is not checked against its certificate "
                    "(ssl.endpoint.identification.algorithm=none): any certificate a trusted CA issued, for any "
                    "name, is taken for the broker's", name)


class _ConnectionWatch:
    """librdkafka's error_cb: remembers the last TLS or authentication failure and whether every broker
    was down since; a delivered message (or an assignment) shows the brokers are reachable again."""

    def __init__(self, chained: Callable[[KafkaError], None] | None = None) -> None:
        self.problem: str | None = None
        self.all_down = False
        self.last_error: str | None = None     # any error, e.g. "Connect to ipv4#127.0.0.1:9092 failed: ..."
        self._chained = chained                # an error_cb given in `config` still gets every error

    def __call__(self, err: KafkaError) -> None:
        if err.code() != KafkaError._ALL_BROKERS_DOWN:      # "1/1 brokers are down" says less than the cause
            self.last_error = err.str()
        if err.code() in _HANDSHAKE_CODES or (err.code() == KafkaError._TRANSPORT and _TLS_REFUSAL_ALERT.search(err.str())):
            self.problem = err.str()
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.all_down = True
        if self._chained is not None:
            self._chained(err)

    def reachable(self) -> None:
        self.problem, self.all_down, self.last_error = None, False, None

    def forget_problem(self) -> None:
        """A new batch asks for a fresh failure: librdkafka repeats a handshake failure at every reconnect
        (about twice a second), while a broker whose certificate was fixed in the meantime stays silent."""
        self.problem = None

    @property
    def refused(self) -> str | None:
        """The handshake failure, when it left no broker to talk to."""
        return self.problem if self.problem is not None and self.all_down else None


class KafkaSink(BaseSink):
    """Produces each event keyed by its id and waits for the broker's delivery report."""

    def __init__(self, bootstrap_servers: str, topic: str, *, config: dict[str, Any] | None = None,
                 format: str = "wia", delivery_timeout_ms: int = DEFAULT_DELIVERY_TIMEOUT_MS,
                 display: str | None = None, sasl_discovery: str | None = None) -> None:
        if not topic:
            raise ConfigError("no topic (kafka://HOST:PORT/TOPIC)", key="topic")
        self.topic = topic
        self.format = get_format(format)
        self.name = f"kafka:{display or f'{bootstrap_servers}/{topic}'}"
        settings = {
            "bootstrap.servers": bootstrap_servers,
            # Idempotent producer: broker-side retries never duplicate or reorder a message.
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": delivery_timeout_ms,
            "linger.ms": 5,
            **(config or {}),
        }
        # librdkafka's delivery.timeout.ms is an alias of message.timeout.ms: the one set last is in force
        in_force = [value for key, value in settings.items() if key in ("message.timeout.ms", "delivery.timeout.ms")]
        self.delivery_timeout = int(in_force[-1]) / 1000
        self._max_message_bytes = settings.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES)
        self._watch = _ConnectionWatch(settings.get("error_cb"))
        settings["error_cb"] = self._watch
        self._sasl = _sasl_login(settings)
        self._sasl_discovery = sasl_discovery
        self._settings = settings
        self._fatal: KafkaError | None = None       # librdkafka's fatal error: the producer refuses all from then on
        self._producer = _client(Producer, settings, self.name)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "KafkaSink":
        """Options (config file or code): format, username, password (a Secret: password_env/_file),
        sasl_mechanism, ssl_key_password (a Secret), delivery_timeout_ms, config (librdkafka settings)."""
        target = parse_url(url, SINK_URL_KEYS)
        config = {**target.config, **sasl_options(options), **tls_options(options)}
        if "sasl.mechanism" in target.config and "sasl_mechanism" not in options:
            config["sasl.mechanism"] = target.config["sasl.mechanism"]      # the URL's, over the default
        config.update(options.pop("config", {}))
        config, discovery = discover_sasl_mechanism(config, target.display)
        bootstrap = config.pop("bootstrap.servers")
        fmt = options.pop("format", target.options.get("format", "wia"))
        if "delivery_timeout_ms" in target.options and "delivery_timeout_ms" not in options:
            value = target.options["delivery_timeout_ms"]
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"must be a whole number of milliseconds >= 1, got {value!r}",
                                  key="delivery_timeout_ms", source=target.display)
            options["delivery_timeout_ms"] = int(value)
        known = {"delivery_timeout_ms"}
        unknown = set(options) - known
        if unknown:
            raise ConfigError(f"unknown Kafka option(s) {', '.join(sorted(unknown))}", key=sorted(unknown)[0],
                              source=target.display)
        return cls(bootstrap, target.topic, config=config, format=fmt, display=target.display,
                   sasl_discovery=discovery, **options)

    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport:
        report = DeliveryReport(self.name)
        outcomes, undelivered = self._attempt(events)
        if self._fatal is not None:
            # librdkafka refuses every message after a fatal error (an idempotent producer whose state the broker
            # lost or expired: retrying could duplicate or reorder), for good. A new producer, with a new producer
            # id, takes over, and sends once more what the old one did not deliver: at least once, keyed by id.
            self._renew_producer()
            retried, _ = self._attempt([events[n] for n in undelivered])
            for n, outcome in zip(undelivered, retried):
                outcomes[n] = outcome
            if self._fatal is not None:         # the new one too (its failures say so, retryable): the next send()
                self._renew_producer()          # gets another
        for outcome in outcomes:
            if outcome is _OK:
                report.delivered += 1
            else:
                report.failed.append(outcome)
        return report

    def _attempt(self, events: Sequence[dict[str, Any]]) -> tuple[list[Any], list[int]]:
        """Produces `events` and waits for their reports: per event _OK or its Rejected, and the indices of those
        the producer took and did not deliver (sent again by a new producer after a fatal error)."""
        # Per event: _PENDING until its delivery report arrives, then _OK or the KafkaError;
        # a Rejected when it never reached the producer.
        outcomes: list[Any] = [_PENDING] * len(events)
        waiting = [0]
        self._watch.forget_problem()

        def on_delivery(index: int) -> Callable[[KafkaError | None, Any], None]:
            def callback(err: KafkaError | None, _msg: Any) -> None:
                outcomes[index] = _OK if err is None else err
                waiting[0] -= 1
                if err is None:
                    self._watch.reachable()
            return callback

        for index, event in enumerate(events):
            if not isinstance(event.get("id"), str) or not event["id"]:
                # the key; sinks take validated events, but a library caller may pass any dict
                outcomes[index] = unencodable(self.name, event, ValueError(
                    f"the event's id is {event.get('id')!r}: a non-empty string is needed (it is the message key)"))
                continue
            try:
                value = self._encode(event)
            except Exception as exc:  # noqa: BLE001 - one bad event fails alone, with its reason
                outcomes[index] = unencodable(self.name, event, exc, f"{self.format.name} conversion failed")
                continue
            refusal = self._produce(event, value, on_delivery(index))
            if refusal is None:
                waiting[0] += 1
            else:
                outcomes[index] = refusal
        refused = self._await_reports(waiting)
        last_problem = f" (last connection error: {self._watch.problem})" if self._watch.problem else ""
        if self._fatal is not None:
            last_problem += (f"; librdkafka stopped the producer for good (fatal error {self._fatal.name()}: "
                             f"{self._fatal.str()}) and a new one takes over")
        undelivered: list[int] = []
        for index, (event, outcome) in enumerate(zip(events, outcomes)):
            if outcome is _OK:
                continue
            if outcome is _PENDING or isinstance(outcome, (KafkaError, _FatalRefusal)):
                undelivered.append(index)
            if outcome is _PENDING:
                outcomes[index] = Rejected(
                    f"kafka: no delivery report within {self.delivery_timeout + 5:g}s{last_problem}", event=event,
                    sink=self.name, retryable=True)
            elif refused is not None and isinstance(outcome, KafkaError) and outcome.code() in _PURGED_CODES:
                # not retryable: the same settings meet the same certificate or credentials again
                outcomes[index] = Rejected(
                    "kafka: no broker accepted the connection: "
                    f"{explain_handshake_failure(refused, self._sasl, self._sasl_discovery)}",
                    event=event, sink=self.name, retryable=False)
            elif isinstance(outcome, KafkaError):
                outcomes[index] = Rejected(
                    f"kafka delivery failed: {outcome.name()}: {outcome.str()}{last_problem}", event=event,
                    sink=self.name, retryable=bool(outcome.retriable()) or outcome.code() in _RETRYABLE_CODES
                    or self._fatal is not None)
            elif isinstance(outcome, _FatalRefusal):
                outcomes[index] = Rejected(f"kafka refused the message: {outcome.error.str()}{last_problem}",
                                           event=event, sink=self.name, retryable=True)
        return outcomes, undelivered

    def _renew_producer(self) -> None:
        """Replaces a producer librdkafka stopped for good (a fatal error) with a new one."""
        fatal, self._fatal = self._fatal, None
        log.warning("%s: librdkafka stopped the producer for good after a fatal error (%s: %s); a new producer "
                    "takes over", self.name, fatal.name() if fatal else "?", redact(fatal.str()) if fatal else "")
        old, self._producer = self._producer, _client(Producer, self._settings, self.name)
        old.purge()                 # nothing of it is waited for any more
        try:
            old.flush(0)
        except KafkaException:
            pass

    def _encode(self, event: dict[str, Any]) -> bytes:
        doc = self.format.from_wia(event)
        return doc.encode("utf-8") if self.format.text else jsonio.dumpb(doc)

    def _produce(self, event: dict[str, Any], value: bytes, callback: Callable[..., None]) -> Any:
        """None when the producer took the message, else the Rejected (or a _FatalRefusal: the producer stopped)."""
        headers = [(TYPE_HEADER, str(event.get("type", "")).encode())]
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=str(event["id"]).encode(),
                                       headers=headers, on_delivery=callback)
                return None
            except BufferError:
                self._serve(self._producer.poll, 0.1)        # local queue full: let reports drain, then retry
            except KafkaException as exc:
                err = exc.args[0]
                if err.code() == KafkaError._FATAL:
                    self._fatal = self._fatal or err
                    return _FatalRefusal(err)
                why = ""
                if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    why = (f": the event is {len(value):,} bytes encoded, over librdkafka's message.max.bytes "
                           f"{int(self._max_message_bytes):,} (a larger one, ?message.max.bytes=, must stay within "
                           "the broker's message.max.bytes and the topic's max.message.bytes)")
                return Rejected(f"kafka refused the message: {err.name()}: {err.str()}{why}",
                                event=event, sink=self.name, retryable=bool(err.retriable()))

    def _serve(self, call: Callable[[float], int], timeout: float) -> int:
        """producer.flush / poll: a fatal error they raise (once: the reports are served all the same) is kept in
        self._fatal for send() to replace the producer."""
        try:
            return call(timeout)
        except KafkaException as exc:
            err = exc.args[0]
            if not (isinstance(err, KafkaError) and err.fatal()):
                raise
            self._fatal = self._fatal or err
            return len(self._producer)

    def _await_reports(self, waiting: list[int]) -> str | None:
        """Waits for every report; returns the TLS/authentication failure for which the waiting messages
        were purged (every broker refused the handshake: waiting out message.timeout.ms changes nothing)."""
        # Every produced message gets a report by message.timeout.ms; wait a little longer than that.
        deadline = time.monotonic() + self.delivery_timeout + 5
        while waiting[0] > 0 and time.monotonic() < deadline:
            self._serve(self._producer.flush, min(0.2, max(0.0, deadline - time.monotonic())))
            refused = self._watch.refused
            if refused is not None and waiting[0] > 0:
                # queued messages only: with no broker connected none is in flight, and purging in-flight
                # requests of the idempotent producer could break its sequence numbers
                self._producer.purge(in_queue=True, in_flight=False)
                self._serve(self._producer.flush, 5)        # serves the purged messages' reports
                return refused
        return None

    def close(self) -> None:
        remaining = self._serve(self._producer.flush, self.delivery_timeout + 5)
        if remaining:
            log.warning("%s: %d messages without a delivery report at close", self.name, remaining)


_PENDING, _OK = object(), object()
_PURGED_CODES = {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}
_RETRYABLE_CODES = {KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                    KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.LEADER_NOT_AVAILABLE}


@dataclass(frozen=True)
class _FatalRefusal:
    """produce() refused a message because librdkafka had stopped the producer (a fatal error)."""

    error: KafkaError


@dataclass
class KafkaBatch:
    """Consumed messages as reader Items (where = kafka:TOPIC[PARTITION]:OFFSET) and the offsets to commit after them."""

    items: list[Item]
    offsets: list[TopicPartition] = field(default_factory=list)
    #: each partition's first offset in the batch: where rewind() puts the consumer back
    starts: list[TopicPartition] = field(default_factory=list)


@dataclass
class SourceStats:
    batches: int = 0
    messages: int = 0
    commits: int = 0
    commit_failures: int = 0          # e.g. lost partition in a rebalance: those messages are re-read elsewhere


class _Located:
    """The dead letter as the forwarder sees it: an event the *sink* refused comes back without the
    message it was read from, so its `where` (kafka:TOPIC[PARTITION]:OFFSET) is filled in by event id."""

    def __init__(self, dead_letter: Any) -> None:
        self.dead_letter = dead_letter
        self._where: dict[Any, list[str]] = {}

    def remember(self, items: Sequence[Item]) -> None:
        self._where = {}
        for item in items:
            if isinstance(item.value, dict) and isinstance(item.value.get("id"), str):
                self._where.setdefault(item.value["id"], []).append(item.where)

    def put(self, rejected: Rejected) -> None:
        if rejected.where is None and isinstance(rejected.event, dict):
            where = self._where.get(rejected.event.get("id"))
            if where:               # one id read from several messages: each is named
                rejected.where = " or ".join(where)
        self.dead_letter.put(rejected)


class KafkaSource:
    """Consumes WIA events from topics in a consumer group, committing only what was delivered."""

    def __init__(self, bootstrap_servers: str, topics: Sequence[str], group_id: str, *,
                 config: dict[str, Any] | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 poll_timeout: float = 1.0, sasl_discovery: str | None = None) -> None:
        if not topics:
            raise ConfigError("no topic to consume", key="topics")
        if not group_id:
            raise ConfigError("a consumer group id is required (offsets are committed per group)", key="group_id")
        self.topics = list(topics)
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.stats = SourceStats()
        self.name = f"kafka:{bootstrap_servers}/{','.join(self.topics)}#{group_id}"
        self._bootstrap = bootstrap_servers
        settings = {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,          # we commit after delivery, never before
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": DEFAULT_SESSION_TIMEOUT_MS,
            **(config or {}),
        }
        self._watch = _ConnectionWatch(settings.get("error_cb"))
        settings["error_cb"] = self._watch
        self._sasl = _sasl_login(settings)
        self._sasl_discovery = sasl_discovery
        self._consumer = _client(Consumer, settings, self.name)
        self._assigned_at: float | None = None
        self._consumer.subscribe(self.topics, on_assign=self._on_assign)
        self._closed = False

    def _on_assign(self, _consumer: Any, _partitions: list[TopicPartition]) -> None:
        self._assigned_at = time.monotonic()
        self._watch.reachable()

    @classmethod
    def from_url(cls, url: str, *, group_id: str | None = None, **options: Any) -> "KafkaSource":
        """kafka://HOST:PORT/TOPIC[,TOPIC2]?group=NAME&batch_size=500"""
        target = parse_url(url, SOURCE_URL_KEYS)
        config = {**target.config, **sasl_options(options), **tls_options(options)}
        if "sasl.mechanism" in target.config and "sasl_mechanism" not in options:
            config["sasl.mechanism"] = target.config["sasl.mechanism"]
        config.update(options.pop("config", {}))
        config, discovery = discover_sasl_mechanism(config, target.display)
        bootstrap = config.pop("bootstrap.servers")
        group = group_id or target.options.get("group")
        if "batch_size" in target.options:
            value = target.options["batch_size"]
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"must be a whole number >= 1, got {value!r}", key="batch_size",
                                  source=target.display)
            options.setdefault("batch_size", int(value))
        return cls(bootstrap, target.topic.split(","), group or "", config=config, sasl_discovery=discovery, **options)

    def batches(self, *, idle_timeout: float | None = None, stop: threading.Event | None = None) -> Iterator[KafkaBatch]:
        """Yields batches until `stop` is set, or nothing arrived for `idle_timeout` seconds.

        The idle clock runs only while this member holds an assignment: joining a group (or waiting
        out a dead member's session after a crash) is not idleness. Without an assignment for
        `idle_timeout` seconds, the brokers are asked for metadata: when none answers, DeliveryError
        names them and the last connection error (a broker that is down is not an idle topic).
        """
        idle_since = time.monotonic()
        asked_since = idle_since                # when the brokers last answered, or the start
        while not (stop is not None and stop.is_set()):
            messages = self._consumer.consume(self.batch_size, self.poll_timeout)
            refused = self._watch.refused
            if refused is not None and not messages:
                # librdkafka would retry the handshake forever and an idle timeout never starts without
                # an assignment: stop with the reason instead (nothing was read, nothing is committed)
                raise DeliveryError("no broker accepted the connection: "
                                    f"{explain_handshake_failure(refused, self._sasl, self._sasl_discovery)}",
                                    sink=self.name)
            batch = self._to_batch(messages)
            if batch.items:
                idle_since = time.monotonic()
                self.stats.batches += 1
                self.stats.messages += len(batch.items)
                yield batch
            elif idle_timeout is not None and self._assigned_at is not None \
                    and time.monotonic() - max(idle_since, self._assigned_at) >= idle_timeout:
                return
            elif idle_timeout is not None and self._assigned_at is None \
                    and time.monotonic() - asked_since >= idle_timeout:
                self._ask_brokers(idle_timeout)
                asked_since = time.monotonic()

    def _ask_brokers(self, idle_timeout: float) -> None:
        """Raises DeliveryError when no bootstrap broker answers a metadata request (librdkafka retries
        connecting forever, and without an assignment the idle clock never starts)."""
        wait = min(max(idle_timeout, MIN_BROKER_ANSWER_SECONDS), MAX_BROKER_ANSWER_SECONDS)
        try:
            self._consumer.list_topics(self.topics[0], timeout=wait)
        except KafkaException as exc:
            err = exc.args[0]
            last = self._watch.last_error or (err.str() if isinstance(err, KafkaError) else str(err))
            raise DeliveryError(f"no Kafka broker answered at {self._bootstrap} within the idle timeout "
                                f"({idle_timeout:g}s, then {wait:g}s for metadata); last connection error: {last}",
                                sink=self.name) from None

    def _to_batch(self, messages: list[Any]) -> KafkaBatch:
        items: list[Item] = []
        first: dict[tuple[str, int], int] = {}
        last: dict[tuple[str, int], int] = {}
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise KafkaException(err)
                log.warning("%s: consumer error: %s", self.name, err.str())
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            raw = msg.value()
            item = Item(f"kafka:{topic}[{partition}]", offset, raw=raw or b"")
            if not raw:             # a tombstone (null value) or an empty message: say so, not "truncated JSON"
                item.error = ParseError("empty message (null value: a tombstone?)" if raw is None else "empty message",
                                        source=item.source, line=offset)
            else:
                try:
                    item.value = jsonio.loads(raw, source=item.source)
                except Exception as exc:  # noqa: BLE001 - ParseError, or anything else the bytes provoke
                    item.error = exc if isinstance(exc, ParseError) else ParseError(str(exc), source=item.source)
            items.append(item)
            first.setdefault((topic, partition), offset)
            last[(topic, partition)] = max(offset, last.get((topic, partition), -1))
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
        return KafkaBatch(items, offsets, [TopicPartition(t, p, o) for (t, p), o in first.items()])

    def rewind(self, batch: KafkaBatch) -> None:
        """Puts the consumer back at the start of a batch that was not delivered, so that the next batch
        read holds it again. The consumer's position moved past a batch when it was read: without this,
        a later commit (the caller retrying run() on the same source) would commit past it unread.
        A partition no longer assigned is skipped: its new owner starts from the committed offset."""
        for start in batch.starts:
            try:
                self._consumer.seek(start)
            except KafkaException as exc:
                log.info("%s: %s[%d] not rewound (%s); its new owner reads it from the committed offset",
                         self.name, start.topic, start.partition, exc.args[0].str())

    def commit(self, batch: KafkaBatch) -> bool:
        """Commit a delivered batch's offsets synchronously; False (and a warning) when the group moved on."""
        if not batch.offsets:
            return True
        try:
            self._consumer.commit(offsets=batch.offsets, asynchronous=False)
        except KafkaException as exc:
            # Typically a rebalance took the partition away: the new owner re-reads these (duplicates, not loss).
            self.stats.commit_failures += 1
            log.warning("%s: offset commit failed (%s); the batch will be re-read", self.name, exc.args[0].str())
            return False
        self.stats.commits += 1
        return True

    def run(self, sink: Any, dead_letter: Any, *, lenient: bool = False, idle_timeout: float | None = None,
            stop: threading.Event | None = None, after_batch: Callable[[KafkaBatch], None] | None = None) -> ForwardSummary:
        """Validate -> sink -> dead letter, then commit, batch after batch. Exceptions propagate uncommitted,
        with the consumer put back at the start of the failed batch (rewind), so run() may be called again."""
        located = _Located(dead_letter)
        forwarder = Forwarder(sink, located, lenient=lenient, batch_size=self.batch_size)
        started = time.monotonic()
        for batch in self.batches(idle_timeout=idle_timeout, stop=stop):
            try:
                located.remember(batch.items)
                forwarder.run(batch.items)        # sends and flushes the sink; rejects dead-lettered
                flush = getattr(dead_letter, "flush", None)
                if flush is not None:
                    flush()                       # the dead letter is durable before the offsets move
            except BaseException:
                self.rewind(batch)                # a run() on this source again reads the batch again
                raise
            self.commit(batch)
            if after_batch is not None:
                after_batch(batch)
        forwarder.summary.seconds = time.monotonic() - started
        return forwarder.summary

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()              # leaves the group now, so a rebalance need not wait for the session timeout

    def __enter__(self) -> "KafkaSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<KafkaSource {self.name}>"
