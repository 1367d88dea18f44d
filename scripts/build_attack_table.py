"""Builds core/attack/enterprise-attack.json, the compact ATT&CK table, from ../shared/reference/attack.

Run from the repository root: python scripts/build_attack_table.py [REFERENCE_DIR]
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REF = ROOT.parent / "shared" / "reference" / "attack"


def build_table(ref: Path) -> dict[str, Any]:
    """The table as written to enterprise-attack.json (tests/core/test_attack_reference.py rebuilds it)."""
    tactics = json.loads((ref / "enterprise-tactics.json").read_text("utf-8"))
    techniques = json.loads((ref / "enterprise-techniques.json").read_text("utf-8"))
    return {
        "attack_version": "18.1",
        "domain": "enterprise-attack",
        "source": "mitre/cti 421deacb77191b38bdd1bf63268954e93da91365",
        "copyright": "\u00a9 2025 The MITRE Corporation. This work is reproduced and distributed with the "
                     "permission of The MITRE Corporation.",
        # [id, shortname, name] in matrix order
        "tactics": [[t["id"], t["shortname"], t["name"]] for t in sorted(tactics, key=lambda t: t["matrix_order"])],
        # [id, name, [tactic shortnames], status, revoked_by]; status: "" active, "d" deprecated, "r" revoked
        "techniques": [
            [t["id"], t["name"], t["tactics"], "r" if t["revoked"] else ("d" if t["deprecated"] else ""),
             t["revoked_by"]]
            for t in sorted(techniques, key=lambda t: t["id"])
        ],
    }


def main(ref: Path = DEFAULT_REF) -> None:
    table = build_table(ref)
    out = ROOT / "core" / "attack"
    (out / "enterprise-attack.json").write_text(json.dumps(table, separators=(",", ":")) + "\n")
    shutil.copy(ref / "LICENSE.txt", out / "LICENSE.txt")
    print(f"wrote {len(table['techniques'])} techniques, {len(table['tactics'])} tactics")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_REF)
