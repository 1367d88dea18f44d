"""Security Hub sink: a finding botocore refuses fails alone. botocore validates the whole BatchImportFindings
request before sending it, so one event that was never validated (sent to the sink directly, e.g. with a
negative meta.confidence) made every finding of its batch fail with one ParamValidationError. boto3 against
moto and the Security Hub contract layer (tests/servers/moto.py)."""
from __future__ import annotations

import copy
import uuid

from wia_security.connectors import open_sink
from wia_security.connectors.delivery.policy import DeliveryPolicy

POLICY = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.01, max_attempts=2)


def test_contract_a_finding_botocore_refuses_fails_alone_and_its_batch_mates_are_imported(aws, samples):
    good = [samples["alert-sample"], samples["network-event-sample"]]
    bad = copy.deepcopy(samples["alert-sample"])
    bad["id"] = str(uuid.uuid4())
    bad.setdefault("meta", {})["confidence"] = -1            # the ASFF Confidence -100: under botocore's minimum 0
    hub = open_sink("securityhub://us-east-1", delivery=POLICY)
    report = hub.send([good[0], bad, good[1]])
    report.merge(hub.flush())
    hub.close()
    assert report.delivered == 2, [r.reason for r in report.failed]
    [refused] = report.failed
    assert refused.event["id"] == bad["id"] and not refused.retryable
    assert "botocore refuses the finding" in refused.reason and "Confidence" in refused.reason
    stored = {f["Id"] for f in aws.client("securityhub").get_findings(MaxResults=100)["Findings"]}
    assert stored == {e["id"] for e in good}
    assert aws.securityhub.state.import_calls == [2]                # the refused one was never sent
