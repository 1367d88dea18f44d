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
    (open_sink, "syslog+tls://h:6514?ca_certs=/nonexistent/ca.pem", {}, "ca_certs: '/nonexistent/ca.pem' holds no CA"),
    (open_sink, "syslog+tls://h:6514?ca_file=/nonexistent/ca.pem", {}, "ca_file: '/nonexistent/ca.pem' holds no CA"),
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


def test_taxii_url_options_are_typed_for_the_source_and_the_sink(monkeypatch):
    # `?batch_objects=N` reached TaxiiSource as text (TypeError); the sink kept a query string as part
    # of the collection URL and refused delivery keywords.
    from wia_security.connectors.delivery.urls import tls_options
    from wia_security.connectors.taxii import TaxiiSink, TaxiiSource, taxii_options
    url, options = taxii_options("taxii+https://h/api/collections/c1/?page_size=50&types=indicator,malware"
                                 "&batch_objects=100&user=u&password_env=SOME_TOKEN&verify=false", {},
                                 TaxiiSource.OPTIONS, integers=("page_size", "batch_objects"))
    assert url == "https://h/api/collections/c1/"
    assert (options["page_size"], options["batch_objects"], options["types"]) == (50, 100, ["indicator", "malware"])
    assert tls_options({"verify": options["verify"]}) == (False, None)      # read as the source is built
    assert options["password"].reveal() == "token-value-123456"
    url, options = taxii_options("taxii+https://h/api/collections/c1/?max_events=5&status_timeout=30",
                                 {"max_wait": 0}, TaxiiSink.OPTIONS, numbers=("status_timeout",))
    assert url == "https://h/api/collections/c1/" and options["status_timeout"] == 30.0
    assert (options["delivery"].max_events, options["delivery"].max_wait) == (5, 0)


@pytest.mark.parametrize("query, says", [
    ("?page_sise=5", "unknown TAXII option 'page_sise'"),
    ("?page_size=0", "page_size: must be a whole number >= 1"),
    ("?password=hunter22", "secrets are not accepted as literals"),
    ("?max_events=3", "a TAXII source takes no delivery keys"),
])
def test_taxii_source_url_mistakes_are_config_errors(query, says):
    from wia_security.connectors.taxii import TaxiiSource
    with pytest.raises(ConfigError, match=says):
        TaxiiSource.from_url("taxii+https://h/api/collections/c1/" + query)


@pytest.mark.parametrize("url, options", [
    ("elasticsearch+https://h:9200?index=a-prefix", {"index": "b-prefix"}),
    ("opensearch+https://h:9200?naming=daily", {"naming": "datastream"}),
    ("syslog+tcp://h:514?facility=4", {"facility": 10}),
    ("qradar+tls://h:6514?server_name=a.example", {"server_name": "b.example"}),
])
def test_an_option_in_both_the_url_and_the_config_is_refused_not_silently_one_of_them(url, options):
    """As every parse_sink_url connector does: the Elasticsearch/OpenSearch and syslog URLs let the config's
    value win over the URL's without a word."""
    with pytest.raises(ConfigError, match="given in both the URL and the options") as info:
        open_sink(url, **options)
    assert info.value.key == next(iter(options))


@pytest.mark.parametrize("url", [
    "splunk+https://h:8088?token_env=SOME_TOKEN&index=main&index=security",
    "splunk+https://h:8088?token_env=SOME_TOKEN&token_env=OTHER_TOKEN",
    "phantom+https://h:9?token_env=SOME_TOKEN&label=events&label=incidents",
])
def test_an_option_given_twice_in_a_sink_url_is_refused(url):
    """The last value won without a word: index=main&index=security indexed into security."""
    with pytest.raises(ConfigError, match="given more than once in the URL") as err:
        open_sink(url)
    assert err.value.key in ("index", "token_env", "label") and "token-value" not in str(err.value)


def test_an_option_given_twice_in_a_search_url_is_refused():
    with pytest.raises(ConfigError, match="given more than once in the URL: token_env"):
        SplunkSearchSource.from_url("splunk+https://h:8089?token_env=SOME_TOKEN&timeout=5&token_env=SOME_TOKEN")
