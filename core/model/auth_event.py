"""auth-event.schema.json `AuthEventData`. Required: event_type, result, user (with name), target (with type, name)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Record


@dataclass(kw_only=True)
class AuthUser(Record):
    name: str | None = None
    domain: str | None = None
    email: str | None = None
    employee_id: str | None = None
    groups: list[str] | None = None
    roles: list[str] | None = None


@dataclass(kw_only=True)
class AuthGeo(Record):
    country: str | None = None
    city: str | None = None


@dataclass(kw_only=True)
class AuthSource(Record):
    ip: str | None = None
    hostname: str | None = None
    geo: AuthGeo | None = None
    user_agent: str | None = None
    device_type: str | None = None   # desktop | mobile | tablet | unknown


@dataclass(kw_only=True)
class AuthTarget(Record):
    type: str | None = None          # application | host | service | network
    name: str | None = None
    ip: str | None = None
    url: str | None = None


@dataclass(kw_only=True)
class AuthEventData(Record):
    event_type: str | None = None    # login_success|login_failure|logout|password_change|account_locked|
    #                                  account_unlocked|mfa_success|mfa_failure|privilege_escalation
    result: str | None = None        # success | failure
    failure_reason: str | None = None
    user: AuthUser | None = None
    source: AuthSource | None = None
    target: AuthTarget | None = None
    auth_method: str | None = None   # password|sso|certificate|biometric|mfa|api_key|oauth
    mfa_used: bool | None = None
    mfa_method: str | None = None    # totp|sms|push|hardware_token|biometric
    session_id: str | None = None
    logon_type: str | None = None    # interactive|network|batch|service|remote_interactive
    attempt_count: int | None = None
    previous_login: str | None = None
    risk_score: float | None = None  # 0..1
    risk_factors: list[str] | None = None
