"""Compliance tracker: map WIA events to NIST CSF 2.0, NIST SP 800-53 Rev. 5, CIS Controls v8 and
ISO/IEC 27001:2022 controls: evidenced per event type (coverage, score, evidence events) and relevant per
ATT&CK technique (listed apart with their techniques and events, never counted as coverage)."""
from __future__ import annotations

from .tables import (FRAMEWORK_IDS, UnknownFrameworkError, ctid_table, event_rules, framework, in_scope,
                     tactic_controls, technique_controls)
from .tracker import ComplianceTracker, controls_for, is_open_finding

__all__ = ["ComplianceTracker", "UnknownFrameworkError", "controls_for", "is_open_finding", "FRAMEWORK_IDS",
           "framework", "in_scope", "event_rules", "tactic_controls", "ctid_table", "technique_controls"]
