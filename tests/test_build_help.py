"""The Splunk app's and the XSOAR pack's build scripts: `--help` describes the build in whole sentences
(their first docstring line alone stopped mid-sentence: '... into bin/lib, stamps the core's version, and
writes' was cut at 'vendors the pure-Python core')."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script, ends_with", [
    ("splunk_app/build.py", "dist/wia_security-<version>.tgz (a .spl is the same archive)."),
    ("xsoar_pack/build.py", "validates with demisto-sdk and zips the pack for upload."),
])
def test_help_describes_the_build_in_whole(script, ends_with):
    run = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert ends_with in " ".join(run.stdout.split())
