"""`wia-security forward` through a proxy set in HTTP_PROXY with credentials: a real local proxy refuses
with 407 and quotes the credentials on its page; neither standard error, standard output, the logs nor
the dead-letter reason may carry them in any form. (An https destination's refusal carries no credential
with requests/urllib3 2: the CONNECT answer's body is never read; the page of an http one is quoted.)"""
from __future__ import annotations

import json
import logging
import os

import pytest

from servers.refusing_proxy import BASIC_LATIN1, USERINFO, RefusingProxy, leaked
from wia_security.redact import MASK


@pytest.fixture
def proxy(monkeypatch):
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    server = RefusingProxy()
    monkeypatch.setenv("HTTP_PROXY", server.url(USERINFO))
    monkeypatch.setenv("HTTPS_PROXY", server.url(USERINFO))
    yield server
    server.close()


def test_forward_through_a_refusing_proxy_masks_its_credentials_everywhere(cli, proxy, samples, tmp_path,
                                                                          monkeypatch, caplog):
    monkeypatch.setenv("HEC_TOKEN", "hec-token-0123456789")
    (tmp_path / "in.json").write_text(json.dumps(samples["alert-sample"]))
    with caplog.at_level(logging.DEBUG):
        run = cli("forward", "in.json", "--to", "splunk+http://hec.example.invalid:8088?token_env=HEC_TOKEN",
                  "--dead-letter", "dead.ndjson")
    dead = (tmp_path / "dead.ndjson").read_text()
    assert run.code == 1, run.err
    assert proxy.seen == [f"Basic {BASIC_LATIN1}"]          # requests did send them through the proxy
    reason = json.loads(dead)["reason"]
    assert "407" in reason and MASK in reason, reason      # the page quoted them: masked, not dropped
    assert MASK in run.err
    for where, text in {"stderr": run.err, "stdout": run.out, "logs": caplog.text, "dead letter": dead}.items():
        assert leaked(text) == [], where


def test_every_command_knows_them_from_the_start(cli, proxy, samples, tmp_path):
    """Commands that open no sink (pull from a source, enrich, serve) go through main() too."""
    from servers.refusing_proxy import FORMS
    from wia_security.redact import redact
    (tmp_path / "in.json").write_text(json.dumps(samples["alert-sample"]))
    assert cli("validate", "in.json").code == 0
    assert [redact(form) for form in FORMS] == [MASK] * len(FORMS)
