"""Least privilege, checked against the code: the custom role the function's service account gets holds
exactly the permissions of the Security Command Center methods the function's delivery path calls
(SccSink.post -> _upsert), as the API reference names them."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")
import yaml  # noqa: E402  (cfn-lint, in the test extra, brings PyYAML)

ROOT = Path(__file__).resolve().parents[2]
#: SCC v2 method -> the IAM permission its reference page requires
PERMISSION = {"create_finding": "securitycenter.findings.create", "update_finding": "securitycenter.findings.update",
              "set_finding_state": "securitycenter.findings.setState", "list_findings": "securitycenter.findings.list"}


def called(source: str) -> set[str]:
    return set(re.findall(r"self\._client\.(\w+)\(", source))


def test_the_role_grants_exactly_what_the_delivery_path_calls():
    from wia_security.connectors.gcp.scc import SccSink
    delivery = inspect.getsource(SccSink.post) + inspect.getsource(SccSink._upsert)
    # SetFindingState: v2's Finding.state is output only, so a resolved event's INACTIVE is set by it
    assert called(delivery) == {"create_finding", "update_finding", "set_finding_state"}
    # the function's entry points use the sink only through the relay (no set_state, no list_events)
    main = (ROOT / "gcp_function" / "main.py").read_text()
    assert not re.search(r"\.(set_state|list_events|list_findings|set_finding_state)\(", main)
    role = yaml.safe_load((ROOT / "gcp_function" / "deploy" / "scc-findings-writer.yaml").read_text())
    assert sorted(role["includedPermissions"]) == sorted(PERMISSION[m] for m in called(delivery))
    assert role["stage"] == "GA"


def _documented_commands() -> list[str]:
    """The shell commands of docs/cloud/gcp.md's Deploy block, continuation lines joined."""
    text = (ROOT / "docs" / "cloud" / "gcp.md").read_text()
    block = text.split("### Deploy", 1)[1].split("```", 2)[1]
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.split("#", 1)[0].strip() for line in joined.splitlines() if line.strip().startswith("gcloud")]


def test_the_pubsub_trigger_invokes_with_its_own_account_holding_only_run_invoker():
    """Without --trigger-service-account, Eventarc invokes the function as the project's Compute Engine default
    service account (often an Editor of the whole project): the deploy names an account of its own, which is
    neither that one nor the SCC writer, and grants it the invoker role on this function alone."""
    commands = _documented_commands()
    (deploy,) = [c for c in commands if c.startswith("gcloud functions deploy wia-pubsub-to-scc ")]
    trigger = re.search(r"--trigger-service-account=(\S+)", deploy)
    assert trigger, deploy
    account = trigger.group(1)
    assert "compute@developer" not in account and "wia-scc-writer" not in account
    assert re.search(r"--service-account=wia-scc-writer@", deploy)
    name = account.split("@", 1)[0]
    assert f"gcloud iam service-accounts create {name}" in commands
    grants = [c for c in commands if f"serviceAccount:{account}" in c]
    assert grants and all(c.startswith("gcloud functions add-invoker-policy-binding wia-pubsub-to-scc ") for c in grants)
