"""The "Send as WIA event" custom alert action.

Splunk runs `bin/wia_send_event.py --execute` with the alert payload as JSON on stdin
(configuration = the action's param.*, result = the first result row, results_file = the gzipped CSV
of every result row the action is given, plus sid, search_name, server_uri, session_key). Each row of
results_file (an alert triggered once: all its results; for each result: that one) becomes one WIA alert
(id derived from the search id and the row, so a re-run of the same alert does not create a second
incident where the destination de-duplicates by event id) and goes to the destination named in
wia_security.conf through the vendored wia_security.connectors sink for its URL scheme. Without a
readable results_file, `result` alone. Exit 0 = every row delivered (or already there); exit 2 = not:
the reason goes to stderr (splunkd.log) and the event to the dead-letter log, so nothing is lost silently.
"""
from __future__ import annotations

import csv
import gzip
import io
import ipaddress
import json
import re
import sys
import uuid
import zlib
from typing import Any, Callable, TextIO

from .dead_letter import dead_letter as write_dead_letter
from .redact import Redactor, carries_userinfo
from .splunkd import Splunkd, SplunkdError
from .tls_setting import tls_verify_problem, verify_tls

#: Namespace for the deterministic event ids of alert results.
RESULT_NAMESPACE = uuid.UUID("8d3c1c62-4f7e-4a55-9a53-2b1f0f2e7a10")
#: CIM severity / ES urgency words -> a WIA severity inside that word's band (severity.py bands).
SEVERITY_WORDS = {"informational": 0, "info": 0, "low": 2, "medium": 4, "high": 6, "critical": 8}
CATEGORIES = ("malware", "intrusion", "policy", "reconnaissance", "other")
_HASH = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")
#: Splunk's results CSV keeps a multivalue field's values in the column __mv_<field> as $v1$;$v2$ ("$" doubled).
_MV_PREFIX = "__mv_"
_MV_VALUE = re.compile(r"\$((?:[^$]|\$\$)*)\$")
#: Largest CSV field read from results_file (a long _raw): Python's csv stops at 128 KiB by default.
MAX_CSV_FIELD = 64 * 1024 * 1024


def main(argv: list[str], stdin: TextIO = sys.stdin, stderr: TextIO = sys.stderr) -> int:
    if argv[1:2] != ["--execute"]:
        stderr.write("FATAL wia_send_event: run by Splunk with --execute and the alert payload on stdin\n")
        return 2
    try:
        payload = json.loads(stdin.read())
    except (ValueError, RecursionError) as exc:
        stderr.write(f"FATAL wia_send_event: the alert payload is not JSON: {exc}\n")
        return 2
    return execute(payload, stderr)


def execute(payload: Any, stderr: TextIO) -> int:
    """Builds the alert, delivers it, and says what happened; every message goes through the redactor
    (the session key and the destination's secret never reach splunkd.log)."""
    from wia_security.connectors import open_sink
    from wia_security.errors import WiaError

    redact = Redactor()

    def log(line: str) -> None:
        stderr.write(redact(line) + "\n")

    if not isinstance(payload, dict):
        log(f"FATAL wia_send_event: the alert payload must be a JSON object, not {type(payload).__name__}")
        return 2
    redact.add(str(payload.get("session_key") or ""))
    sid = payload.get("sid")
    for key in ("configuration", "result"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            log(f"ERROR wia_send_event sid={sid}: the payload's {key!r} must be a JSON object, "
                f"not {type(payload[key]).__name__}")
            dead_letter({"reason": f"payload {key} is not an object", "result": payload.get("result")}, log, redact)
            return 2
    config = payload.get("configuration") or {}
    destination = str(config.get("destination") or "default").strip()
    rows, unread = result_rows(payload)
    if unread:      # the rows past the first cannot be known, so not kept: said, and the run is not a success
        log(f"ERROR wia_send_event sid={sid}: {unread}; only the payload's first result is sent")
    events: list[dict[str, Any]] = []
    refused = 0
    for row in rows:
        try:
            events.append(result_to_alert({**payload, "result": row}))
        except (WiaError, ValueError, TypeError, OverflowError) as exc:
            reason = f"the result does not make a valid WIA alert: {exc}"
            log(f"ERROR wia_send_event sid={sid}: {reason}")
            dead_letter({"reason": reason, "result": row}, log, redact)
            refused += 1
    if not events:
        return 2
    try:
        splunkd = Splunkd(str(payload["server_uri"]), str(payload["session_key"]))
        settings = splunkd.conf_stanza("wia_security", f"destination:{destination}")
        url = settings.get("url", "").strip()
        if not url:
            raise SplunkdError(f"destination {destination!r} has no url; set it on the setup page", endpoint="configs/conf-wia_security")
        if carries_userinfo(url):
            # A secret in wia_security.conf is stored in plain text: refuse it, and never repeat it.
            raise SplunkdError(f"destination {destination!r} url carries user:password; remove them and store the "
                               "secret in storage/passwords through the setup page", endpoint="configs/conf-wia_security")
        problem = tls_verify_problem(settings)
        if problem:
            raise SplunkdError(f"destination {destination!r}: {problem}", endpoint="configs/conf-wia_security")
        secret = splunkd.password(settings["credential"]) if settings.get("credential") else None
    except (SplunkdError, KeyError) as exc:
        log(f"ERROR wia_send_event sid={sid} destination={destination}: {exc}")
        for event in events:
            dead_letter({"reason": f"destination {destination!r} not usable: {exc}", "event": event}, log, redact)
        return 2
    redact.add(secret)
    options: dict[str, Any] = {"tls_verify": verify_tls(settings)}
    if secret is not None:
        options["token"] = secret
    try:
        with open_sink(url, **options) as sink:
            report = sink.send(events)
            report.merge(sink.flush())
    except Exception as exc:   # noqa: BLE001 - whatever the connector raises, the events go to the dead letters
        reason = str(exc) if isinstance(exc, WiaError) else f"{type(exc).__name__}: {exc}"
        for event in events:
            log(f"ERROR wia_send_event event_id={event['id']} destination={destination}: {reason}")
            dead_letter({"reason": reason, "event": event}, log, redact)
        return 2
    for rejected in report.failed:
        event = rejected.event if isinstance(rejected.event, dict) else events[0] if len(events) == 1 else rejected.event
        event_id = event.get("id") if isinstance(event, dict) else "?"
        log(f"ERROR wia_send_event event_id={event_id} destination={destination}: {rejected.reason}")
        dead_letter({"reason": rejected.reason, "event": event}, log, redact)
    ids = events[0]["id"] if len(events) == 1 else f"{events[0]['id']} and {len(events) - 1} more"
    log(f"{'ERROR' if report.failed or refused or unread else 'INFO'} wia_send_event event_id={ids} "
        f"destination={destination} results={len(rows)} delivered={report.delivered} duplicates={report.duplicates}"
        f" failed={len(report.failed)} refused={refused}")
    return 2 if report.failed or refused or unread else 0


def result_rows(payload: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The result rows the action was given: every row of `results_file` (Splunk's gzipped results CSV; an alert
    triggered once gets all its results there and only the first in `result`), else `[result]`. An alert triggered
    for each result runs the action once per result, its results_file (per_result_alert/tmp_<n>.csv.gz; a
    `result_id` from newer Splunk) holding that one: `[result]`, as before. With a results_file that cannot be
    read, `[result]` and why."""
    first = payload.get("result") or {}
    path = payload.get("results_file")
    if not isinstance(path, str) or not path or _per_result(payload, path):
        return [first], None
    try:
        rows = read_results_file(path)
    except (OSError, EOFError, zlib.error, csv.Error, UnicodeDecodeError) as exc:
        return [first], f"the results file {path} cannot be read ({type(exc).__name__}: {exc})"
    return (rows or [first]), None


def _per_result(payload: dict[str, Any], path: str) -> bool:
    """Whether Splunk ran the action for one result of an alert triggered for each result."""
    folder = path.replace("\\", "/").rstrip("/").rsplit("/", 2)[-2:-1]
    return folder == ["per_result_alert"] or payload.get("result_id") not in (None, "")


def read_results_file(path: str) -> list[dict[str, Any]]:
    """The rows of a Splunk results CSV (gzipped, or plain), each a dict as the payload's `result` gives one: a
    multivalue field as a list of its values (from its __mv_ column), empty fields and __mv_ columns left out."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    previous = csv.field_size_limit(MAX_CSV_FIELD)
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        rows: list[dict[str, Any]] = []
        for record in reader:
            row: dict[str, Any] = {}
            for key, value in record.items():
                if key is None or key.startswith(_MV_PREFIX) or value in (None, ""):
                    continue            # None: values past the header's columns (a ragged line)
                values = _mv_values(record.get(_MV_PREFIX + key))
                row[key] = values if len(values) > 1 else value
            rows.append(row)
        return rows
    finally:
        csv.field_size_limit(previous)


def _mv_values(encoded: str | None) -> list[str]:
    """The values of a results CSV __mv_ column ($a$;$b$, "$" doubled inside a value)."""
    return [v.replace("$$", "$") for v in _MV_VALUE.findall(encoded or "")]


def result_to_alert(payload: dict[str, Any]) -> dict[str, Any]:
    """One alert result (payload["result"]) as a valid WIA alert dict."""
    from wia_security import AlertBuilder
    from wia_security.timeutil import from_epoch_ms

    config = payload.get("configuration") or {}
    row = {str(k): v for k, v in (payload.get("result") or {}).items() if v not in (None, "", [])}
    # A multivalue field comes as a JSON array: context fields take its first value, indicators all.
    result = {k: _single(v) for k, v in row.items()}
    search_name = _first(payload.get("search_name")) or "Splunk alert"
    sid = str(payload.get("sid") or "")
    row_key = json.dumps(row, sort_keys=True, default=str)
    builder = (AlertBuilder()
               .id(str(uuid.uuid5(RESULT_NAMESPACE, f"{sid}\n{row_key}")))
               .title(_first(config.get("title"), result.get("signature"), search_name)[:512])
               .source("siem", "Splunk", vendor="Splunk")
               .severity(_severity(result, config))
               .category(_category(result, config))
               .detection_rule(id=search_name, name=search_name))
    description = _first(config.get("description"), result.get("description"))
    if description:
        builder.description(description)
    if "_time" in result:
        try:
            builder.timestamp(from_epoch_ms(float(result["_time"]) * 1000))
        except (ValueError, TypeError, OverflowError, OSError):   # not epoch seconds, or out of range
            pass
    technique = _first(result.get("mitre_technique_id"), config.get("mitre_technique"))
    if technique:
        builder.mitre(technique.split("|")[0].split(",")[0].strip())
    host = _first(result.get("dest_host"), result.get("dest"), result.get("host"))
    # CIM fills a field it cannot extract with "unknown" (or a host name lands in *_ip): such a value is no
    # address, and the builder refuses it, which would cost the whole alert; the value stays in _raw
    dest_ip, src_ip = _address(row.get("dest_ip")), _address(row.get("src_ip"))
    if host or dest_ip:
        builder.host(hostname=host, ip=dest_ip)
    if src_ip or dest_ip:
        builder.network(src_ip=src_ip, dst_ip=dest_ip, src_port=_port(result.get("src_port")),
                        dst_port=_port(result.get("dest_port")))
    user = _first(result.get("user"), result.get("src_user"))
    if user:
        builder.user(name=user)
    for field, kind in (("src_ip", "ip"), ("dest_ip", "ip"), ("url", "url"), ("domain", "domain"),
                        ("file_hash", "hash"), ("file_name", "file"), ("sender", "email")):
        for value in _values(row.get(field)):
            if (kind != "hash" or _HASH.match(value)) and (kind != "ip" or _address(value, networks=True)):
                builder.indicator(kind, value, context=f"Splunk field {field}")
    if result.get("_raw"):
        builder.raw(result["_raw"])
    if sid:
        builder.correlation_id(sid).label("splunk_sid", sid)
    if payload.get("results_link"):
        builder.label("splunk_results_link", payload["results_link"])
    builder.label("splunk_search_name", search_name).tags("splunk")
    return builder.build().to_dict()


def dead_letter(record: dict[str, Any], log: Callable[[str], None], redact: Redactor) -> None:
    """Appends the undelivered event (or the refused result) and the reason to the dead-letter log
    (dead_letter.py: $SPLUNK_HOME/var/log/splunk/wia_security_dead_letter.log, else splunkd.log)."""
    write_dead_letter(record, log, redact, "wia_send_event")


def _single(value: Any) -> Any:
    """A multivalue field's first value (Splunk sends multivalue fields as JSON arrays)."""
    if isinstance(value, list):
        return next((v for v in value if isinstance(v, (str, int, float)) and v != ""), None)
    return value


def _values(value: Any) -> list[str]:
    """Every non-empty string of a field, single or multivalue."""
    items = value if isinstance(value, list) else [value]
    return list(dict.fromkeys(v.strip() for v in items if isinstance(v, str) and v.strip()))


def _first(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _address(value: Any, *, networks: bool = False) -> str | None:
    """The field's first value that is an IP address (or, for an indicator, a CIDR range), else None."""
    for text in _values(value):
        try:
            (ipaddress.ip_network if networks and "/" in text else ipaddress.ip_address)(text)
        except ValueError:
            continue
        return text
    return None


def _port(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and 0 <= number <= 65535 else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _severity(result: dict[str, Any], config: dict[str, Any]) -> float:
    for value in (result.get("severity_id"), result.get("severity"), result.get("urgency"), config.get("severity")):
        if value in (None, ""):
            continue
        word = str(value).strip().lower()
        if word in SEVERITY_WORDS:
            return SEVERITY_WORDS[word]
        try:
            number = float(word)
        except ValueError:
            continue
        if 0 <= number <= 10:
            return int(number) if number.is_integer() else number
    return 5


def _category(result: dict[str, Any], config: dict[str, Any]) -> str:
    for value in (result.get("category"), config.get("category")):
        if isinstance(value, str) and value.strip().lower() in CATEGORIES:
            return value.strip().lower()
    return "other"
