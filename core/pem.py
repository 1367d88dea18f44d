"""PEM text for Python's ssl, which loads a certificate and key from files only: blocks re-wrapped, files kept off disk.

Used where a client certificate arrives as a secret's text (the XSOAR pack's credentials parameters, the
Splunk app's storage/passwords) rather than as files. Errors are the callers': they know which parameter
or credential to name, and never show its content.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from typing import Iterator

#: PEM labels a client private key may carry (PKCS#8, encrypted PKCS#8, OpenSSL's traditional RSA/EC forms).
PRIVATE_KEY_LABELS = ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
#: One PEM block: (label, body between the BEGIN and END lines).
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def rewrapped(label: str, body: str) -> str:
    """One PEM block with its base64 re-wrapped at 64 characters: a PEM pasted into a one-line field arrives
    with spaces for its line breaks. A legacy encrypted key's Proc-Type / DEK-Info header lines are kept as
    given when they are lines, and rebuilt (`Name: value`, then a blank line) when pasted into one line."""
    if ":" in body and "\n" in body.strip():
        return f"-----BEGIN {label}-----{body}-----END {label}-----\n"
    words = body.split()
    headers = []
    while len(words) >= 2 and words[0].endswith(":"):       # `Proc-Type: 4,ENCRYPTED DEK-Info: AES-128-CBC,<iv>`
        headers.append(f"{words[0]} {words[1]}\n")
        words = words[2:]
    b64 = "".join(words)
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    head = "".join(headers) + "\n" if headers else ""
    return f"-----BEGIN {label}-----\n{head}{lines}\n-----END {label}-----\n"


def blocks(text: str | None, labels: tuple[str, ...]) -> list[str]:
    """The blocks of `text` labelled with one of `labels`, in order, each re-wrapped."""
    return [rewrapped(label, body) for label, body in PEM_BLOCK.findall(text or "") if label in labels]


@contextlib.contextmanager
def private_pem_files(*contents: bytes, name: str = "wia-tls") -> Iterator[list[str]]:
    """Paths OpenSSL can read `contents` from while the block runs: anonymous memory files (memfd, Linux)
    where the kernel has them, so nothing is written to disk; else files of mode 0600 in a private 0700
    directory, removed at the end however the block ends."""
    if hasattr(os, "memfd_create"):
        fds: list[int] = []
        try:
            for data in contents:
                fds.append(os.memfd_create(name, os.MFD_CLOEXEC))
                os.write(fds[-1], data)
            yield [f"/proc/self/fd/{fd}" for fd in fds]
        finally:
            for fd in fds:
                os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix=f"{name}-")          # mode 0700
    paths = [os.path.join(directory, f"{n}.pem") for n in range(len(contents))]
    try:
        for path, data in zip(paths, contents):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        yield paths
    finally:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        os.rmdir(directory)


__all__ = ["PEM_BLOCK", "PRIVATE_KEY_LABELS", "blocks", "private_pem_files", "rewrapped"]
