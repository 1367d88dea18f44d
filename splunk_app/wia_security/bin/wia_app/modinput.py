"""The wia_events modular input, following Splunk's modular-input protocol.

`--scheme` prints the scheme; `--validate-arguments` reads <items> XML and exits 1 with an
<error><message> on bad arguments; with no argument it reads the <input> XML (server_uri,
session_key, checkpoint_dir, one <stanza>) and streams XML <event>s to stdout, one per WIA
event, with sourcetype wia:security:<type>, time = the event's timestamp and the event JSON as
data. Invalid events are not indexed as WIA events: they are logged (stderr goes to splunkd.log)
with the validation errors, counted, and written whole with the reason to the dead-letter log
(dead_letter.py) before the checkpoint moves past them; nothing is dropped silently.
"""
from __future__ import annotations

import contextlib
import math
import os
import random
import re
import signal
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any, Iterator, TextIO
from xml.sax.saxutils import escape

from wia_security.start_time import start_cutoff
from wia_security.taxii_settle import DEFAULT_SETTLE_SECONDS, iso_micro, settle_seconds

from .checkpoint import Checkpoint, CheckpointError, checkpoint_path
from .client_cert import secret_fragments
from .dead_letter import dead_letter
from .pull import START_CUTOFF, SourceError, open_source
from .redact import Redactor, carries_userinfo
from .splunkd import Splunkd, SplunkdError
from .tls_setting import tls_verify_problem, verify_tls

SCHEME = """<scheme>
    <title>WIA Security events</title>
    <description>Pull WIA Security events from a TAXII 2.1 collection, a WIA gateway or a Kafka topic.</description>
    <use_external_validation>true</use_external_validation>
    <use_single_instance>false</use_single_instance>
    <streaming_mode>xml</streaming_mode>
    <endpoint>
        <args>
            <arg name="source_url">
                <title>Source URL</title>
                <description>taxii+https://host/api-root/collections/ID/, gateway+https://host or kafka://broker:9092/TOPIC</description>
                <required_on_create>true</required_on_create>
            </arg>
            <arg name="credential">
                <title>Credential name</title>
                <description>Name of the secret in storage/passwords (realm wia_security); never the secret itself</description>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="username">
                <title>User name</title>
                <description>User for HTTP Basic (TAXII) or SASL (Kafka) authentication; empty sends the credential as a bearer token</description>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="client_certificate_credential">
                <title>Kafka client certificate credential</title>
                <description>Kafka over TLS (kafka+ssl://, kafka+sasl_ssl://) to a broker that demands client certificates: name of the secret in storage/passwords (realm wia_security) holding the client certificate and its private key as PEM; never the PEM itself</description>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="client_key_passphrase_credential">
                <title>Kafka client key passphrase credential</title>
                <description>If the client private key is encrypted: name of the secret in storage/passwords (realm wia_security) holding its passphrase; never the passphrase itself</description>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="verify_tls">
                <title>Verify TLS</title>
                <data_type>boolean</data_type>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="stix_content">
                <title>TAXII content</title>
                <description>wia: WIA events as wia-security writes them to STIX (default); stix: any STIX, read natively</description>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="settle">
                <title>TAXII settle window (seconds)</title>
                <description>TAXII only: objects added within this many seconds of the server's clock are left for a later run (the server may still be adding the rest of their request), 0 to 86400; 0 reads everything listed; default 60</description>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="start_time">
                <title>Start time</title>
                <description>Where a new input (one without a checkpoint) starts: a number of minutes, hours, days or weeks before its first run (3 days, 12 hours), an RFC 3339 instant (2026-01-31T12:00:00Z), or empty (default) for everything the source holds. An existing checkpoint is never moved by it</description>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="page_size">
                <title>Page size</title>
                <data_type>number</data_type>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="max_events">
                <title>Most events per run</title>
                <data_type>number</data_type>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="retries">
                <title>Retries</title>
                <description>Times a run tries again after a temporary source failure (5xx, 429, no connection), 0 to 10; default 4</description>
                <data_type>number</data_type>
                <required_on_create>false</required_on_create>
            </arg>
            <arg name="retry_backoff">
                <title>First retry wait (seconds)</title>
                <description>Wait before the first retry, doubled for each next one (at most 60 s; a longer Retry-After ends the run); default 2</description>
                <required_on_create>false</required_on_create>
            </arg>
        </args>
    </endpoint>
</scheme>
"""

#: Parameter names that say they hold a secret: the word alone or at the end of the name (sasl_password, hec_token,
#: access_token, secret_key), which an exact list of names missed. Such a value would sit in inputs.conf in clear.
_SECRET_PARAM = re.compile(r"(?:^|[._-])(?:pass(?:word|wd|phrase)?|secret(?:_?key)?|token|api_?key|private_?key|client_key)$",
                           re.IGNORECASE)
#: The source schemes a client certificate is presented on (a TLS handshake).
_CLIENT_CERTIFICATE_SCHEMES = ("kafka+ssl", "kafka+sasl_ssl")
#: props.conf TRUNCATE of every wia:security:* sourcetype (bytes): Splunk cuts a longer event there,
#: which would index broken JSON, so such an event is rejected with its size instead.
MAX_EVENT_BYTES = 1_048_576
#: Characters XML 1.0 does not allow in a document (lone surrogates, U+FFFE, U+FFFF). They can only
#: sit inside JSON strings, where the JSON escape \uXXXX says the same thing in plain ASCII.
_NOT_XML = re.compile(r"[\ud800-\udfff\ufffe\uffff]")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
_SECONDS = re.compile(r"[0-9]{1,2}(\.[0-9]{1,3})?")
#: Retries of a temporary source failure within one run, and the first wait (seconds), doubled each time.
DEFAULT_RETRIES = 4
DEFAULT_RETRY_BACKOFF = 2.0
MAX_RETRIES = 10
#: Longest wait before one retry (seconds). A source asking for longer (Retry-After) ends the run: the next
#: run (Splunk's interval, default 300 s) resumes from the checkpoint.
MAX_RETRY_WAIT = 60.0


def main(argv: list[str], stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    if argv[1:2] == ["--scheme"]:
        stdout.write(SCHEME)
        return 0
    if argv[1:2] == ["--validate-arguments"]:
        try:
            params = _params(ET.fromstring(stdin.read()).find("item"))
        except ET.ParseError as exc:
            stdout.write(f"<error><message>{escape(f'the validation request is not XML: {exc}')}</message></error>")
            return 1
        problem = validate(params)
        if problem:
            stdout.write(f"<error><message>{escape(problem)}</message></error>")
            return 1
        return 0
    try:
        root = ET.fromstring(stdin.read())
    except ET.ParseError as exc:
        stderr.write(f"ERROR wia_events: the input configuration from splunkd is not XML: {exc}\n")
        return 2
    stanza = root.find("configuration/stanza")
    if stanza is None:
        stderr.write("ERROR wia_events: no <stanza> in the input configuration\n")
        return 2
    return run(stanza.get("name", "wia_events://unnamed"), _params(stanza), root.findtext("server_uri", ""),
               root.findtext("session_key", ""), root.findtext("checkpoint_dir", "."), stdout, stderr)


def validate(params: dict[str, str]) -> str | None:
    url = params.get("source_url", "")
    if not url:
        return "source_url is required"
    scheme = url.split("://", 1)[0]
    if "://" not in url or scheme.split("+", 1)[0] not in ("taxii", "gateway", "kafka"):
        return "source_url must start with taxii+https://, gateway+https:// or kafka:// (kafka+ssl://, kafka+sasl_ssl://)"
    for key in params:
        if _SECRET_PARAM.search(key):
            return f"parameter {key!r} would store a secret in inputs.conf; store it in storage/passwords and name it in 'credential'"
    for key, value in params.items():
        if "-----BEGIN" in value:       # named only: the value may be a private key
            return (f"parameter {key!r} holds PEM text, which inputs.conf would keep in clear; store it in "
                    "storage/passwords and name it in 'client_certificate_credential'")
    if params.get("client_key_passphrase_credential") and not params.get("client_certificate_credential"):
        return "client_key_passphrase_credential is the passphrase of a client key: set client_certificate_credential too"
    if params.get("client_certificate_credential") and scheme.lower() not in _CLIENT_CERTIFICATE_SCHEMES:
        return (f"a client certificate is presented in a TLS handshake, and source_url starts with {scheme.lower()}://: "
                "use kafka+ssl:// or kafka+sasl_ssl:// (client_certificate_credential is for Kafka over TLS), or clear "
                "client_certificate_credential")
    if carries_userinfo(url):
        return "source_url must not carry user:password; use the 'credential' parameter"
    problem = _address_problem(url, kafka=scheme.split("+", 1)[0].lower() == "kafka")
    if problem:
        return problem
    problem = tls_verify_problem(params)
    if problem:
        return problem
    if params.get("stix_content", "wia") not in ("wia", "stix"):
        return "stix_content must be wia or stix"
    for key in ("page_size", "max_events"):
        if params.get(key) and not (_WHOLE_NUMBER.fullmatch(params[key]) and int(params[key]) >= 1):
            return f"{key} must be a whole number from 1 to 999999999, not {params[key][:40]!r}"
    if params.get("retries") and not (_WHOLE_NUMBER.fullmatch(params["retries"]) and int(params["retries"]) <= MAX_RETRIES):
        return f"retries must be a whole number from 0 to {MAX_RETRIES}, not {params['retries'][:40]!r}"
    if params.get("settle"):
        try:
            settle_seconds(params["settle"])
        except ValueError as exc:
            return f"settle (the TAXII settle window) {exc}"
    if params.get("start_time"):
        try:
            start_cutoff(params["start_time"])
        except ValueError as exc:
            return f"start_time {exc}"
    if params.get("retry_backoff") and not (_SECONDS.fullmatch(params["retry_backoff"])
                                            and float(params["retry_backoff"]) <= MAX_RETRY_WAIT):
        return f"retry_backoff must be seconds from 0 to {MAX_RETRY_WAIT:.0f} (e.g. 2 or 0.5), not {params['retry_backoff'][:40]!r}"
    return None


def _address_problem(url: str, *, kafka: bool) -> str | None:
    """Why source_url's host (each Kafka broker's) cannot be used, or None. Checked here: read on, a character no
    request can carry was reported as "source sent invalid JSON" before any request went out, an unclosed IPv6
    bracket ended the run with a traceback, and a port that is no number or over 65535 as a host nobody can reach,
    retried as if temporary."""
    odd = next((c for c in url if not 33 <= ord(c) <= 126), None)
    if odd is not None:
        return (f"source_url holds {odd!r} (U+{ord(odd):04X}), which a request cannot carry: write the host name in "
                "its ASCII form (xn--...) and %-encode other characters")
    authority = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    for host in [b for b in authority.split(",") if b] or [""] if kafka else [authority]:   # as KafkaSource reads them
        try:
            parts = urllib.parse.urlsplit("scheme://" + host)
            parts.port                      # raises ValueError for a port that is no number or out of range
        except ValueError as exc:
            return f"source_url's {host[:80]!r} is not host[:port] ({exc})"
        if not parts.hostname:
            return f"source_url's {host[:80]!r} names no host"
    return None


def run(name: str, params: dict[str, str], server_uri: str, session_key: str, checkpoint_dir: str,
        stdout: TextIO, stderr: TextIO) -> int:
    """One run of the input, holding its checkpoint's lock (wia_security.outputs.held_exclusively): a second run of
    the same input while one is going (an orphan of a splunkd that was killed, a run started by hand to debug) read
    the same position, indexed the same events a second time, and the slower saved an older position over the
    newer, so the next run indexed them again. The second run now ends at once, saying which process holds it."""
    from wia_security.errors import ConfigError
    from wia_security.outputs import held_exclusively

    with contextlib.ExitStack() as held:
        try:
            os.makedirs(checkpoint_dir, exist_ok=True)
            held.enter_context(held_exclusively(checkpoint_path(checkpoint_dir, name), f"run of the input {name}"))
        except ConfigError as exc:
            stderr.write(Redactor(session_key)(f"WARNING wia_events input={name}: {exc.reason}; this run reads nothing")
                         + "\n")
            return 0
        except ImportError:     # no fcntl (Windows): one run of an input at a time is splunkd's own rule there
            pass
        except OSError as exc:  # the checkpoint folder cannot be made: the run cannot checkpoint either
            stderr.write(f"ERROR wia_events input={name}: cannot use the checkpoint folder {checkpoint_dir}: {exc}\n")
            return 2
        stop = _StopRequest()
        try:
            previous = signal.signal(signal.SIGTERM, stop)
        except ValueError:      # not the main thread (an in-process caller): no handler, the default applies
            previous = None
        try:
            return _run(name, params, server_uri, session_key, checkpoint_dir, stdout, stderr, stop)
        except _Stopped:        # before anything was read (the credentials, the source's setup)
            stderr.write(f"INFO wia_events input={name}: stopped by splunkd (SIGTERM) before reading\n")
            return 0
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


class _Stopped(BaseException):
    """splunkd asked the run to stop (SIGTERM: the input disabled or edited, splunkd stopping). A BaseException, so
    that no `except Exception` on the way (a library's) takes it for an error of its own."""


class _StopRequest:
    """The SIGTERM handler. Python's default ended the process wherever it was: in the middle of an <event> (a cut
    element in the stream) or after events of a page were written but before its checkpoint, which the next run then
    indexed again. Now an event being written is finished first; otherwise the run stops at once (a network wait
    included). The run then saves the checkpoint at its position with the ids written since (_run), so the next run,
    reading that page again, skips them."""

    #: Seconds a run has to stop once asked: to finish the event it is writing, flush, save the checkpoint and close
    #: the stream. splunkd may have stopped reading, and then a write waits for ever: past this the process ends where
    #: it is, as Python's default did on SIGTERM (exit 143; the checkpoint at the last whole page), writing nothing more.
    GRACE_SECONDS = 10

    def __init__(self) -> None:
        self.requested = False
        self.writing = False        # an event is being written: stop after it

    def __call__(self, signum: int, frame: Any) -> None:
        if self.requested:          # asked again while stopping: the stop is under way
            return
        self.requested = True
        if hasattr(signal, "alarm"):    # POSIX
            signal.signal(signal.SIGALRM, self._give_up)
            signal.alarm(self.GRACE_SECONDS)
        if not self.writing:
            raise _Stopped

    @staticmethod
    def _give_up(signum: int, frame: Any) -> None:
        os._exit(128 + signal.SIGTERM)


def _run(name: str, params: dict[str, str], server_uri: str, session_key: str, checkpoint_dir: str,
         stdout: TextIO, stderr: TextIO, stop: _StopRequest | None = None) -> int:
    stop = stop or _StopRequest()
    redact = Redactor(session_key)

    def log(line: str) -> None:     # stderr goes to splunkd.log: never a secret there
        stderr.write(redact(line) + "\n")

    def reject(record: dict[str, Any]) -> None:     # what cannot be indexed is kept, with why
        dead_letter({"input": name, **record}, log, redact, "wia_events")

    problem = validate(params)
    if problem:
        log(f"ERROR wia_events input={name}: {problem}")
        return 2
    secret = None
    options: dict[str, Any] = {}
    splunkd = Splunkd(server_uri, session_key)
    try:
        if params.get("credential"):
            secret = splunkd.password(params["credential"])
            redact.add(secret, params.get("username"))
        if params.get("client_certificate_credential"):
            # every secret goes into the redactor as soon as it is read, before anything can log it
            pem = splunkd.long_password(params["client_certificate_credential"])
            for fragment in secret_fragments(pem):
                redact.add(fragment)
            passphrase = None
            if params.get("client_key_passphrase_credential"):
                passphrase = splunkd.password(params["client_key_passphrase_credential"])
                redact.add(passphrase)
            options = {"client_certificate": pem, "client_key_passphrase": passphrase,
                       "client_certificate_credential": params["client_certificate_credential"],
                       "client_key_passphrase_credential": params.get("client_key_passphrase_credential") or None}
    except SplunkdError as exc:
        log(f"ERROR wia_events input={name}: {exc}")
        return 2
    if params["source_url"].split("://", 1)[0].split("+", 1)[0].lower() == "taxii":
        options["settle"] = settle_seconds(params.get("settle") or DEFAULT_SETTLE_SECONDS)
    try:
        source = open_source(params["source_url"], secret=secret, username=params.get("username"),
                             verify_tls=verify_tls(params),
                             page_size=int(params.get("page_size") or 500), stix_content=params.get("stix_content") or "wia",
                             **options)
        checkpoint = Checkpoint(checkpoint_dir, name)
        problem = source.position_problem(checkpoint.position)
        if problem:     # a value edited by hand (the docs say how to move a TAXII position back)
            raise CheckpointError(f"checkpoint {checkpoint.path} is unusable for {params['source_url'].split('://', 1)[0]}:// "
                                  f"sources: {problem}; fix or delete it (deleting restarts from the source's beginning, "
                                  "or from start_time)")
        if not checkpoint.found:
            # a new input: start_time is read now, and only now; its cutoff stays in the position until the source
            # has a position of its own, so it does not move on with the clock (an existing checkpoint: never read)
            cutoff = start_cutoff(params.get("start_time"))
            if cutoff is not None:
                checkpoint.position = {START_CUTOFF: iso_micro(cutoff)}
                log(f"INFO wia_events input={name}: no checkpoint yet: starting at start_time "
                    f"{params['start_time'][:40]!r} = {iso_micro(cutoff)}")
        if hasattr(source, "checkpoint_file"):   # TAXII: named in how to reset a position stored past the clock
            source.checkpoint_file = checkpoint.path
    except (SourceError, CheckpointError) as exc:
        log(f"ERROR wia_events input={name}: {exc}")
        return 2
    max_events = int(params.get("max_events") or 10_000)
    retries = int(params.get("retries") or DEFAULT_RETRIES)
    backoff = float(params.get("retry_backoff") or DEFAULT_RETRY_BACKOFF)
    counts = {"emitted": 0, "invalid": 0, "duplicates": 0, "skipped": 0, "held": 0, "before_start": 0}
    stdout.write("<stream>")
    try:
        failures = 0
        while True:
            try:
                # every attempt starts from the checkpoint: nothing unread is skipped, nothing checkpointed twice
                for _ in _index_pages(source, checkpoint, name, max_events, counts, stdout, log, reject, stop):
                    failures = 0                # progress: a later failure gets the full retries again
                return 0
            except _Stopped:
                stop.requested = True           # a second SIGTERM while saving is ignored
                stdout.flush()
                # the position stays; the ids written since it are remembered, so the page read again skips them
                checkpoint.save(checkpoint.position)
                log(f"INFO wia_events input={name}: stopped by splunkd (SIGTERM); the next run resumes from the "
                    "checkpoint")
                return 0
            except SourceError as exc:
                failures += 1
                if not exc.retryable:
                    log(f"ERROR wia_events input={name}: {exc}; not retried (not a temporary failure); "
                        "will resume from the last checkpoint")
                    return 1
                if failures > retries:
                    log(f"ERROR wia_events input={name}: {exc}; gave up after {failures} attempts; "
                        "will resume from the last checkpoint")
                    return 1
                if exc.retry_after is not None and exc.retry_after > MAX_RETRY_WAIT:
                    log(f"ERROR wia_events input={name}: {exc}; the source asks to wait {exc.retry_after:.0f} s "
                        f"(Retry-After), more than a run waits ({MAX_RETRY_WAIT:.0f} s); will resume from the last "
                        "checkpoint at the next run")
                    return 1
                # exponential backoff with jitter, at least what the source asked for, at most MAX_RETRY_WAIT
                wait = min(MAX_RETRY_WAIT, backoff * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
                wait = min(MAX_RETRY_WAIT, max(wait, exc.retry_after or 0.0))
                log(f"WARNING wia_events input={name}: {exc}; attempt {failures} of {retries + 1} failed, "
                    f"retrying in {wait:.2f} s from the last checkpoint")
                _sleep(wait)
    finally:
        stdout.write("</stream>")
        stdout.flush()
        for note in dict.fromkeys(getattr(source, "notes", ())):     # e.g. the SASL mechanism chosen, once
            log(f"INFO wia_events input={name}: {note}")
        # e.g. SASL PLAIN without TLS that verifies the broker: a security warning, not a note
        for warning in dict.fromkeys([*getattr(source, "warnings", ()), *getattr(source, "offset_warnings", ())]):
            log(f"WARNING wia_events input={name}: {warning}")
        for error in dict.fromkeys(getattr(source, "errors", ())):     # e.g. Kafka messages lost to retention
            log(f"ERROR wia_events input={name}: {error}")
        log(f"INFO wia_events input={name} emitted={counts['emitted']} invalid={counts['invalid']} "
            f"duplicates={counts['duplicates']} skipped={counts['skipped']}"
            # gateway events with a timestamp before start_time's cutoff, passed over on a new input's first walk
            + (f" before_start_time={counts['before_start']}" if counts["before_start"] else "")
            + (f" held={counts['held']}{' or more' if counts.get('held_more') else ''} (TAXII objects added in the last {options['settle']:g} s of the server's clock, "
               "still settling: a later run reads them)" if counts["held"] else ""))


#: time.sleep, named so that in-process tests can replace it.
_sleep = time.sleep


def _index_pages(source: Any, checkpoint: Checkpoint, name: str, max_events: int, counts: dict[str, int],
                 stdout: TextIO, log: Any, reject: Any, stop: _StopRequest | None = None) -> Iterator[None]:
    """Writes the source's pages from the checkpoint on to Splunk, checkpointing after each; yields once per page
    (so the caller sees progress). What cannot be indexed goes to `reject` (the dead-letter log) with why, before
    the checkpoint moves past it. Raises SourceError as the source does, _Stopped after the event being written when
    `stop` was requested."""
    stop = stop or _StopRequest()
    for page in _index_pages_within(source, checkpoint, name, counts, stdout, log, reject, stop):
        yield page
        if counts["emitted"] >= max_events:
            return


def _index_pages_within(source: Any, checkpoint: Checkpoint, name: str, counts: dict[str, int], stdout: TextIO,
                        log: Any, reject: Any, stop: _StopRequest) -> Iterator[None]:
    """_index_pages without max_events: page by page, each item through _index_one, the page checkpointed after."""
    bare_ids = not getattr(source, "serves_an_id_again_only_when_newer", False)
    for page in source.pages(checkpoint.position):
        counts["before_start"] += getattr(page, "before_start", 0)
        counts["duplicates"] += getattr(page, "repeated", 0)     # left out by the source (TAXII: read at its instant)
        for reason in page.skipped:
            counts["skipped"] += 1
            log(f"ERROR wia_events input={name}: {reason}")
        for record in getattr(page, "unreadable", ()):      # e.g. a Kafka message that is no JSON object: its value
            reject(record)
        for index, event in enumerate(page.events):
            if stop.requested:
                raise _Stopped
            stop.writing = True
            try:
                _index_one(index, event, checkpoint, name, bare_ids, counts, stdout, log, reject)
            finally:
                stop.writing = False
        stdout.flush()                      # Splunk has the page before the checkpoint moves
        checkpoint.save(page.position)
        if stop.requested:                  # asked during the page's last event: the page is whole and checkpointed
            raise _Stopped
        # a TAXII walk ends at the page holding objects, which counts what the walk holds in all (later pages too)
        counts["held"], counts["held_more"] = page.held, int(getattr(page, "held_more", False))
        yield None


def _index_one(index: int, event: Any, checkpoint: Checkpoint, name: str, bare_ids: bool, counts: dict[str, int],
               stdout: TextIO, log: Any, reject: Any) -> None:
    """One item of a page: written to Splunk, or rejected with why (the dead-letter log); remembered by its id."""
    from wia_security import validate_event

    if not isinstance(event, dict):
        counts["invalid"] += 1
        why = f"a JSON {type(event).__name__}, not a WIA event object"
        log(f"ERROR wia_events input={name} event #{index} of the page rejected: {why}")
        reject({"reason": why, "item": event})
        return
    event_id = str(event.get("id", ""))
    if event_id and checkpoint.seen(event, bare_ids=bare_ids):
        counts["duplicates"] += 1
        return
    result = validate_event(event)
    rendered = _event_xml(event, name) if result.valid else None
    if isinstance(rendered, str):
        stdout.write(rendered)
        counts["emitted"] += 1
    else:
        counts["invalid"] += 1
        why = rendered or "; ".join(f"{e.path}: {e.message}" for e in result.errors[:5])
        log(f"ERROR wia_events input={name} event_id={event_id or '?'} rejected: {why}")
        reject({"reason": str(why), "event": event})
    if event_id:
        checkpoint.remember(event)


def _event_xml(event: dict[str, Any], name: str) -> str | ValueError:
    """The <event> element for a valid event, or why Splunk cannot index it whole."""
    from wia_security import jsonio
    from wia_security.timeutil import parse_iso

    etype = event.get("type", "event")
    try:
        when = f"{parse_iso(event['timestamp']).timestamp():.3f}"
    except (ValueError, OverflowError, OSError) as exc:
        return ValueError(f"/timestamp: {event.get('timestamp')!r} cannot be an index time: {exc}")
    try:
        text = jsonio.dumps(event)
    except (ValueError, TypeError, RecursionError) as exc:
        # NaN or Infinity (Python's json and many producers write them; they are no JSON numbers), too deep: the
        # event cannot be written as JSON, and raising here ended every run at this event, the checkpoint before it
        try:
            found = _non_finite_number(event)
        except RecursionError:
            found = None
        return ValueError(f"{found[0]}: {found[1]!r} is not a JSON number (NaN and Infinity are not JSON)" if found
                          else f"the event cannot be written as JSON: {exc}")
    data = _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    size = len(data.encode("utf-8"))
    if size > MAX_EVENT_BYTES:
        return ValueError(f"the event is {size:,} bytes of JSON, over the sourcetype's TRUNCATE of {MAX_EVENT_BYTES:,} "
                          "(Splunk would index it cut short)")
    return (f'<event unbroken="1"><time>{when}</time><sourcetype>wia:security:{escape(etype)}</sourcetype>'
            f"<source>{escape(name)}</source><data>{escape(data)}</data><done/></event>")


def _non_finite_number(node: Any, path: str = "") -> tuple[str, float] | None:
    """(JSON pointer, value) of the first NaN or Infinity in `node`, or None."""
    if isinstance(node, float) and not math.isfinite(node):
        return path, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found = _non_finite_number(value, f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}")
        if found is not None:
            return found
    return None


def _params(node: Any) -> dict[str, str]:
    if node is None:
        return {}
    return {p.get("name"): (p.text or "").strip() for p in node.findall("param")}
