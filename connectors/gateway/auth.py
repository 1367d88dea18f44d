"""Bearer-token checks in constant time (hmac.compare_digest against every configured token).

Accepted spellings: `Authorization: Bearer <t>` (the API and the stream), `Authorization: Splunk <t>`
(HEC forwarders), and HTTP Basic with the token as password (HEC and TAXII clients that only do
Basic). Tokens never appear in logs, errors or reprs.
"""
from __future__ import annotations

import base64
import binascii
import hmac
from typing import Sequence


class TokenSet:
    def __init__(self, tokens: Sequence[str], *, allow_anonymous: bool = False) -> None:
        self._tokens = [t.encode("utf-8") for t in tokens]
        self.allow_anonymous = allow_anonymous and not tokens

    def check(self, presented: str | None) -> bool:
        if self.allow_anonymous:
            return True
        if not presented:
            return False
        candidate = presented.encode("utf-8")
        ok = False
        for token in self._tokens:         # no early exit: the time does not tell which token matched
            ok |= hmac.compare_digest(candidate, token)
        return ok

    def __repr__(self) -> str:
        return f"<TokenSet {len(self._tokens)} token(s)>"


def credential(authorization: str | None, schemes: Sequence[str] = ("bearer",)) -> tuple[str | None, str | None]:
    """(scheme, token) from an Authorization header value; Basic yields its password."""
    if not authorization:
        return None, None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic" and "basic" in schemes:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "basic", None
        return "basic", decoded.partition(":")[2]
    if scheme in schemes:
        return scheme, value or None
    return scheme, None
