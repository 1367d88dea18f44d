"""Which dead letters the forwarder takes: nothing it stores may go with the execution environment.

A Lambda function can write only to /tmp, and /tmp goes when Lambda recycles the execution environment
(scaling in, an update, a crash): a dead letter kept there is lost while its records count as stored and
are never retried. So a file or SQLite dead letter is refused, and a destination used as the dead letter
(`sink+<url>`) hands what it cannot take to the log dead letter instead of a /tmp file. Driven through
the handler with moto server and the Security Hub contract layer."""
from __future__ import annotations

import json
from typing import Any

import pytest

import lambda_events as shapes
from wia_security.errors import ConfigError

SECURITYHUB = ('[delivery]\nmax_attempts = 3\ninitial_backoff = 0.001\nmax_backoff = 0.01\n'
               '[destinations.securityhub]\nurl = "securityhub://us-east-1"\n')


def start(monkeypatch: Any, dead_letter: str) -> Any:
    monkeypatch.setenv("WIA_CONFIG", SECURITYHUB)
    monkeypatch.setenv("WIA_DEAD_LETTER", dead_letter)
    from wia_lambda import handler as module
    module.reset()
    return module


@pytest.mark.parametrize("spec", ["/tmp/wia-dead-letter.ndjson", "file:///tmp/dead.ndjson", "sqlite:///tmp/dead.db",
                                  "sink+file:///tmp/dead.ndjson", "dead-letter.ndjson"])
def test_a_dead_letter_in_the_functions_filesystem_is_refused_naming_the_setting(aws, monkeypatch, spec):
    from wia_lambda.settings import build_runtime
    start(monkeypatch, spec)
    with pytest.raises(ConfigError, match="WIA_DEAD_LETTER: a file in the function's filesystem is lost"):
        build_runtime()


def test_what_a_dead_letter_destination_cannot_take_goes_to_the_log_not_to_tmp(aws, monkeypatch, samples, capsys):
    module = start(monkeypatch, "sink+securityhub://us-east-1")
    sqs = aws.client("sqs")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    refused = json.loads(json.dumps(samples["alert-sample"]))
    refused["id"] = "0f5c3a52-8a61-4f0e-b1a9-2f3f4d6c7e81"
    aws.securityhub.state.fail_finding(refused["id"], "InvalidInput", "rejected by the contract", times=100)
    event = shapes.sqs_event(sqs, ingest, ["not json at all", json.dumps(refused)])
    capsys.readouterr()
    try:
        assert module.handler(event, None) == {"batchItemFailures": []}
    finally:
        module.reset()

    letters = [json.loads(line)["wia_dead_letter"] for line in capsys.readouterr().out.splitlines()
               if '"wia_dead_letter"' in line]
    ids = [r["messageId"] for r in event["Records"]]
    unreadable = [letter for letter in letters if letter.get("raw") == "not json at all"]
    assert len(unreadable) == 1 and unreadable[0]["where"] == f"sqs:{ids[0]}:1"   # no event: to the log
    # refused by the dead-letter destination too: in the log as the record it was, the event as it came (31e41ab
    # rebuilds the record from the annotation; the log dead letter had no put_record then: the batch was retried)
    again = [letter for letter in letters if (letter.get("event") or {}).get("id") == refused["id"]]
    refusal = "Security Hub FailedFindings InvalidInput: rejected by the contract"
    assert len(again) == 1 and again[0]["reason"] == f"{refusal}; dead-letter sink also failed: {refusal}"
    assert again[0]["where"] == f"sqs:{ids[1]}:1" and again[0]["event"] == refused
