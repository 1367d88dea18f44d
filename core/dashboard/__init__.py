"""Dashboard: aggregate WIA events over a time window and render a self-contained HTML report + JSON twin."""
from __future__ import annotations

from .aggregator import DashboardAggregator, aggregate, detection_times, event_tactics, event_techniques
from .report import render_html, write_report

__all__ = ["DashboardAggregator", "aggregate", "detection_times", "event_tactics", "event_techniques",
           "render_html", "write_report"]
