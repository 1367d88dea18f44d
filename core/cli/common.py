"""Small helpers the subcommands share: input checks and error printing."""
from __future__ import annotations

import os
import sys
from typing import Sequence

from ..errors import WiaError


def missing_inputs(paths: Sequence[str]) -> list[str]:
    """Paths that cannot be opened, each reported on stderr."""
    bad = []
    for path in paths:
        if path == "-":
            continue
        if not os.path.exists(path):
            print(f"wia-security: {path}: no such file", file=sys.stderr)
            bad.append(path)
        elif os.path.isdir(path):
            print(f"wia-security: {path}: is a directory", file=sys.stderr)
            bad.append(path)
        elif not os.access(path, os.R_OK):
            print(f"wia-security: {path}: permission denied", file=sys.stderr)
            bad.append(path)
    return bad


def fail(error: BaseException | str) -> int:
    """Print a usage/configuration error and return exit code 2."""
    text = str(error) if isinstance(error, (WiaError, OSError)) else str(error)
    print(f"wia-security: {text}", file=sys.stderr)
    return 2
