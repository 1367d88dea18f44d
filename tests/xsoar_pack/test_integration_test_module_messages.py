"""Test (test-module) says what to change when the Source URL and the Source type do not match, run through main()
against the project's gateway and medallion. Before: a TAXII collection given as a gateway, or a gateway (or a TAXII
API root) given as a TAXII collection, answered "Error in API call [404] - Not Found" and the server's HTML page; a
kafka:// URL with Source type gateway "No connection adapters were found for 'kafka://...'"; a Source type outside
its options 'ok' (read as a gateway)."""
from __future__ import annotations

import pytest

from .conftest import run_command


@pytest.fixture(scope="module")
def taxii():
    from medallion_subprocess import Medallion
    with Medallion() as server:
        yield server


def _error(entries: list) -> str:
    (entry,) = entries
    assert isinstance(entry, dict) and entry["Type"] == 4, entry
    return entry["Contents"]


def _taxii_credentials() -> dict:
    from medallion_subprocess import PASSWORD, USER
    return {"identifier": USER, "password": PASSWORD}


def test_a_taxii_collection_given_as_a_gateway(integration, demisto, taxii):
    params = {"url": taxii.collection_url, "source_type": "gateway", "credentials": _taxii_credentials()}
    message = _error(run_command(integration, demisto, "test-module", params=params))
    assert "the Source URL has no WIA gateway feed" in message and "set Source type to taxii" in message
    assert "[404]" in message and "<html" not in message


@pytest.mark.parametrize("where", ["gateway", "api root"])
def test_what_is_no_taxii_collection_given_as_one(integration, demisto, gateway, taxii, where):
    if where == "gateway":
        params = {"url": gateway.url, "source_type": "taxii", "credentials": {"identifier": "", "password": gateway.token}}
    else:
        params = {"url": taxii.collection_url.rsplit("/collections", 1)[0], "source_type": "taxii",
                  "credentials": _taxii_credentials()}
    message = _error(run_command(integration, demisto, "test-module", params=params))
    assert "the Source URL is not a TAXII 2.1 collection" in message and "/api1/collections/<collection-id>" in message


@pytest.mark.parametrize("source_type", ["gateway", "taxii"])
def test_a_kafka_url_with_another_source_type(integration, demisto, source_type):
    params = {"url": "kafka://broker.example:9092/wia-events", "source_type": source_type}
    message = _error(run_command(integration, demisto, "test-module", params=params))
    assert message.endswith(f"a kafka:// Source URL is a Kafka topic: set Source type to kafka (it is {source_type})")


def test_a_source_type_outside_its_options(integration, demisto, gateway):
    params = {"url": gateway.url, "source_type": "splunk", "credentials": {"identifier": "", "password": gateway.token}}
    assert "Source type must be gateway, taxii or kafka, not 'splunk'" in _error(
        run_command(integration, demisto, "test-module", params=params))


def test_other_refusals_are_left_as_they_are(integration, demisto, gateway, taxii):
    params = {"url": gateway.url, "source_type": "gateway", "credentials": {"identifier": "", "password": "wrong-token"}}
    message = _error(run_command(integration, demisto, "test-module", params=params))
    assert "[401]" in message and "Source type" not in message
    params = {"url": taxii.collection_url, "source_type": "taxii", "credentials": _taxii_credentials()}
    assert run_command(integration, demisto, "test-module", params=params) == ["ok"]
