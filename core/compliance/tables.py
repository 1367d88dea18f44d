"""The compliance data files as lookup tables: framework control lists and the event/ATT&CK -> control mappings.

Every table is a data file under `data/` that names its source (see each file's `source` block and
`docs/compliance.md`). Loaded once, lazily; standard library only.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from ..attack import table as attack_table
from ..errors import WiaError

#: framework id -> data file with its control list
FRAMEWORK_FILES: dict[str, str] = {
    "nist-csf-2.0": "nist-csf-2.0.json",
    "nist-sp800-53r5": "nist-sp800-53r5.json",
    "cis-v8": "cis-controls-v8.json",
    "iso27001-2022": "iso27001-2022.json",
}
FRAMEWORK_IDS: tuple[str, ...] = tuple(FRAMEWORK_FILES)
EVENT_TYPE_FILE = "event-type-controls.json"
TACTIC_FILE = "attack-tactic-controls.json"
CTID_FILE = "attack-to-nist-sp800-53r5.ctid.tsv"


class UnknownFrameworkError(WiaError, KeyError):
    """A framework id that has no control list here (`args[0]` is the id as given)."""

    def __init__(self, framework_id: object) -> None:
        self.framework_id = framework_id
        self.known = FRAMEWORK_IDS
        super().__init__(framework_id)

    def __str__(self) -> str:
        return f"unknown framework {self.framework_id!r}; known: {', '.join(self.known)}"


def check_framework(framework_id: object) -> str:
    """The id itself when it names a framework; UnknownFrameworkError otherwise (any type, any text)."""
    if not isinstance(framework_id, str) or framework_id not in FRAMEWORK_FILES:
        raise UnknownFrameworkError(framework_id)
    return framework_id


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("data", name).read_text("utf-8")


@dataclass(frozen=True)
class Framework:
    id: str
    name: str
    version: str
    source: dict[str, Any]
    controls: dict[str, str | None]      # control id -> title (None when the file lists the id only)

    def __contains__(self, control_id: str) -> bool:
        return control_id in self.controls


def _csf(raw: dict[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for cat, info in raw["categories"].items():
        for n in info["numbers"]:
            cid = f"{cat}-{n:02d}"
            out[cid] = raw["statements"].get(cid) or f"{info['title']} ({cat})"
    return out


def _sp800_53(raw: dict[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for fam, info in raw["families"].items():
        for n in range(1, info["last"] + 1):
            if n not in info["withdrawn"]:
                out[f"{fam}-{n}"] = raw["titles"].get(f"{fam}-{n}")
    return out


def _cis(raw: dict[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for num, info in raw["controls"].items():
        for n in range(1, info["safeguards"] + 1):
            out[f"{num}.{n}"] = raw["titles"].get(f"{num}.{n}")
    return out


def framework(framework_id: str) -> Framework:
    """A framework's control list by id (UnknownFrameworkError, a KeyError, for an unknown id)."""
    return _framework(check_framework(framework_id))      # checked first: a list id is not even hashable


@lru_cache(maxsize=None)
def _framework(framework_id: str) -> Framework:
    raw = json.loads(_read(FRAMEWORK_FILES[framework_id]))
    builders = {"nist-csf-2.0": _csf, "nist-sp800-53r5": _sp800_53, "cis-v8": _cis,
                "iso27001-2022": lambda r: dict(r["controls"])}
    return Framework(raw["id"], raw["name"], raw["version"], raw["source"], builders[framework_id](raw))


@dataclass(frozen=True)
class Rule:
    """One event-type rule: `when` conditions on the event, the controls it evidences, and why."""

    when: dict[str, Any]
    controls: dict[str, tuple[str, ...]]
    why: str

    def label(self) -> str:
        """"event:incident data.status=closed", "event:incident has data.lessons_learned",
        "event:incident some data.response_actions[] action=collect_forensics status=completed" (cached)."""
        cached = _LABELS.get(id(self))
        if cached is None:
            parts = [str(self.when.get("type"))]
            for key, value in self.when.items():
                if key == "has":
                    parts.append(f"has {value}")
                elif key.endswith(ITEM_SUFFIX):
                    parts.append(f"some {key} " + " ".join(f"{k}={'|'.join(map(str, v))}" for k, v in value.items()))
                elif key != "type":
                    parts.append(f"{key}={'|'.join(map(str, value))}")
            cached = _LABELS[id(self)] = "event:" + " ".join(parts)
        return cached

    def matches(self, event: dict[str, Any]) -> bool:
        for key, expected in self.when.items():
            if key == "type":
                if event.get("type") != expected:
                    return False
            elif key == "has":
                if _dig(event, expected) in (None, "", [], {}):
                    return False
            elif key.endswith(ITEM_SUFFIX):
                if not _some_item(_dig(event, key[: -len(ITEM_SUFFIX)]), expected):
                    return False
            elif not _one_of(_dig(event, key), expected):
                return False
        return True


#: A `when` key ending so ("data.response_actions[]") asks for some object in that array whose fields each
#: hold one of the values given ({"action": [...], "status": ["completed"]}).
ITEM_SUFFIX = "[]"


def _some_item(items: Any, conditions: dict[str, list[Any]]) -> bool:
    return isinstance(items, list) and any(
        isinstance(item, dict) and all(_one_of(item.get(name), values) for name, values in conditions.items())
        for item in items)


def _one_of(value: Any, expected: list[Any]) -> bool:
    """`value in expected` without Python's 1 == True: a status 1 is not the boolean true."""
    return any(value == e and type(value) is type(e) for e in expected)


_LABELS: dict[int, str] = {}   # rules live for the process (lru_cache), so their ids are stable


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


@lru_cache(maxsize=1)
def event_rules() -> tuple[Rule, ...]:
    raw = json.loads(_read(EVENT_TYPE_FILE))
    return tuple(Rule(r["when"], {fw: tuple(ids) for fw, ids in r["controls"].items()}, r["why"]) for r in raw["rules"])


@lru_cache(maxsize=1)
def rule_reasons() -> dict[str, str]:
    """Rule label -> the rule's `why` (rules with one label: their whys joined), to say why a control is evidenced."""
    out: dict[str, str] = {}
    for rule in event_rules():
        out[rule.label()] = f"{out[rule.label()]}; {rule.why}" if rule.label() in out else rule.why
    return out


@lru_cache(maxsize=None)
def rules_for_type(event_type: Any) -> tuple[Rule, ...]:
    """The event-type rules that can match an event of this type (index over `event_rules()`)."""
    return tuple(r for r in event_rules() if r.when.get("type") == event_type) if isinstance(event_type, str) else ()


@lru_cache(maxsize=1)
def tactic_controls() -> dict[str, dict[str, tuple[str, ...]]]:
    """Tactic id -> framework id -> controls (project judgement; see the data file)."""
    raw = json.loads(_read(TACTIC_FILE))
    return {tid: {fw: tuple(v) for fw, v in row.items() if fw in FRAMEWORK_FILES}
            for tid, row in raw["tactics"].items()}


@dataclass
class CtidTable:
    """The CTID ATT&CK -> SP 800-53 rows, expanded against ATT&CK v18.1 and the 800-53 control list."""

    by_technique: dict[str, set[str]] = field(default_factory=dict)
    rows: int = 0
    rows_without_technique: list[str] = field(default_factory=list)   # patterns matching no v18.1 technique
    rows_without_control: list[str] = field(default_factory=list)     # control patterns matching no control


@lru_cache(maxsize=1)
def ctid_table() -> CtidTable:
    attack_ids = [t.id for t in attack_table() if t.status != "revoked"]
    control_ids = list(framework("nist-sp800-53r5").controls)
    out = CtidTable()
    lines = [line for line in _read(CTID_FILE).splitlines() if line and not line.startswith("#")]
    for row in csv.DictReader(lines, delimiter="\t"):
        out.rows += 1
        tech_re = re.compile(row["technique"])
        ctl_re = re.compile(row["controls"])
        techniques = [t for t in attack_ids if tech_re.fullmatch(t)]
        controls = {c for c in control_ids if ctl_re.fullmatch(c)}
        if not techniques:
            out.rows_without_technique.append(f"{row['mitigation']} {row['technique']}")
        if not controls:
            out.rows_without_control.append(f"{row['mitigation']} {row['controls']}")
        for tech in techniques:
            out.by_technique.setdefault(tech, set()).update(controls)
    return out


def in_scope(framework_id: str) -> set[str]:
    """Every control an event-type rule can evidence for a framework (the coverage denominator).

    The CTID and tactic tables are left out: a technique seen makes its controls relevant, it never
    evidences them (see `technique_controls`)."""
    check_framework(framework_id)
    ids: set[str] = set()
    for rule in event_rules():
        ids.update(rule.controls.get(framework_id, ()))
    return ids


def technique_controls(framework_id: str) -> set[str]:
    """Every control the ATT&CK tables (CTID for SP 800-53, tactic table) can make relevant for a framework."""
    check_framework(framework_id)
    ids: set[str] = set()
    for row in tactic_controls().values():
        ids.update(row.get(framework_id, ()))
    if framework_id == "nist-sp800-53r5":
        for controls in ctid_table().by_technique.values():
            ids.update(controls)
    return ids
