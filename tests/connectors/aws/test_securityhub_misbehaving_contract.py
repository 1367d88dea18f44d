"""Security Hub sink and GetFindings source against a misbehaving endpoint: boto3 -> tests/servers/fault_proxy.py
-> the Security Hub contract layer -> moto. The proxy answers chosen requests like a broken proxy or
service would (HTML pages, 200s that are not Security Hub's answer, per-finding results that do not add
up, unknown error codes, redirects, cut bodies, hangs). For N findings sent: imported + dead-lettered == N,
with the reason; malformed findings read back are error Items naming the finding, never a traceback."""
from __future__ import annotations

import json
import logging
import time

import pytest
from strategies import event_dicts

from servers.fault_proxy import HTML_502, HTML_LOGIN, Fault, FaultProxy  # noqa: E402

from wia_security.connectors.aws.securityhub import SecurityHubSink, make_client
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.sqlite import SqliteSink
from wia_security.errors import ConfigError, DeliveryError, ParseError
from wia_security.pipeline import Forwarder

POLICY = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.005, max_attempts=3)
IMPORT = "/findings/import$"
GET = "/findings$"
JSON = {"Content-Type": "application/json"}
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def hub(aws, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with FaultProxy(aws.securityhub.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", proxy.url)
        proxy.aws = aws
        yield proxy


def imported(proxy) -> set[str]:
    sh = proxy.aws.client("securityhub")
    found, token = set(), None
    while True:
        page = sh.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        found |= {f["Id"] for f in page["Findings"]}
        token = page.get("NextToken")
        if not token:
            return found


def make_sink(**config) -> tuple[SecurityHubSink, list[float]]:
    sleeps: list[float] = []
    client = make_client("securityhub", "us-east-1", **config)
    return SecurityHubSink("us-east-1", client=client, delivery=POLICY, sleep=sleeps.append), sleeps


def run(proxy, *faults, n=3, **config):
    proxy.add(*faults)
    events = event_dicts(n, seed=41)
    sink, sleeps = make_sink(**config)
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    assert report.delivered + report.duplicates + len(report.failed) == n, report
    assert all(r.reason and SECRET not in r.reason and r.event in events for r in report.failed)
    return report, sleeps, events


def reply(status, body=b"", headers=None, **kw):
    return Fault("reply", status=status, body=body, headers=headers if headers is not None else dict(JSON),
                 path=IMPORT, **kw)


def answer(**doc):
    return reply(200, json.dumps(doc).encode())


def test_contract_proxy_html_502_is_retried_once_per_attempt(hub):
    report, sleeps, events = run(hub, reply(502, HTML_502, {"Content-Type": "text/html"}))
    assert report.delivered == 3 and len(sleeps) == 1
    assert [s.fault for s in hub.seen] == ["reply", None]                # botocore did not retry on its own
    assert imported(hub) == {e["id"] for e in events}


@pytest.mark.parametrize("body", [HTML_LOGIN, b"{}", b'{"FailedFindings": []}', b'{"SuccessCount": null, "FailedCount": 0}'],
                         ids=["html", "empty-object", "no-counts", "null-count"])
def test_contract_200_that_is_not_an_import_answer_is_not_counted_as_imported(hub, body):
    report, sleeps, events = run(hub, reply(200, body))
    assert report.delivered == 3 and len(sleeps) == 1
    assert imported(hub) == {e["id"] for e in events}


def test_contract_200_never_an_import_answer_dead_letters_with_why(hub):
    report, _, _ = run(hub, *[reply(200, HTML_LOGIN, {"Content-Type": "text/html"})] * 3)
    assert len(report.failed) == 3 and not imported(hub)
    assert all("without SuccessCount/FailedCount" in r.reason and r.retryable for r in report.failed)


def test_contract_failed_findings_for_ids_not_sent_are_retried_not_ignored(hub):
    stray = answer(SuccessCount=2, FailedCount=1,
                   FailedFindings=[{"Id": "not-sent", "ErrorCode": "InvalidInput", "ErrorMessage": "?"}])
    report, sleeps, events = run(hub, stray)
    assert report.delivered == 3 and len(sleeps) == 1
    assert imported(hub) == {e["id"] for e in events}


@pytest.mark.parametrize("doc", [dict(SuccessCount=1, FailedCount=2, FailedFindings=[]),
                                 dict(SuccessCount=3, FailedCount=1, FailedFindings=[]),
                                 dict(SuccessCount=0, FailedCount=0, FailedFindings=[])],
                         ids=["failed-count-without-entries", "counts-over-request", "counts-under-request"])
def test_contract_counts_that_do_not_add_up_are_retried_then_dead_lettered(hub, doc):
    report, _, _ = run(hub, *[answer(**doc)] * 3)
    assert len(report.failed) == 3
    assert all("does not add up" in r.reason and "gave up after 3 attempt(s)" in r.reason for r in report.failed)


def test_contract_failed_finding_named_among_strays_keeps_its_own_reason(hub):
    events = event_dicts(3, seed=41)
    doc = answer(SuccessCount=1, FailedCount=2, FailedFindings=[
        {"Id": events[0]["id"], "ErrorCode": "InvalidInput", "ErrorMessage": "bad"},
        {"ErrorCode": "InvalidInput", "ErrorMessage": "no id"}])
    report, sleeps, _ = run(hub, doc)
    [failed] = report.failed
    assert failed.event["id"] == events[0]["id"] and "InvalidInput: bad" in failed.reason
    assert report.delivered == 2 and len(sleeps) == 1                   # the two not named: re-imported


def test_contract_unknown_error_code_fails_the_finding_with_the_code(hub):
    events = event_dicts(3, seed=41)
    hub.aws.securityhub.state.fail_finding(events[1]["id"], "MysteryNewError", "something new", times=10)
    report, sleeps, _ = run(hub)
    [failed] = report.failed
    assert failed.event["id"] == events[1]["id"] and "MysteryNewError: something new" in failed.reason
    assert not failed.retryable and not sleeps and report.delivered == 2


@pytest.mark.parametrize("status", [301, 302, 307])
def test_contract_redirect_fails_at_once_naming_the_location(hub, status):
    report, sleeps, _ = run(hub, reply(status, b"", {"Location": "https://securityhub.example.com/"}))
    assert len(report.failed) == 3 and not sleeps and len(hub.seen) == 1
    assert all("redirect to https://securityhub.example.com/" in r.reason for r in report.failed)


@pytest.mark.parametrize("status,code,tries", [(403, "AccessDeniedException", 3), (401, "UnrecognizedClientException", 1)])
def test_contract_auth_failure_without_the_secret(hub, status, code, tries, caplog):
    """An unrecognized key fails once; IAM's AccessDeniedException is retried while a new role may still be
    propagating (test_securityhub_access_propagation_contract.py), to the policy's 3 attempts here."""
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"__type": code, "message": "not authorized"}).encode()
    report, sleeps, _ = run(hub, *[reply(status, body, {**JSON, "x-amzn-ErrorType": code})] * 3)
    assert len(report.failed) == 3 and len(sleeps) == tries - 1 and len(hub.seen) == tries
    assert all(code in r.reason and r.retryable == (tries > 1) for r in report.failed)
    assert SECRET not in caplog.text


def test_contract_retry_after_is_honoured(hub):
    throttled = reply(429, b'{"message": "Rate exceeded"}', {**JSON, "x-amzn-ErrorType": "TooManyRequestsException",
                                                             "Retry-After": "4"})
    report, sleeps, _ = run(hub, throttled)
    assert report.delivered == 3 and sleeps == [4.0]


@pytest.mark.parametrize("value", ["soon", "-1", ""])
def test_contract_garbage_retry_after_falls_back_to_backoff(hub, value):
    throttled = reply(429, b'{"message": "Rate exceeded"}', {**JSON, "x-amzn-ErrorType": "TooManyRequestsException",
                                                             "Retry-After": value})
    report, sleeps, _ = run(hub, throttled)
    assert report.delivered == 3 and len(sleeps) == 1 and sleeps[0] <= POLICY.backoff_ceiling(1)


def test_contract_reply_cut_mid_body_is_a_retried_network_error(hub):
    cut = Fault("forward_then", status=200, body=b'{"SuccessCount": 3, "Fail', length=200, headers=JSON, path=IMPORT)
    report, sleeps, events = run(hub, cut)
    assert report.delivered == 3 and len(sleeps) == 1 and len(hub.seen) == 2
    assert imported(hub) == {e["id"] for e in events}                     # re-import updated, did not duplicate


def test_contract_hang_past_the_read_timeout_is_retried_then_dead_lettered(hub):
    started = time.monotonic()
    # Each hang lasts until the client gives up (at most 30 s): a 1 s hang against a 2.5 s bound ran past it on a
    # loaded machine
    report, _, _ = run(hub, *[Fault("hang", seconds=30, path=IMPORT)] * 3, read_timeout=0.2, connect_timeout=1)
    elapsed = time.monotonic() - started
    assert hub.hangs_abandoned_after(3) == 3 and len(hub.seen) == 3 and elapsed < 15, elapsed
    assert len(report.failed) == 3 and all("network error" in r.reason and r.retryable for r in report.failed)


def test_contract_timeout_option_bounds_a_hung_import(hub):
    # The sink's own client (no client= given) takes `timeout` from the URL; botocore alone would wait 60 s.
    hub.add(*[Fault("hang", seconds=30, path=IMPORT)] * 3)
    sink = SecurityHubSink.from_url("securityhub://us-east-1?timeout=0.2&account_id=123456789012", delivery=POLICY,
                                    sleep=lambda s: None)
    assert sink.timeout == 0.2 and sink._client.meta.config.read_timeout == 0.2
    started = time.monotonic()
    report = sink.send(event_dicts(2, seed=43))
    report.merge(sink.flush())
    sink.close()
    elapsed = time.monotonic() - started
    assert hub.hangs_abandoned_after(3) == 3 and len(hub.seen) == 3 and elapsed < 15, elapsed
    assert len(report.failed) == 2 and all("network error" in r.reason for r in report.failed)


def test_default_timeouts_are_bounded_and_bad_ones_refused(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    sink = SecurityHubSink("us-east-1", account_id="123456789012")
    config = sink._client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (10.0, 60.0)
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(ConfigError, match="timeout.*seconds"):
            SecurityHubSink.from_url(f"securityhub://us-east-1?account_id=123456789012&timeout={bad}")


# -- GetFindings ---------------------------------------------------------------------------------------

def findings_page(*findings, token=None):
    doc = {"Findings": list(findings), **({"NextToken": token} if token else {})}
    return Fault("reply", status=200, body=json.dumps(doc).encode(), headers=JSON, path=GET)


def stored_findings(hub, n=3):
    sink, _ = make_sink()
    events = event_dicts(n, seed=42)
    report = sink.send(events)
    report.merge(sink.flush())
    assert report.delivered == n
    return sink, events, [sink.finding(e) for e in events]


def test_contract_malformed_findings_are_error_items_naming_the_finding(hub):
    sink, events, findings = stored_findings(hub)
    broken = dict(findings[1])
    del broken["CreatedAt"]
    odd_workflow = {**findings[2], "Workflow": {"Status": "SOMETHING_NEW"}}
    hub.add(findings_page(findings[0], {}, broken, odd_workflow))
    items = list(sink.items())
    assert [i.value["id"] for i in items if i.ok] == [events[0]["id"], events[2]["id"]]
    assert items[-1].value["data"] == events[2]["data"]                 # an unknown Workflow.Status changes nothing
    bad = [i for i in items if not i.ok]
    assert [i.line for i in bad] == [2, 3]
    assert str(bad[0].error).startswith(f"{sink.name}/GetFindings:2: finding 2: ")
    assert f"finding 3 (Id '{findings[1]['Id']}')" in str(bad[1].error) and "CreatedAt is missing" in str(bad[1].error)
    assert json.loads(bad[1].raw)["Id"] == findings[1]["Id"]
    with pytest.raises(ParseError, match="finding 2"):
        hub.add(findings_page(findings[0], {}))
        list(sink.get_events())


@pytest.mark.parametrize("page", [b'{"Findings": ["not a finding"]}', b'{"Findings": {"Id": "x"}}'],
                         ids=["string-finding", "findings-object"])
def test_contract_get_findings_page_botocore_cannot_read_is_an_error_naming_the_page(hub, page):
    sink, _ = make_sink()
    hub.add(Fault("reply", status=200, body=page, headers=JSON, path=GET))
    with pytest.raises(DeliveryError, match="GetFindings page 1: the answer is not a readable GetFindings response"):
        list(sink.items())


def test_contract_malformed_findings_are_dead_lettered_by_the_forwarder(hub, tmp_path):
    sink, events, findings = stored_findings(hub, n=2)
    hub.add(findings_page(findings[0], {"Id": "arn:aws:securityhub:x"}, findings[1]))
    with SqliteSink(str(tmp_path / "s.db")) as store, DeadLetterFile(str(tmp_path / "dl.ndjson")) as dl:
        summary = Forwarder(store, dl).run(sink.items())
    assert summary.delivered == 2 and summary.unparseable == 1
    [record] = [json.loads(x) for x in (tmp_path / "dl.ndjson").read_text().splitlines()]
    assert "finding 2 (Id 'arn:aws:securityhub:x')" in record["reason"]


@pytest.mark.parametrize("body", [HTML_LOGIN, b"{}"], ids=["html", "empty"])
def test_contract_get_findings_page_without_a_findings_list_is_an_error_not_empty(hub, body):
    sink, _ = make_sink()
    hub.add(Fault("reply", status=200, body=body, headers=JSON, path=GET))
    with pytest.raises(DeliveryError, match="page 1 has no Findings list"):
        list(sink.items())


def test_contract_get_findings_next_token_that_repeats_is_an_error_not_a_loop(hub):
    sink, events, findings = stored_findings(hub, n=2)
    hub.add(findings_page(findings[0], token="same"), findings_page(findings[1], token="same"))
    with pytest.raises(DeliveryError, match="page 2 answered the NextToken it was asked with"):
        list(sink.items())
