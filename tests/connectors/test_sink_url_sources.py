"""Errors about an HTTP sink's URL name it as given, port included; a missing host says so; the HEC sink's list
of known options points at token_env / token_file, since a literal token in a URL is refused (found by a
new-user walkthrough: 'splunk+http://127.0.0.1: token: …', 'https://None: url: …', 'known: token, …')."""
from __future__ import annotations

import pytest

from wia_security.connectors import open_sink
from wia_security.errors import ConfigError


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", "token-value-123456")


@pytest.mark.parametrize("url, says", [
    ("splunk+http://127.0.0.1:8088", "splunk+http://127.0.0.1:8088: token: a HEC token is required"),
    ("splunk+https://hec.example:8088?token=abc", "splunk+https://hec.example:8088: token: secrets are not accepted"),
    ("splunk+https://[::1]:8088?token_env=SOME_TOKEN&colour=red", "splunk+https://[::1]:8088: colour: unknown"),
    ("phantom+http://127.0.0.1:9443?token_env=SOME_TOKEN&colour=red", "phantom+http://127.0.0.1:9443: colour: unknown"),
    ("splunk+https:///services?token_env=SOME_TOKEN", "splunk+https://: url: no host: expected splunk+https://HOST[:PORT]"),
    ("splunk+https://hec.example:http?token_env=SOME_TOKEN", "splunk+https://hec.example: url: the port is not a number"),
])
def test_url_errors_name_the_destination_as_given(url, says):
    with pytest.raises(ConfigError) as caught:
        open_sink(url)
    assert str(caught.value).startswith(says), str(caught.value)
    assert "None" not in str(caught.value)


def test_the_hec_options_listed_point_at_token_env_and_token_file():
    with pytest.raises(ConfigError) as caught:
        open_sink("splunk+https://hec.example:8088?token_env=SOME_TOKEN&idx=main")
    known = str(caught.value).split("known: ", 1)[1].split(", ")
    assert known[0] == "token_env / token_file" and "token" not in known and "index" in known


def test_an_ipv6_hec_address_keeps_its_brackets():
    sink = open_sink("splunk+https://[::1]:8088?token_env=SOME_TOKEN")
    assert (sink.name, sink.base_url) == ("splunk:[::1]:8088", "https://[::1]:8088")
