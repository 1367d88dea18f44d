"""The "Send as WIA event" custom alert action.

Splunk runs `bin/wia_send_event.py --execute` with the alert payload as JSON on stdin
(configuration = the action's param.*, result = the triggering result row, plus sid, search_name,
server_uri, session_key). The result becomes one WIA alert (id derived from the search id and the
row, so a re-run of the same alert does not create a second incident where the destination
de-duplicates by event id) and goes to the destination named in wia_security.conf through the
vendored wia_security.connectors sink for its URL scheme. Exit 0 = delivered (or already there);
exit 2 = not delivered: the reason goes to stderr (splunkd.log) and the event to the dead-letter
log, so nothing is lost silently.
"""
from __future__ import annotations

import json
import os
import re
import sys
import uuid
from typing import Any, TextIO

from .splunkd import Splunkd, SplunkdError

#: Namespace for the deterministic event ids of alert results.
RESULT_NAMESPACE = uuid.UUID("8d3c1c62-4f7e-4a55-9a53-2b1f0f2e7a10")
#: CIM severity / ES urgency words -> a WIA severity inside that word's band (severity.py bands).
SEVERITY_WORDS = {"informational": 0, "info": 0, "low": 2, "medium": 4, "high": 6, "critical": 8}
CATEGORIES = ("malware", "intrusion", "policy", "reconnaissance", "other")
_HASH = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")


def main(argv: list[str], stdin: TextIO = sys.stdin, stderr: TextIO = sys.stderr) -> int:
    if argv[1:2] != ["--execute"]:
        stderr.write("FATAL wia_send_event: run by Splunk with --execute and the alert payload on stdin\n")
        return 2
    try:
        payload = json.loads(stdin.read())
    except ValueError as exc:
        stderr.write(f"FATAL wia_send_event: the alert payload is not JSON: {exc}\n")
        return 2
    return execute(payload, stderr)


def execute(payload: dict[str, Any], stderr: TextIO) -> int:
    from wia_security.connectors import open_sink
    from wia_security.errors import WiaError

    config = payload.get("configuration") or {}
    destination = (config.get("destination") or "default").strip()
    try:
        event = result_to_alert(payload)
    except WiaError as exc:
        stderr.write(f"ERROR wia_send_event sid={payload.get('sid')}: the result does not make a valid WIA alert: {exc}\n")
        return 2
    try:
        splunkd = Splunkd(payload["server_uri"], payload["session_key"])
        settings = splunkd.conf_stanza("wia_security", f"destination:{destination}")
        url = settings.get("url", "").strip()
        if not url:
            raise SplunkdError(f"destination {destination!r} has no url; set it on the setup page", endpoint="configs/conf-wia_security")
        secret = splunkd.password(settings["credential"]) if settings.get("credential") else None
    except (SplunkdError, KeyError) as exc:
        stderr.write(f"ERROR wia_send_event sid={payload.get('sid')} destination={destination}: {exc}\n")
        dead_letter(event, f"destination {destination!r} not usable: {exc}")
        return 2
    options: dict[str, Any] = {"tls_verify": settings.get("verify_tls", "true").lower() not in ("0", "false", "no")}
    if secret is not None:
        options["token"] = secret
    try:
        with open_sink(url, **options) as sink:
            report = sink.send([event])
            report.merge(sink.flush())
    except WiaError as exc:
        stderr.write(f"ERROR wia_send_event sid={payload.get('sid')} destination={destination}: {exc}\n")
        dead_letter(event, str(exc))
        return 2
    if report.failed:
        for rejected in report.failed:
            stderr.write(f"ERROR wia_send_event event_id={event['id']} destination={destination}: {rejected.reason}\n")
            dead_letter(event, rejected.reason)
        return 2
    stderr.write(f"INFO wia_send_event event_id={event['id']} destination={destination} "
                 f"delivered={report.delivered} duplicates={report.duplicates}\n")
    return 0


def result_to_alert(payload: dict[str, Any]) -> dict[str, Any]:
    """One alert result (payload["result"]) as a valid WIA alert dict."""
    from wia_security import AlertBuilder
    from wia_security.timeutil import from_epoch_ms

    config = payload.get("configuration") or {}
    result = {k: v for k, v in (payload.get("result") or {}).items() if v not in (None, "")}
    search_name = payload.get("search_name") or "Splunk alert"
    sid = str(payload.get("sid") or "")
    row_key = json.dumps(result, sort_keys=True, default=str)
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
        except ValueError:
            pass
    technique = _first(result.get("mitre_technique_id"), config.get("mitre_technique"))
    if technique:
        builder.mitre(technique.split("|")[0].split(",")[0].strip())
    host = _first(result.get("dest_host"), result.get("dest"), result.get("host"))
    dest_ip, src_ip = result.get("dest_ip"), result.get("src_ip")
    if host or dest_ip:
        builder.host(hostname=host, ip=dest_ip)
    if src_ip or dest_ip:
        builder.network(src_ip=src_ip, dst_ip=dest_ip, src_port=_int(result.get("src_port")),
                        dst_port=_int(result.get("dest_port")))
    user = _first(result.get("user"), result.get("src_user"))
    if user:
        builder.user(name=user)
    for field, kind in (("src_ip", "ip"), ("dest_ip", "ip"), ("url", "url"), ("domain", "domain"),
                        ("file_hash", "hash"), ("file_name", "file"), ("sender", "email")):
        value = result.get(field)
        if value and not (kind == "hash" and not _HASH.match(value)):
            builder.indicator(kind, value, context=f"Splunk field {field}")
    if result.get("_raw"):
        builder.raw(result["_raw"])
    if sid:
        builder.correlation_id(sid).label("splunk_sid", sid)
    if payload.get("results_link"):
        builder.label("splunk_results_link", payload["results_link"])
    builder.label("splunk_search_name", search_name).tags("splunk")
    return builder.build().to_dict()


def dead_letter(event: dict[str, Any], reason: str) -> None:
    """Appends the undelivered event and the reason to $SPLUNK_HOME/var/log/splunk (indexed into _internal)."""
    home = os.environ.get("SPLUNK_HOME")
    if not home:
        return
    path = os.path.join(home, "var", "log", "splunk", "wia_security_dead_letter.log")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"reason": reason, "event": event}, separators=(",", ":")) + "\n")


def _first(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


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
