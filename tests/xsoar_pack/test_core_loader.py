"""The integration's core loader, private-file fallback (no memfd: a kernel or seccomp profile without it): a
failed write leaves nothing behind, and only the process that wrote the core removes it at exit.

The integration is run as XSOAR runs it (exec of the script with the stand-ins of stubs/) in a fresh process,
with a core zip built from core/ as in test_core_upgrade_in_process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import HERE
from .test_core_upgrade_in_process import core_zip, integration_with

DRIVER = r"""
import json, os, resource, signal, sys
stubs, script_path, mode = sys.argv[1:4]
sys.path[:0] = [stubs]
del os.memfd_create                 # the private-file fallback
import demistomock as demisto
from CommonServerPython import *
import CommonServerPython
demisto.reset(params={"url": "http://127.0.0.1:9", "source_type": "gateway"}, args={"technique": "T1059.001"},
              command="wia-attack-lookup")
namespace = {k: v for k, v in globals().items() if not k.startswith("__")}
namespace.update(__name__="__main__", __line__=CommonServerPython.__line__)
script = compile(open(script_path, encoding="utf-8").read(), "integration-WIASecurity", "exec")
if mode == "write-fails":           # a full disk or quota, as the kernel reports a file size limit: EFBIG mid-write
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    exec(script, namespace)
except SystemExit:
    pass
except OSError as exc:
    print(json.dumps({"error": str(exc)}))
    raise SystemExit(0)
(core_path,) = [p for p in sys.path if "wia-security-core-" in p]
out = {"core_path": core_path}
if mode == "fork":
    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        raise SystemExit(0)         # a bare fork's child ending normally: the interpreter runs the atexit functions
    out["child_status"] = os.waitpid(child, 0)[1]
    out["after_child"] = os.path.exists(core_path)
    out["lazy_before"] = "wia_security.outputs" in sys.modules
    import wia_security.outputs     # read from the zip only now
    out["lazy_from"] = wia_security.outputs.__file__
print(json.dumps(out))
"""


def run_loader(tmp_path: Path, mode: str) -> tuple[dict, Path]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = integration_with(core_zip("loader"), tmp_path / "integration.py")
    (tmp_path / "driver.py").write_text(DRIVER)
    run = subprocess.run([sys.executable, "-I", str(tmp_path / "driver.py"), str(HERE / "stubs"), str(script), mode],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "TMPDIR": str(temp)})
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1]), temp


def test_a_failed_write_of_the_core_leaves_no_directory_behind(tmp_path):
    out, temp = run_loader(tmp_path, "write-fails")
    assert "File too large" in out["error"]
    assert list(temp.iterdir()) == []               # neither the partial zip nor its 0700 directory


def test_the_core_is_removed_at_exit_by_the_process_that_wrote_it(tmp_path):
    out, temp = run_loader(tmp_path, "plain")
    assert Path(out["core_path"]).parent.parent == temp
    assert list(temp.iterdir()) == []


def test_a_forked_child_ending_does_not_remove_its_parents_core(tmp_path):
    """os.fork() copies the atexit functions: the child's exit used to remove the zip the parent runs from, and
    the parent's next import from it failed."""
    out, temp = run_loader(tmp_path, "fork")
    assert out["child_status"] == 0 and out["after_child"] is True
    assert out["lazy_before"] is False and out["lazy_from"] == f"{out['core_path']}/wia_security/outputs.py"
    assert list(temp.iterdir()) == []               # the parent removed it when it ended
