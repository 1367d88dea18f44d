"""Options from a URL or a config table arrive as text: each is typed, a bad value names its key, and a
misspelt key is refused rather than ignored (found by checking the docs' option tables against the code)."""
from __future__ import annotations

import pytest

from wia_security.connectors import open_sink
from wia_security.connectors.splunk.search import SplunkSearchSource
from wia_security.errors import ConfigError

DCR = "dcr-" + "0" * 32


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", "token-value-123456")


def test_timeouts_from_a_url_are_numbers():
    # A string timeout failed every Splunk SOAR delivery ("Timeout value connect was 5") and every search
    # ("'str' object cannot be interpreted as an integer", blamed on the reply).
    soar = open_sink("phantom+http://127.0.0.1:9?token_env=SOME_TOKEN&timeout=5")
    assert soar.timeout == 5.0 and isinstance(soar.timeout, float)
    search = SplunkSearchSource.from_url("splunk+https://h:8089?token_env=SOME_TOKEN&timeout=7&tls_verify=false")
    assert (search.timeout, search._verify) == (7.0, False)


@pytest.mark.parametrize("open_, url, kwargs, says", [
    (open_sink, "syslog+tcp://h:514?facility=abc", {}, "facility: must be a whole number, got 'abc'"),
    (open_sink, "syslog+tcp://h:514?timeout=-1", {}, "timeout: must be a number of seconds > 0"),
    (open_sink, "syslog+tls://h:6514?verify=perhaps", {}, "verify: must be true or false"),
    (open_sink, "syslog+tls://h:6514?ca_certs=/nonexistent/ca.pem", {}, "ca_certs: cannot load the CA file"),
    (open_sink, "elasticsearch+http://h:9200?request_timeout=abc", {}, "request_timeout: must be a number of seconds"),
    (open_sink, "elasticsearch+http://h:9200?verify=perhaps", {}, "verify: must be true or false"),
    (open_sink, f"sentinel://dce.example.com/{DCR}", {"credential": "default", "stram": "x"},
     "unknown option 'stram'"),
    (open_sink, "phantom+http://h:9?token_env=SOME_TOKEN&timeout=soon", {}, "timeout: must be a number"),
    (SplunkSearchSource.from_url, "splunk+https://h:8089?token_env=SOME_TOKEN&timeout=0", {},
     "timeout: must be a number of seconds > 0"),
    (SplunkSearchSource.from_url, "splunk+https://h:8089?token_env=SOME_TOKEN&tls_verify=perhaps", {},
     "tls_verify: must be true or false"),
])
def test_a_bad_option_value_is_a_config_error_naming_its_key(open_, url, kwargs, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(")):
        open_(url, **kwargs)
