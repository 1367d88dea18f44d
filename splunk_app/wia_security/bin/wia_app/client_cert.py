"""A Kafka client certificate (mutual TLS) from storage/passwords, loaded into an ssl.SSLContext.

The certificate (with any intermediate CAs) and its private key are one stored secret, as PEM text; the key's
passphrase, if it is encrypted, another. Python's ssl reads a certificate and key from files only
(SSLContext.load_cert_chain), so they are handed to OpenSSL as anonymous memory files (memfd, Linux) and
nothing is written to disk; where there is no memfd (Windows), as files of mode 0600 in a private directory
(0700) that are removed right after loading, also when loading fails. Errors name the credential, never its
content.
"""
from __future__ import annotations

import ssl

from wia_security.pem import PEM_BLOCK, PRIVATE_KEY_LABELS, private_pem_files, rewrapped


class ClientCertificateError(ValueError):
    """The stored client certificate cannot be used; the message names the credential, never a secret."""


def secret_fragments(pem: str) -> list[str]:
    """What of the stored PEM a log line could echo: the whole text and each line of base64 in its blocks
    (an error that quotes the key would quote lines of it)."""
    lines = [line.strip() for _, body in PEM_BLOCK.findall(pem) for line in body.split()]
    return [pem, pem.strip(), *(line for line in lines if ":" not in line)]


def load_client_certificate(context: ssl.SSLContext, pem: str, passphrase: str | None, *, credential: str,
                            passphrase_credential: str | None) -> None:
    """Loads the certificate chain and private key of `pem` into `context`, the key decrypted with
    `passphrase` when it is encrypted. `credential` / `passphrase_credential` name the stored secrets in errors."""
    where = f"the client certificate credential {credential!r}"
    blocks = PEM_BLOCK.findall(pem)
    if not blocks:
        raise ClientCertificateError(f"{where} is not PEM text: store the client certificate (-----BEGIN CERTIFICATE-----) "
                                     "followed by its private key (-----BEGIN PRIVATE KEY-----) in it")
    certificates = [rewrapped(label, body) for label, body in blocks if label == "CERTIFICATE"]
    keys = [rewrapped(label, body) for label, body in blocks if label in PRIVATE_KEY_LABELS]
    if not certificates:
        raise ClientCertificateError(f"{where} holds no certificate (-----BEGIN CERTIFICATE-----)")
    if len(keys) != 1:
        raise ClientCertificateError(f"{where} holds {len(keys) or 'no'} private key{'s' if len(keys) != 1 else ''} "
                                     "(-----BEGIN PRIVATE KEY-----); store exactly one, the certificate's")
    asked: list[bool] = []

    def password() -> str:
        asked.append(True)
        return passphrase or ""

    with private_pem_files("".join(certificates).encode("ascii", "replace"), keys[0].encode("ascii", "replace"),
                           name="wia-kafka-client-tls") as (cert_path, key_path):
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
