"""splunkd's REST endpoints the app reads, as Splunk documents them (REST API reference: storage/passwords,
configs/conf-{file}), for running the modular input and the alert action outside Splunk.

GET /servicesNS/nobody/wia_security/storage/passwords/{realm}:{name}: and
GET /servicesNS/nobody/wia_security/configs/conf-{file}/{stanza}, both with output_mode=json, answer
{"entry": [{"name", "content": {...}}]}; the session key must come as `Authorization: Splunk <key>`
(else 401 {"messages": [{"type": "WARN", "text": "call not properly authenticated"}]}); unknown
entries -> 404 {"messages": [{"type": "ERROR", "text": ...}]}.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

sys.path.append(str(Path(__file__).resolve().parents[1] / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)

from intel_http import ContractServer, Request  # noqa: E402


class Splunkd(ContractServer):
    secret_headers = ("authorization",)

    def __init__(self, session_key: str = "splunkd-session-key") -> None:
        super().__init__()
        self.session_key = session_key
        self.passwords: dict[tuple[str, str], str] = {}            # (realm, name) -> clear password
        self.confs: dict[str, dict[str, dict[str, str]]] = {}       # file -> stanza -> settings

    def handle(self, req: Request, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if headers.get("authorization") != f"Splunk {self.session_key}":
            return 401, {"messages": [{"type": "WARN", "text": "call not properly authenticated"}]}, {}
        if req.query.get("output_mode") != ["json"]:
            return 400, {"messages": [{"type": "ERROR", "text": "this stand-in answers output_mode=json only"}]}, {}
        prefix = "/servicesNS/nobody/wia_security/"
        if not req.path.startswith(prefix):
            return 404, {"messages": [{"type": "ERROR", "text": f"unknown path {req.path}"}]}, {}
        rest = req.path[len(prefix):]
        if rest.startswith("storage/passwords/"):
            entry_id = unquote(rest[len("storage/passwords/"):])
            realm, name = _split_password_id(entry_id)
            if (realm, name) not in self.passwords:
                return 404, {"messages": [{"type": "ERROR", "text": f"Could not find object id={entry_id}"}]}, {}
            return 200, {"entry": [{"name": entry_id, "content": {"realm": realm, "username": name,
                                                                  "clear_password": self.passwords[(realm, name)],
                                                                  "encr_password": "$7$..."}}]}, {}
        if rest.startswith("configs/conf-"):
            conf, _, stanza = rest[len("configs/conf-"):].partition("/")
            settings = self.confs.get(conf, {}).get(unquote(stanza))
            if settings is None:
                return 404, {"messages": [{"type": "ERROR", "text": f"Could not find object id={unquote(stanza)}"}]}, {}
            return 200, {"entry": [{"name": unquote(stanza), "content": {**settings, "disabled": False,
                                                                         "eai:appName": "wia_security"}}]}, {}
        return 404, {"messages": [{"type": "ERROR", "text": f"unknown endpoint {rest}"}]}, {}


def _split_password_id(entry_id: str) -> tuple[str, str]:
    """realm:name: with ':' inside a part escaped as '\\:'."""
    parts, current, i = [], "", 0
    while i < len(entry_id):
        if entry_id[i] == "\\" and i + 1 < len(entry_id):
            current += entry_id[i + 1]
            i += 2
            continue
        if entry_id[i] == ":":
            parts.append(current)
            current = ""
        else:
            current += entry_id[i]
        i += 1
    return (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
