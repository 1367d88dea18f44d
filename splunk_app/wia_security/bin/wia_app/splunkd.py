"""A minimal splunkd REST client (standard library only): stored secrets and app settings.

Splunk hands modular inputs and alert actions a session key and the management URI; secrets are
read from storage/passwords with it (never from .conf files). Requests use `output_mode=json`.
REST reference: storage/passwords and configs/conf-{file} endpoints (Splunk REST API reference,
"Access control endpoints" and "Configuration endpoints").
"""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import APP, REALM

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: How solnlib's CredentialManager (Splunk's add-on library) stores a secret longer than 255 characters: chunk n
#: under the user name <name>``splunk_cred_sep``<n>, then an entry holding CHUNK_END_MARK.
CHUNK_SEPARATOR = "``splunk_cred_sep``"
CHUNK_END_MARK = "".join(f"{CHUNK_SEPARATOR}{c}" for c in "SPLUNK") + CHUNK_SEPARATOR
#: Most chunks read (255 characters each: ~64 KB, far more than a certificate chain and key).
MAX_CHUNKS = 256


class SplunkdError(Exception):
    """A splunkd REST call failed; carries the HTTP status and the endpoint (never the session key)."""

    def __init__(self, reason: str, *, status: int | None = None, endpoint: str = "") -> None:
        super().__init__(f"{reason} (splunkd {endpoint}, status {status})")
        self.status = status
        self.endpoint = endpoint


class Splunkd:
    def __init__(self, server_uri: str, session_key: str, *, app: str = APP, timeout: float = 30.0) -> None:
        self.server_uri = server_uri.rstrip("/")
        self._session_key = session_key
        self.app = app
        self.timeout = timeout
        host = urllib.parse.urlsplit(self.server_uri).hostname or ""
        # splunkd on the loopback interface serves Splunk's self-signed certificate by default;
        # any other management URI is verified.
        self._ssl = ssl._create_unverified_context() if host in _LOOPBACK else ssl.create_default_context()

    def __repr__(self) -> str:
        return f"<Splunkd {self.server_uri} app={self.app}>"

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        params["output_mode"] = "json"
        url = f"{self.server_uri}/servicesNS/nobody/{self.app}/{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers={"Authorization": f"Splunk {self._session_key}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._ssl) as response:
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise SplunkdError(_message(exc), status=exc.code, endpoint=path) from None
        except urllib.error.URLError as exc:
            raise SplunkdError(f"cannot reach splunkd: {exc.reason}", endpoint=path) from None
        except (OSError, ValueError) as exc:      # a timeout, a reset, or not JSON (a proxy's page)
            raise SplunkdError(f"no usable answer from splunkd: {type(exc).__name__}: {exc}", endpoint=path) from None
        if not isinstance(body, dict):
            raise SplunkdError(f"splunkd answered a JSON {type(body).__name__}, not an object", endpoint=path)
        return body

    def password(self, name: str, realm: str = REALM) -> str:
        """The clear password stored under realm:name: (storage/passwords entry id)."""
        entry_id = urllib.parse.quote(f"{_escape(realm)}:{_escape(name)}:", safe="")
        try:
            body = self.get(f"storage/passwords/{entry_id}")
        except SplunkdError as exc:
            if exc.status == 404:
                raise SplunkdError(f"no credential {name!r} in storage/passwords realm {realm!r}; "
                                   "add it on the app's setup page", status=404, endpoint="storage/passwords") from None
            raise
        entries = body.get("entry") or []
        if not entries:
            raise SplunkdError(f"no credential {name!r} in realm {realm!r}", status=404, endpoint="storage/passwords")
        try:
            secret = entries[0]["content"]["clear_password"]
        except (KeyError, TypeError, IndexError):
            secret = None
        if not isinstance(secret, str):
            raise SplunkdError(f"the storage/passwords entry of {name!r} has no clear_password (the session's user "
                               "needs the list_storage_passwords capability)", endpoint="storage/passwords")
        return secret

    def long_password(self, name: str, realm: str = REALM) -> str:
        """A secret that may be longer than one storage/passwords entry takes (a PEM certificate and key): the
        chunks Splunk's solnlib CredentialManager writes for long secrets (entries name``splunk_cred_sep``1, 2,
        ... of up to 255 characters each, ended by its end-mark entry), joined; else the one entry realm:name:.
        Chunks first, as solnlib reads them."""
        chunks: list[str] = []
        while len(chunks) < MAX_CHUNKS:
            try:
                chunk = self.password(f"{name}{CHUNK_SEPARATOR}{len(chunks) + 1}", realm)
            except SplunkdError as exc:
                if exc.status != 404:
                    raise
                if not chunks:
                    return self.password(name, realm)
                break                   # no end mark: the chunks there are the secret
            if chunk == CHUNK_END_MARK:
                break
            chunks.append(chunk)
        return "".join(chunks)

    def conf_stanza(self, conf: str, stanza: str) -> dict[str, str]:
        """One stanza of an app .conf file (merged default + local), without eai: metadata keys."""
        try:
            body = self.get(f"configs/conf-{conf}/{urllib.parse.quote(stanza, safe='')}")
        except SplunkdError as exc:
            if exc.status == 404:
                raise SplunkdError(f"no [{stanza}] in {conf}.conf; configure it on the setup page",
                                   status=404, endpoint=f"configs/conf-{conf}") from None
            raise
        entries = body.get("entry")
        content = entries[0].get("content") if isinstance(entries, list) and entries and isinstance(entries[0], dict) else None
        if not isinstance(content, dict):
            raise SplunkdError(f"splunkd's answer for [{stanza}] has no entry content", endpoint=f"configs/conf-{conf}")
        return {k: str(v) for k, v in content.items() if not k.startswith("eai:") and k != "disabled"}


def _escape(part: str) -> str:
    # storage/passwords ids are realm:user: with ":" inside a part escaped as "\:"
    return part.replace(":", "\\:")


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        messages = json.loads(exc.read().decode("utf-8")).get("messages", [])
        return "; ".join(m.get("text", "") for m in messages) or exc.reason
    except (ValueError, AttributeError):
        return str(exc.reason)
