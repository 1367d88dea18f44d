"""A destination URL that gives one option twice (`index=main&index=security`) is refused naming the option, by
every connector that reads its options from the URL. Only HEC, Splunk SOAR, XSOAR and the Splunk search source
refused it (docs/connectors/delivery.md said so of them alone); Elasticsearch/OpenSearch, TAXII, MISP, Security
Hub, Sentinel (rows and incidents), SCC, Kafka (its own keys and librdkafka's) and file URLs parsed the query into
a dict, and the last value won without a word. MISP's `tag`, a list by design (`tag=a&tag=b`), stays repeatable.
Offline: nothing is sent (the refusal comes before any client is made)."""
from __future__ import annotations

import pytest

from wia_security.connectors import open_sink
from wia_security.errors import ConfigError

SENTINEL = "sentinel://dce.eastus-1.ingest.monitor.azure.com/dcr-0123456789abcdef0123456789abcdef"
INCIDENTS = ("sentinel-incidents:///subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
             "Microsoft.OperationalInsights/workspaces/ws")

REPEATED = [
    ("elasticsearch+https://es.example:9200?index=a&index=b", "index"),
    ("opensearch+https://os.example:9200?naming=daily&max_events=5&max_events=50", "max_events"),
    ("taxii+https://taxii.example/api1/collections/x/?max_content_length=1000&timeout=5&timeout=50", "timeout"),
    ("misp+https://misp.example?distribution=0&distribution=4", "distribution"),
    ("securityhub://eu-west-1?account_id=123456789012&account_id=210987654321", "account_id"),
    (f"{SENTINEL}?stream=Custom-A&stream=Custom-B", "stream"),
    (f"{INCIDENTS}?timeout=5&timeout=50", "timeout"),
    ("scc://organizations/1/sources/2?auth=anonymous&timeout=5&timeout=50", "timeout"),
    ("kafka://127.0.0.1:9/wia-events?format=wia&format=ocsf", "format"),
    ("kafka://127.0.0.1:9/wia-events?linger.ms=1&linger.ms=500", "linger.ms"),
    ("file:///nonexistent-dir/out.ndjson?format=wia&format=ocsf", "format"),
    ("splunk+https://hec.example:8088?token_env=NONE&index=a&index=b", "index"),        # as before
]


@pytest.mark.parametrize("url,key", REPEATED, ids=[u.split("://", 1)[0] + ":" + k for u, k in REPEATED])
def test_an_option_given_twice_in_the_url_is_refused_naming_it(url, key):
    with pytest.raises(ConfigError) as refused:
        open_sink(url)
    assert refused.value.key == key and "given more than once in the URL" in str(refused.value)


def test_a_taxii_source_and_a_kafka_source_refuse_it_too():
    from wia_security.connectors.kafka import KafkaSource
    from wia_security.connectors.taxii import TaxiiSource
    with pytest.raises(ConfigError, match="given more than once in the URL: settle"):
        TaxiiSource.from_url("taxii+https://taxii.example/api1/collections/x/?settle=0&settle=60")
    with pytest.raises(ConfigError, match="given more than once in the URL: group"):
        KafkaSource.from_url("kafka://127.0.0.1:9/wia-events?group=a&group=b")


def test_misp_tags_stay_repeatable():
    from wia_security.connectors.delivery.urls import refuse_repeated_keys
    refuse_repeated_keys("tag=tlp:amber&tag=wia&distribution=0", "misp+https://misp.example", repeatable=("tag",))
    with pytest.raises(ConfigError, match="distribution"):
        refuse_repeated_keys("tag=a&tag=b&distribution=0&distribution=1", "misp", repeatable=("tag",))
