"""How a batching sink batches and retries: one `DeliveryPolicy` (count, bytes, max wait, attempts, backoff budget).

Backoff is exponential with *full jitter* (delay drawn uniformly from [0, min(cap, base * multiplier**n)]),
the scheme that spreads retries of many clients best. A server's `Retry-After` (delta-seconds or an
HTTP-date, RFC 9110 §10.2.3) is a floor: the delay is never shorter than what the server asked for
(up to a day, RETRY_AFTER_CEILING).
A retry that would end after the elapsed budget is not attempted; the items go to the dead letter.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, fields, replace
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

from wia_security.errors import ConfigError

#: Defaults, chosen for a SIEM ingest endpoint: a few hundred events or ~1 MB per request, at most 5 s
#: of buffering, up to 6 attempts within 2 minutes.
DEFAULT_MAX_EVENTS = 500
DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_MAX_WAIT = 5.0
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_INITIAL_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 30.0
DEFAULT_BACKOFF_MULTIPLIER = 2.0
DEFAULT_MAX_ELAPSED = 120.0
#: The longest wait a Retry-After is taken to ask for (a day). A broken or hostile server's
#: `Retry-After: 99999999999999999999` made time.sleep raise OverflowError, which lost the batch under an
#: unlimited budget (max_elapsed = 0); a date in the year 9999 would have slept for millennia.
RETRY_AFTER_CEILING = 86_400.0


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Batching and retry settings of one destination. All times in seconds.

    - `max_events`, `max_bytes`: a batch is sent as soon as either would be exceeded (a connector's
      product limits cap both; see `BatchingSink.max_batch_events` / `max_batch_bytes`).
    - `max_wait`: the oldest buffered event waits at most this long before a background flush;
      0 disables the timer (events then leave on a full batch, `flush()` or `close()`).
    - `max_attempts`: total tries per event, the first included (1 = no retry).
    - `initial_backoff`, `backoff_multiplier`, `max_backoff`: the full-jitter backoff ceiling
      for retry n (1-based) is min(max_backoff, initial_backoff * backoff_multiplier ** (n - 1)).
    - `max_elapsed`: retry budget of one batch, from its first try; 0 = unlimited (attempts still cap).
    """

    max_events: int = DEFAULT_MAX_EVENTS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_wait: float = DEFAULT_MAX_WAIT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_backoff: float = DEFAULT_INITIAL_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    backoff_multiplier: float = DEFAULT_BACKOFF_MULTIPLIER
    max_elapsed: float = DEFAULT_MAX_ELAPSED

    def __post_init__(self) -> None:
        for name, low in (("max_events", 1), ("max_bytes", 1), ("max_attempts", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"must be an integer >= {low}, got {value!r}", key=name)
        # `not value >= 0` also refuses NaN (TOML has nan and inf); a wait must be finite to be slept or
        # waited on (time.sleep and Condition.wait raise OverflowError for inf), a budget may be inf (= 0)
        for name in ("max_wait", "initial_backoff", "max_backoff", "max_elapsed"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ConfigError(f"must be a number >= 0, got {value!r}", key=name)
            if name != "max_elapsed" and not math.isfinite(value):
                raise ConfigError(f"must be a finite number of seconds, got {value!r}", key=name)
        multiplier = self.backoff_multiplier
        if not isinstance(multiplier, (int, float)) or isinstance(multiplier, bool) or not multiplier >= 1:
            raise ConfigError(f"must be a number >= 1, got {multiplier!r}", key="backoff_multiplier")

    @classmethod
    def keys(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, base: "DeliveryPolicy | None" = None,
                     source: str | None = None) -> "DeliveryPolicy":
        """`base` with the given keys replaced; unknown keys and bad values are ConfigErrors naming the key.
        Strings (from URL query strings) are converted to the field's type."""
        base = base or cls()
        unknown = set(values) - cls.keys()
        if unknown:
            raise ConfigError(f"unknown delivery option(s) {', '.join(sorted(unknown))}; known: "
                              f"{', '.join(sorted(cls.keys()))}", key=sorted(unknown)[0], source=source)
        changes: dict[str, Any] = {}
        for name, value in values.items():
            kind = int if name in ("max_events", "max_bytes", "max_attempts") else float
            if isinstance(value, str):
                try:
                    value = kind(value)
                except ValueError:
                    raise ConfigError(f"must be {'an integer' if kind is int else 'a number'}, got {value!r}",
                                      key=name, source=source) from None
            elif kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            changes[name] = value
        try:
            return replace(base, **changes)
        except ConfigError as exc:
            raise ConfigError(exc.reason, key=exc.key, source=source) from None

    def capped(self, *, max_events: int | None, max_bytes: int | None) -> "DeliveryPolicy":
        """This policy with batch sizes lowered to a product's hard limits."""
        events = min(self.max_events, max_events) if max_events else self.max_events
        size = min(self.max_bytes, max_bytes) if max_bytes else self.max_bytes
        return self if (events, size) == (self.max_events, self.max_bytes) else replace(self, max_events=events, max_bytes=size)

    def backoff_ceiling(self, retry: int) -> float:
        """Upper bound of the jittered delay before retry number `retry` (1 = the first retry)."""
        try:
            return min(self.max_backoff, self.initial_backoff * self.backoff_multiplier ** (retry - 1))
        except OverflowError:       # 2.0 ** 1024 is past a float: long past any max_backoff
            return self.max_backoff

    def delay(self, retry: int, retry_after: float | None = None, *, rng: random.Random | None = None) -> float:
        """Full-jitter delay before retry `retry`, never shorter than the server's Retry-After (read as at
        most RETRY_AFTER_CEILING)."""
        jittered = (rng or _rng).uniform(0.0, self.backoff_ceiling(retry))
        return max(jittered, min(retry_after, RETRY_AFTER_CEILING)) if retry_after is not None else jittered


_rng = random.Random()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header value (delta-seconds or HTTP-date); None if absent or
    unreadable. A date in the past gives 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        seconds = float(value)           # not RFC 9110, but some servers send "1.5"
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))
