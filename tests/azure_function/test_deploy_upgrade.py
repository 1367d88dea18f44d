"""Re-deploying the next version's ARM template (azure_function/deploy/sentinel.json) over a resource group
where a released one was deployed (`az deployment group create`, incremental mode).

An ARM deployment updates a resource named as before in place, and leaves one it no longer names
where it is. So a resource renamed in the template (the table, the data collection rule, a role
assignment's guid) is a second resource beside the first: the table's data stays behind in the old one,
a new DCR has a new immutable id (WIA_SENTINEL_DCR_ID in the Function App names the old one), and a
role assignment of the same principal, role and scope under another name fails the deployment
(RoleAssignmentExists). Log Analytics refuses to change a custom-table column's type, and a column
dropped from the schema takes its data out of queries. tests/azure_function/released/<version>.json
records each released template: the resources' types and name and scope expressions, the table and
stream names and the columns. The record is never edited to make a test pass; add one when releasing."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "azure_function" / "deploy" / "sentinel.json"
RELEASED = Path(__file__).resolve().parent / "released"
RELEASES = sorted(p.name for p in RELEASED.glob("*.json"))
TABLE = "Microsoft.OperationalInsights/workspaces/tables"
DCR = "Microsoft.Insights/dataCollectionRules"


def identities(template: dict) -> dict:
    """What decides between an update in place and a second resource, and what a table keeps."""
    resources = [{"type": r["type"], "name": r["name"], "scope": r.get("scope")} for r in template["resources"]]
    table = next(r for r in template["resources"] if r["type"] == TABLE)
    dcr = next(r for r in template["resources"] if r["type"] == DCR)
    return {"resources": resources,
            # the names, and what the role assignments' guid() names are made of
            "variables": {k: template["variables"][k] for k in ("tableName", "streamName", "workspaceId",
                                                                 "monitoringMetricsPublisher", "sentinelResponder")},
            "parameters": {name: spec.get("defaultValue") for name, spec in template["parameters"].items()
                           if name in ("dataCollectionEndpointName", "dataCollectionRuleName")},
            "columns": {c["name"]: c["type"] for c in table["properties"]["schema"]["columns"]},
            "stream_columns": {c["name"]: c["type"]
                               for c in dcr["properties"]["streamDeclarations"]["Custom-WIASecurity"]["columns"]}}


def breaking(old: dict, new: dict) -> list[str]:
    problems = [f"{r['type']} {r['name']} (scope {r['scope']}): no longer in the template, or named differently"
                for r in old["resources"] if r not in new["resources"]]
    for kind in ("variables", "parameters"):
        problems += [f"{kind} {k}: {v!r} -> {new[kind].get(k)!r}" for k, v in old[kind].items() if new[kind].get(k) != v]
    for kind in ("columns", "stream_columns"):
        for name, column_type in old[kind].items():
            if name not in new[kind]:
                problems.append(f"{kind} {name}: dropped")
            elif new[kind][name] != column_type:
                problems.append(f"{kind} {name}: type {column_type} -> {new[kind][name]}")
    return problems


def template() -> dict:
    return json.loads(TEMPLATE.read_text())


@pytest.mark.parametrize("release", RELEASES)
def test_redeploying_over_a_released_template_updates_in_place(release):
    old = json.loads((RELEASED / release).read_text())
    assert breaking(old, identities(template())) == []


def test_the_check_sees_a_renamed_rule_a_retyped_column_and_a_new_role_assignment_name():
    """Control, on a copy: each of these is found; an added column is not a problem."""
    changed = copy.deepcopy(template())
    old = identities(changed)
    dcr = next(r for r in changed["resources"] if r["type"] == DCR)
    dcr["name"] = "[concat(parameters('dataCollectionRuleName'), '-v2')]"
    table = next(r for r in changed["resources"] if r["type"] == TABLE)
    table["properties"]["schema"]["columns"][1]["type"] = "string"
    table["properties"]["schema"]["columns"].append({"name": "NewColumn", "type": "string"})
    role = next(r for r in changed["resources"] if r["type"] == "Microsoft.Authorization/roleAssignments")
    role["name"] = role["name"].replace("parameters('principalId')", "parameters('principalId'), 'v2'")
    problems = breaking(old, identities(changed))
    assert len(problems) == 3, problems
    assert any("dataCollectionRules" in p for p in problems) and any("roleAssignments" in p for p in problems)
    assert any(p.startswith("columns EventTime: type dateTime -> string") for p in problems)
