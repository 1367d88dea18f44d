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
from ..delivery.urls import boolean, seconds
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
        where = f"{parts.scheme}://{parts.hostname}"
        if "tls_verify" in merged:
            merged["tls_verify"] = boolean(merged["tls_verify"], "tls_verify", where)
        if isinstance(merged.get("timeout"), str):        # from the URL or a config file: a number of seconds
            merged["timeout"] = seconds(merged["timeout"], "timeout", where)
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        return cls(f"{transport}://{netloc}", **merged)

    def __repr__(self) -> str:
        return f"<SplunkSearchSource {self.name}>"

    @property
    def service(self) -> Any:
        if self._service is None:
            from splunklib import binding, client
            # splunk-sdk 2.x accepts `timeout` in connect() but never hands it to its HTTP handler:
            # a handler built here is the only way a stalled splunkd times out.
            http = binding.handler(timeout=self.timeout, verify=self._verify, context=self._context)
            try:
                service = client.connect(host=self.host, port=self.port, scheme=self.scheme, handler=http,
                                         splunkToken=self._token.reveal(), autologin=False,
                                         verify=self._verify, context=self._context, app=self.app,
                                         owner=self.owner, timeout=self.timeout)
                service.splunk_version          # GET /services/server/info now, so its failures are named here
                self._service = service
            except Exception as exc:  # noqa: BLE001 - every way connecting fails becomes one clear error
                raise self._error("connecting (GET /services/server/info)", exc) from None
        return self._service

    def items(self, query: str = DEFAULT_QUERY, *, earliest: str = "-24h", latest: str = "now",
              max_results: int | None = None, **params: Any) -> Iterator[Item]:
        """Run an export search; one Item per result (see the module docstring). A line of the export
        stream that is not a result Item is an error Item naming the line; a stream that breaks off
        raises DeliveryError naming how many results came before."""
        if not query.lstrip().startswith(("search ", "|")):
            query = "search " + query
        service = self.service
        params = {"segmentation": "none", **params}
        try:
            # jobs.export() without dropping the status: splunklib raises only for >= 400, so a 3xx
            # (a proxy, a wrong port) would otherwise read as a search that found nothing.
            response = service.jobs.post(path_segment="export", search=query, output_mode="json",
                                         earliest_time=earliest, latest_time=latest, **params)
        except Exception as exc:  # noqa: BLE001
            raise self._error("starting the export search", exc) from None
        stream = response.body
        try:
            if response.status != 200:
                location = dict((k.lower(), v) for k, v in response.headers).get("location")
                raise DeliveryError(f"Splunk search failed: HTTP {response.status} {response.reason}"
                                    + (f" (redirect to {location})" if location else "")
                                    + ": expected 200 and a JSON results stream", sink=self.name,
                                    status=response.status)
            kind = dict((k.lower(), v) for k, v in response.headers).get("content-type", "")
            if kind and "json" not in kind.lower():
                raise DeliveryError(f"Splunk search failed: the export answered {kind!r}, not a JSON results "
                                    "stream (a proxy page?)", sink=self.name, status=response.status)
            count = 0
            for line_number, line in enumerate(self._lines(stream, lambda: count), 1):
                for item in self._parse_line(line, line_number, count):
                    count += 1
                    yield item
                    if max_results is not None and count >= max_results:
                        return
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def _lines(self, stream: Any, results_so_far: Any) -> Iterator[bytes]:
        try:
            while True:
                line = stream.readline()
                if not line:
                    return
                if line.strip():
                    yield line
        except Exception as exc:  # noqa: BLE001 - a cut or stalled stream: say how far it got
            raise self._error(f"reading the export stream after {results_so_far()} result(s)", exc) from None

    def _parse_line(self, line: bytes, line_number: int, count: int) -> Iterator[Item]:
        """The Items of one export line; messages go to `messages`, previews are skipped (final
        results supersede them). splunk-sdk's JSONResultsReader is not used: one bad line ends its
        stream, and it keeps only the last message of a line."""
        where = f"{self.name}/export"

        def bad(why: str) -> Item:
            return Item(where, count + 1, error=ParseError(f"export line {line_number}: {why}", source=where,
                                                           line=count + 1), raw=line.strip())
        try:
            doc = jsonio.loads(line, source=where, line=line_number)
        except ParseError as exc:
            yield bad(f"not JSON ({exc.reason})")
            return
        if not isinstance(doc, dict):
            yield bad(f"a JSON {type(doc).__name__}, not an object")
            return
        known = False
        messages = doc.get("messages")
        if messages is not None:
            known = True
            for message in messages if isinstance(messages, list) else [messages]:
                if isinstance(message, dict):
                    self.messages.append((str(message.get("type", "UNKNOWN")), str(message.get("text", ""))))
                else:
                    self.messages.append(("UNKNOWN", f"malformed message on export line {line_number}: {message!r}"))
        results: Any = None
        if "result" in doc:
            results = [doc["result"]]
        elif "results" in doc:
            results = doc["results"]
            if not isinstance(results, list):
                yield bad("/results is not a list")
                return
        if results is None:
            if not known:
                yield bad("no result, results or messages member")
            return
        if doc.get("preview") is True:
            return
        for n, result in enumerate(results):
            if isinstance(result, dict):
                yield self._item(result, count + 1)
            else:
                path = "/result" if "result" in doc else f"/results/{n}"
                yield bad(f"{path} is a JSON {type(result).__name__}, not an object")
            count += 1

    def _error(self, what: str, exc: Exception) -> DeliveryError:
        """A DeliveryError for a failed step: HTTP status and Splunk's message when there is one, the
        network error otherwise; never the token."""
        from splunklib.binding import HTTPError
        from ..delivery import classify_exception
        if isinstance(exc, DeliveryError):
            return exc
        if isinstance(exc, HTTPError):
            detail = " ".join(str(exc).split())[:300]
            return DeliveryError(f"Splunk search failed {what}: HTTP {exc.status}: {detail}", sink=self.name,
                                 status=exc.status, retryable=exc.status in (429, 500, 502, 503, 504))
        if isinstance(exc, (SyntaxError, ValueError, AttributeError, KeyError, TypeError)):
            # splunk-sdk choking on a reply it cannot read: an HTML page where splunkd answers Atom XML
            # (a proxy, the web UI's port)
            return DeliveryError(f"Splunk search failed {what}: the reply is not splunkd's "
                                 f"({type(exc).__name__}: {exc}); is the URL the management port (8089)?",
                                 sink=self.name)
        error = classify_exception(exc)
        return DeliveryError(f"Splunk search failed {what}: {error.reason}", sink=self.name,
                             retryable=error.retryable)

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
