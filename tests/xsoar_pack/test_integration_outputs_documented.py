"""Each command's context matches what WIASecurity.yml documents: every path a command writes is among its
outputs (or under an output of type Unknown, which holds a document), and every documented path is written. The
YAML is what XSOAR shows in the playbook editor's context picker and the README's outputs table; a path missing
there cannot be picked, a path documented but never written is a playbook input that is always empty."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from wia_security import AlertBuilder

from .conftest import run_command

YML = Path(__file__).resolve().parents[2] / "xsoar_pack/Packs/WIASecurity/Integrations/WIASecurity/WIASecurity.yml"


def documented(command: str) -> dict[str, str]:
    commands = yaml.safe_load(YML.read_text())["script"]["commands"]
    (found,) = [c for c in commands if c["name"] == command]
    return {o["contextPath"]: o.get("type", "Unknown") for o in found.get("outputs") or []}


def written(entry: dict) -> set[str]:
    """Dotted paths of the entry's context (lists read through, as XSOAR's context paths do)."""
    paths: set[str] = set()

    def walk(path: str, value: object) -> None:
        if isinstance(value, list):
            for item in value:
                walk(path, item)
        elif isinstance(value, dict) and value:
            for key, item in value.items():
                walk(f"{path}.{key}", item)
        else:
            paths.add(path)

    for key, value in entry["EntryContext"].items():
        walk(key.split("(")[0], value)
    return paths


def check(command: str, entries: list[dict]) -> None:
    docs = documented(command)
    paths = set().union(*(written(e) for e in entries))
    opaque = [p for p, kind in docs.items() if kind == "Unknown"]
    undocumented = sorted(p for p in paths if p not in docs and not any(p.startswith(o + ".") for o in opaque))
    unwritten = sorted(p for p in docs if p not in paths and not any(w.startswith(p + ".") for w in paths))
    assert (undocumented, unwritten) == ([], []), f"{command}: undocumented {undocumented}, never written {unwritten}"


@pytest.fixture(scope="module")
def alert() -> dict:
    return AlertBuilder().title("documented").severity(5).build().to_dict()


def test_validate_event_outputs(integration, demisto, alert):
    invalid = dict(alert, severity=42)
    lenient = dict(alert, meta=None)            # an optional field set to null: a warning in lenient mode
    entries = [run_command(integration, demisto, "wia-validate-event", {"event": json.dumps(e), "lenient": "true"})[0]
               for e in (invalid, lenient)]
    assert all(e["Type"] == 1 for e in entries), entries
    check("wia-validate-event", entries)


def test_convert_event_outputs(integration, demisto, alert):
    check("wia-convert-event", run_command(integration, demisto, "wia-convert-event", {"event": json.dumps(alert), "format": "ocsf"}))


def test_attack_lookup_outputs(integration, demisto):
    check("wia-attack-lookup", run_command(integration, demisto, "wia-attack-lookup", {"technique": "T1059.001"}))


def test_send_event_outputs(integration, demisto, gateway, alert):
    params = {"url": gateway.url, "source_type": "gateway", "credentials": {"identifier": "", "password": gateway.token}}
    check("wia-send-event", run_command(integration, demisto, "wia-send-event", {"event": json.dumps(alert)}, params))


def test_get_events_outputs(integration, demisto, gateway, sample_events):
    """The event as it is: every envelope path documented (a playbook picks WIA.Event.mitre.tactic or
    WIA.Event.source.vendor in the context picker); data, context and meta are documents (Unknown)."""
    import requests
    reply = requests.post(f"{gateway.url}/v1/events", json=sample_events, timeout=30,
                          headers={"Authorization": f"Bearer {gateway.token}"})
    assert reply.status_code == 200, reply.text
    params = {"url": gateway.url, "source_type": "gateway", "credentials": {"identifier": "", "password": gateway.token}}
    entries = run_command(integration, demisto, "wia-get-events", {"limit": "50"}, params)
    assert len(entries[0]["EntryContext"]["WIA.Event(val.id && val.id == obj.id)"]) == len(sample_events)
    check("wia-get-events", entries)
