"""Builds core/attack/enterprise-attack.json, the compact ATT&CK table, from ../shared/reference/attack.

Run from the repository root: python scripts/build_attack_table.py [REFERENCE_DIR]
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REF = ROOT.parent / "shared" / "reference" / "attack"


def build_table(ref: Path) -> dict[str, Any]:
    """The table as written to enterprise-attack.json (tests/core/test_attack_reference.py rebuilds it).

    The version, the mitre/cti commit and MITRE's copyright line come from the reference's SOURCE.md
    and LICENSE.txt: written here as literals, a table rebuilt from a newer ATT&CK kept saying 18.1.
    """
    tactics = json.loads((ref / "enterprise-tactics.json").read_text("utf-8"))
    techniques = json.loads((ref / "enterprise-techniques.json").read_text("utf-8"))
    source = (ref / "SOURCE.md").read_text("utf-8")
    return {
        "attack_version": _found(r"\|\s*ATT&CK version\s*\|\s*\*\*v(\d+(?:\.\d+)*)\*\*", source, ref / "SOURCE.md"),
        "domain": "enterprise-attack",
        "source": "mitre/cti " + _found(r"\|\s*commit\s*\|\s*`([0-9a-f]{40})`", source, ref / "SOURCE.md"),
        "copyright": _found(r'"(\u00a9 \d{4} The MITRE Corporation\.[^"]*)"', (ref / "LICENSE.txt").read_text("utf-8"),
                            ref / "LICENSE.txt"),
        # [id, shortname, name] in matrix order
        "tactics": [[t["id"], t["shortname"], t["name"]] for t in sorted(tactics, key=lambda t: t["matrix_order"])],
        # [id, name, [tactic shortnames], status, revoked_by]; status: "" active, "d" deprecated, "r" revoked
        "techniques": [
            [t["id"], t["name"], t["tactics"], "r" if t["revoked"] else ("d" if t["deprecated"] else ""),
             t["revoked_by"]]
            for t in sorted(techniques, key=lambda t: t["id"])
        ],
    }


def _found(pattern: str, text: str, where: Path) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"{where}: no match for {pattern!r}; the table needs it")
    return match.group(1)


def main(ref: Path = DEFAULT_REF) -> None:
    table = build_table(ref)
    out = ROOT / "core" / "attack"
    (out / "enterprise-attack.json").write_text(json.dumps(table, separators=(",", ":")) + "\n")
    shutil.copy(ref / "LICENSE.txt", out / "LICENSE.txt")
    print(f"wrote {len(table['techniques'])} techniques, {len(table['tactics'])} tactics")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_REF)
