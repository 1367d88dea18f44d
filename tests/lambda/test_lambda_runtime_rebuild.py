"""The Lambda forwarder's runtime (its sinks, dead letter and clients) is rebuilt after the secrets TTL
(WIA_SECRETS_TTL, 300 s by default); here the TTL is 0, a rebuild on every call of handler.runtime().

1. One runtime serves the whole invocation. The handler asked for it three times (the relay, the trigger's records,
   its hold-back), so a rebuild between two of them closed the sinks the relay was about to use: every event met
   "send() after close()", a permanent failure, and was dead-lettered, never delivered. With WIA_SECRETS_TTL=0
   (secrets read on every invocation) that was every event.
2. A destination's permission-propagation window is carried to the rebuilt runtime. Security Hub retries IAM's 403
   AccessDeniedException for PERMISSION_PROPAGATION_SECONDS (5 minutes) from the first one, then fails at once; each
   rebuilt runtime's sink started its window anew, so in the function a permission that never came was retried for
   ever, each batch spending its whole retry budget and going back to the queue. boto3 -> the fault proxy answering
   Security Hub's 403 -> the contract layer -> moto; the window shortened to 1 s."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import lambda_events as shapes  # noqa: E402
import test_lambda_handler  # noqa: E402
from test_lambda_handler import SECURITYHUB, fresh  # noqa: E402

from servers.fault_proxy import Fault, FaultProxy  # noqa: E402

forwarder = test_lambda_handler.forwarder      # the fixture: the handler configured against moto
IMPORT = "/findings/import$"
WINDOW = 1.0
DENIED = json.dumps({"Code": "AccessDeniedException", "Message": "User: arn:aws:sts::123456789012:assumed-role/"
                     "wia-forwarder/x is not authorized to perform: securityhub:BatchImportFindings"}).encode()


@pytest.fixture
def denying(aws, monkeypatch):
    from wia_security.connectors.aws import securityhub
    monkeypatch.setattr(securityhub, "PERMISSION_PROPAGATION_SECONDS", WINDOW)
    monkeypatch.setenv("WIA_SECRETS_TTL", "0")
    with FaultProxy(aws.securityhub.url) as proxy:
        proxy.add(*[Fault("reply", status=403, body=DENIED, path=IMPORT, headers={
            "Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException"})] * 20)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", proxy.url)
        yield proxy


def test_a_runtime_rebuilt_while_an_invocation_starts_does_not_close_the_sinks_it_uses(forwarder, samples,
                                                                                     monkeypatch, tmp_path):
    monkeypatch.setenv("WIA_SECRETS_TTL", "0")
    out = tmp_path / "out.ndjson"
    fw = forwarder(f'[destinations.archive]\nurl = "file://{out}"\n')
    sqs = fw.aws.client("sqs")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    events = [fresh(samples["alert-sample"]) for _ in range(2)]
    event = shapes.sqs_event(sqs, ingest, [json.dumps(e) for e in events])
    assert fw.handler(event, shapes.LambdaContext(60)) == {"batchItemFailures": []}
    assert fw.dead_letters() == []                      # before: both, "send() after close()"
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [e["id"] for e in events]


def imports(proxy) -> int:
    return sum(1 for seen in proxy.seen if seen.path.split("?")[0] == "/findings/import")


def test_a_permission_still_refused_after_the_window_fails_at_once_after_the_runtime_is_rebuilt(
        forwarder, samples, denying):
    fw = forwarder(SECURITYHUB)
    sqs = fw.aws.client("sqs")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    first = shapes.sqs_event(sqs, ingest, [json.dumps(fresh(samples["alert-sample"]))])
    assert fw.handler(first, shapes.LambdaContext(60)) == {"batchItemFailures": [
        {"itemIdentifier": first["Records"][0]["messageId"]}]}           # within the window: retried, reported back
    tried = imports(denying)
    assert tried == 3                                                   # FAST_DELIVERY's max_attempts
    time.sleep(WINDOW + 0.2)

    event = fresh(samples["alert-sample"])
    second = shapes.sqs_event(sqs, ingest, [json.dumps(event)])
    response = fw.handler(second, shapes.LambdaContext(60))             # a runtime rebuilt (TTL 0)

    # before: a new window, 3 tries again and the message back to the queue, on every rebuild
    assert response == {"batchItemFailures": []} and imports(denying) == tried + 1
    [dead] = fw.dead_letters()
    assert dead["event"]["id"] == event["id"] and "not retried" in dead["reason"], dead["reason"]
