"""Offense read-back against a QRadar REST contract server that misbehaves: malformed offense records,
a Range header ignored, answers that are not a JSON array. Driven by `requests` through QRadarClient."""
from __future__ import annotations

from typing import Any

import pytest

from servers.intel_http import ContractServer
from servers.qradar_contract import QRadarContract, ScriptedQRadar, offenses
from wia_security.connectors.qradar import QRadarClient, offense_to_wia
from wia_security.errors import ConversionError, DeliveryError
from wia_security.validation import Validator

TOKEN = "7e0a1b2c-test-token"


class IgnoresRange(QRadarContract):
    """Serves the first `len(page)` offenses whatever Range asks for (as a proxy that drops the header would)."""

    def answer(self, path: str, headers: Any) -> tuple[int, Any, dict[str, str]]:
        status, body, extra = super().answer(path, {**headers, "Range": "items=0-49"})
        return status, body, (extra if self.with_content_range else {})


@pytest.mark.parametrize("with_content_range", [True, False])
def test_a_server_that_ignores_range_is_an_error_not_an_endless_walk(with_content_range: bool) -> None:
    server = IgnoresRange(offenses(120), TOKEN)
    server.with_content_range = with_content_range
    client = QRadarClient(server.url, token=TOKEN)
    try:
        seen: list[Any] = []
        with pytest.raises(DeliveryError, match="the server ignores Range") as caught:
            for offense in client.offenses(page_size=50, sort="+id"):       # a sort: paged by offset
                seen.append(offense)
                assert len(seen) <= 120, "walked past every offense the server has"
        assert len(seen) == 50 and not caught.value.retryable
        assert "asked for items=50-99" in str(caught.value)
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize("reply, why, retryable", [
    ((200, {"offenses": []}, {}), "expected a JSON array of offenses, got dict", False),
    ((200, "maintenance", {}), "expected a JSON array of offenses, got str", False),
])
def test_an_answer_that_is_not_an_array_of_offenses_says_so(reply: Any, why: str, retryable: bool) -> None:
    server = ScriptedQRadar(reply, TOKEN)
    client = QRadarClient(server.url, token=TOKEN)
    try:
        with pytest.raises(DeliveryError, match=why) as caught:
            list(client.offenses())
        assert caught.value.retryable is retryable and "items=0-49" in str(caught.value)
    finally:
        client.close()
        server.close()


class ProxyErrorPage(ContractServer):
    """A proxy in front of the console answering 200 with an HTML page."""

    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return 200, b"<html>proxy error</html>", {"Content-Type": "text/html"}


def test_an_answer_that_is_not_json_is_a_retryable_error_naming_the_range() -> None:
    with ProxyErrorPage() as server:
        client = QRadarClient(server.url, token=TOKEN)
        with pytest.raises(DeliveryError, match=r"\(items=0-49\): the answer is not JSON: '<html>proxy error") as caught:
            list(client.offenses())
        client.close()
    assert caught.value.retryable


GOOD = offenses(1)[0]


@pytest.mark.parametrize("record, path, why", [
    ([1, 2], "/", "an offense is a JSON object, not list"),
    (None, "/", "not NoneType"),
    ({**GOOD, "id": None}, "/id", "an offense needs an id"),
    ({**GOOD, "magnitude": "7"}, "/magnitude", "magnitude is '7', not a number"),
    ({**GOOD, "severity": True}, "/severity", "not a number"),
    ({**GOOD, "severity": float("nan")}, "/severity", "not a number"),
    ({**GOOD, "description": 42}, "/description", "description is a int, not a string"),
    ({**GOOD, "start_time": "2025-01-01"}, "/start_time", "not a number"),
    ({**GOOD, "last_updated_time": 10 ** 20}, "/last_updated_time", "is not a time QRadar can have"),
    ({**GOOD, "categories": "Authentication"}, "/categories", "not a list of names"),
    ({**GOOD, "assigned_to": 5}, "/assigned_to", "not a string"),
    ({**GOOD, "status": ["OPEN"]}, "/status", "not a string"),
])
def test_malformed_offense_records_raise_a_conversion_error_naming_the_field(record: Any, path: str, why: str) -> None:
    with pytest.raises(ConversionError) as caught:
        offense_to_wia(record, console="qradar.example")
    assert caught.value.path == path and why in str(caught.value)


def test_well_formed_offenses_from_the_server_still_become_valid_incidents(qradar_api: QRadarContract) -> None:
    client = QRadarClient(qradar_api.url, token=TOKEN)
    try:
        incidents = [offense_to_wia(o, console="qradar.example") for o in client.offenses(page_size=50)]
    finally:
        client.close()
    validator = Validator()
    assert len(incidents) == 120 and all(validator.validate(e).valid for e in incidents)
    float_times = offense_to_wia({**GOOD, "start_time": 1765704600000.0, "last_updated_time": None}, console="q")
    assert float_times["data"]["created_at"] == float_times["timestamp"]
