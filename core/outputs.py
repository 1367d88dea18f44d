"""Output files: checked before a run reads anything (so the first write does not find out), and
appended to in whole lines that a crash cannot glue together."""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from typing import IO, Iterator

from .errors import ConfigError


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


def open_append(path: str, mode: int = 0o666) -> IO[bytes]:
    """`path` opened for appending whole lines (O_APPEND, unbuffered); created with `mode` (less the
    umask) when it does not exist, so 0o600 keeps a new file private whatever the umask.

    A regular file that does not end with a newline ends with a record torn by a crash (a kill in
    the middle of a write, or a power cut before the data reached the disk). A newline is written
    first, so the fragment stays a line of its own and the next record is not glued onto it."""
    fh = open(path, "ab", buffering=0, opener=lambda name, flags: os.open(name, flags, mode))  # noqa: SIM115
    try:
        info = os.fstat(fh.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size and _last_byte(path, info.st_size) not in (b"\n", None):
            fh.write(b"\n")
    except OSError:
        fh.close()
        raise
    return fh


def _last_byte(path: str, size: int) -> bytes | None:
    try:
        fh = open(path, "rb", buffering=0)       # noqa: SIM115 - closed below; seek + read, not os.pread (POSIX only)
    except OSError:
        return None                              # a write-only file: nothing to check it with
    with fh:
        fh.seek(size - 1)
        return fh.read(1)


def sync(fd: int) -> None:
    """fsync, ignoring what cannot be synced (a pipe, a terminal, /dev/stdout)."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise


def replace_durably(path: str, text: str) -> None:
    """`path` replaced by `text`, so that a crash or power cut leaves the old or the new content, never
    half: a temporary file in the same folder, fsynced, renamed over `path`, then the folder fsynced
    (the rename itself is durable only then). Temporary files a kill left behind are removed."""
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            sync(folder_fd)                  # a file system without directory sync: the rename stands
        finally:
            os.close(folder_fd)
    # else Windows (a Splunk app's checkpoints there): a folder cannot be opened to sync it (os.open answers
    # PermissionError, which failed every save), and NTFS journals the rename itself
    for name in os.listdir(folder):          # leftovers of saves a kill interrupted
        if name.startswith(prefix) and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


@contextlib.contextmanager
def held_exclusively(path: str, what: str) -> Iterator[None]:
    """`path + ".lock"` locked for the block, so that two runs cannot work from one checkpoint at once
    (both would read the same window, and the slower could save an older position over the newer).
    A second run stops at once with a ConfigError naming the file and the holder's process id. The
    operating system releases the lock when its process ends in any way (even SIGKILL), so a lock
    file left behind never blocks a later run; it is not removed, since removing it would let a third
    run lock a new file while the second still holds the old one."""
    lock_path = f"{path}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot create the lock file {lock_path}: {exc.strerror or exc}", key="checkpoint",
                          source=path) from None
    try:
        if not _try_lock(fd):
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise ConfigError(f"another {what} is running from this checkpoint (lock {lock_path} held by process "
                              f"{holder}); wait for it to end or use another checkpoint", key="checkpoint",
                              source=path)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)                 # closing releases the lock


def _try_lock(fd: int) -> bool:
    """An exclusive lock on `fd` without waiting (POSIX flock); False if another process holds it."""
    import fcntl                     # POSIX only, like the rest of this module (os.pread)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
