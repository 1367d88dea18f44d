"""Forwarder configuration: destinations, dead letter and secrets, read once per container.

- `WIA_CONFIG`: the destinations config (the project's TOML format, docs/connectors/delivery.md; JSON
  accepted too), or `WIA_CONFIG_PARAMETER`: the name of an SSM parameter holding it.
- Secrets by reference only: `<key>_secretsmanager = "<ARN>[#json key]"` or `<key>_ssm = "<name>"`
  (secrets.py). Literal secrets and `_env`/`_file` references are refused.
- `WIA_DEAD_LETTER` (or `[forward] dead_letter`): `sqs://...`/queue URL, `s3://bucket/prefix` (one
  object per rejection named by its `dead_letter_id`: a redelivery overwrites, see dead_letter.py), or
  a destination URL (`sink+<url>` too; what it cannot take goes to the log dead letter); a file or
  SQLite path is refused (/tmp goes with the execution environment). Without one, dead letters are
  structured ERROR log entries (one too long for one log event in parts, dead_letter.PartedLogDeadLetter).
- `WIA_SQS_MAX_RECEIVE_COUNT`: the ingest queue's redrive `maxReceiveCount` (the template sets both
  from one parameter). A message still failing on that receive is dead-lettered with the reason
  instead of being reported back, so it never reaches the redrive queue with its reason only in the
  log. Unset: every failing message is reported back (the redrive queue takes it after the last).
- `WIA_KINESIS_FAILURE_QUEUE`: the ARN of the Kinesis on-failure destination queue, which the
  forwarder also consumes: a failure record from it is recovered (stream_recovery.py). Unset: none.
- Delivery defaults suited to a function: no background flush timer, 4 attempts within 20 s
  (`[delivery]` in the config overrides them), 100 events per chunk. One chunk may take `max_elapsed`
  plus one last attempt (Security Hub: up to 60 s); the handler stops starting records when less than
  `WIA_TIME_RESERVE` (90 s) is left, so raise both together (and the template's Timeout, at least twice
  the reserve) for slower destinations, e.g. Splunk HEC with acknowledgements (up to 60 s more).
The runtime is rebuilt after `WIA_SECRETS_TTL` seconds so rotated secrets take effect.
"""
from __future__ import annotations

import json
import os
import time
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from wia_security.connectors.config import parse_config
from wia_security.errors import ConfigError

from . import secrets
from .logs import get_logger

ENV_CONFIG = "WIA_CONFIG"
ENV_CONFIG_PARAMETER = "WIA_CONFIG_PARAMETER"
ENV_DEAD_LETTER = "WIA_DEAD_LETTER"
ENV_SECRETS_TTL = "WIA_SECRETS_TTL"
ENV_LENIENT = "WIA_LENIENT"
ENV_SQS_MAX_RECEIVE_COUNT = "WIA_SQS_MAX_RECEIVE_COUNT"
ENV_KINESIS_FAILURE_QUEUE = "WIA_KINESIS_FAILURE_QUEUE"
DEFAULT_SECRETS_TTL = 300.0
LAMBDA_DELIVERY = {"max_wait": 0, "max_attempts": 4, "max_elapsed": 20}
#: Events the relay hands the destinations at a time: one Security Hub request (100 findings), so the
#: time between two checks of the invocation's deadline (handler.in_time) is one request's retries.
LAMBDA_CHUNK_EVENTS = 100


#: Tries of one AWS call (the SDK's standard retries): the shared clients' and the most a time-fitted one makes.
S3_READ_ATTEMPTS = 3
#: Connect and read timeouts a time-fitted client may have, longest first (botocore's default is 60 s each).
S3_READ_TIMEOUTS = (60.0, 32.0, 16.0, 8.0, 4.0, 2.0, 1.0)


def s3_read_bounds(left: float) -> tuple[float, int] | None:
    """(timeout, attempts) for an AWS call (a GetObject, a Kinesis read, a dead-letter write) that must end within
    `left` seconds, its retries included: most attempts first, then the longest timeout such that each attempt
    waiting a connect and a read timeout, plus the standard mode's backoff between attempts (at most 1 s, then
    2 s), fits. None: not one attempt of 1 s fits. Without it a request whose answer never comes (headers
    included) waited botocore's 60 s twice per attempt, 3 attempts: far past the invocation's end."""
    for attempts in range(S3_READ_ATTEMPTS, 0, -1):
        backoff = 2.0 ** (attempts - 1) - 1
        for timeout in S3_READ_TIMEOUTS:
            if attempts * 2 * timeout + backoff <= left:
                return timeout, attempts
    return None


class Clients:
    """boto3 clients, created on first use (importing this module does not import boto3)."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._fitted: dict[tuple[str, str | None, float, int], Any] = {}

    def s3_reader(self, left: float | None) -> Any:
        """The S3 client for reading an object with `left` seconds before the invocation's time reserve
        (handler.time_left; None: no Lambda context, the shared client): `fitted`. The body's own reads are cut at
        the reserve by payloads._StreamingBodyIO. OutOfTime when not one try fits."""
        return self.fitted("s3", left, "reading an S3 object", "before the invocation's time reserve")

    def fitted(self, service: str, left: float | None, what: str = "the call",
               before: str = "before the invocation's end", region: str | None = None) -> Any:
        """The client of `service` for one call that must end within `left` seconds (None: no Lambda context, the
        shared client): timeouts and attempts bounded so the call and its retries end in that time (s3_read_bounds;
        one client per bound, at most a few). OutOfTime ("not started: `what` ...") when not one try fits."""
        if left is None:
            return self.client(service, region)
        bounds = s3_read_bounds(left)
        if bounds is None:
            from wia_security.connectors.relay import OutOfTime
            raise OutOfTime(f"not started: {what} needs at least {2 * S3_READ_TIMEOUTS[-1]:g}s and "
                            f"{max(left, 0):.1f}s were left {before}; the record is retried")
        if bounds == (S3_READ_TIMEOUTS[0], S3_READ_ATTEMPTS):
            return self.client(service, region)         # the SDK's own bounds fit
        key = (service, region, *bounds)
        if key not in self._fitted:
            from wia_security.connectors.aws.securityhub import make_client
            timeout, attempts = bounds
            self._fitted[key] = make_client(service, region or os.environ.get("AWS_REGION"), max_attempts=attempts,
                                            connect_timeout=timeout, read_timeout=timeout)
        return self._fitted[key]

    def client(self, service: str, region: str | None = None) -> Any:
        if (service, region) not in self._clients:
            from wia_security.connectors.aws.securityhub import make_client
            # S3 reads and secret/parameter lookups: the SDK's standard retries (3 attempts)
            self._clients[service, region] = make_client(service, region or os.environ.get("AWS_REGION"),
                                                         max_attempts=3)
        return self._clients[service, region]


class FittedClient:
    """A boto3 client whose every call is made with the client fitted to the time `left()` gives at that moment
    (`Clients.fitted`): for the writes of the failure path (dead letters), which are made when the invocation
    may be in its time reserve. With a client of botocore's own bounds (60 s connect and read, per try) a write
    that never got its answer outlasted the invocation: Lambda stopped it mid-write."""

    def __init__(self, clients: Clients, service: str, left: Callable[[], float | None], what: str,
                 region: str | None = None) -> None:
        self._clients, self._service, self._left, self._what, self._region = clients, service, left, what, region

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clients.fitted(self._service, self._left(), self._what, region=self._region), name)


def deadline_left() -> float | None:
    from .handler import time_to_deadline
    return time_to_deadline()


@dataclass
class Runtime:
    relay: Any
    sink: Any
    dead_letter: Any
    clients: Clients
    destinations: list[str]
    max_receive_count: int | None = None
    kinesis_failure_queue: str | None = None
    created: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        try:
            self.sink.close()
        finally:
            close = getattr(self.dead_letter, "close", None)
            if close is not None:
                close()


def config_document(environ: Mapping[str, str], clients: Clients) -> dict[str, Any]:
    text = environ.get(ENV_CONFIG)
    source = ENV_CONFIG
    if not text and environ.get(ENV_CONFIG_PARAMETER):
        source = f"ssm {environ[ENV_CONFIG_PARAMETER]}"
        try:
            text = secrets.fetch_ssm(environ[ENV_CONFIG_PARAMETER], clients.client("ssm"))
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"cannot read the config parameter: {type(exc).__name__}", source=source) from None
    if not text:
        raise ConfigError(f"no destinations: set {ENV_CONFIG} (TOML or JSON) or {ENV_CONFIG_PARAMETER}",
                          key=ENV_CONFIG)
    try:
        return json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"not valid TOML or JSON: {exc}", source=source) from None


def build_runtime(environ: Mapping[str, str] = os.environ) -> Runtime:
    from wia_security.connectors.relay import Relay

    clients = Clients()
    document = config_document(environ, clients)
    document = dict(document)
    document["delivery"] = {**LAMBDA_DELIVERY, **(document.get("delivery") or {})}
    destinations = {}
    for name, table in (document.get("destinations") or {}).items():
        if isinstance(table, dict):
            destinations[name] = secrets.resolve(dict(table), where=f"destinations.{name}", clients=clients)
        else:
            destinations[name] = table
    document["destinations"] = destinations
    config = parse_config(document, source=ENV_CONFIG)
    sink = config.open()
    spec = environ.get(ENV_DEAD_LETTER) or config.forward.get("dead_letter")
    logger = get_logger()
    # dead-letter writes run inside the time reserve: each call's client fits the time left before the end
    writer = "writing a dead letter"
    if spec and spec.startswith("s3://"):
        from .dead_letter import KeyedS3DeadLetter    # one object per rejection: a retry overwrites, never adds
        dead_letter = KeyedS3DeadLetter(spec, FittedClient(clients, "s3", deadline_left, writer))
    elif spec:
        from wia_security.connectors.aws.dead_letter import open_aws_dead_letter
        dead_letter = open_aws_dead_letter(spec, client_for=lambda service, region: FittedClient(
            clients, service, deadline_left, writer, region))
        if dead_letter is None:
            dead_letter = sink_dead_letter(spec, logger, key=ENV_DEAD_LETTER if environ.get(ENV_DEAD_LETTER)
                                           else "forward.dead_letter")
    else:
        from .dead_letter import PartedLogDeadLetter  # a record too long for one log event is written in parts
        dead_letter = PartedLogDeadLetter(logger)
    lenient = environ.get(ENV_LENIENT, str(config.forward.get("lenient", False))).lower() in ("1", "true", "yes")
    relay = Relay(sink, dead_letter, lenient=lenient, chunk_events=LAMBDA_CHUNK_EVENTS, on_reject=lambda r: logger.warning(
        "rejected", extra={"reason": r.reason, "where": r.where, "sink": r.sink,
                           "event_id": r.event.get("id") if isinstance(r.event, dict) else None}))
    return Runtime(relay, sink, dead_letter, clients, [d.name for d in config.destinations],
                   max_receive_count(environ), environ.get(ENV_KINESIS_FAILURE_QUEUE, "").strip() or None)


def sink_dead_letter(spec: str, logger: Any, *, key: str) -> Any:
    """Another destination (`sink+<url>` or a destination URL) as the dead letter; what it cannot take (a
    value that is no event, one it refuses too) goes to the log dead letter, not to a file: the function's
    only writable place, /tmp, goes with its execution environment, and the records with it. For the same
    reason a file or SQLite dead letter is refused."""
    from wia_security.connectors import open_sink
    from wia_security.connectors.delivery.dead_letter import SinkDeadLetter

    from .dead_letter import PartedLogDeadLetter

    url = spec[5:] if spec.lower().startswith("sink+") else spec
    if url.split("://", 1)[0].lower() in ("file", "sqlite") or "://" not in url:
        raise ConfigError("a file in the function's filesystem is lost with its execution environment (/tmp, the only "
                          "writable place, goes when Lambda recycles it): use sqs://..., s3://<bucket>/<prefix>, a "
                          "destination URL, or no dead letter (structured log entries)", key=key)
    return SinkDeadLetter(open_sink(url), PartedLogDeadLetter(logger))


def max_receive_count(environ: Mapping[str, str]) -> int | None:
    """The redrive policy's maxReceiveCount (1 to 1000, SQS's range), or None when not configured."""
    text = environ.get(ENV_SQS_MAX_RECEIVE_COUNT, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise ConfigError("must be the ingest queue's maxReceiveCount, a whole number from 1 to 1000",
                          key=ENV_SQS_MAX_RECEIVE_COUNT)
    return int(text)


def secrets_ttl(environ: Mapping[str, str] = os.environ) -> float:
    try:
        return float(environ.get(ENV_SECRETS_TTL, DEFAULT_SECRETS_TTL))
    except ValueError:
        return DEFAULT_SECRETS_TTL
