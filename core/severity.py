"""The standard's severity bands (PHASE-1 doc section 7): 0..10 score -> band name and priority."""
from __future__ import annotations

#: (upper bound exclusive, band). 0 is informational; 10 is emergency.
BANDS: tuple[tuple[float, str], ...] = (
    (1, "informational"),   # 0 (and anything below 1)
    (3, "low"),             # 1-2
    (5, "medium"),          # 3-4
    (7, "high"),            # 5-6
    (9, "critical"),        # 7-8
    (float("inf"), "emergency"),  # 9-10
)
BAND_NAMES: tuple[str, ...] = tuple(name for _, name in BANDS)

#: Alert/incident priority that matches each band (incident priority has no "info").
BAND_PRIORITY = {"informational": "info", "low": "low", "medium": "medium", "high": "high",
                 "critical": "critical", "emergency": "critical"}


def band(severity: float) -> str:
    """Band name of a 0..10 severity; non-numbers are "unknown"."""
    if isinstance(severity, bool) or not isinstance(severity, (int, float)) or severity != severity:
        return "unknown"
    for upper, name in BANDS:
        if severity < upper:
            return name
    return BANDS[-1][1]
