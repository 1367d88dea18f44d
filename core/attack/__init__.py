"""MITRE ATT&CK® Enterprise v18.1 as a compact in-memory table: lookups, tactic membership, revocations, enrichment.

© 2025 The MITRE Corporation. This work is reproduced and distributed with the permission of The
MITRE Corporation. See LICENSE.txt and NOTICE.md beside this file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator, MutableMapping

ATTACK_URL = "https://attack.mitre.org"


@dataclass(frozen=True, slots=True)
class Tactic:
    id: str
    shortname: str
    name: str

    @property
    def url(self) -> str:
        return f"{ATTACK_URL}/tactics/{self.id}"


@dataclass(frozen=True, slots=True)
class Technique:
    id: str
    name: str
    tactic_ids: tuple[str, ...]
    status: str                      # "active", "deprecated" or "revoked"
    revoked_by: str | None

    @property
    def is_subtechnique(self) -> bool:
        return "." in self.id

    @property
    def parent_id(self) -> str | None:
        return self.id.split(".")[0] if self.is_subtechnique else None

    @property
    def url(self) -> str:
        return f"{ATTACK_URL}/techniques/{self.id.replace('.', '/')}"


class AttackTable:
    """Every Enterprise technique (incl. revoked and deprecated ones) and the 14 tactics."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.version: str = raw["attack_version"]
        self.copyright: str = raw["copyright"]
        self.tactics: tuple[Tactic, ...] = tuple(Tactic(*row) for row in raw["tactics"])
        self._tactics: dict[str, Tactic] = {}
        for t in self.tactics:
            for key in (t.id, t.shortname, t.name.casefold()):
                self._tactics[key] = t
        by_short = {t.shortname: t.id for t in self.tactics}
        status = {"": "active", "d": "deprecated", "r": "revoked"}
        self._techniques: dict[str, Technique] = {
            tid: Technique(tid, name, tuple(by_short[s] for s in shorts), status[flag], revoked_by)
            for tid, name, shorts, flag, revoked_by in raw["techniques"]
        }
        self._by_name: dict[str, list[Technique]] = {}
        for tech in self._techniques.values():
            self._by_name.setdefault(tech.name.casefold(), []).append(tech)

    def __len__(self) -> int:
        return len(self._techniques)

    def __iter__(self) -> Iterator[Technique]:
        return iter(self._techniques.values())

    # Lookups read keys in any case and with blanks around them (ids pasted from a report or a CSV
    # cell), as the builders and the CLI do; what they return is spelled as ATT&CK spells it.

    def technique(self, technique_id: str) -> Technique | None:
        """A technique or sub-technique by id (T1059, t1059.001, " T1059.001 "), revoked ones included."""
        return self._techniques.get(technique_id.strip().upper()) if isinstance(technique_id, str) else None

    def tactic(self, key: str) -> Tactic | None:
        """A tactic by id (TA0002), shortname (privilege-escalation) or name (Privilege Escalation), in any case.

        A shortname may be written with underscores, as Sigma's tags do (attack.privilege_escalation).
        """
        if not isinstance(key, str):
            return None
        key = key.strip()
        return (self._tactics.get(key) or self._tactics.get(key.upper()) or self._tactics.get(key.casefold())
                or self._tactics.get(key.casefold().replace("_", "-")))

    def techniques_named(self, name: str) -> list[Technique]:
        """Techniques whose name is `name` (case-insensitive); active ones first.

        Sub-technique names repeat under several parents ("Cloud Accounts" is T1078.004, T1585.003 and
        T1586.003); ATT&CK's own "Parent: Sub" spelling ("Valid Accounts: Cloud Accounts") names one.
        """
        if not isinstance(name, str):
            return []
        key = name.strip().casefold()
        found = self._by_name.get(key)
        if found is None and ":" in key:
            parent_name, _, sub_name = key.partition(":")
            parents = {p.id for p in self._by_name.get(parent_name.strip(), ())}
            found = [x for x in self._by_name.get(sub_name.strip(), ()) if x.parent_id in parents]
        return sorted(found or (), key=lambda t: (t.status != "active", t.id))

    def techniques_in(self, tactic_key: str, *, include_inactive: bool = False) -> list[Technique]:
        """Techniques and sub-techniques that belong to a tactic, sorted by id."""
        tactic = self.tactic(tactic_key)
        if tactic is None:
            return []
        return [t for t in self._techniques.values()
                if tactic.id in t.tactic_ids and (include_inactive or t.status == "active")]

    def subtechniques(self, parent_id: str) -> list[Technique]:
        """The sub-techniques of a technique, revoked and deprecated ones included, sorted by id."""
        prefix = parent_id.strip().upper() + "." if isinstance(parent_id, str) else None
        return [t for t in self._techniques.values() if prefix and t.id.startswith(prefix)]

    def replacement(self, technique_id: str) -> Technique | None:
        """Follows revoked-by links to the technique that replaces a revoked one (None unless revoked)."""
        tech = self.technique(technique_id)
        if tech is None or tech.status != "revoked":
            return None
        seen: set[str] = set()
        while tech is not None and tech.status == "revoked" and tech.revoked_by and tech.id not in seen:
            seen.add(tech.id)
            tech = self.technique(tech.revoked_by)
        return tech if tech is not None and tech.status != "revoked" else None

    def in_tactic(self, technique_id: str, tactic: str) -> bool:
        """Whether a technique belongs to a tactic given by id, shortname or name."""
        tech, tac = self.technique(technique_id), self.tactic(tactic)
        return tech is not None and tac is not None and tac.id in tech.tactic_ids


@lru_cache(maxsize=1)
def table() -> AttackTable:
    """The bundled ATT&CK table (loaded once, on first use)."""
    raw = json.loads(resources.files(__name__).joinpath("enterprise-attack.json").read_text("utf-8"))
    return AttackTable(raw)


def enrich(event: Any) -> Any:
    """Fills missing `mitre.*_name` fields (and a missing tactic when the technique has one tactic).

    Works on an Event or a plain dict; returns what it was given. Names already present are kept
    (a mismatch is a validation warning, not something to overwrite silently). Ids it recognizes are
    written as the schema wants them: a tactic given by shortname or name ("privilege-escalation",
    "Execution") becomes its id (TA0004, TA0002), and " t1059.001" becomes "T1059.001".
    """
    mitre = event.get("mitre") if isinstance(event, dict) else getattr(event, "mitre", None)
    if mitre is None:
        return event
    if isinstance(mitre, dict):
        _enrich_mapping(mitre)
    else:
        values = {k: getattr(mitre, k) for k in _MITRE_KEYS if getattr(mitre, k, None) is not None}
        _enrich_mapping(values)
        for k, v in values.items():
            setattr(mitre, k, v)
    return event


_MITRE_KEYS = ("tactic", "tactic_name", "technique", "technique_name", "sub_technique", "sub_technique_name")


def _enrich_mapping(mitre: MutableMapping[str, Any]) -> None:
    t = table()
    technique, sub = t.technique(mitre.get("technique")), t.technique(mitre.get("sub_technique"))
    # The schema takes ids only as ATT&CK spells them (^TA\d{4}$, ^T\d{4}...): naming a recognized
    # tactic while leaving "execution" in place gave an event that fails validation at /mitre/tactic.
    if technique is not None:
        mitre["technique"] = technique.id
    if sub is not None:
        mitre["sub_technique"] = sub.id
    if (given := t.tactic(mitre.get("tactic"))) is not None:
        mitre["tactic"] = given.id
    if technique and "technique_name" not in mitre:
        mitre["technique_name"] = technique.name
    if sub and "sub_technique_name" not in mitre:
        mitre["sub_technique_name"] = sub.name
    if "tactic" not in mitre:
        found = technique or sub
        tactic_ids = found.tactic_ids if found is not None else ()
        if len(tactic_ids) == 1:
            mitre["tactic"] = tactic_ids[0]
    tactic = t.tactic(mitre["tactic"]) if isinstance(mitre.get("tactic"), str) else None
    if tactic and "tactic_name" not in mitre:
        mitre["tactic_name"] = tactic.name
