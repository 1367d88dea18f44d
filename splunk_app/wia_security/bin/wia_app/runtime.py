"""The Python the app needs, checked before anything of the core is imported.

Splunk Enterprise 10.2 and later run the input and the action on Python 3.13 (`python.required = 3.13`).
Earlier versions do not know `python.required` and follow `python.version = python3`, which AppInspect
requires and which gives Python 3.7 or 3.9 there: the vendored core (Python 3.11+) then failed to import
with a traceback (`dataclass() got an unexpected keyword argument 'slots'`), `--scheme` included, so
the input type never appeared and every alert result that triggered the action was lost.

This module is imported by the entry scripts before anything else of the app, so it must stay readable
by Python 3.7: no annotations, no syntax newer than 3.7.
"""
import json
import os
import sys

#: The oldest Python the vendored core runs on (pyproject.toml requires-python).
MINIMUM = (3, 11)


def too_old(version_info=None):
    """Why this Python cannot run the app, or None when it can."""
    running = tuple((version_info or sys.version_info)[:3])
    if running[:2] >= MINIMUM:
        return None
    return ("the WIA Security app needs Python %d.%d or later and Splunk runs it with Python %s (%s): use "
            "Splunk Enterprise 10.2 or later, which honours the app's python.required = 3.13"
            % (MINIMUM + (".".join(str(part) for part in running), sys.executable or "python")))


def refuse_old_input(stderr=None):
    """For the modular input: whether this Python is too old (then one ERROR line, which splunkd.log keeps)."""
    why = too_old()
    if why:
        (stderr or sys.stderr).write("ERROR wia_events: %s\n" % why)
    return bool(why)


def refuse_old_action(stdin=None, stderr=None):
    """For the alert action: whether this Python is too old. Then the alert payload goes to the dead-letter
    log with the reason (without its session key), as the action does with anything it cannot deliver, and
    one ERROR line to splunkd.log."""
    why = too_old()
    if not why:
        return False
    stdin, stderr = stdin or sys.stdin, stderr or sys.stderr
    stderr.write("ERROR wia_send_event: %s\n" % why)
    text = stdin.read()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        payload.pop("session_key", None)
        record = {"reason": why, "sid": payload.get("sid"), "search_name": payload.get("search_name"),
                  "configuration": payload.get("configuration"), "result": payload.get("result")}
        results = _all_results(payload)
        if results is not None:     # an alert triggered once: `result` is its first result only
            record["results"] = results
    else:
        record = {"reason": why, "payload": None if "session_key" in text else text}
    line = json.dumps(record, separators=(",", ":"), default=str)
    home = os.environ.get("SPLUNK_HOME")
    if home:
        path = os.path.join(home, "var", "log", "splunk", "wia_security_dead_letter.log")
        try:
            with open(path, "a", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(line + "\n")
            return True
        except OSError as exc:
            stderr.write("ERROR wia_send_event: cannot write the dead-letter log %s: %s\n" % (path, exc.strerror))
    stderr.write("ERROR wia_send_event dead_letter=%s\n" % line)
    return True


def _all_results(payload):
    """Every row of an alert triggered once, from its results_file (Splunk's gzipped results CSV), as the CSV has
    them; None for an alert triggered for each result (per_result_alert/, result_id: `result` is all of it) or a
    file that cannot be read."""
    import csv
    import gzip
    import io
    import zlib
    path = payload.get("results_file")
    if not isinstance(path, str) or not path:
        return None
    if path.replace("\\", "/").split("/")[-2:-1] == ["per_result_alert"] or payload.get("result_id") not in (None, ""):
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        csv.field_size_limit(64 * 1024 * 1024)      # a long _raw
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        return [dict((key, value) for key, value in row.items() if key and value) for row in reader]
    except (OSError, EOFError, ValueError, zlib.error, csv.Error):
        return None
