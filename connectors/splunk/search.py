"""Splunk search source: an export search through splunk-sdk, turned back into WIA events.

`SplunkSearchSource("https://splunk.example.com:8089", token=Secret)` connects with
`splunklib.client.connect(..., splunkToken=token, autologin=False)` (a Splunk authentication token,
sent as a Bearer header) and runs `service.jobs.export(query, output_mode="json")`, read with
`splunklib.results.JSONResultsReader`. Each result yields a `reader.Item`, the same record the file
reader yields, so `Forwarder.run(source.items(...))` re-delivers Splunk's events anywhere:
  - sourcetype `wia:security:*`: `_raw` is the WIA event JSON the HEC sink sent; parsed into `value`
    (validation is the caller's: the Forwarder validates and dead-letters);
  - any other sourcetype, or a `_raw` that is not JSON: an Item with a ParseError naming the
    sourcetype — reported, never silently skipped;
  - Splunk messages (INFO/WARN/ERROR lines of the export stream) are kept in `messages`.
"""
from __future__ import annotations

import ssl
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError, DeliveryError, ParseError
from wia_security.reader import Item

from ..config import Secret, resolve_options
from .hec import SOURCETYPE_PREFIX

SPLUNK_MANAGEMENT_PORT = 8089
DEFAULT_QUERY = f'search sourcetype="{SOURCETYPE_PREFIX}*"'
OPTIONS = ("token", "tls_verify", "ca_file", "app", "owner", "timeout")


class SplunkSearchSource:
    """Reads WIA events back out of Splunk with an export search."""

    def __init__(self, url: str, *, token: Secret | str, tls_verify: bool = True, ca_file: str | None = None,
                 app: str | None = None, owner: str | None = None, timeout: float | None = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("expected https://host[:8089]", key="url")
        if not token:
            raise ConfigError("a Splunk authentication token is required (token_env / token_file)", key="token")
        self.host, self.port, self.scheme = parts.hostname, parts.port or SPLUNK_MANAGEMENT_PORT, parts.scheme
        self.name = f"splunk-search:{self.host}:{self.port}"
        self._token = token if isinstance(token, Secret) else Secret(str(token), "argument")
        self._verify = bool(tls_verify)
        self._context = ssl.create_default_context(cafile=ca_file) if (ca_file and tls_verify) else None
        self.app, self.owner, self.timeout = app, owner, timeout
        self.messages: list[tuple[str, str]] = []
        self._service: Any = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SplunkSearchSource":
        """`splunk+https://host:8089?token_env=SPLUNK_TOKEN`"""
        parts = urlsplit(url)
        transport = parts.scheme.split("+", 1)[1] if "+" in parts.scheme else "https"
        query = resolve_options(dict(parse_qsl(parts.query)), source=f"{parts.scheme}://{parts.hostname}")
        merged = {**query, **options}
        unknown = set(merged) - set(OPTIONS)
        if unknown:
            raise ConfigError(f"unknown Splunk search option(s) {', '.join(sorted(unknown))}; known: {', '.join(OPTIONS)}",
                              key=sorted(unknown)[0])
        if isinstance(merged.get("tls_verify"), str):
            merged["tls_verify"] = merged["tls_verify"].lower() not in ("0", "false", "no", "off")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        return cls(f"{transport}://{netloc}", **merged)

    def __repr__(self) -> str:
        return f"<SplunkSearchSource {self.name}>"

    @property
    def service(self) -> Any:
        if self._service is None:
            from splunklib import client
            self._service = client.connect(host=self.host, port=self.port, scheme=self.scheme,
                                           splunkToken=self._token.reveal(), autologin=False,
                                           verify=self._verify, context=self._context, app=self.app,
                                           owner=self.owner, timeout=self.timeout)
        return self._service

    def items(self, query: str = DEFAULT_QUERY, *, earliest: str = "-24h", latest: str = "now",
              max_results: int | None = None, **params: Any) -> Iterator[Item]:
        """Run an export search; one Item per result (see the module docstring)."""
        from splunklib import results
        if not query.lstrip().startswith(("search ", "|")):
            query = "search " + query
        from splunklib.binding import HTTPError
        try:
            stream = self.service.jobs.export(query, output_mode="json", earliest_time=earliest,
                                              latest_time=latest, **params)
        except HTTPError as exc:
            detail = " ".join(str(exc).split())
            raise DeliveryError(f"Splunk search failed: HTTP {exc.status}: {detail}", sink=self.name, status=exc.status,
                                retryable=exc.status in (429, 500, 502, 503, 504)) from None
        reader = results.JSONResultsReader(stream)
        count = 0
        try:
            for result in reader:
                if isinstance(result, results.Message):
                    self.messages.append((result.type, result.message))
                    continue
                if reader.is_preview:            # previews are superseded by final results
                    continue
                count += 1
                yield self._item(result, count)
                if max_results is not None and count >= max_results:
                    break
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def events(self, query: str = DEFAULT_QUERY, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Only the WIA events (unvalidated dicts); use `items()` to see what was not one."""
        for item in self.items(query, **kwargs):
            if item.ok:
                yield item.value

    def _item(self, result: dict[str, Any], number: int) -> Item:
        where = f"{self.name}/{result.get('index', '?')}"
        raw = result.get("_raw")
        raw_bytes = raw.encode("utf-8") if isinstance(raw, str) else None
        sourcetype = result.get("sourcetype")
        if not isinstance(sourcetype, str) or not sourcetype.startswith(SOURCETYPE_PREFIX):
            return Item(where, number, error=ParseError(f"not a WIA event: sourcetype {sourcetype!r}", source=where,
                                                        line=number), raw=raw_bytes or jsonio.dumpb(result))
        if raw_bytes is None:
            return Item(where, number, error=ParseError("result has no _raw", source=where, line=number),
                        raw=jsonio.dumpb(result))
        try:
            value = jsonio.loads(raw_bytes, source=where, line=number)
        except ParseError as exc:
            return Item(where, number, error=exc, raw=raw_bytes)
        if not isinstance(value, dict):
            return Item(where, number, error=ParseError("_raw is JSON but not an object", source=where, line=number),
                        raw=raw_bytes)
        return Item(where, number, value=value, raw=raw_bytes)
