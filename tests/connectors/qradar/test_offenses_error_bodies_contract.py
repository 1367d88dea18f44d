"""Offense read-back: QRadar's error answers (401, 403, 422, 429, 500, 503) become one DeliveryError with the
status, QRadar's message and whether a retry may help, whatever the body is: QRadar's documented error
object, a proxy's JSON that is not an object, or an HTML page. Driven by `requests` through QRadarClient."""
from __future__ import annotations

from typing import Any

import pytest

from servers.qradar_contract import ScriptedQRadar
from wia_security.connectors.qradar import QRadarClient
from wia_security.errors import DeliveryError

TOKEN = "7e0a1b2c-test-token"


def qradar_error(status: int, code: int, message: str, description: str) -> dict[str, Any]:
    """QRadar's error object (IBM QRadar API reference, "Error responses")."""
    return {"http_response": {"code": status, "message": "x"}, "code": code, "message": message,
            "description": description, "details": {}}


def refusal(reply: tuple[int, Any, dict[str, str]]) -> DeliveryError:
    """The error offenses() raises when QRadar answers `reply`."""
    server = ScriptedQRadar(reply, TOKEN)
    client = QRadarClient(server.url, token=TOKEN)
    try:
        with pytest.raises(DeliveryError) as caught:
            list(client.offenses())
    finally:
        client.close()
        server.close()
    return caught.value


@pytest.mark.parametrize("reply, says, retryable, retry_after", [
    ((403, qradar_error(403, 26, "User has insufficient capabilities to access this endpoint resource",
                        "The user does not have the required capability"), {}),
     "HTTP 403: User has insufficient capabilities to access this endpoint resource The user does not have",
     False, None),
    ((422, qradar_error(422, 1005, "Invalid filter syntax", "status = OPEN AND"), {}),
     "HTTP 422: Invalid filter syntax status = OPEN AND", False, None),
    ((500, qradar_error(500, 1020, "An error occurred while attempting to retrieve the offenses", ""), {}),
     "HTTP 500: An error occurred while attempting to retrieve the offenses", True, None),
    ((429, qradar_error(429, 1, "Too many requests", "slow down"), {"Retry-After": "17"}),
     "HTTP 429: Too many requests slow down", True, 17.0),
    ((503, ["maintenance", "window"], {"Retry-After": "120"}), "HTTP 503: ['maintenance', 'window']", True, 120.0),
    ((502, "bad gateway", {}), "HTTP 502: bad gateway", True, None),
    ((401, None, {}), "HTTP 401: None", False, None),
    ((500, 42, {}), "HTTP 500: 42", True, None),
], ids=["403", "422", "500", "429-retry-after", "503-json-array", "502-json-string", "401-json-null", "500-number"])
def test_an_error_answer_is_one_delivery_error_with_status_and_message(reply, says, retryable, retry_after):
    error = refusal(reply)
    assert says in str(error) and "/api/siem/offenses" in str(error)
    assert (error.status, error.retryable, error.retry_after) == (reply[0], retryable, retry_after)


def test_an_error_body_echoing_the_sec_token_is_masked():
    error = refusal((401, qradar_error(401, 2, f"SEC token {TOKEN} is not valid", "Authentication failed"), {}))
    assert TOKEN not in str(error) and "is not valid Authentication failed" in str(error)


@pytest.mark.parametrize("token", [None, "", "   "], ids=["none", "empty", "blank"])
def test_a_missing_token_is_a_config_error_before_any_request(token, qradar_api):
    from wia_security.errors import ConfigError

    with pytest.raises(ConfigError, match="SEC") as caught:
        QRadarClient(qradar_api.url, token=token)
    assert caught.value.key == "token" and qradar_api.requests == []
