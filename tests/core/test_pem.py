"""wia_security.pem: PEM blocks re-wrapped for OpenSSL, and private files that never reach disk where memfd exists."""
from __future__ import annotations

import os
import ssl
import tempfile

import pytest

from wia_security.pem import PRIVATE_KEY_LABELS, blocks, private_pem_files, rewrapped
from servers.certificates import issue, make_ca, write_certificate, write_key


def test_a_pem_pasted_into_one_line_is_rewrapped_to_what_openssl_reads(tmp_path):
    body = "A" * 150
    one_line = f"-----BEGIN CERTIFICATE----- {body[:70]} {body[70:]} -----END CERTIFICATE-----"
    assert rewrapped("CERTIFICATE", one_line.split("-----")[2]) == \
        f"-----BEGIN CERTIFICATE-----\n{body[:64]}\n{body[64:128]}\n{body[128:]}\n-----END CERTIFICATE-----\n"
    legacy = "\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nQUJD\n"        # header lines kept as given
    assert rewrapped("RSA PRIVATE KEY", legacy) == f"-----BEGIN RSA PRIVATE KEY-----{legacy}-----END RSA PRIVATE KEY-----\n"


def test_blocks_keeps_only_the_labels_asked_for_in_order():
    text = ("-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----\n"
            "-----BEGIN PRIVATE KEY-----\nQg==\n-----END PRIVATE KEY-----\n"
            "-----BEGIN CERTIFICATE-----\nQw==\n-----END CERTIFICATE-----\n")
    assert [b.splitlines()[1] for b in blocks(text, ("CERTIFICATE",))] == ["QQ==", "Qw=="]
    assert [b.splitlines()[1] for b in blocks(text, PRIVATE_KEY_LABELS)] == ["Qg=="]
    assert blocks(None, ("CERTIFICATE",)) == [] and blocks("not pem", PRIVATE_KEY_LABELS) == []


def test_private_files_are_memfd_or_0600_in_a_0700_directory_and_are_gone_afterwards(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with private_pem_files(b"one", b"two") as paths:
        assert all(p.startswith("/proc/self/fd/") for p in paths)
        assert [open(p, "rb").read() for p in paths] == [b"one", b"two"]
    assert list(tmp_path.iterdir()) == []

    monkeypatch.delattr(os, "memfd_create")
    with pytest.raises(RuntimeError):
        with private_pem_files(b"one", b"two") as paths:
            assert [(os.stat(p).st_mode & 0o777, os.stat(os.path.dirname(p)).st_mode & 0o777) for p in paths] == \
                [(0o600, 0o700)] * 2
            assert [open(p, "rb").read() for p in paths] == [b"one", b"two"]
            raise RuntimeError("loading failed")
    assert list(tmp_path.iterdir()) == []                 # removed when the block fails too


def test_a_real_certificate_and_key_load_from_the_private_files(tmp_path):
    key, cert = issue(make_ca("wia-test-ca"), "client", server=False)
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    write_certificate(cert_path, cert)
    write_key(key_path, key)
    cert_pem = "".join(blocks(cert_path.read_text().replace("\n", " "), ("CERTIFICATE",))).encode()
    key_pem = "".join(blocks(key_path.read_text(), PRIVATE_KEY_LABELS)).encode()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with private_pem_files(cert_pem, key_pem) as (c, k):
        context.load_cert_chain(c, k)


def test_a_legacy_encrypted_key_pasted_into_one_line_loads_with_its_passphrase(tmp_path):
    """OpenSSL's traditional encrypted key (`Proc-Type: 4,ENCRYPTED` / `DEK-Info:` header lines, what
    `openssl genrsa -aes128` wrote before 3.0) pasted into a one-line field: its header lines are rebuilt
    too, so the passphrase decrypts it (it was "unreadable PEM")."""
    from cryptography.hazmat.primitives import serialization
    key, cert = issue(make_ca("wia-test-ca"), "client", server=False)
    cert_path = tmp_path / "c.pem"
    write_certificate(cert_path, cert)
    legacy = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.BestAvailableEncryption(b"correct horse")).decode()
    assert "Proc-Type: 4,ENCRYPTED" in legacy
    for pasted in (legacy, legacy.replace("\n", "\r\n"), legacy.replace("\n", " ")):
        key_pem = "".join(blocks(pasted, PRIVATE_KEY_LABELS)).encode()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with private_pem_files(cert_path.read_bytes(), key_pem) as (c, k):
            context.load_cert_chain(c, k, password="correct horse")
