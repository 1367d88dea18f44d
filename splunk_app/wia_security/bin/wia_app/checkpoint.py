"""Per-input checkpoint: the position reached at the source plus recently emitted event ids (with their version).

Written atomically and durably (wia_security.outputs.replace_durably: a temporary file in the same folder,
fsynced, renamed over the checkpoint, the folder fsynced) after each page's events are written to Splunk, so a
restart or a power cut resumes at the last page Splunk received: nothing is lost, and ids already emitted are
skipped when a source hands back overlapping objects (TAXII's added_after boundary).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any

from wia_security.outputs import replace_durably
from wia_security.timeutil import parse_iso

#: Event ids remembered for de-duplication across pages and runs.
RECENT_IDS = 20_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)


class CheckpointError(Exception):
    """The checkpoint file cannot be read. The input stops instead of starting over from the beginning,
    which would index everything the source still holds a second time."""


def checkpoint_path(directory: str, input_name: str) -> str:
    """The checkpoint file of an input (its stanza name): wia_events_<sha-256 of the name, 32 hex digits>.json."""
    digest = hashlib.sha256(input_name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return os.path.join(directory, f"wia_events_{digest}.json")


class Checkpoint:
    def __init__(self, directory: str, input_name: str) -> None:
        self.path = checkpoint_path(directory, input_name)
        self.position: dict[str, Any] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        #: whether the input has a checkpoint (it has run before): start_time is read only when it has not
        self.found = os.path.exists(self.path)
        if self.found:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    saved = json.load(fh)
                position, recent = saved["position"], saved["recent_ids"]
                if not isinstance(position, dict) or not isinstance(recent, list):
                    raise ValueError("position must be an object and recent_ids a list")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CheckpointError(f"checkpoint {self.path} is unreadable ({type(exc).__name__}: {exc}); "
                                      "fix or delete it (deleting restarts from the source's beginning)") from None
            self.position = position
            self._recent = OrderedDict.fromkeys(str(i) for i in recent)

    def seen(self, event: dict[str, Any], *, bare_ids: bool = True) -> bool:
        """Whether this version of the event was emitted. A bare id, as a checkpoint of an earlier version holds
        them, stands for any version when `bare_ids` (a TAXII or Kafka source, which hand objects back by design
        or after a crash); not for the gateway's feed, which past the cursor serves an id already served only as
        a newer version: the update of an event indexed before the upgrade is indexed."""
        return version_key(event) in self._recent or (bare_ids and str(event.get("id", "")) in self._recent)

    def remember(self, event: dict[str, Any]) -> None:
        key = version_key(event)
        self._recent[key] = None
        self._recent.move_to_end(key)
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)

    def save(self, position: dict[str, Any]) -> None:
        self.position = dict(position)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        # the rename is durable only once the folder is fsynced: without it a power cut could bring back the
        # previous checkpoint (none after the first save), and the pages Splunk had since were indexed again
        replace_durably(self.path, json.dumps({"position": self.position, "recent_ids": list(self._recent)}))


def version_key(event: dict[str, Any]) -> str:
    """`<id>@<digest of its version>`: an event is remembered by version, since the gateway's feed serves a newer
    version of an event (a later timestamp, or an incident's later data.updated_at, as its store decides) again,
    and Splunk indexes it as an event of its own; the same version handed back (a page read again) is not. The
    version is the instants, as the store compares them, not their spelling: the same event sent again with
    `+00:00` for `Z` or `.000` added (another producer, a Kafka redelivery through another path) is the same
    version."""
    data = event.get("data")
    updated = data.get("updated_at") if event.get("type") == "incident" and isinstance(data, dict) else None
    version = f"{_instant(event.get('timestamp'))}|{_instant(updated)}".encode("utf-8", "surrogatepass")
    return f"{event.get('id')}@{hashlib.sha256(version).hexdigest()[:12]}"


def _instant(value: Any) -> str:
    """An RFC 3339 date-time as epoch microseconds; anything else (absent, not a date-time) as its text."""
    if isinstance(value, str):
        try:
            return str((parse_iso(value) - _EPOCH) // _ONE_US)
        except (ValueError, OverflowError):
            pass
    return repr(value)
