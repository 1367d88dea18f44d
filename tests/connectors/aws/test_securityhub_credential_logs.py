"""At DEBUG (`wia-security serve --log-level debug`, or any application logging botocore) botocore logs the
canonical request and the headers it sends, the AWS session token among them. The credentials that sign a
request are masked in every log record. boto3 against moto server."""
from __future__ import annotations

import logging

from wia_security.connectors import open_sink
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.redact import MASK

SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE-session-token/0123456789+abcdef=="
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_session_token_and_secret_key_never_reach_botocore_debug_logs(aws, samples, caplog, monkeypatch):
    import boto3
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)          # a session that reads these credentials
    caplog.set_level(logging.DEBUG)
    with open_sink("securityhub://us-east-1", delivery=DeliveryPolicy(max_wait=0, max_attempts=1)) as sink:
        report = sink.send([samples["alert-sample"]])
        report.merge(sink.flush())
    assert report.delivered == 1
    signed = [r.getMessage() for r in caplog.records if r.name.startswith("botocore")
              and "x-amz-security-token" in r.getMessage().lower()]
    assert signed and all(MASK in line for line in signed)        # the canonical request and the sent headers
    assert SESSION_TOKEN not in caplog.text and SECRET_KEY not in caplog.text
