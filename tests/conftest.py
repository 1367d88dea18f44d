"""Shared fixtures: the repository root and the bundled samples."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="session")
def samples() -> dict[str, dict]:
    """The seven upstream sample events, by file stem (e.g. "alert-sample")."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*-sample.json"))}
