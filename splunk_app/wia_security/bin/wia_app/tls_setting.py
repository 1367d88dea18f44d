"""TLS verification as a stanza states it: the app's `verify_tls`, or `tls_verify`, the rest of wia-security's name.

Both the modular input's stanzas and the alert action's `[destination:<name>]` stanzas read it here. A stanza
written by hand or copied from a CLI config may use `tls_verify` (connectors/delivery/urls.py TLS_SPELLINGS);
reading only `verify_tls` ignored it without a word. Anything but a false word in `verify_tls` verifies, as it
always did; `tls_verify` must be a boolean word, and the two disagreeing is refused (which was meant would be a
guess).
"""
from __future__ import annotations

from typing import Mapping

#: Splunk's words for a boolean setting (what `tls_verify` must hold).
BOOLEAN_WORDS = {"1": True, "true": True, "t": True, "yes": True, "y": True, "on": True,
                 "0": False, "false": False, "f": False, "no": False, "n": False, "off": False}
_FALSE_WORDS = ("0", "false", "no", "off", "f", "n")


def verify_tls(settings: Mapping[str, str]) -> bool:
    """Whether the peer's certificate is verified; call `tls_verify_problem` first (a bad tls_verify raises here)."""
    given = str(settings.get("tls_verify") or "").strip()
    if given:
        return BOOLEAN_WORDS[given.lower()]
    return str(settings.get("verify_tls") or "true").strip().lower() not in _FALSE_WORDS


def tls_verify_problem(settings: Mapping[str, str]) -> str | None:
    """Why the TLS verification settings cannot be read: a tls_verify that is no boolean word, or verify_tls and
    tls_verify saying different things."""
    given = str(settings.get("tls_verify") or "").strip()
    if not given:
        return None
    if given.lower() not in BOOLEAN_WORDS:
        return f"tls_verify must be true or false, not {given[:40]!r}"
    stated = str(settings.get("verify_tls") or "").strip()
    if stated and verify_tls({"verify_tls": stated}) != BOOLEAN_WORDS[given.lower()]:
        return (f"verify_tls = {stated[:40]} and tls_verify = {given[:40]} are two spellings of one "
                "setting and disagree: keep only one (verify_tls is the one Splunk Web shows)")
    return None
