"""Secrets the SOAR connectors send as HTTP header values, checked when the sink is made."""
from __future__ import annotations

import re

from wia_security.errors import ConfigError

# A control character anywhere (a line break above all) or a blank at either end: requests and http.client refuse
# such a header value on every request (or the server trims it and refuses the key).
_NOT_A_HEADER_VALUE = re.compile(r"[\x00-\x1f\x7f]|^\s|\s$")


def check_header_secret(value: str, *, key: str, product: str) -> None:
    """Refuse a secret that cannot be an HTTP header value, naming the option and why, never the value."""
    if _NOT_A_HEADER_VALUE.search(value):
        raise ConfigError(f"the {product} {key} has a line break, a control character or a blank at one end (a token "
                          "file or environment variable with a stray newline?); an HTTP header cannot carry it",
                          key=key)
