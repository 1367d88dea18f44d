"""The standard's JSON Schemas, bundled as package data and resolved offline by URI."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import urldefrag, urljoin

#: Event type -> schema file, as the standard names them.
EVENT_SCHEMA_FILES: dict[str, str] = {
    "alert": "alert.schema.json",
    "threat_intel": "threat-intel.schema.json",
    "vulnerability": "vulnerability.schema.json",
    "incident": "incident.schema.json",
    "network_event": "network-event.schema.json",
    "endpoint_event": "endpoint-event.schema.json",
    "auth_event": "auth-event.schema.json",
}
ENVELOPE_FILE = "wia-security-v1.schema.json"
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SCHEMA_FILES)


def load_schema(filename: str) -> dict[str, Any]:
    """One bundled schema document, parsed."""
    return json.loads(resources.files(__name__).joinpath(filename).read_text("utf-8"))


@lru_cache(maxsize=1)
def registry() -> dict[str, dict[str, Any]]:
    """Every bundled draft-07 schema by absolute URI; the envelope also under its file name's URI."""
    docs: dict[str, dict[str, Any]] = {}
    for filename in (ENVELOPE_FILE, *EVENT_SCHEMA_FILES.values()):
        doc = load_schema(filename)
        base = doc["$id"]
        docs[base] = doc
        docs[urljoin(base, filename)] = doc
    return docs


def schema_uri(event_type: str | None) -> str:
    """The absolute URI of the schema an event of this type is checked against (the envelope otherwise)."""
    filename = EVENT_SCHEMA_FILES.get(event_type or "", ENVELOPE_FILE)
    return urljoin("https://wia.live/security/v1/", filename)


def resolve(ref: str, base_uri: str) -> tuple[dict[str, Any] | bool, str, str]:
    """Resolve `ref` against `base_uri` -> (subschema, its document URI, its JSON pointer)."""
    absolute = urljoin(base_uri, ref)
    doc_uri, fragment = urldefrag(absolute)
    docs = registry()
    if doc_uri not in docs:
        raise KeyError(f"unresolvable $ref {ref!r} from {base_uri}")
    node: Any = docs[doc_uri]
    pointer = fragment or ""
    for part in filter(None, pointer.split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, doc_uri, pointer
