"""The wia_events modular input, following Splunk's modular-input protocol.

`--scheme` prints the scheme; `--validate-arguments` reads <items> XML and exits 1 with an
<error><message> on bad arguments; with no argument it reads the <input> XML (server_uri,
session_key, checkpoint_dir, one <stanza>) and streams XML <event>s to stdout, one per WIA
event, with sourcetype wia:security:<type>, time = the event's timestamp and the event JSON as
data. Invalid events are not indexed as WIA events: they are logged (stderr goes to splunkd.log)
with the validation errors and counted; nothing is dropped silently.
"""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from typing import Any, TextIO
from xml.sax.saxutils import escape

from .checkpoint import Checkpoint, CheckpointError
from .pull import SourceError, open_source
from .redact import Redactor
from .splunkd import Splunkd, SplunkdError

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
        </args>
    </endpoint>
</scheme>
"""

_SECRET_PARAMS = ("password", "token", "api_key", "apikey", "secret")
#: props.conf TRUNCATE of every wia:security:* sourcetype (bytes): Splunk cuts a longer event there,
#: which would index broken JSON, so such an event is rejected with its size instead.
MAX_EVENT_BYTES = 1_048_576
#: Characters XML 1.0 does not allow in a document (lone surrogates, U+FFFE, U+FFFF). They can only
#: sit inside JSON strings, where the JSON escape \uXXXX says the same thing in plain ASCII.
_NOT_XML = re.compile(r"[\ud800-\udfff\ufffe\uffff]")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


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
        if key.lower() in _SECRET_PARAMS:
            return f"parameter {key!r} would store a secret in inputs.conf; store it in storage/passwords and name it in 'credential'"
    if "@" in url.split("://", 1)[1].split("/", 1)[0]:
        return "source_url must not carry user:password; use the 'credential' parameter"
    if params.get("stix_content", "wia") not in ("wia", "stix"):
        return "stix_content must be wia or stix"
    for key in ("page_size", "max_events"):
        if params.get(key) and not (_WHOLE_NUMBER.fullmatch(params[key]) and int(params[key]) >= 1):
            return f"{key} must be a whole number from 1 to 999999999, not {params[key][:40]!r}"
    return None


def run(name: str, params: dict[str, str], server_uri: str, session_key: str, checkpoint_dir: str,
        stdout: TextIO, stderr: TextIO) -> int:
    from wia_security import validate_event

    redact = Redactor(session_key)

    def log(line: str) -> None:     # stderr goes to splunkd.log: never a secret there
        stderr.write(redact(line) + "\n")

    problem = validate(params)
    if problem:
        log(f"ERROR wia_events input={name}: {problem}")
        return 2
    secret = None
    if params.get("credential"):
        try:
            secret = Splunkd(server_uri, session_key).password(params["credential"])
        except SplunkdError as exc:
            log(f"ERROR wia_events input={name}: {exc}")
            return 2
        redact.add(secret, params.get("username"))
    try:
        source = open_source(params["source_url"], secret=secret, username=params.get("username"),
                             verify_tls=_bool(params.get("verify_tls", "true")),
                             page_size=int(params.get("page_size") or 500), stix_content=params.get("stix_content") or "wia")
        checkpoint = Checkpoint(checkpoint_dir, name)
    except (SourceError, CheckpointError) as exc:
        log(f"ERROR wia_events input={name}: {exc}")
        return 2
    max_events = int(params.get("max_events") or 10_000)
    emitted = invalid = duplicates = skipped = 0
    stdout.write("<stream>")
    try:
        for page in source.pages(checkpoint.position):
            for reason in page.skipped:
                skipped += 1
                log(f"ERROR wia_events input={name}: {reason}")
            for index, event in enumerate(page.events):
                if not isinstance(event, dict):
                    invalid += 1
                    log(f"ERROR wia_events input={name} event #{index} of the page rejected: "
                        f"a JSON {type(event).__name__}, not a WIA event object")
                    continue
                event_id = str(event.get("id", ""))
                if event_id and checkpoint.seen(event_id):
                    duplicates += 1
                    continue
                result = validate_event(event)
                rendered = _event_xml(event, name) if result.valid else None
                if isinstance(rendered, str):
                    stdout.write(rendered)
                    emitted += 1
                else:
                    invalid += 1
                    why = rendered or "; ".join(f"{e.path}: {e.message}" for e in result.errors[:5])
                    log(f"ERROR wia_events input={name} event_id={event_id or '?'} rejected: {why}")
                if event_id:
                    checkpoint.remember(event_id)
            stdout.flush()                      # Splunk has the page before the checkpoint moves
            checkpoint.save(page.position)
            if emitted >= max_events:
                break
    except SourceError as exc:
        log(f"ERROR wia_events input={name}: {exc}; will resume from the last checkpoint")
        return 1
    finally:
        stdout.write("</stream>")
        stdout.flush()
        log(f"INFO wia_events input={name} emitted={emitted} invalid={invalid} duplicates={duplicates} skipped={skipped}")
    return 0


def _event_xml(event: dict[str, Any], name: str) -> str | ValueError:
    """The <event> element for a valid event, or why Splunk cannot index it whole."""
    from wia_security import jsonio
    from wia_security.timeutil import parse_iso

    etype = event.get("type", "event")
    try:
        when = f"{parse_iso(event['timestamp']).timestamp():.3f}"
    except (ValueError, OverflowError, OSError) as exc:
        return ValueError(f"/timestamp: {event.get('timestamp')!r} cannot be an index time: {exc}")
    data = _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", jsonio.dumps(event))
    size = len(data.encode("utf-8"))
    if size > MAX_EVENT_BYTES:
        return ValueError(f"the event is {size:,} bytes of JSON, over the sourcetype's TRUNCATE of {MAX_EVENT_BYTES:,} "
                          "(Splunk would index it cut short)")
    return (f'<event unbroken="1"><time>{when}</time><sourcetype>wia:security:{escape(etype)}</sourcetype>'
            f"<source>{escape(name)}</source><data>{escape(data)}</data><done/></event>")


def _params(node: Any) -> dict[str, str]:
    if node is None:
        return {}
    return {p.get("name"): (p.text or "").strip() for p in node.findall("param")}


def _bool(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "f", "n")
