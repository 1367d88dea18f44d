"""`wia-security attack` answers for every entry of the table, not a sample: each technique by its id in
both cases and by its name, each revoked one with the end of its revocation chain, each tactic by id,
shortname (hyphens or underscores) and name; text and JSON; MITRE's copyright line with every answer.
The command's run() is called directly (test_attack_output.py goes through the full parser): building
the whole parser for each of ~3,300 queries took a minute on a loaded machine."""
from __future__ import annotations

import argparse
import json
from typing import NamedTuple

import pytest

from wia_security.attack import table
from wia_security.cli.attack import run

NOTICE = "© 2025 The MITRE Corporation. This work is reproduced and distributed with the permission of The MITRE Corporation."


class Run(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    def attack(_command: str, *args: str) -> Run:
        code = run(argparse.Namespace(query=args[-1], json="--json" in args))
        out, err = capsys.readouterr()
        return Run(code, out, err)
    return attack


def test_every_technique_by_id_and_name(cli):
    t = table()
    for tech in t:
        for query in (tech.id, tech.id.lower(), tech.name):
            r = cli("attack", "--json", query)
            assert r.code == 0 and NOTICE in r.err, query
            matches = {m["id"]: m for m in json.loads(r.out)}
            assert tech.id in matches, query
        match = matches[tech.id]
        assert (match["name"], match["status"]) == (tech.name, tech.status)
        assert [x.split()[0] for x in match["tactics"]] == [x.id for x in t.tactics if x.id in tech.tactic_ids]
        if tech.status == "revoked":
            assert match["replaced_by"] == f"{t.replacement(tech.id).id} {t.replacement(tech.id).name}"
        if tech.is_subtechnique:
            assert match["parent"] == f"{tech.parent_id} {t.technique(tech.parent_id).name}"
        text = cli("attack", tech.id)
        assert text.code == 0 and text.out.startswith(f"id: {tech.id}  name: {tech.name}  status: {tech.status}  ")


def test_every_tactic_by_id_shortname_and_name(cli):
    for tactic in table().tactics:
        for query in (tactic.id, tactic.shortname, tactic.shortname.replace("-", "_"), tactic.name):
            r = cli("attack", "--json", query)
            assert r.code == 0 and NOTICE in r.err, query
            (match,) = json.loads(r.out)
            assert (match["id"], match["name"], match["shortname"]) == (tactic.id, tactic.name, tactic.shortname)
