"""The app's dead-letter log: what the input or the action could not index or deliver, with the reason.

One JSON object per line in $SPLUNK_HOME/var/log/splunk/wia_security_dead_letter.log, which Splunk indexes into
_internal (searchable by admins by default, as splunkd.log). Where that file cannot be written, the record goes to
splunkd.log instead (`<component> dead_letter=<json>`): never dropped silently. Every line is masked first.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable

from .redact import Redactor

FILE_NAME = "wia_security_dead_letter.log"


def dead_letter(record: dict[str, Any], log: Callable[[str], None], redact: Redactor, component: str) -> None:
    line = redact(json.dumps(record, separators=(",", ":"), default=str))
    home = os.environ.get("SPLUNK_HOME")
    if home:
        path = os.path.join(home, "var", "log", "splunk", FILE_NAME)
        try:
            with open(path, "a", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(line + "\n")
            return
        except OSError as exc:
            log(f"ERROR {component}: cannot write the dead-letter log {path}: {exc.strerror}")
    log(f"ERROR {component} dead_letter={line}")
