"""Upgrading the pack in a running XSOAR: what the previous version left must still work with the new one.

- Existing incidents keep the values of the pack's incident fields under their cliName and type; the
  integration's instances keep their settings under the parameter names; playbooks and automations
  call the commands with their arguments. None of these may be renamed, retyped or dropped unless the
  new version's breaking-change release-notes config (ReleaseNotes/X_Y_Z.json, demisto-sdk's
  {"breakingChanges": true, "breakingChangesNotes": ...}) names it. demisto-sdk's own checks of this
  (BC1xx) run only in its git-diff mode, not in the path-based gate.
- Each fetch instance's last-run state survives the upgrade: the new integration must resume from the
  state the old one wrote (no incident created twice, none skipped).

tests/xsoar_pack/released/<version>.json records each released version: its fields, types, mapper,
integration parameters and commands, and the last-run state its fetch wrote for a gateway, a TAXII and a
Kafka source. It is a record: never edit one to make a test pass; add one when releasing."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, run_command

PACK = ROOT / "xsoar_pack" / "Packs" / "WIASecurity"
RELEASED = Path(__file__).resolve().parent / "released"
RELEASES = sorted(p.name for p in RELEASED.glob("*.json"))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def contract(pack: Path) -> dict:
    """What an upgrade must keep, read from a pack tree in the shape of released/<version>.json."""
    integration = yaml.safe_load((pack / "Integrations" / "WIASecurity" / "WIASecurity.yml").read_text())
    fields = {}
    for path in sorted((pack / "IncidentFields").glob("*.json")):
        field = json.loads(path.read_text())
        fields[field["id"]] = {"cliName": field["cliName"], "type": field["type"], "associatedTypes": field.get("associatedTypes")}
    types = {}
    for path in sorted((pack / "IncidentTypes").glob("*.json")):
        incident_type = json.loads(path.read_text())
        types[incident_type["id"]] = {"layout": incident_type.get("layout"), "playbookId": incident_type.get("playbookId")}
    (mapper_path,) = sorted((pack / "Classifiers").glob("classifier-mapper-*.json"))
    mapper = json.loads(mapper_path.read_text())
    return {
        "integration": {"id": integration["commonfields"]["id"],
                        "parameters": {p["name"]: p["type"] for p in integration["configuration"]},
                        "commands": {c["name"]: sorted(a["name"] for a in c.get("arguments", []))
                                     for c in integration["script"]["commands"]}},
        "incident_fields": fields,
        "incident_types": types,
        "mapper": {"id": mapper["id"], "mapped_fields": {t: sorted(m.get("internalMapping", {})) for t, m in mapper["mapping"].items()}},
    }


def breaking_changes(old: dict, new: dict) -> list[tuple[str, str]]:
    """(name, what changed) for each thing the old version had that the new one renamed, retyped or dropped."""
    found: list[tuple[str, str]] = []
    for field_id, field in old["incident_fields"].items():
        now = new["incident_fields"].get(field_id)
        if now is None:
            found.append((field_id, "incident field removed: existing incidents lose its values"))
            continue
        for key in ("cliName", "type"):
            if now[key] != field[key]:
                found.append((field_id, f"incident field {key} {field[key]!r} -> {now[key]!r}: existing incidents keep the old one"))
        if set(field["associatedTypes"] or []) - set(now["associatedTypes"] or []):
            found.append((field_id, "incident field no longer associated with an incident type it had"))
    for type_id in old["incident_types"]:
        if type_id not in new["incident_types"]:
            found.append((type_id, "incident type removed: existing incidents of it"))
    if new["integration"]["id"] != old["integration"]["id"]:
        found.append((old["integration"]["id"], "integration id changed: existing instances belong to the old one"))
    for name, kind in old["integration"]["parameters"].items():
        if name not in new["integration"]["parameters"]:
            found.append((name, "integration parameter removed or renamed: instances lose its value"))
        elif new["integration"]["parameters"][name] != kind:
            found.append((name, f"integration parameter type {kind} -> {new['integration']['parameters'][name]}"))
    for command, arguments in old["integration"]["commands"].items():
        if command not in new["integration"]["commands"]:
            found.append((command, "command removed or renamed: playbooks calling it fail"))
            continue
        for argument in sorted(set(arguments) - set(new["integration"]["commands"][command])):
            found.append((f"{command} {argument}", "command argument removed or renamed"))
    if new["mapper"]["id"] != old["mapper"]["id"]:
        found.append((old["mapper"]["id"], "mapper id changed: instances name the old mapper"))
    for incident_type, mapped in old["mapper"]["mapped_fields"].items():
        for field in sorted(set(mapped) - set(new["mapper"]["mapped_fields"].get(incident_type, []))):
            found.append((field, f"no longer mapped for {incident_type}"))
    return found


def breaking_change_notes(pack: Path, after: str) -> str:
    """The breakingChangesNotes of the versions after `after` up to the pack's current one."""
    current = json.loads((pack / "pack_metadata.json").read_text())["currentVersion"]
    notes = []
    for path in sorted((pack / "ReleaseNotes").glob("*.json")):
        version = path.stem.replace("_", ".")
        config = json.loads(path.read_text())
        if _version_key(after) < _version_key(version) <= _version_key(current) and config.get("breakingChanges"):
            notes.append(config.get("breakingChangesNotes") or "")
    return "\n".join(notes)


def unannounced(pack: Path, release: str) -> list[str]:
    old = json.loads((RELEASED / release).read_text())
    notes = breaking_change_notes(pack, old["version"])
    return [f"{name}: {why}" for name, why in breaking_changes(old, contract(pack)) if name not in notes]


@pytest.mark.parametrize("release", RELEASES)
def test_nothing_a_released_version_had_is_renamed_retyped_or_dropped_unannounced(release):
    assert unannounced(PACK, release) == []


def test_a_renamed_field_or_parameter_needs_a_breaking_change_note(tmp_path):
    """Control: the check above finds a renamed cliName and a renamed parameter in a copy of the pack,
    and accepts them once the next version's ReleaseNotes/X_Y_Z.json names them."""
    pack = tmp_path / "WIASecurity"
    shutil.copytree(PACK, pack)
    field_path = pack / "IncidentFields" / "incidentfield-WIA_Event_ID.json"
    field = json.loads(field_path.read_text())
    field["cliName"] = "wiaid"
    field_path.write_text(json.dumps(field, indent=4))
    yml_path = pack / "Integrations" / "WIASecurity" / "WIASecurity.yml"
    integration = yaml.safe_load(yml_path.read_text())
    next(p for p in integration["configuration"] if p["name"] == "max_fetch")["name"] = "fetch_limit"
    yml_path.write_text(yaml.safe_dump(integration, sort_keys=False))
    release = RELEASES[0]
    problems = unannounced(pack, release)
    assert any(p.startswith("incident_wiaeventid: incident field cliName 'wiaeventid' -> 'wiaid'") for p in problems), problems
    assert any(p.startswith("max_fetch: integration parameter removed or renamed") for p in problems), problems

    metadata_path = pack / "pack_metadata.json"
    metadata = json.loads(metadata_path.read_text())
    old_version = json.loads((RELEASED / release).read_text())["version"]
    major, minor, _ = (int(p) for p in old_version.split("."))
    metadata["currentVersion"] = f"{major}.{minor + 1}.0"
    metadata_path.write_text(json.dumps(metadata, indent=4))
    (pack / "ReleaseNotes" / f"{major}_{minor + 1}_0.json").write_text(json.dumps({
        "breakingChanges": True,
        "breakingChangesNotes": "incident_wiaeventid is now wiaid; the max_fetch parameter is now fetch_limit."}))
    assert unannounced(pack, release) == []


def test_release_notes_follow_the_pack_version():
    """demisto-sdk (PA101): the newest ReleaseNotes/X_Y_Z.md is currentVersion's; no notes of an unreleased
    version; a breaking-change config sits beside the notes of its version."""
    current = json.loads((PACK / "pack_metadata.json").read_text())["currentVersion"]
    notes = sorted((p.stem.replace("_", ".") for p in (PACK / "ReleaseNotes").glob("*.md")), key=_version_key)
    assert notes and notes[-1] == current
    for config in (PACK / "ReleaseNotes").glob("*.json"):
        assert config.with_suffix(".md").exists(), f"{config.name} has no release notes beside it"


def test_the_build_refuses_a_version_bump_without_release_notes(tmp_path, monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location("wia_xsoar_build", ROOT / "xsoar_pack" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    tree = tmp_path / "xsoar_pack"
    shutil.copytree(ROOT / "xsoar_pack", tree, ignore=shutil.ignore_patterns("__pycache__"))
    build.check_version(tree)                                   # the tree as it is: fine
    metadata_path = tree / "Packs" / "WIASecurity" / "pack_metadata.json"
    metadata = json.loads(metadata_path.read_text())
    major, minor, _ = (int(p) for p in metadata["currentVersion"].split("."))
    bumped = f"{major}.{minor + 1}.0"
    metadata["currentVersion"] = bumped
    metadata_path.write_text(json.dumps(metadata, indent=4))
    monkeypatch.setattr(build, "version", lambda: bumped)       # the core bumped with it
    with pytest.raises(SystemExit, match=f"add ReleaseNotes/{bumped.replace('.', '_')}.md"):
        build.check_version(tree)
    (tree / "Packs" / "WIASecurity" / "ReleaseNotes" / f"{bumped.replace('.', '_')}.md").write_text("#### Integrations\n")
    build.check_version(tree)
    # a file there not named for a version is named in the refusal (it was a ValueError traceback)
    (tree / "Packs" / "WIASecurity" / "ReleaseNotes" / "README.md").write_text("notes\n")
    with pytest.raises(SystemExit, match="ReleaseNotes/README.md: release notes are named for their version"):
        build.check_version(tree)


# -- last-run state written by a released version -----------------------------------------------------------
def _released_last_run(release: str, source: str) -> dict:
    return json.loads((RELEASED / release).read_text())["last_run"][source]


@pytest.mark.parametrize("release", RELEASES)
def test_gateway_fetch_resumes_from_a_released_last_run(integration, demisto, feed, sample_events, release):
    state = _released_last_run(release, "gateway")
    feed.events.extend(sample_events[:6])
    # First fetch time (new since 0.1.0, default 3 days) applies to a new instance only: the sample events happened
    # long before 3 days ago, and the released last run is where this instance resumes
    params = {"url": feed.url, "source_type": "gateway", "credentials": {"password": feed.token}, "max_fetch": "10",
              "first_fetch": "3 days"}
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
    assert [json.loads(i["rawJSON"]) for i in demisto.incidents_out[-1]] == sample_events[4:6]
    assert feed.requests[0].query["after"] == [state["cursor"]]          # the released cursor, not the start
    assert demisto.last_run["cursor"] == "6"
    # read as it was, and kept with what this version adds beside it (rejected events' ids, kept apart)
    assert demisto.last_run["recent_ids"][:len(state["recent_ids"])] == state["recent_ids"]
    assert demisto.last_run["rejected_ids"] == {}


@pytest.mark.parametrize("release", RELEASES)
def test_taxii_fetch_resumes_from_a_released_last_run(integration, demisto, feed, sample_events, release):
    """The released added_after is asked for again from 1 microsecond before; the ids it remembered are not
    made incidents twice (a TAXII stand-in: no live server hands back a recorded date_added)."""
    from intel_http import Fault
    from wia_security import convert
    state = _released_last_run(release, "taxii")
    collection = "/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/"
    objects = [o for e in sample_events[:2] for o in convert(e, to="stix")["objects"] if o["type"] != "extension-definition"]
    feed.faults.append(Fault(200, {"more": False, "objects": objects}, path_prefix=f"{collection}objects/",
                             headers={"X-TAXII-Date-Added-Last": "2026-01-05T10:00:01.000000Z",
                                      "Content-Type": "application/taxii+json;version=2.1"}))
    params = {"url": feed.url + collection, "source_type": "taxii", "credentials": {"identifier": "u", "password": "p"},
              "max_fetch": "10", "first_fetch": "3 days"}
    run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
    assert feed.requests[0].query["added_after"] == ["2026-01-05T09:59:59.999999Z"]
    assert [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]] == [sample_events[1]["id"]]
    assert demisto.last_run["added_after"] == "2026-01-05T10:00:01.000000Z"


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
@pytest.mark.parametrize("release", RELEASES)
def test_kafka_fetch_resumes_from_released_partition_offsets(integration, demisto, sample_events, release):
    from confluent_kafka import Producer
    from servers.tansu import start_tansu
    state = _released_last_run(release, "kafka")
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=2)
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for partition, events in ((0, sample_events[0:3]), (1, sample_events[3:5])):
            for event in events:
                producer.produce(topic, key=event["id"].encode(), value=json.dumps(event).encode(), partition=partition)
        assert producer.flush(15) == 0
        del producer                      # librdkafka stops its threads when the Producer is freed
        # First fetch time at the latest instant it takes (now): it would start every partition without an offset
        # at its end; the released offsets are where this instance resumes
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        params = {"url": f"kafka://{broker.bootstrap}/{topic}", "source_type": "kafka", "max_fetch": "10",
                  "first_fetch": now}
        run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
    finally:
        broker.kill()
    fetched = sorted(json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1])
    assert fetched == sorted([sample_events[2]["id"], sample_events[4]["id"]])
    assert demisto.last_run["offsets"] == {"0": 3, "1": 2}
