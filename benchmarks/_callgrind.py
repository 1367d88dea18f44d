"""Instruction counts under valgrind's callgrind: the same total for the same work, however busy the machine.

`instructions(setup, work)` runs `setup` alone and `setup` then `work` in fresh interpreters under
callgrind and returns the difference: the instructions `work` costs. Ratios of these counts are a
load-independent cross-check of the wall-clock ratios (they do not see I/O waits or cache misses).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def available() -> bool:
    return shutil.which("valgrind") is not None


def _total(code: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", code],
                       check=True, capture_output=True, env=env, cwd=HERE)
        with open(out) as fh:
            text = fh.read()
    m = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if m is None:
        raise RuntimeError("no instruction total in callgrind output")
    return int(m.group(1))


def instructions(setup: str, work: str) -> int:
    return _total(setup + "\n" + work) - _total(setup)
