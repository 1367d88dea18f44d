"""QRadar offense read-back against the REST contract server (SEC token, Version header, Range paging)."""
from __future__ import annotations

import socket
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from servers.qradar_contract import QRadarContract
from wia_security import validate_event
from wia_security.connectors.config import Secret
from wia_security.connectors.qradar import API_VERSION, QRadarClient, offense_to_wia
from wia_security.errors import DeliveryError
from wia_security.redact import MASK

TOKEN = Secret("7e0a1b2c-test-token", "env QRADAR_TOKEN")


def test_contract_pages_through_every_offense_by_id(qradar_api: QRadarContract) -> None:
    client = QRadarClient(qradar_api.url, token=TOKEN)
    got = list(client.offenses(page_size=50))
    assert [o["id"] for o in got] == list(range(1, 121))
    assert [r["Range"] for r in qradar_api.requests] == ["items=0-49"] * 3
    assert [parse_qs(urlsplit(p).query) for p in qradar_api.paths] == [
        {"sort": ["+id"]}, {"sort": ["+id"], "filter": ["id > 50"]}, {"sort": ["+id"], "filter": ["id > 100"]}]
    assert all(r["SEC"] == TOKEN.reveal() and r["Version"] == API_VERSION for r in qradar_api.requests)
    assert "test-token" not in repr(client)


def test_contract_pages_by_offset_with_range_headers_when_sorted(qradar_api: QRadarContract) -> None:
    client = QRadarClient(qradar_api.url, token=TOKEN)
    got = list(client.offenses(page_size=50, sort="-id"))
    assert [o["id"] for o in got] == list(range(120, 0, -1))
    assert [r["Range"] for r in qradar_api.requests] == ["items=0-49", "items=50-99", "items=100-149"]


def test_contract_filter_is_passed_through(qradar_api: QRadarContract) -> None:
    got = list(QRadarClient(qradar_api.url, token=TOKEN).offenses(filter='status = "OPEN"', page_size=30))
    assert got and all(o["status"] == "OPEN" for o in got) and len(got) == 80


@pytest.mark.parametrize("token,version,status", [("wrong", API_VERSION, 401), (TOKEN, "1.0", 406)])
def test_contract_errors_carry_status_and_message(qradar_api: QRadarContract, token, version, status) -> None:
    with pytest.raises(DeliveryError) as info:
        list(QRadarClient(qradar_api.url, token=token, version=version).offenses())
    assert info.value.status == status and "HTTP" in str(info.value.reason)
    assert "test-token" not in str(info.value)


def test_offenses_become_valid_wia_incidents(qradar_api: QRadarContract) -> None:
    events = [offense_to_wia(o, console="qradar.example") for o in QRadarClient(qradar_api.url, token=TOKEN).offenses()]
    assert len(events) == 120 and len({e["id"] for e in events}) == 120
    for event in events:
        result = validate_event(event)
        assert result.valid, result.errors
    third = events[2]
    assert third["data"]["status"] == "closed" and third["data"]["closed_at"] == "2025-12-14T09:33:20.000Z"
    assert third["data"]["title"] == "Multiple Login Failures for user3"
    assert offense_to_wia({"id": 3}, console="qradar.example")["id"] == third["id"]     # stable ids


@pytest.mark.parametrize("stray", ["{}\n", "\xa0{}"], ids=["trailing-newline", "leading-nbsp"])
def test_contract_a_malformed_token_is_a_delivery_error_that_never_shows_it(qradar_api: QRadarContract, stray,
                                                                             caplog) -> None:
    # A token variable or file with a stray newline, or pasted with a no-break space: requests refuses the
    # header, quoting its value with !r (a backslash escape, not the raw character) in InvalidHeader.
    token = Secret(stray.format("5c1e7a0d-qradar-token-" + uuid.uuid4().hex[:8]), "env QRADAR_TOKEN")
    with pytest.raises(DeliveryError) as info:
        list(QRadarClient(qradar_api.url, token=token).offenses())
    error = info.value
    assert "a request header is not valid" in error.reason and MASK in error.reason and not error.retryable
    secret = token.reveal()
    for shown in (secret, repr(secret)[1:-1], secret.strip()):
        assert shown not in str(error) and shown not in caplog.text
    assert qradar_api.requests == []                              # refused before anything was sent


def test_contract_an_unreachable_console_is_a_retryable_delivery_error() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{listener.getsockname()[1]}"  # bound, not listening: refused
        with pytest.raises(DeliveryError) as info:
            list(QRadarClient(closed, token=TOKEN, timeout=5).offenses())
    assert info.value.retryable and "network error: ConnectionError" in info.value.reason
