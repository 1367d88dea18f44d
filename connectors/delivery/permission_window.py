"""A permission refusal is retried while a new grant may still be propagating, then fails for good.

Cloud IAM is eventually consistent: a role or policy created with the deployment can be refused for minutes
(AWS names no bound, Azure up to 30 minutes, Google "7 minutes or longer"). Security Hub, Sentinel and SCC each
keep one window per action (a write and a read need different grants): it opens at the first refusal, any
accepted request closes it, and a refusal after the product's bound fails at once, so a permission that never
comes costs one window, not every batch's whole retry budget. The Lambda carries open windows across its
runtime rebuilds (lambda/wia_lambda/handler.py), finding them as the sinks' `PermissionWindow` attributes.
"""
from __future__ import annotations

from dataclasses import dataclass

from wia_security.errors import DeliveryError


@dataclass
class PermissionWindow:
    """How long refusals of one grant have been seen in a row; `seconds` is the product's propagation bound."""

    seconds: int
    #: when the first refusal of the current run of them came (the sink's clock), None while requests pass
    since: float | None = None

    def accepted(self) -> None:
        """A request was authorized: a later refusal starts a new window."""
        self.since = None

    def refused(self, error: DeliveryError, now: float, *, need: str, propagation: str, grant: str,
                afterwards: str = "grant it, then replay the dead letter", status: int | None = None) -> DeliveryError:
        """`error` again, retryable while the window lasts, its reason saying what is needed (`need`), why waiting
        can help (`propagation`: how long the product says a `grant` can take) and how long it was refused."""
        if self.since is None:
            self.since = now
        waited = now - self.since
        if waited < self.seconds:
            why = f"{need}; {propagation}, so this is retried (refused for {waited:.0f}s so far)"
            return DeliveryError(f"{error.reason} ({why})", retryable=True, status=status, details=error.details)
        why = (f"{need}; still refused {waited / 60:.0f} minutes after the first refusal, longer than {grant} takes to "
               f"propagate: not retried ({afterwards})")
        return DeliveryError(f"{error.reason} ({why})", retryable=False, status=status, details=error.details)
