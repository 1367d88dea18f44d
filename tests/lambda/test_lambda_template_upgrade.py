"""Updating a deployed stack to the next version's template (`sam deploy` / a CloudFormation stack update)
must not replace or delete what holds undelivered data.

- A resource whose logical id or type changes is deleted and a new one created; one whose
  create-only property changes (CloudFormation replaces it: a queue's QueueName or FifoQueue, a
  bucket's BucketName, an event source mapping's EventSourceArn or StartingPosition, ...) is replaced.
  Either way a queue's messages (ingest backlog, dead letters, failure records) or a bucket's objects
  go with the old one. tests/lambda/released/<version>.json records each released template's
  resources: logical id, type, condition and the values of their create-only properties (taken from
  cfn-lint's CloudFormation resource schemas); the current template must keep them all.
- The queues and the bucket keep DeletionPolicy and UpdateReplacePolicy Retain, so that even a
  replacement, a stack deletion or a condition switched off (KinesisStreamArn cleared,
  CreateIngestBucket false) leaves the data in place. cfn-lint's I3011 (stateful resources state
  their policies) finds none missing.
The record is never edited to make a test pass; add one when releasing."""
from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest

from test_lambda_package import TEMPLATE, cfn_lint, template  # tests/lambda is on sys.path (no package)

RELEASED = Path(__file__).resolve().parent / "released"
RELEASES = sorted(p.name for p in RELEASED.glob("*.json"))
#: Resources holding data that is not delivered yet, or records of what failed.
DATA_HOLDERS = {"AWS::SQS::Queue", "AWS::S3::Bucket"}
#: SAM resources cfn-lint has no schema for: the create-only properties of what they become.
SAM_CREATE_ONLY = {"AWS::Serverless::Function": ["/properties/FunctionName", "/properties/PackageType"]}


def create_only(resource_type: str) -> list[str]:
    if resource_type in SAM_CREATE_ONLY:
        return SAM_CREATE_ONLY[resource_type]
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
    return list(PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema.get("createOnlyProperties", []))


def identities(parsed: dict) -> dict:
    """Per logical id: what a stack update compares to decide between update, replacement and deletion."""
    found = {}
    for logical_id, resource in parsed["Resources"].items():
        properties = resource.get("Properties", {})
        entry = {"Type": resource["Type"], "Condition": resource.get("Condition"),
                 "CreateOnly": {path.rsplit("/", 1)[-1]: properties.get(path.rsplit("/", 1)[-1])
                                for path in create_only(resource["Type"]) if path.count("/") == 2}}
        if resource["Type"] == "AWS::Serverless::Function":
            # each event becomes a resource named <function><event>: an SQS mapping's queue, a stream's start
            entry["Events"] = {name: {"Type": event["Type"], **{k: v for k, v in event.get("Properties", {}).items()
                                                                 if k in ("Queue", "Stream", "StartingPosition")}}
                               for name, event in properties.get("Events", {}).items()}
        found[logical_id] = json.loads(json.dumps(entry, default=str))
    return found


def replaced_or_deleted(old: dict, new: dict) -> list[str]:
    problems = []
    for logical_id, was in old.items():
        now = new.get(logical_id)
        if now is None:
            problems.append(f"{logical_id} ({was['Type']}) is gone: an update deletes it")
            continue
        if now["Type"] != was["Type"]:
            problems.append(f"{logical_id}: type {was['Type']} -> {now['Type']}: an update deletes and re-creates it")
        for name, value in was["CreateOnly"].items():
            if now["CreateOnly"].get(name) != value:
                problems.append(f"{logical_id}: {name} {value!r} -> {now['CreateOnly'].get(name)!r}: an update replaces it")
        for event, spec in was.get("Events", {}).items():
            if now.get("Events", {}).get(event) != spec:
                problems.append(f"{logical_id} event {event}: {spec} -> {now.get('Events', {}).get(event)}")
        if now["Condition"] != was["Condition"]:
            problems.append(f"{logical_id}: condition {was['Condition']} -> {now['Condition']}")
    return problems


@pytest.mark.parametrize("release", RELEASES)
def test_a_stack_update_replaces_or_deletes_nothing_a_released_template_created(release):
    old = json.loads((RELEASED / release).read_text())["resources"]
    assert replaced_or_deleted(old, identities(template())) == []


def test_the_check_sees_a_renamed_queue_and_a_named_one():
    """Control: a queue given a QueueName, a renamed logical id and a stream mapping started elsewhere are each found."""
    parsed = copy.deepcopy(template())
    old = identities(parsed)
    parsed["Resources"]["DeadLetterQueue"]["Properties"]["QueueName"] = "wia-dead-letters"
    parsed["Resources"]["FailedAsyncQueue"] = parsed["Resources"].pop("AsyncFailureQueue")
    parsed["Resources"]["StreamMapping"]["Properties"]["StartingPosition"] = "TRIM_HORIZON"
    problems = replaced_or_deleted(old, identities(parsed))
    assert any(p.startswith("DeadLetterQueue: QueueName None -> 'wia-dead-letters'") for p in problems), problems
    assert any(p.startswith("AsyncFailureQueue (AWS::SQS::Queue) is gone") for p in problems), problems
    assert any(p.startswith("StreamMapping: StartingPosition 'LATEST' -> 'TRIM_HORIZON'") for p in problems), problems


def test_queues_and_buckets_outlive_replacement_deletion_and_switched_off_conditions():
    resources = template()["Resources"]
    holders = {name: r for name, r in resources.items() if r["Type"] in DATA_HOLDERS}
    assert {"IngestQueue", "IngestRedriveQueue", "DeadLetterQueue", "AsyncFailureQueue", "StreamFailureQueue",
            "IngestBucket"} <= set(holders)
    for name, resource in holders.items():
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Retain", "Retain"), name
        # a fixed QueueName would also stop a re-created stack (the retained queue holds the name)
        assert "QueueName" not in resource.get("Properties", {}), name


def test_every_stateful_resource_states_what_happens_to_it():
    """cfn-lint I3011: DeletionPolicy and UpdateReplacePolicy set on every stateful resource (the log group's
    Delete is deliberate: a retained, named log group would block re-creating the stack)."""
    run = subprocess.run([cfn_lint(), str(TEMPLATE), "--include-checks", "I3011"], capture_output=True, text=True, timeout=300)
    assert "I3011" not in run.stdout, run.stdout
    assert run.returncode == 0, run.stdout + run.stderr
