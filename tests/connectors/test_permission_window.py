"""The permission-propagation window Security Hub, Sentinel and SCC share (connectors/delivery/permission_window.py):
refusals are retried until the product's bound after the first of a run of them, an accepted request starts a new
run, and the reason says what is needed and how long it was refused. The products' contract tests drive it through
their real clients (tests/connectors/{aws,azure,gcp}/*propagation*); this pins the rule itself."""
from __future__ import annotations

from wia_security.connectors.delivery.permission_window import PermissionWindow
from wia_security.errors import DeliveryError

DENIED = DeliveryError("AccessDenied", status=403, details={"code": "AccessDenied"})


def _refused(window: PermissionWindow, now: float) -> DeliveryError:
    return window.refused(DENIED, now, need="the caller needs x:Write", propagation="a grant can take 5 minutes",
                          grant="a grant", status=403)


def test_refusals_are_retried_until_the_bound_after_the_first_then_fail_at_once():
    window = PermissionWindow(300)
    first, later, last = _refused(window, 1000.0), _refused(window, 1299.0), _refused(window, 1300.0)
    assert first.retryable and later.retryable and not last.retryable
    assert "refused for 0s so far" in first.reason and "refused for 299s so far" in later.reason
    assert last.reason == ("AccessDenied (the caller needs x:Write; still refused 5 minutes after the first refusal, "
                           "longer than a grant takes to propagate: not retried (grant it, then replay the dead letter))")
    assert last.status == 403 and last.details == {"code": "AccessDenied"}


def test_an_accepted_request_starts_a_new_window():
    window = PermissionWindow(300)
    _refused(window, 0.0)
    window.accepted()
    assert window.since is None
    assert _refused(window, 10_000.0).retryable and window.since == 10_000.0
