"""The core runs with the standard library alone: every third-party import is blocked in a subprocess
(orjson included, so the standard-library fallbacks run), then the main paths are exercised."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import importlib.abc, sys
    allowed = set(sys.stdlib_module_names) | {"wia_security", "_distutils_hack", "__editable___wia_security_0_1_0_finder"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top not in allowed and not top.startswith("__editable__"):
                raise ImportError(f"third-party import blocked: {name}")
    sys.meta_path.insert(0, Block())

    import json, glob, os, tempfile
    import wia_security as w
    from wia_security import formats, jsonio
    assert jsonio._orjson is None
    samples = [json.load(open(p)) for p in sorted(glob.glob(sys.argv[1] + "/samples/*-sample.json"))]
    results = [w.validate_event(s, lenient=True) for s in samples]
    assert all(r.valid for r in results)
    event = w.AlertBuilder().title("x").mitre("T1059.001").cloud("aws", "123456789012", "us-east-1").build()
    for name in formats.FORMATS:
        doc = w.convert(event, to=name)
        if formats.get_format(name).can_parse:
            w.parse(doc, from_=name)
    from wia_security.cli import main
    d = tempfile.mkdtemp(); os.chdir(d)
    code = main(["forward", "--lenient", *sorted(glob.glob(sys.argv[1] + "/samples/*-sample.json"))])
    assert code == 0, code
    assert main(["query", "--count"]) == 0
    print("STDLIB-ONLY OK", len(formats.FORMATS), "formats")
""")


def test_core_paths_with_third_party_imports_blocked():
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "STDLIB-ONLY OK" in proc.stdout
