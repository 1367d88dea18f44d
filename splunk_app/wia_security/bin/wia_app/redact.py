"""Masks secrets in every line the app writes (splunkd.log, the dead-letter log).

A destination or source that answers an error by echoing the request (its Authorization header, a
token in a query string) would otherwise put the secret into splunkd.log through the error message;
masking the known secret values, and the forms they travel in, catches that wherever it comes from.
"""
from __future__ import annotations

import base64
import urllib.parse

MASK = "***"
#: Shorter values are not masked: replacing "1" or "ab" everywhere would garble messages, and such
#: values are not secrets worth the name.
MIN_SECRET_CHARS = 4


def carries_userinfo(url: str) -> bool:
    """Whether `url` holds user info (user:password@) that a .conf file would keep in clear: any "@" after
    the scheme and before the query or fragment. Stricter than RFC 3986, whose authority ends at the first
    "/": urllib.request sends `https://user:pa/ss@host` with "pa/ss" as the password, and a path holding
    an "@" is no destination's (refused with the same message, which names no value)."""
    rest = url.split("://", 1)[-1]
    return "@" in rest.split("?", 1)[0].split("#", 1)[0]


class Redactor:
    def __init__(self, *secrets: str | None) -> None:
        from wia_security.redact import proxy_credentials      # bin/lib: on sys.path once the entry script runs
        self._values: set[str] = set()
        # HTTPS_PROXY & co. (splunk-launch.conf): the clients send their credentials, and a proxy's refusal
        # page or a library's message can quote them
        for secret in (*secrets, *proxy_credentials()):
            self.add(secret)

    def add(self, secret: str | None, username: str | None = None) -> None:
        """Masks `secret` as is, URL-quoted, and (with `username`) as the HTTP Basic credential."""
        if not secret or len(secret) < MIN_SECRET_CHARS:
            return
        forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
        if username:
            forms.add(base64.b64encode(f"{username}:{secret}".encode("utf-8")).decode("ascii"))
        self._values |= {f for f in forms if len(f) >= MIN_SECRET_CHARS}

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):   # longest first: no partial leftovers
            text = text.replace(value, MASK)
        return text

    def __repr__(self) -> str:  # never the values
        return f"<Redactor of {len(self._values)} value(s)>"
