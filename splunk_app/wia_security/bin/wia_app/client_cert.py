"""A Kafka client certificate (mutual TLS) from storage/passwords, loaded into an ssl.SSLContext.

The certificate (with any intermediate CAs) and its private key are one stored secret, as PEM text; the key's
passphrase, if it is encrypted, another. Python's ssl reads a certificate and key from files only
(SSLContext.load_cert_chain), so they are handed to OpenSSL as anonymous memory files (memfd, Linux) and
nothing is written to disk; where there is no memfd (Windows), as files of mode 0600 in a private directory
(0700) that are removed right after loading, also when loading fails. Errors name the credential, never its
content.
"""
from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from typing import Iterator

#: PEM labels a client private key may carry (PKCS#8, encrypted PKCS#8, OpenSSL's traditional RSA/EC forms).
PRIVATE_KEY_LABELS = ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


class ClientCertificateError(ValueError):
    """The stored client certificate cannot be used; the message names the credential, never a secret."""


def secret_fragments(pem: str) -> list[str]:
    """What of the stored PEM a log line could echo: the whole text and each line of base64 in its blocks
    (an error that quotes the key would quote lines of it)."""
    lines = [line.strip() for _, body in _PEM_BLOCK.findall(pem) for line in body.split()]
    return [pem, pem.strip(), *(line for line in lines if ":" not in line)]


def load_client_certificate(context: ssl.SSLContext, pem: str, passphrase: str | None, *, credential: str,
                            passphrase_credential: str | None) -> None:
    """Loads the certificate chain and private key of `pem` into `context`, the key decrypted with
    `passphrase` when it is encrypted. `credential` / `passphrase_credential` name the stored secrets in errors."""
    where = f"the client certificate credential {credential!r}"
    blocks = _PEM_BLOCK.findall(pem)
    if not blocks:
        raise ClientCertificateError(f"{where} is not PEM text: store the client certificate (-----BEGIN CERTIFICATE-----) "
                                     "followed by its private key (-----BEGIN PRIVATE KEY-----) in it")
    certificates = [_pem(label, body) for label, body in blocks if label == "CERTIFICATE"]
    keys = [_pem(label, body) for label, body in blocks if label in PRIVATE_KEY_LABELS]
    if not certificates:
        raise ClientCertificateError(f"{where} holds no certificate (-----BEGIN CERTIFICATE-----)")
    if len(keys) != 1:
        raise ClientCertificateError(f"{where} holds {len(keys) or 'no'} private key{'s' if len(keys) != 1 else ''} "
                                     "(-----BEGIN PRIVATE KEY-----); store exactly one, the certificate's")
    asked: list[bool] = []

    def password() -> str:
        asked.append(True)
        return passphrase or ""

    with private_pem_files("".join(certificates).encode("ascii", "replace"), keys[0].encode("ascii", "replace")) as \
            (cert_path, key_path):
        try:
            context.load_cert_chain(cert_path, key_path, password=password)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc):
                raise ClientCertificateError(f"the private key in {where} does not belong to its certificate (the first "
                                             "certificate is the client's; intermediate CAs follow it)") from None
            if asked and not passphrase:
                raise ClientCertificateError(f"the private key in {where} is encrypted: store its passphrase in "
                                             "storage/passwords and name it in client_key_passphrase_credential") from None
            if asked:
                raise ClientCertificateError(f"the private key in {where} could not be decrypted with the passphrase "
                                             f"in {passphrase_credential!r} (client_key_passphrase_credential): check "
                                             "the passphrase") from None
            raise ClientCertificateError(f"the certificate or private key in {where} could not be loaded "
                                         f"({exc.reason or 'unreadable PEM'})") from None


def _pem(label: str, body: str) -> str:
    """One PEM block, its base64 re-wrapped at 64 characters (a PEM pasted into a one-line field arrives with
    spaces for line breaks). A legacy encrypted key's Proc-Type / DEK-Info header lines are kept as given."""
    if ":" in body:
        return f"-----BEGIN {label}-----{body}-----END {label}-----\n"
    b64 = "".join(body.split())
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"


@contextlib.contextmanager
def private_pem_files(*contents: bytes) -> Iterator[list[str]]:
    """Paths OpenSSL can read `contents` from while the block runs: memfd files where the kernel has them
    (nothing on disk), else 0600 files in a private 0700 directory, removed at the end however it ends."""
    if hasattr(os, "memfd_create"):
        fds: list[int] = []
        try:
            for data in contents:
                fds.append(os.memfd_create("wia-kafka-client-tls", os.MFD_CLOEXEC))
                os.write(fds[-1], data)
            yield [f"/proc/self/fd/{fd}" for fd in fds]
        finally:
            for fd in fds:
                os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="wia-kafka-client-tls-")          # mode 0700
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
