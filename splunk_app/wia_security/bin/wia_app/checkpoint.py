"""Per-input checkpoint: the position reached at the source plus recently emitted event ids.

Written atomically (temp file + os.replace) after each page's events are written to Splunk, so a
restart resumes at the last page Splunk received: nothing is lost, and ids already emitted are
skipped when a source hands back overlapping objects (TAXII's added_after boundary).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from typing import Any

#: Event ids remembered for de-duplication across pages and runs.
RECENT_IDS = 20_000


class Checkpoint:
    def __init__(self, directory: str, input_name: str) -> None:
        digest = hashlib.sha256(input_name.encode("utf-8")).hexdigest()[:32]
        self.path = os.path.join(directory, f"wia_events_{digest}.json")
        self.position: dict[str, Any] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as fh:
                saved = json.load(fh)
            self.position = saved.get("position", {})
            self._recent = OrderedDict.fromkeys(saved.get("recent_ids", []))

    def seen(self, event_id: str) -> bool:
        return event_id in self._recent

    def remember(self, event_id: str) -> None:
        self._recent[event_id] = None
        self._recent.move_to_end(event_id)
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)

    def save(self, position: dict[str, Any]) -> None:
        self.position = dict(position)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"position": self.position, "recent_ids": list(self._recent)}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
