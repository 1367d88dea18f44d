"""AuthEventBuilder: authentication events (auth-event.schema.json). Result follows event_type unless set."""
from __future__ import annotations

from typing import Any, Self

from . import checks
from .base import EventBuilder

_FAILURES = {"login_failure", "mfa_failure", "account_locked"}


class AuthEventBuilder(EventBuilder):
    event_type = "auth_event"

    def __init__(self) -> None:
        super().__init__()
        self.source("siem", "wia-security")
        self._data(event_type="login_success")

    def kind(self, value: str) -> Self:
        """login_success, login_failure, logout, password_change, account_locked, account_unlocked,
        mfa_success, mfa_failure or privilege_escalation."""
        return self._data(event_type=value)

    def result(self, value: str, failure_reason: str | None = None) -> Self:
        """success or failure; failure_reason: invalid_credentials, account_disabled, account_locked,
        expired_password, mfa_failed or unknown."""
        return self._data(result=value, failure_reason=failure_reason)

    def account(self, name: str, domain: str | None = None, email: str | None = None,
                employee_id: str | None = None, groups: list[str] | None = None,
                roles: list[str] | None = None) -> Self:
        """data.user (required)."""
        return self._merge("data.user", {"name": name, "domain": domain, "email": email,
                                         "employee_id": employee_id, "groups": groups, "roles": roles})

    def origin(self, ip: str | None = None, hostname: str | None = None, country: str | None = None,
               city: str | None = None, user_agent: str | None = None, device_type: str | None = None) -> Self:
        """data.source: where the attempt came from."""
        checks.ip_address(type(self), "data.source.ip", ip)
        geo = {k: v for k, v in (("country", country), ("city", city)) if v}
        return self._merge("data.source", {"ip": ip, "hostname": hostname, "geo": geo or None,
                                           "user_agent": user_agent, "device_type": device_type})

    def target(self, type: str, name: str, ip: str | None = None, url: str | None = None) -> Self:
        """data.target (required). type: application, host, service or network."""
        checks.ip_address(self.__class__, "data.target.ip", ip)
        return self._merge("data.target", {"type": type, "name": name, "ip": ip, "url": url})

    def method(self, auth_method: str, mfa_used: bool | None = None, mfa_method: str | None = None) -> Self:
        return self._data(auth_method=auth_method, mfa_used=mfa_used, mfa_method=mfa_method)

    def session(self, session_id: str | None = None, logon_type: str | None = None,
                attempt_count: int | None = None, previous_login: str | None = None) -> Self:
        return self._data(session_id=session_id, logon_type=logon_type, attempt_count=attempt_count,
                          previous_login=previous_login)

    def risk(self, score: float, factors: list[str] | None = None) -> Self:
        return self._data(risk_score=score, risk_factors=factors)

    def _finish(self, event: dict[str, Any]) -> dict[str, Any]:
        data = event.get("data")
        if isinstance(data, dict):
            data.setdefault("result", "failure" if data.get("event_type") in _FAILURES else "success")
        return event
