"""Output files are checked before a run reads anything, so the first write does not find out."""
from __future__ import annotations

import os


def unwritable(path: str | os.PathLike[str]) -> str | None:
    """Why a file cannot be created or written at `path` (a directory, no permission, a missing or
    read-only directory), or None."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else "permission denied"
    if not os.path.isdir(directory):
        return f"directory {directory} does not exist"
    return None if os.access(directory, os.W_OK | os.X_OK) else f"directory {directory} is not writable"
