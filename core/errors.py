"""One root exception, WiaError; each subclass carries structured fields saying what, where and why."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from .validation.result import ValidationIssue


class WiaError(Exception):
    """Root of every exception this package raises on purpose."""


class ParseError(WiaError, ValueError):
    """Input that is not a JSON value we can read: truncated, not UTF-8, too deep, NaN, ..."""

    def __init__(self, reason: str, *, source: str | None = None, line: int | None = None,
                 column: int | None = None, offset: int | None = None, path: str | None = None) -> None:
        self.reason = reason
        self.path = path            # JSON pointer of the faulty value, where the parser knows it
        self.source = source
        self.line = line
        self.column = column
        self.offset = offset
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = self.source or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.reason}"


class InvalidEventError(WiaError, ValueError):
    """An event that does not satisfy the WIA Security schema; `errors` lists every violation."""

    def __init__(self, errors: Iterable["ValidationIssue"], *, event_id: str | None = None) -> None:
        self.errors = list(errors)
        self.event_id = event_id
        head = "; ".join(f"{e.path or '/'}: {e.message}" for e in self.errors[:3])
        more = f" (+{len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        super().__init__(f"invalid WIA event: {head}{more}")


class InvalidValueError(WiaError, ValueError):
    """A value a builder or model refuses, as stix2's InvalidValueError(cls, prop_name, reason)."""

    def __init__(self, cls: type | str, prop_name: str, reason: str) -> None:
        self.cls = cls
        self.prop_name = prop_name
        self.reason = reason
        name = cls if isinstance(cls, str) else cls.__name__
        super().__init__(f"Invalid value for {name} '{prop_name}': {reason}")


class UnknownFormatError(WiaError, KeyError):
    """A format name that no converter is registered under."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown format {self.name!r}; known formats: {', '.join(self.known)}"


class ConversionError(WiaError, ValueError):
    """A document that cannot be converted to or from a format, with the path that stopped it."""

    def __init__(self, format_name: str, reason: str, *, path: str = "") -> None:
        self.format_name = format_name
        self.reason = reason
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"{format_name}{where}: {reason}")


class ConfigError(WiaError, ValueError):
    """A configuration value (URL, TOML file, option) that cannot be used; never echoes secrets."""

    def __init__(self, reason: str, *, key: str | None = None, source: str | None = None) -> None:
        from .redact import redact      # a reason may quote a library's message, which may quote a credential
        reason = redact(reason)
        source = redact(source) if source else source
        self.reason = reason
        self.key = key
        self.source = source
        parts = [p for p in (source, key) if p]
        super().__init__(f"{': '.join(parts)}: {reason}" if parts else reason)


class DeliveryError(WiaError):
    """A sink could not deliver; `retryable` tells the delivery machinery whether to try again."""

    def __init__(self, reason: str, *, sink: str = "", retryable: bool = False,
                 retry_after: float | None = None, status: int | None = None,
                 details: Any = None) -> None:
        from .redact import redact, redact_value      # a server may echo the credential in its error
        reason = redact(reason)
        details = redact_value(details)
        self.reason = reason
        self.sink = sink
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        self.details = details
        prefix = f"{sink}: " if sink else ""
        super().__init__(f"{prefix}{reason}")


class OutputError(WiaError):
    """A dead-letter output cannot be written: the run stops, since it could no longer account for
    every event. `target` names the output, `reason` the operating system's words."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"cannot write {target}: {reason}")
