"""The index template the Elasticsearch/OpenSearch sink installs: ECS 9.4 mappings built from fields.csv.

`ecs-fields.csv` (package data, beside ECS's Apache-2.0 LICENSE.ecs.txt) is `Field,Type` for the
ECS field sets the WIA ECS converter writes (`FIELD_SETS`), minus reuse subtrees it never fills
(`EXCLUDED`): about a thousand fields, each typed as ECS says. `extract(reference_csv)` rebuilds it
from the full ECS fields.csv (a test checks the shipped file still matches). Types OpenSearch lacks
are translated (`OPENSEARCH_TYPES`). The custom namespace `wia.*` (WIA data ECS has no field for)
is one `flattened` (Elasticsearch) / `flat_object` (OpenSearch) field, so it never grows the mapping.
"""
from __future__ import annotations

import csv
import io
import re
from functools import lru_cache
from importlib import resources
from typing import Any

ECS_VERSION = "9.4.0"
#: ECS field sets (fields.csv `Field_Set`) the converter maps WIA events into.
FIELD_SETS = frozenset({"base", "event", "threat", "source", "destination", "network", "dns", "http", "tls", "url",
                        "process", "file", "registry", "dll", "user", "host", "agent", "vulnerability", "rule",
                        "observer", "related", "user_agent", "cloud", "ecs", "group", "error"})
#: Reused subtrees inside those sets that a WIA event never fills (kept out to stay under the field limit).
EXCLUDED = re.compile(r"^(threat\.enrichments\.|process\.(entry_leader|session_leader|group_leader|parent\.group_leader"
                      r"|previous|responsible|io|tty|env_vars)|user\.(changes|effective|target)\.|cloud\.(origin|target)\."
                      r"|observer\.(egress|ingress)\.)|\.(elf|macho|pe)\.|^(file|dll|process)\.x509\.")
#: Elasticsearch's default is 1000 mapped fields per index; ECS above plus dynamic extras need more.
TOTAL_FIELDS_LIMIT = 2000
#: The custom namespace for WIA data without an ECS field.
CUSTOM_NAMESPACE = "wia"
#: ECS types OpenSearch does not have, and what it uses instead.
OPENSEARCH_TYPES = {"match_only_text": "text", "constant_keyword": "keyword", "flattened": "flat_object"}
#: The template of the default index prefix; each prefix's template is named as the prefix (the sink's
#: `template_name`), and older releases named every prefix's template this.
TEMPLATE_NAME = "wia-security"
TEMPLATE_PRIORITY = 200
#: The template's `version`: raised with every change to its content (a test holds the content per version).
#: A template of the same name with this version or a higher one is left as it is (an operator's own, or a
#: newer release's); an older or unversioned one is replaced.
TEMPLATE_VERSION = 1
#: `_meta.description` of the templates this package writes (how an older release's shared one is recognised)
DESCRIPTION = "WIA Security events as ECS documents"


def extract(reference_csv: str) -> list[tuple[str, str]]:
    """(field, type) rows of the full ECS fields.csv that the template covers."""
    with open(reference_csv, newline="", encoding="utf-8") as fh:
        return [(row["Field"], row["Type"]) for row in csv.DictReader(fh)
                if row["Field_Set"] in FIELD_SETS and not EXCLUDED.search(row["Field"])]


@lru_cache(maxsize=1)
def bundled_fields() -> tuple[tuple[str, str], ...]:
    text = resources.files(__package__).joinpath("ecs-fields.csv").read_text("utf-8")
    return tuple((row["Field"], row["Type"]) for row in csv.DictReader(io.StringIO(text)))


def _leaf(kind: str, flavor: str) -> dict[str, Any]:
    if flavor == "opensearch":
        kind = OPENSEARCH_TYPES.get(kind, kind)
    return {"type": kind, "scaling_factor": 1000} if kind == "scaled_float" else {"type": kind}


def mappings(flavor: str = "elasticsearch", fields: tuple[tuple[str, str], ...] | None = None) -> dict[str, Any]:
    """`{"properties": ...}` for the ECS fields: dotted names nested as objects; a field under a
    non-object field (ECS's `.text` variants) becomes a multi-field of its parent."""
    root: dict[str, Any] = {}
    rows = sorted(fields if fields is not None else bundled_fields(), key=lambda r: r[0].count("."))
    for name, kind in rows:
        parts = name.split(".")
        node = root
        for i, part in enumerate(parts[:-1]):
            entry = node.setdefault(part, {"properties": {}})
            if "type" in entry and entry["type"] not in ("object", "nested"):
                entry.setdefault("fields", {})[".".join(parts[i + 1:])] = _leaf(kind, flavor)
                break
            node = entry.setdefault("properties", {})
        else:
            existing = node.get(parts[-1])
            if existing is not None and "properties" in existing:
                if kind == "nested":
                    existing["type"] = "nested"
                continue                          # an object ECS lists before its members
            node[parts[-1]] = _leaf(kind, flavor)
    root[CUSTOM_NAMESPACE] = {"type": "flat_object" if flavor == "opensearch" else "flattened"}
    return {"dynamic": True, "properties": root}


def index_template(patterns: list[str], flavor: str = "elasticsearch", *, data_stream: bool = False) -> dict[str, Any]:
    """The body of `PUT _index_template/<name>` (composable template, ES 7.8+ / OpenSearch 1+)."""
    body: dict[str, Any] = {
        "index_patterns": patterns,
        "priority": TEMPLATE_PRIORITY,
        "version": TEMPLATE_VERSION,
        "template": {"settings": {"index.mapping.total_fields.limit": TOTAL_FIELDS_LIMIT},
                     "mappings": mappings(flavor)},
        "_meta": {"description": DESCRIPTION, "ecs_version": ECS_VERSION},
    }
    if data_stream:
        body["data_stream"] = {}
    return body
