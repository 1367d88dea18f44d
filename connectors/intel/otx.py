"""AlienVault OTX DirectConnect: subscribed pulses -> WIA threat_intel events, incrementally by modified time.

`GET /api/v1/pulses/subscribed?limit=N&modified_since=T` (header `X-OTX-API-KEY`) answers
`{"count", "next", "previous", "results": [pulse, ...]}`; the client follows `next` until it is null,
refusing a `next` that points at another host (the key must never leave for it). The cursor (the
newest `modified` seen) is kept in a small JSON state file, with the server and a fingerprint of the API key it
belongs to (another account's or server's pull refuses it), and only advanced by `commit()`, which
the caller runs after the events were delivered, so a crash re-reads rather than skips. A re-read
pulse revision gets the same WIA id (uuid5 of pulse id and modified), so stores de-duplicate it.
There is no well-kept official Python client (OTXv2 is unmaintained), so this speaks HTTP on requests
via the shared delivery helpers: 429/5xx retried with backoff honouring Retry-After.
API: https://otx.alienvault.com/api (DirectConnect API v1).
"""
from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from wia_security.attack import table as attack_table
from wia_security.connectors.base import Rejected
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.errors import ConfigError, ConversionError, DeliveryError
from wia_security.outputs import replace_durably
from wia_security.redact import remember
from wia_security.timeutil import parse_iso, to_iso

from .indicators import normalize
from .records import RecordRejecter, key_fingerprint, over_budget, refuse_user_info, server_key

DEFAULT_BASE_URL = "https://otx.alienvault.com"
SUBSCRIBED_PATH = "/api/v1/pulses/subscribed"
DEFAULT_PAGE_SIZE = 50
#: Bounds on one page's answer (50 pulses, each up to thousands of indicators): bytes, and seconds in all.
MAX_PAGE_BYTES = 256 * 1024 * 1024
PAGE_SECONDS = 300.0
#: Seconds a pulse's `modified` may be ahead of this machine's clock and still become the cursor (a cursor in
#: the far future would skip every pulse until then).
CURSOR_FUTURE_SLACK = 86400
WIA_OTX_NAMESPACE = uuid.UUID("0b7f6d2c-8f6e-4d43-9c1e-3f2d8a0c4e11")

#: OTX indicator type -> WIA threat-intel indicator type (others, e.g. CVE, YARA, FilePath, CIDR, are skipped
#: and counted in meta.custom.otx.unmapped_indicators).
OTX_TO_WIA_TYPE = {"IPv4": "ip", "IPv6": "ip", "domain": "domain", "hostname": "domain", "URL": "url",
                   "FileHash-MD5": "file_hash_md5", "FileHash-SHA1": "file_hash_sha1",
                   "FileHash-SHA256": "file_hash_sha256", "email": "email", "Mutex": "mutex"}
#: A reference link the standard's `uri` format accepts (no spaces or control characters).
_URI = re.compile(r"https?://[^\s\x00-\x1f\x7f]+")
#: OTX pulses carry no severity: every pulse gets this one (the standard's "high" band starts at 5).
PULSE_SEVERITY = 5.0


def _utc(value: Any) -> str | None:
    """OTX times ("2024-01-02T03:04:05.123000", no zone, UTC) as the standard's spelling."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return to_iso(parse_iso(value))
    except ValueError:
        return None


def _strings(value: Any) -> list[str]:
    """A list of names, also when OTX sent a single string; other values are not names."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(v) for v in value if isinstance(v, (str, int, float)) and not isinstance(v, bool)] \
        if isinstance(value, list) else []


def _names(items: Any) -> list[str]:
    out = []
    for item in (items if isinstance(items, list) else [items] if isinstance(items, str) else []):
        name = item.get("display_name") or item.get("name") or item.get("id") if isinstance(item, dict) else item
        if isinstance(name, str) and name.strip():
            out.append(name.strip())
    return out


def pulse_to_wia(pulse: dict[str, Any], *, base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    """One OTX pulse as a WIA threat_intel event dict."""
    if not isinstance(pulse, dict):
        raise ConversionError("otx", f"a pulse is a JSON object, not {type(pulse).__name__}", path="/")
    listed = pulse.get("indicators") if isinstance(pulse.get("indicators"), list) else []
    # an `indicators` member that is not a list counts as one unmapped entry: seen, not dropped unseen
    indicators, unmapped, active = [], int(pulse.get("indicators") not in (None, []) and not listed), False
    seen: set[tuple[str, str]] = set()        # (type, value) already taken: a set, as pulses hold 10,000s
    for ind in listed:
        if not isinstance(ind, dict) or not isinstance(ind.get("indicator"), str):
            unmapped += 1                 # counted in meta.custom.otx.unmapped_indicators
            continue
        wia_type = OTX_TO_WIA_TYPE.get(str(ind.get("type")))
        value = ind["indicator"].strip()
        kind = {"ip": "ip", "domain": "domain", "url": "url"}.get(wia_type or "", "")
        if wia_type is None or not value or (kind == "domain" and normalize("domain", value) is None):
            unmapped += 1
            continue
        active = active or ind.get("is_active", 1) in (1, True)
        entry: dict[str, Any] = {"type": wia_type, "value": value}
        description = ind.get("description") or ind.get("title")
        if isinstance(description, str) and description.strip():
            entry["context"] = {"description": description[:1000]}
        if first := _utc(ind.get("created")):
            entry["first_seen"] = first
        if last := _utc(ind.get("expiration")):
            entry["last_seen"] = last
        if (wia_type, value) not in seen:
            seen.add((wia_type, value))
            indicators.append(entry)
    tag_list = _strings(pulse.get("tags"))
    text = " ".join([str(pulse.get("name", "")), *tag_list]).lower()
    families = _names(pulse.get("malware_families"))
    adversary = pulse["adversary"].strip() if isinstance(pulse.get("adversary"), str) else ""
    threat_type = ("ransomware" if "ransomware" in text else "malware" if families else "apt" if adversary
                   else "phishing" if "phishing" in text else "botnet" if "botnet" in text else "campaign")
    attack = attack_table()
    ttps = []
    attack_refs = [(a.get("id") or a.get("name")) if isinstance(a, dict) else a
                   for a in (pulse.get("attack_ids") if isinstance(pulse.get("attack_ids"), list) else [])]
    for raw in (r.strip() for r in attack_refs if isinstance(r, str) and r.strip()):
        tech = attack.technique(raw.split()[0])
        if tech is not None and tech.status == "revoked":
            tech = attack.replacement(tech.id)
        if tech is None or any(t["technique"] == tech.id for t in ttps):
            continue
        ttp = {"technique": tech.id, "technique_name": tech.name}
        if tech.tactic_ids:
            order = {t.id: i for i, t in enumerate(attack.tactics)}
            tactic = attack.tactic(min(tech.tactic_ids, key=order.__getitem__))
            ttp.update(tactic=tactic.id, tactic_name=tactic.name)
        ttps.append(ttp)
    modified = _utc(pulse.get("modified")) or _utc(pulse.get("created")) or to_iso(datetime.now(timezone.utc))
    data: dict[str, Any] = {"threat_type": threat_type, "threat_name": str(pulse.get("name") or pulse.get("id"))[:1000],
                            "status": "active" if active or not indicators else "inactive",
                            "report_id": f"otx:{pulse.get('id')}",
                            "first_seen": _utc(pulse.get("created")) or modified, "last_seen": modified}
    if families:
        data["threat_family"] = families[0]
    if adversary:
        data["aliases"] = [adversary]
    if indicators:
        data["indicators"] = indicators
    if ttps:
        data["ttps"] = ttps
    if industries := _names(pulse.get("industries")):
        data["target_sectors"] = industries
    if countries := _names(pulse.get("targeted_countries")):
        data["target_countries"] = countries
    refs = [r for r in _strings(pulse.get("references")) if _URI.fullmatch(r)]
    if refs:
        data["references"] = refs
    tags = list(tag_list)
    if pulse.get("tlp"):
        tags.append(f"tlp:{str(pulse['tlp']).lower()}")
    event: dict[str, Any] = {
        "$schema": "https://wia.live/security/v1/schema.json", "version": "1.0.0",
        "id": str(uuid.uuid5(WIA_OTX_NAMESPACE, f"{pulse.get('id')}|{pulse.get('modified')}")),
        "type": "threat_intel", "timestamp": modified, "severity": PULSE_SEVERITY,
        "source": {"type": "custom", "name": "AlienVault OTX", "vendor": "LevelBlue"},
        "data": data,
        "meta": {"custom": {"otx": {k: v for k, v in {
            "pulse_id": pulse.get("id"), "revision": pulse.get("revision"), "author": pulse.get("author_name"),
            "url": f"{base_url.rstrip('/')}/pulse/{pulse.get('id')}", "unmapped_indicators": unmapped or None,
        }.items() if v is not None}}},
    }
    if tags:
        event["meta"]["tags"] = tags
    if ttps:
        event["mitre"] = {k: ttps[0][k] for k in ("tactic", "tactic_name", "technique", "technique_name") if k in ttps[0]}
        if "." in ttps[0]["technique"]:
            parent = attack.technique(ttps[0]["technique"].split(".")[0])
            event["mitre"].update(technique=parent.id, technique_name=parent.name,
                                  sub_technique=ttps[0]["technique"], sub_technique_name=ttps[0]["technique_name"])
    return event


class OtxSource:
    """Polls subscribed pulses. `poll()` yields WIA events; `commit()` then saves the new cursor."""

    def __init__(self, api_key: str, *, base_url: str = DEFAULT_BASE_URL, state_path: str | None = None,
                 page_size: int = DEFAULT_PAGE_SIZE, tls_verify: bool | None = None, ca_file: str | None = None,
                 verify_tls: bool | str | None = None, timeout: tuple[float, float] = (10.0, 60.0),
                 retry: DeliveryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_reject: Callable[[Rejected], None] | None = None, max_page_bytes: int = MAX_PAGE_BYTES,
                 page_seconds: float = PAGE_SECONDS) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError("an OTX API key is required", key="api_key")
        self.max_page_bytes, self.page_seconds = max_page_bytes, page_seconds
        self._records = RecordRejecter("otx", on_reject)
        from wia_security.connectors.delivery.http import new_session
        refuse_user_info(base_url, "OTX")
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)[:2]
        self.state_path = state_path
        self.page_size = page_size
        self.timeout = timeout
        self.retry = retry or DeliveryPolicy(max_attempts=5, initial_backoff=2.0, max_backoff=60.0)
        self._sleep = sleep
        remember(api_key.strip())
        from wia_security.connectors.delivery.urls import tls_options, tls_verification, warn_plain_http_secret
        warn_plain_http_secret(f"otx:{self._origin[1]}", self.base_url, "OTX API key")
        # verify_tls (True, False or a CA bundle's path): the older spelling of tls_verify / ca_file
        verification = tls_verification(f"otx:{self._origin[1]}", *tls_options(
            {"tls_verify": tls_verify, "ca_file": ca_file, "verify_tls": verify_tls}))
        self.session = new_session(verify=verification, headers={"X-OTX-API-KEY": api_key.strip(), "Accept": "application/json"})
        self._account = account_fingerprint(api_key.strip())
        self.cursor: str | None = self._load_cursor()
        self._pending: str | None = None
        self.pages = 0

    def __repr__(self) -> str:  # never the key
        return f"<OtxSource {self.base_url} cursor={self.cursor}>"

    def _load_cursor(self) -> str | None:
        if not self.state_path or not os.path.exists(self.state_path):
            return None
        try:
            with open(self.state_path, encoding="utf-8") as fh:
                state = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"unreadable OTX state file: {exc}", key="state_path", source=self.state_path) from None
        cursor = state.get("modified_since") if isinstance(state, dict) else None
        server, account = (state.get("server"), state.get("account")) if isinstance(state, dict) else (None, None)
        if not isinstance(state, dict) or (cursor is not None and (not isinstance(cursor, str) or _utc(cursor) is None)) \
                or not all(v is None or (isinstance(v, str) and v) for v in (server, account)):
            # a damaged cursor must stop the pull: guessing would re-read everything or skip pulses
            raise ConfigError('the OTX state file must be {"modified_since": "<ISO 8601 time>", "server": "<OTX URL>", '
                              '"account": "<key fingerprint>"}', key="state_path", source=self.state_path)
        # The cursor is a position in one account's subscriptions on one server: another's pull from it would skip
        # every pulse that account has not read from before it. A state written before they were recorded is taken.
        if server is not None and server_key(server) != server_key(self.base_url):
            raise ConfigError(f"the OTX state file holds the cursor of another server ({server}), not {self.base_url}: "
                              f"it would skip what this server's pulses changed before {cursor}; give another state "
                              "file", key="state_path", source=self.state_path)
        if account is not None and account != self._account:
            raise ConfigError(f"the OTX state file holds the cursor of another API key (account {account}, this key "
                              f"is {self._account}): it would skip the pulses this account subscribes to from before "
                              f"{cursor}; give another state file (for the same account with a new key, remove its "
                              '"account" member)', key="state_path", source=self.state_path)
        return cursor

    def _get(self, url: str, params: dict[str, Any] | None) -> dict[str, Any]:
        import requests
        from wia_security.connectors.delivery.http import error_for_response

        from wia_security.connectors.delivery.http_body import read_body
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            try:
                response = self.session.get(url, params=params, timeout=self.timeout, stream=True)
                read_body(response, max_bytes=self.max_page_bytes, seconds=self.page_seconds,
                          what=f"OTX {_no_query(url)}", sink="otx")
                if response.status_code == 200:
                    return response.json()
                error = error_for_response(response, _detail(response), sink="otx")
            except DeliveryError as exc:             # a body over the limit, or one that trickles
                error = exc
            except requests.exceptions.JSONDecodeError:  # a RequestException too: it said "OTX unreachable"
                error = DeliveryError(f"OTX {_no_query(url)} answered with something that is not JSON: "
                                      f"{response.text[:120]!r}", sink="otx", retryable=True)
            except requests.RequestException as exc:
                if isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    # retrying will not make the certificate trusted; say what to do instead
                    raise DeliveryError("OTX: TLS certificate verification failed (for a private CA give "
                                        "ca_file=/path/to/ca.pem)", sink="otx", retryable=False) from None
                error = DeliveryError(f"OTX unreachable: {type(exc).__name__}", sink="otx", retryable=True)
            except ValueError:
                error = DeliveryError("OTX answered with something that is not JSON", sink="otx", retryable=True)
            if not error.retryable or attempt >= self.retry.max_attempts:
                raise error
            delay = self.retry.delay(attempt, error.retry_after)
            over_budget(self.retry, started, delay, f"OTX {_no_query(url)}", "otx", error)
            self._sleep(delay)

    def poll(self, modified_since: str | None = None) -> Iterator[dict[str, Any]]:
        """Every subscribed pulse modified since the cursor (or `modified_since`), oldest page first as OTX
        sends them, as WIA threat_intel events. The new cursor is pending until `commit()`."""
        if modified_since is not None:
            # Given by the caller (`--since`), it becomes the cursor when no pulse is newer: one that is not a time
            # would be saved as a state no later run can load, and one far ahead of the clock (2062 for 2026)
            # would make every later poll ask for pulses modified after it, and read nothing, silently.
            if not isinstance(modified_since, str) or _utc(modified_since) is None:
                raise ConfigError(f"modified_since {str(modified_since)[:40]!r} is not an ISO 8601 time "
                                  "(e.g. 2026-02-01T00:00:00)", key="modified_since")
            if _key(modified_since) > datetime.now(timezone.utc) + timedelta(seconds=CURSOR_FUTURE_SLACK):
                raise ConfigError(f"modified_since {modified_since} is in the future: nothing would be read until "
                                  "then, nor by the polls after it", key="modified_since")
        since = modified_since or self.cursor
        params: dict[str, Any] | None = {"limit": self.page_size}
        if since:
            params["modified_since"] = since
        url = self.base_url + SUBSCRIBED_PATH
        newest = since
        horizon = datetime.now(timezone.utc) + timedelta(seconds=CURSOR_FUTURE_SLACK)
        followed: set[str] = set()
        number = 0                          # pages of this poll (self.pages counts them all)
        read, counted = 0, None             # pulses sent, and the most OTX said there are (`count`)
        while url:
            page = self._get(url, params)
            self.pages += 1
            number += 1
            results = page.get("results") if isinstance(page, dict) else None
            if not isinstance(results, list) and not (isinstance(page, dict) and results is None):
                raise DeliveryError(f"OTX page {number} ({_no_query(url)}): expected an object with a `results` "
                                    f"list, got {type(results if isinstance(page, dict) else page).__name__}",
                                    sink="otx", retryable=False)
            for index, pulse in enumerate(results or []):
                where = f"otx:{_no_query(url)} page {number} result {index}"
                modified = pulse.get("modified") if isinstance(pulse, dict) else None
                # only a readable time may become the cursor: the state file must load next time; and not one
                # far ahead of the clock, which would skip every pulse until then
                if isinstance(modified, str) and _utc(modified) and _key(modified) <= horizon and \
                        (newest is None or _key(modified) > _key(newest)):
                    newest = modified
                try:
                    event = self._records.checked(pulse_to_wia(pulse, base_url=self.base_url), where, pulse)
                except ConversionError as exc:
                    if exc.format_name == "otx" and exc.path == "/":
                        self._records.reject(f"not an OTX pulse: {exc}", where, pulse)
                        continue
                    raise
                if event is not None:
                    yield event
            url, params = page.get("next"), None
            if url is not None and not isinstance(url, str):
                raise DeliveryError(f"OTX page {number}: `next` is a {type(url).__name__}, not a URL",
                                    sink="otx", retryable=False)
            read += len(results or [])
            count = page.get("count") if isinstance(page, dict) else None
            if isinstance(count, int) and not isinstance(count, bool):
                counted = max(counted or 0, count)
            # Distinct `next` links pass the loop check below, so a server that links on from an empty page,
            # or sends pulses past its own count, would be read for ever. Pulses modified while the poll
            # pages may be sent twice, hence the slack of twice the count.
            if url and not results:
                raise DeliveryError(f"OTX page {number} ({_no_query(url)}) has no pulses but links to another "
                                    "page: refusing to page for ever", sink="otx", retryable=False)
            if url and counted is not None and read > 2 * counted + self.page_size:
                raise DeliveryError(f"OTX has sent {read:,} pulses in {number} pages but counts at most {counted:,} "
                                    "and still links to another page: refusing to page for ever",
                                    sink="otx", retryable=False)
            if url and urlsplit(url)[:2] != self._origin:
                raise DeliveryError(f"OTX paging link leaves {self.base_url}; refusing to send the key there",
                                    sink="otx", retryable=False)
            if url in followed:                 # a server that links back would be read for ever
                raise DeliveryError(f"OTX page {number} links to a page already read ({url}): "
                                    "refusing to loop", sink="otx", retryable=False)
            if url:
                followed.add(url)
        self._pending = newest

    def commit(self) -> None:
        """Advance the cursor to the newest `modified` of the last complete poll (and save it)."""
        if self._pending is None:
            return
        self.cursor, self._pending = self._pending, None
        if self.state_path:
            # crash-safe: fsynced temporary file renamed over the state, then the folder fsynced; a power cut
            # leaves the old or the new cursor, never an empty file or one older than what was delivered
            replace_durably(self.state_path, json.dumps({"modified_since": self.cursor, "server": self.base_url,
                                                         "account": self._account}))

    def close(self) -> None:
        self.session.close()


def account_fingerprint(api_key: str) -> str:
    """What the state file records of the API key (`records.key_fingerprint`), never the key."""
    return key_fingerprint(api_key, b"wia-security OTX state account")


def _no_query(url: str) -> str:
    """A URL as it may appear in an error: without its query (which holds the cursor, never the key)."""
    return url.split("?", 1)[0]


def _detail(response: Any) -> str | None:
    """OTX errors are Django REST framework bodies: {"detail": "..."}."""
    try:
        body = response.json()
    except ValueError:
        return None
    return str(body["detail"])[:300] if isinstance(body, dict) and body.get("detail") else None


def _key(modified: str) -> datetime:
    try:
        return parse_iso(modified)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
