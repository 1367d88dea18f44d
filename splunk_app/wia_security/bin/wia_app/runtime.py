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
