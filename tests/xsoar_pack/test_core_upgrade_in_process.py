"""XSOAR's Python loop runs the integration script again in one process for each command, and may keep that process
across a pack upgrade: the new script must then run its own embedded core, not the old one still in sys.modules.

The integration is run as XSOAR runs it (exec of the script with the stand-ins of stubs/), with core zips built
here from core/ (the pack build's own zip needs pip to download kafka-python): each carries a version and a
`kafka` package saying which zip it came from."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import HERE, INTEGRATION, ROOT

DRIVER = r"""
import json, os, sys
stubs, runs = sys.argv[1], json.loads(sys.argv[2])
sys.path[:0] = [stubs]
import demistomock as demisto
from CommonServerPython import *
import CommonServerPython
out = []
for script_path, preload in runs:
    if preload:                       # a core loaded the way 0.1.0 loaded it: its zip in the temp folder, on sys.path
        sys.path.insert(0, preload)
        import wia_security, kafka     # noqa: F401
        continue
    demisto.reset(params={"url": "http://127.0.0.1:9", "source_type": "gateway"}, args={"technique": "T1059.001"},
                  command="wia-attack-lookup")
    namespace = {k: v for k, v in globals().items() if not k.startswith("__")}
    namespace.update(__name__="__main__", __line__=CommonServerPython.__line__)
    try:
        exec(compile(open(script_path, encoding="utf-8").read(), "integration-WIASecurity", "exec"), namespace)
    except SystemExit:
        pass
    import kafka
    (lookup,) = demisto.results_log
    out.append({"script_core": namespace["wia_security"].__version__, "core": sys.modules["wia_security"].__version__,
                "kafka": kafka.FROM, "kafka_sasl_from": sys.modules["wia_security.kafka_sasl"].__file__,
                "lookup": next(iter(lookup["EntryContext"].values()))[0]["Name"],
                "core_paths": [p for p in sys.path if p.startswith("/proc/self/fd/") or "wia_security_core_" in p]})
print(json.dumps(out))
"""


def core_zip(version: str) -> bytes:
    """core/ as wia_security/ (stamped `version`) and a stand-in kafka package naming the same version."""
    import io
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted((ROOT / "core").rglob("*")):
            rel = path.relative_to(ROOT / "core")
            if path.is_dir() or rel.parts[0] in ("cli", "dashboard") or "__pycache__" in rel.parts:
                continue
            data = path.read_bytes()
            if rel == Path("_version.py"):
                data = data.replace(b'__version__ = "', f'__version__ = "{version}+'.encode(), 1)
            zf.writestr(f"wia_security/{rel}", data)
        zf.writestr("kafka/__init__.py", f"FROM = {version!r}\n")
    return buffer.getvalue()


def integration_with(core: bytes, path: Path) -> Path:
    script = INTEGRATION.read_text(encoding="utf-8")
    assert 'WIA_CORE_ZIP_B64 = ""' in script
    path.write_text(script.replace('WIA_CORE_ZIP_B64 = ""', f'WIA_CORE_ZIP_B64 = "{base64.b64encode(core).decode()}"', 1))
    return path


def run_in_one_process(tmp_path: Path, runs: list[tuple[str, str | None]]) -> list[dict]:
    (tmp_path / "driver.py").write_text(DRIVER)
    run = subprocess.run([sys.executable, "-I", str(tmp_path / "driver.py"), str(HERE / "stubs"), json.dumps(runs)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture
def versions(tmp_path):
    return {name: str(integration_with(core_zip(name), tmp_path / f"integration-{name}.py")) for name in ("old", "new")}


def test_an_upgraded_integration_in_the_same_process_runs_its_own_core(tmp_path, versions):
    """old, new, new, old: each run's core is its own zip's (script globals, sys.modules, kafka, a lazily imported
    module), the same zip is reused when run again, and only the running version's core is on sys.path."""
    out = run_in_one_process(tmp_path, [(versions[name], None) for name in ("old", "new", "new", "old")])
    for run, name in zip(out, ("old", "new", "new", "old")):
        assert run["script_core"].startswith(f"{name}+") and run["core"].startswith(f"{name}+"), run
        assert run["kafka"] == name
        (core_path,) = run["core_paths"]
        assert run["kafka_sasl_from"] == f"{core_path}/wia_security/kafka_sasl.py"
        assert run["lookup"] == "PowerShell"
    assert out[1]["core_paths"] == out[2]["core_paths"] != out[0]["core_paths"] == out[3]["core_paths"]


def test_a_core_loaded_by_0_1_0_from_the_temp_folder_is_not_used_by_the_new_version(tmp_path, versions):
    """0.1.0 put its zip on sys.path as <temp>/wia_security_core_<sha256[:16]>.zip and imported from it."""
    released = tmp_path / "wia_security_core_0123456789abcdef.zip"
    released.write_bytes(core_zip("released"))
    (run,) = run_in_one_process(tmp_path, [("", str(released)), (versions["new"], None)])
    assert run["script_core"].startswith("new+") and run["core"].startswith("new+") and run["kafka"] == "new"
    assert str(released) not in run["core_paths"]
