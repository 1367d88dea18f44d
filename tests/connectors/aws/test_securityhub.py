"""Security Hub connector: boto3 against moto server; the parts moto lacks (GetFindings filters,
BatchUpdateFindings, BatchImportFindings' documented per-finding rules) through the contract layer
in tests/servers/moto.py — those tests say "contract" in their names."""
from __future__ import annotations

import copy
import uuid

import pytest
from strategies import event_dicts

from wia_security import validate_event
from wia_security.connectors import open_sink
from wia_security.connectors.aws.securityhub import (MAX_BATCH_FINDINGS, MAX_FINDING_BYTES, MAX_REQUEST_BYTES,
                                                     MAX_UPDATE_FINDINGS, SecurityHubSink, check_product_arn,
                                                     default_product_arn, partition_of)
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.errors import ConfigError

FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.01, max_attempts=4)
ACCOUNT = "123456789012"
PRODUCT = f"arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default"


def sink(**options) -> SecurityHubSink:
    return open_sink("securityhub://us-east-1", delivery=options.pop("delivery", FAST), **options)


def moto_findings(aws) -> list[dict]:
    """What moto itself stores (bypassing the contract layer)."""
    import boto3
    sh = boto3.client("securityhub", region_name="us-east-1", endpoint_url=aws.moto.url)
    found, token = [], None
    while True:
        page = sh.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        found += page["Findings"]
        token = page.get("NextToken")
        if not token:
            return found


def test_limits_are_the_documented_ones():
    assert MAX_BATCH_FINDINGS == 100 and SecurityHubSink.max_batch_events == 100
    assert MAX_FINDING_BYTES == 240 * 1024
    assert MAX_REQUEST_BYTES == 6 * 1024 * 1024 and SecurityHubSink.max_batch_bytes == MAX_REQUEST_BYTES
    assert MAX_UPDATE_FINDINGS == 100


def test_account_and_product_rules():
    check_product_arn(PRODUCT, account_id=ACCOUNT, region="us-east-1")
    check_product_arn("arn:aws:securityhub:us-east-1:999999999999:product/acme/scanner", account_id=ACCOUNT,
                      region="us-east-1")                     # a partner product may send for others
    with pytest.raises(ConfigError, match="default product of account 210987654321"):
        check_product_arn("arn:aws:securityhub:us-east-1:210987654321:product/210987654321/default",
                          account_id=ACCOUNT, region="us-east-1")
    with pytest.raises(ConfigError, match="Region eu-west-1"):
        check_product_arn(PRODUCT.replace("us-east-1", "eu-west-1"), account_id=ACCOUNT, region="us-east-1")
    assert partition_of("cn-north-1") == "aws-cn" and partition_of("us-gov-west-1") == "aws-us-gov"
    # the newer partitions too (this module knew five): an eu-isoe- Region got `arn:aws:` ARNs
    assert partition_of("eu-isoe-west-1") == "aws-iso-e" and partition_of("us-isof-south-1") == "aws-iso-f"
    assert partition_of("eusc-de-east-1") == "aws-eusc"
    check_product_arn("arn:aws-eusc:securityhub:eusc-de-east-1:123456789012:product/123456789012/default",
                      account_id=ACCOUNT, region="eusc-de-east-1")
    for region, partition in (("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")):     # GovCloud, China
        assert default_product_arn(ACCOUNT, region) == \
            f"arn:{partition}:securityhub:{region}:{ACCOUNT}:product/{ACCOUNT}/default"
        check_product_arn(default_product_arn(ACCOUNT, region), account_id=ACCOUNT, region=region)
    with pytest.raises(ConfigError, match="partition aws does not match Region cn-north-1, which is in aws-cn: the "
                                          "product ARN begins arn:aws-cn:securityhub:cn-north-1:"):
        check_product_arn("arn:aws:securityhub:cn-north-1:123456789012:product/123456789012/default",
                          account_id=ACCOUNT, region="cn-north-1")


def test_account_comes_from_sts_and_findings_carry_it(aws, samples):
    with sink() as s:
        assert s.account_id == ACCOUNT and s.product_arn == PRODUCT
        report = s.send(list(samples.values()))
        report.merge(s.flush())
    assert report.delivered == 7 and not report.failed
    stored = moto_findings(aws)
    assert {f["Id"] for f in stored} == {e["id"] for e in samples.values()}
    assert all(f["AwsAccountId"] == ACCOUNT and f["ProductArn"] == PRODUCT for f in stored)


def test_imports_in_chunks_of_100(aws):
    events = event_dicts(250, seed=21)
    with sink() as s:
        report = s.send(events)
        report.merge(s.flush())
    assert report.delivered == 250, [r.reason for r in report.failed][:3]
    assert aws.securityhub.state.import_calls == [100, 100, 50]
    assert len(moto_findings(aws)) == 250


def test_contract_finding_over_240kb_fails_alone(aws, samples):
    big = copy.deepcopy(samples["vulnerability-sample"])      # every affected product is a VulnerablePackage
    big["id"] = str(uuid.uuid4())
    big["data"]["affected_products"] = [{"vendor": f"vendor{i}", "product": "p" * 100, "versions": [f"1.{i}"]}
                                        for i in range(1500)]
    with sink() as s:
        report = s.send([samples["incident-sample"], big, samples["auth-event-sample"]])
        report.merge(s.flush())
    assert report.delivered == 2 and len(report.failed) == 1
    failed = report.failed[0]
    assert failed.event is big and not failed.retryable and "240 KB" in failed.reason
    assert sum(aws.securityhub.state.import_calls) == 2              # never sent


def test_contract_failed_findings_retried_or_dead_lettered_with_reason(aws, samples):
    transient, permanent = samples["alert-sample"]["id"], samples["incident-sample"]["id"]
    aws.securityhub.state.fail_finding(transient, "InternalException", "try again")
    aws.securityhub.state.fail_finding(permanent, "InvalidInput", "Finding is malformed", times=10)
    with sink() as s:
        report = s.send(list(samples.values()))
        report.merge(s.flush())
    assert report.delivered == 6
    assert [r.event["id"] for r in report.failed] == [permanent]
    rejected = report.failed[0]
    assert not rejected.retryable
    assert rejected.reason == "Security Hub FailedFindings InvalidInput: Finding is malformed"
    assert rejected.errors[0]["details"]["ErrorCode"] == "InvalidInput"
    assert aws.securityhub.state.import_calls == [7, 1]              # only the transient one was re-sent
    assert transient in {f["Id"] for f in moto_findings(aws)}


def test_contract_throttling_is_retried(aws, samples):
    aws.securityhub.state.throttle_next(2)
    with sink() as s:
        report = s.send([samples["alert-sample"]])
        report.merge(s.flush())
    assert report.delivered == 1 and not report.failed


def test_contract_account_mismatch_is_refused_per_finding(aws, samples):
    """With the default product ARN, AwsAccountId must be the caller's: a sink told another account
    (and that account's own product) is refused by the service, finding by finding."""
    other = "210987654321"
    s = SecurityHubSink("us-east-1", account_id=other, delivery=FAST)
    report = s.send([samples["alert-sample"]])
    report.merge(s.flush())
    s.close()
    assert not report.delivered and "AccessDeniedException" in report.failed[0].reason
    assert not report.failed[0].retryable


def test_contract_workflow_updates_and_filtered_reads(aws, samples):
    samples = {k: validate_event(v, lenient=True).event for k, v in samples.items()}   # two samples carry nulls
    events = list(samples.values())
    with sink() as s:
        s.send(events)
        s.flush()
        processed, unprocessed = s.update_workflow([samples["alert-sample"]["id"], "no-such-finding"], "RESOLVED",
                                                   note="closed by the SOC")
        assert processed == [samples["alert-sample"]["id"]]
        assert [u["FindingIdentifier"]["Id"] for u in unprocessed] == ["no-such-finding"]
        resolved = list(s.get_findings({"WorkflowStatus": [{"Value": "RESOLVED", "Comparison": "EQUALS"}]}))
        assert [f["Id"] for f in resolved] == [samples["alert-sample"]["id"]]
        assert resolved[0]["Note"]["Text"] == "closed by the SOC"
        critical = list(s.get_findings({"SeverityLabel": [{"Value": "CRITICAL", "Comparison": "EQUALS"}]}))
        assert {f["Id"] for f in critical} == {e["id"] for e in events if e["severity"] >= 9}
        back = {e["id"]: e for e in s.get_events(page_size=3)}
        # importing again does not undo the customer's workflow (BatchImportFindings ignores it)
        s.send([samples["alert-sample"]])
        s.flush()
        again = {e["id"]: e for e in s.get_events()}
    assert set(back) == {e["id"] for e in events}
    for event in back.values():
        assert validate_event(event).valid, validate_event(event).errors
    assert back[samples["alert-sample"]["id"]]["data"]["status"] == "resolved"
    assert again[samples["alert-sample"]["id"]]["data"]["status"] == "resolved"
    assert back[samples["incident-sample"]["id"]]["data"]["status"] == samples["incident-sample"]["data"]["status"]


def test_contract_workflow_updates_go_in_chunks_of_100(aws):
    events = event_dicts(150, seed=4)
    with sink() as s:
        s.send(events)
        s.flush()
        processed, unprocessed = s.update_workflow([e["id"] for e in events], "NOTIFIED")
    assert len(processed) == 150 and not unprocessed
    assert aws.securityhub.state.update_calls == 2


def test_url_options():
    with pytest.raises(ConfigError, match="unknown option"):
        open_sink("securityhub://us-east-1?account_id=123456789012&color=blue")
    with pytest.raises(ConfigError, match="12 digits"):
        open_sink("securityhub://us-east-1?account_id=1234")


def test_no_credentials_is_named_as_such_not_as_a_missing_account_id(monkeypatch, tmp_path):
    """With no credentials anywhere, STS GetCallerIdentity raises NoCredentialsError; the error said
    'pass account_id', which would not help (BatchImportFindings needs credentials too)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)     # an earlier test's session has its credentials
    with pytest.raises(ConfigError, match="no AWS credentials found") as caught:
        open_sink("securityhub://us-east-1")
    assert "pass account_id" not in str(caught.value)


def _at(event: dict, days_ago: float) -> dict:
    from datetime import datetime, timedelta, timezone
    moment = datetime.now(timezone.utc) - timedelta(days=days_ago)
    return dict(event, id=str(uuid.uuid4()), timestamp=moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"))


def test_an_event_older_than_security_hubs_90_day_retention_is_imported_and_said_once(aws, caplog):
    """Security Hub deletes a finding 90 days after its UpdatedAt (the event's time): such an event is
    imported (the user asked for it) but not quietly: one warning per sink names the first one and why."""
    base = event_dicts(1, seed=5, event_type="alert")[0]
    recent, old, older = _at(base, 1), _at(base, 91), _at(base, 400)
    with caplog.at_level("WARNING", logger="wia_security.connectors"):
        with sink() as s:
            report = s.send([recent])
            report.merge(s.flush())
        assert not [r for r in caplog.records if "90 days" in r.getMessage()]     # recent: nothing said
        with sink() as s:
            report = s.send([recent, old, older])
            report.merge(s.flush())
    assert report.delivered == 3 and not report.failed
    said = [r.getMessage() for r in caplog.records if "90 days" in r.getMessage()]
    assert len(said) == 1, said
    assert old["id"] in said[0] and "91 days old" in said[0] and "deleted by Security Hub" in said[0]
