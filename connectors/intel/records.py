"""What the threat-intel sources do with a record: map it, check the result against the standard's
schema, and hand what cannot be an event to the caller's `on_reject` (or raise), never drop it; and the checks
the sources share on their configuration."""
from __future__ import annotations

import time
from typing import Any, Callable

from wia_security import jsonio
from wia_security.connectors.base import Rejected
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.errors import ConfigError, ConversionError, DeliveryError

_validator: Any = None


class RecordRejecter:
    """`reject(reason, where, record, event=, errors=)`: to `on_reject` as a `Rejected` with the record's
    JSON as `raw`, or, without `on_reject`, a ConversionError saying where and why."""

    def __init__(self, fmt: str, on_reject: Callable[[Rejected], None] | None) -> None:
        self.fmt, self.on_reject = fmt, on_reject

    def reject(self, reason: str, where: str, record: Any, event: Any = None,
               errors: list[dict[str, Any]] | None = None) -> None:
        if self.on_reject is None:
            raise ConversionError(self.fmt, f"{where}: {reason}")
        self.on_reject(Rejected(reason, event=event, errors=errors or [], where=where, raw=_raw(record)))

    def checked(self, event: dict[str, Any], where: str, record: Any) -> dict[str, Any] | None:
        """`event` when the schema accepts it; else it is rejected with the first error's JSON path."""
        global _validator
        if _validator is None:
            from wia_security.validation import Validator
            _validator = Validator(warnings=False)
        result = _validator.validate(event)
        if result.valid:
            return event
        first = result.errors[0]
        self.reject(f"mapped to an invalid WIA event: {first.path or '/'}: {first.message}", where, record,
                    event, [e.to_dict() for e in result.errors])
        return None


def _raw(record: Any) -> bytes:
    try:
        return jsonio.dumpb(record)
    except (TypeError, ValueError):
        return repr(record).encode("utf-8", "replace")


def over_budget(policy: DeliveryPolicy, started: float, delay: float, what: str, sink: str,
                cause: BaseException) -> None:
    """Raise instead of sleeping when a source's next try would start after its retry budget
    (`policy.max_elapsed` from the first try): a server's Retry-After is a floor on the wait with no
    ceiling, so `Retry-After: 86400` (or a proxy's nonsense) held a pull for a day, and a value past
    what time.sleep takes ended in OverflowError."""
    if not policy.max_elapsed:
        return
    elapsed = time.monotonic() - started
    if elapsed + delay > policy.max_elapsed:
        raise DeliveryError(f"{what}: not retried: the next try would start in {delay:,.0f} s (the server's "
                            f"Retry-After or the backoff), past the {policy.max_elapsed:g} s retry budget; last "
                            f"error: {str(cause)[:300]}", sink=sink, retryable=True,
                            retry_after=delay, status=getattr(cause, "status", None)) from None


def refuse_user_info(url: str, product: str) -> None:
    """A base URL with user info (`https://user:password@host`) is refused: the password would show in
    reprs, errors and dead-letter records (`where`), and requests would send it as Basic auth in place of
    the API key's own header."""
    from urllib.parse import urlsplit

    from wia_security.connectors import _redact
    if "@" in urlsplit(url).netloc:
        raise ConfigError(f"a {product} URL carries no user name or password; the API key goes in its own "
                          "variable or option", key="url", source=_redact(url))


def key_fingerprint(api_key: str, purpose: bytes) -> str:
    """What a state file records of an API key (`purpose` salts it per file kind): enough to tell two keys apart,
    never the key. A slow hash (PBKDF2, 100,000 rounds, 72 bits kept), so that a short key cannot be found from the
    file by trying keys."""
    import hashlib
    return hashlib.pbkdf2_hmac("sha256", api_key.encode(), purpose, 100_000, 9).hex()


def server_key(url: str) -> tuple[str, str, str]:
    """One base URL in two spellings: scheme and host in any case, with or without the final slash (a checkpoint
    names the server its position belongs to; another server's pull must not take it)."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")
