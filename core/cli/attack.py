"""`wia-security attack ID|NAME`: look up an ATT&CK technique or tactic in the bundled v18.1 table."""
from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from .. import jsonio
from ..attack import table
from .common import EXIT_CODES_HELP, closest_match, fail


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("attack", help="look up MITRE ATT&CK techniques and tactics",
                              description="Look up a technique (T1059.001), tactic (TA0002, execution) or technique "
                                          "name (PowerShell; Valid Accounts: Cloud Accounts) in the bundled MITRE "
                                          "ATT&CK® Enterprise table, whose version every answer names (Mobile "
                                          "and ICS are not bundled).",
                              epilog="Exit 0 when found, 1 when not (with a hint on standard error: the closest "
                                     "name, the id meant). " + EXIT_CODES_HELP)
    p.add_argument("query", help="technique or tactic id, tactic shortname or name, or a technique name")
    p.add_argument("--json", action="store_true", help="print the matches as one JSON array")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    t = table()
    q = args.query.strip()
    tech = t.technique(q)
    found: list[dict[str, Any]] = []
    if tech is not None:
        found.append(_technique(tech, t))
    elif (tactic := t.tactic(q)) is not None:
        found.append({"id": tactic.id, "name": tactic.name, "shortname": tactic.shortname, "url": tactic.url,
                      "techniques": len([x for x in t.techniques_in(tactic.id) if not x.is_subtechnique])})
    else:
        found += [_technique(x, t) for x in t.techniques_named(q)]
    if not q:
        return fail("attack: give a technique or tactic id, a tactic shortname or a technique name")
    if not found:
        print(f"wia-security: {q!r} is not in ATT&CK v{t.version} Enterprise{_hint(q, t)}", file=sys.stderr)
        if args.json:
            print("[]")      # still one JSON array, so `| jq` reads an answer rather than nothing
        return 1
    if args.json:
        print(jsonio.dumps(found))
    else:
        for f in found:
            print("  ".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in f.items()))
    # MITRE's terms: its copyright line goes with every copy of ATT&CK data (standard error keeps `| jq` clean)
    print(f"(MITRE ATT&CK® v{t.version}. {t.copyright})", file=sys.stderr)
    return 0


def _hint(q: str, t: Any) -> str:
    """What the user may have meant: the id of ATT&CK's URL form (T1059/001), else the closest name."""
    if _URL_FORM(q) and (tech := t.technique(q.replace("/", "."))) is not None:
        return f" (did you mean {tech.id!r}, {tech.name}?)"
    if _ID_FORM(q) and "." in q and (parent := t.technique(q.split(".")[0])) is not None:
        subs = [x.id for x in t.subtechniques(parent.id)]
        have = f"has sub-techniques {subs[0]} to {subs[-1]}" if subs else "has no sub-techniques"
        return f" ({parent.id} {parent.name} {have})"
    if _ID_FORM(q):
        # ids of ATT&CK's other domains look the same (Mobile T1404, ICS T0817, TA0104): only Enterprise is here
        return " (only the Enterprise domain is bundled: Mobile and ICS ids are not in it)"
    names = {x.name.casefold(): x.name for x in t}
    names.update({x.shortname: x.shortname for x in t.tactics})
    match = closest_match(q.casefold(), names)
    return f" (did you mean {names[match]!r}?)" if match else ""


_URL_FORM = re.compile(r"T\d{4}/\d{3}", re.IGNORECASE | re.ASCII).fullmatch
_ID_FORM = re.compile(r"TA?\d{4}(\.\d{3})?", re.IGNORECASE | re.ASCII).fullmatch


def _technique(tech: Any, t: Any) -> dict[str, Any]:
    order = {tac.id: i for i, tac in enumerate(t.tactics)}
    out: dict[str, Any] = {"id": tech.id, "name": tech.name, "status": tech.status}
    if tech.parent_id and (parent := t.technique(tech.parent_id)) is not None:
        out["parent"] = f"{parent.id} {parent.name}"     # "Cloud Accounts" is three sub-techniques: whose?
    out.update(tactics=[f"{x} {t.tactic(x).name}" for x in sorted(tech.tactic_ids, key=order.__getitem__)],
               url=tech.url)                             # tactics in matrix order
    if tech.status == "revoked" and (repl := t.replacement(tech.id)):
        out["replaced_by"] = f"{repl.id} {repl.name}"
    return out
