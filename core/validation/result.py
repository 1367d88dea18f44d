"""What validation returns: a verdict with every error and warning, each at a JSON-pointer path."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One error or warning. `code` is stable (see docs/validation.md); `path` is a JSON pointer."""

    path: str
    code: str
    message: str
    schema_path: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {"path": self.path, "code": self.code, "message": self.message}
        if self.schema_path:
            d["schema_path"] = self.schema_path
        return d


@dataclass(slots=True)
class ValidationResult:
    """`valid` is the schema verdict; warnings never make an event invalid.

    `event` is the checked object, after lenient-mode null dropping when that was asked for.
    """

    valid: bool
    errors: list[ValidationIssue] = field(default_factory=list)
    warnings: list[ValidationIssue] = field(default_factory=list)
    event: Any = None

    def __bool__(self) -> bool:
        return self.valid

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": [w.to_dict() for w in self.warnings],
        }


def pointer(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """RFC 6901 JSON pointer for a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
