"""VirusTotal enrichment (vt-py): reputation, detections and first/last seen for the observables of any event.

Results go to `meta.custom.enrichment.virustotal` (the schema allows any keys under meta.custom only).
Enrichment never blocks delivery: every `enrich_all` call has a time budget, each request a timeout
(the client runs on a private event loop, so a hung request is abandoned, not waited for), a circuit
breaker stops calling a VirusTotal that keeps failing, and a 429 QuotaExceededError backs off (between
half the backoff ceiling and the ceiling; VirusTotal sends no Retry-After), retrying within the budget,
else skipping lookups until the backoff ends; a backoff that ends still over quota (a daily quota spent)
doubles the next one, up to QUOTA_MAX_BLOCK, without sleeping in the batch. Events always
come back, enriched or marked `partial`/`unavailable` with the reason. One lookup per indicator per
TTL through `EnrichmentCache`. API: https://docs.virustotal.com/reference/overview (v3).
"""
from __future__ import annotations

import asyncio
import copy
import logging
import math
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from wia_security.connectors.base import BaseSink, DeliveryReport, Sink
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.errors import ConfigError
from wia_security.redact import remember
from wia_security.timeutil import now_iso, to_iso

from .cache import EnrichmentCache
from .indicators import observables

log = logging.getLogger(__name__)

PROVIDER = "virustotal"
GUI_URL = "https://www.virustotal.com/gui"
DEFAULT_HOST = "https://www.virustotal.com"
#: Seconds one `enrich_all` call may spend talking to VirusTotal.
DEFAULT_TIME_BUDGET = 10.0
#: Seconds for one request (capped by what is left of the budget).
DEFAULT_REQUEST_TIMEOUT = 5.0
#: Consecutive failures that open the circuit, and how long it stays open.
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN = 60.0
#: Backoff after a 429 when VirusTotal gives no hint: the public API's quota is per minute.
QUOTA_POLICY = DeliveryPolicy(initial_backoff=2.0, max_backoff=60.0, max_attempts=3)
#: The longest wait between probes while the quota stays exhausted: a quota can be daily or monthly
#: (daily ones reset at 00:00 UTC), so each block after one that ended still over quota doubles, up to this.
QUOTA_MAX_BLOCK = 3600.0
#: Error codes (docs.virustotal.com/reference/errors) by how they are handled.
QUOTA_CODES = frozenset({"QuotaExceededError", "TooManyRequestsError"})
AUTH_CODES = frozenset({"AuthenticationRequiredError", "WrongCredentialsError", "ForbiddenError", "UserNotActiveError"})
NOT_FOUND_CODES = frozenset({"NotFoundError"})
#: 400s about one request (an id VirusTotal will not take, an object not ready yet): VirusTotal is up, so
#: they must not open the circuit and stop every other lookup.
REQUEST_CODES = frozenset({"BadRequestError", "InvalidArgumentError", "NotAvailableYet",
                           "UnselectiveContentQueryError", "UnsupportedContentQueryError"})

#: last_analysis_stats categories in which an engine gave a verdict (docs.virustotal.com/reference/analyses-object)
VERDICT_CATEGORIES = ("harmless", "malicious", "suspicious", "undetected")

_PATHS = {"file": "/files/{}", "url": "/urls/{}", "domain": "/domains/{}", "ip": "/ip_addresses/{}"}
_GUI = {"file": "file", "url": "url", "domain": "domain", "ip": "ip-address"}


class CircuitBreaker:
    """Closed -> open after `threshold` consecutive failures -> half-open after `cooldown` (one trial call)."""

    def __init__(self, threshold: int = BREAKER_THRESHOLD, cooldown: float = BREAKER_COOLDOWN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.cooldown, self._clock = threshold, cooldown, clock
        self.failures = 0
        self.opened_at: float | None = None
        self.last_error: str | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self.opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.failures, self.opened_at = 0, None

    def failure(self, reason: str, *, cooldown: float | None = None) -> None:
        self.failures += 1
        self.last_error = reason
        if self.failures >= self.threshold or self.state == "half-open" or cooldown is not None:
            self.opened_at = self._clock() - (self.cooldown - cooldown if cooldown is not None else 0)


@dataclass
class _Run:
    deadline: float
    status: str = "complete"
    notes: list[str] = field(default_factory=list)
    last: tuple[str, str] | None = None        # (status, note) of the latest lookup that was not made

    def degrade(self, status: str, note: str) -> None:
        if self.status == "complete" or status == "unavailable":
            self.status = status
        if note not in self.notes:
            self.notes.append(note)
        self.last = (status, note)


def _iso(epoch: Any) -> str | None:
    if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and epoch > 0:
        try:
            return to_iso(datetime.fromtimestamp(epoch, tz=timezone.utc))
        except (OverflowError, OSError, ValueError):
            return None                 # not a time VirusTotal can have: left out, like a missing one
    return None


def _finite(value: Any) -> bool:
    """A number JSON can carry. Python's json reads NaN and Infinity, which VirusTotal never sends but a broken
    proxy or mock can: passed on as the reputation, they made the event's line invalid JSON (json.dumps writes
    NaN), which jq, Splunk and every strict reader refuse."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class MalformedAnswer(ValueError):
    """VirusTotal answered, but not with an object this client can read (not an outage: the breaker stays closed)."""


def summarize(kind: str, value: str, obj_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """The part of a VirusTotal object we keep: reputation, detection counts, first/last seen. Fields of
    the wrong type are left out (counts as 0) rather than passed on."""
    if not isinstance(attributes, dict):
        raise MalformedAnswer(f"its attributes are a {type(attributes).__name__}, not an object")
    stats = attributes.get("last_analysis_stats")
    stats = stats if isinstance(stats, dict) else {}
    # Engines that gave a verdict. last_analysis_stats also counts engines that did not ("type-unsupported":
    # cannot analyse that file type; "timeout", "confirmed-timeout", "failure"): counted, 61 of 70 verdicts
    # with 11 type-unsupported read 61/81, and an engine added to VirusTotal's stats later would count too.
    total = sum(_count(stats.get(category)) for category in VERDICT_CATEGORIES)
    malicious = _count(stats.get("malicious"))
    first = attributes.get("first_submission_date") or attributes.get("creation_date")
    last = attributes.get("last_analysis_date") or attributes.get("last_modification_date")
    reputation = attributes.get("reputation")
    out = {"type": kind, "value": value, "found": True,
           "reputation": reputation if _finite(reputation) else None,
           "malicious": malicious, "suspicious": _count(stats.get("suspicious")), "engines": total,
           "detection_ratio": f"{malicious}/{total}" if total else None,
           "first_seen": _iso(first), "last_seen": _iso(last), "link": f"{GUI_URL}/{_GUI[kind]}/{obj_id}"}
    return {k: v for k, v in out.items() if v is not None}


def occupied_path(event: dict[str, Any]) -> str | None:
    """The JSON path where the verdict would overwrite a producer's value, or None when it can go in.
    meta, meta.custom and meta.custom.enrichment must be objects (or absent); meta.custom.enrichment.virustotal
    absent or a verdict of ours (a re-enrichment replaces it). The schema lets meta.custom hold anything, so
    a valid event can carry `"enrichment": "by-upstream"` (it crashed enrich_all: the enrich command died,
    and forward delivered the whole batch unenriched) or its own `virustotal` object (it was overwritten)."""
    node: Any = event
    path = ""
    for key in ("meta", "custom", "enrichment"):
        if key not in node:
            return None
        node, path = node[key], f"{path}/{key}"
        if not isinstance(node, dict):
            return path
    mine = node.get(PROVIDER)
    if mine is None or (isinstance(mine, dict) and mine.get("provider") == PROVIDER and "status" in mine):
        return None
    return f"{path}/{PROVIDER}"


def environment_proxy(api_url: str) -> str | None:
    """The proxy HTTPS_PROXY / HTTP_PROXY / ALL_PROXY name for the API host, unless NO_PROXY exempts it, as the
    requests-based connectors (OTX, MISP...) honour them. vt-py's aiohttp session reads none of them (its
    trust_env is off), so behind an egress proxy every lookup failed as 'VirusTotal unreachable'; trust_env
    itself is not turned on, since aiohttp would then also send ~/.netrc credentials, which no connector reads."""
    parts = urlsplit(api_url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all") or None
    if proxy and "://" not in proxy:
        proxy = f"http://{proxy}"          # "proxy:3128", as requests reads it
    if proxy and urlsplit(proxy).scheme.lower() not in ("http", "https"):
        # aiohttp takes HTTP proxies only: a socks5:// ALL_PROXY (curl's) failed every lookup with a ValueError
        # read as an unreadable answer. Direct, as before proxies were honoured; the URL is not quoted (user info).
        log.warning("VirusTotal: the proxy in the environment is not an HTTP proxy (%s://), which vt-py cannot "
                    "use: connecting directly", urlsplit(proxy).scheme)
        return None
    return proxy


def _client_class(vt: Any) -> type:
    """vt.Client whose GETs do not follow redirects. vt-py sends the key as a session header (X-Apikey),
    which aiohttp sends on to wherever a redirect points, another host included; the lookups this module
    makes (GET /files|urls|domains|ip_addresses/{id}) are never redirected by VirusTotal."""
    from vt.client import ClientResponse

    class Client(vt.Client):
        async def get_async(self, path: str, *path_args: Any, params: dict | None = None) -> Any:
            return ClientResponse(await self._get_session().get(self._full_url(path, *path_args), params=params,
                                                                proxy=self._proxy, allow_redirects=False))

    return Client


class VirusTotalEnricher:
    """Enriches WIA event dicts in place of copies; `enrich_all(events) -> list[dict]` never raises for VT trouble."""

    def __init__(self, api_key: str, *, host: str | None = None, cache: EnrichmentCache | None = None,
                 time_budget: float = DEFAULT_TIME_BUDGET, request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 breaker: CircuitBreaker | None = None, quota_policy: DeliveryPolicy = QUOTA_POLICY,
                 tls_verify: bool | None = None, ca_file: str | None = None, verify_tls: bool | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError("a VirusTotal API key is required", key="api_key")
        if not api_key.strip().isprintable() or not api_key.strip().isascii() or any(c.isspace() for c in api_key.strip()):
            # aiohttp refuses such a header on every request (ValueError: "Forbidden control character"),
            # which read as "VirusTotal sent an unreadable … object": no request made, the circuit closed, every
            # batch trying again, and the real cause hidden. The key itself is never quoted.
            raise ConfigError("the VirusTotal API key holds a space, a line break or another character an HTTP "
                              "header cannot carry (check the variable or file it comes from)", key="api_key")
        import vt  # vt-py: the official client; imported here so the core never needs it
        self._vt = vt
        self._api_key = api_key.strip()
        remember(self._api_key)
        if host and urlsplit(host).path.rstrip("/").lower().endswith("/api/v3"):
            # vt-py adds /api/v3 itself: every lookup went to /api/v3/api/v3/..., which VirusTotal (and the
            # contract server) answer 404 NotFoundError, read as "not found": each indicator, known-malicious
            # ones too, reported unknown with status complete and cached so for an hour, without a word.
            raise ConfigError(f"the VirusTotal API host {host} ends in /api/v3: give the host alone "
                              f"(vt-py adds /api/v3), e.g. {host.rstrip('/')[:-len('/api/v3')] or 'https://…'}",
                              key="host")
        self.host = host                      # None = https://www.virustotal.com (vt-py's default)
        # Verdicts are cached per API host: a cache file shared with runs against a test server or a mock
        # (--vt-url, $VT_API_URL) served its answers as VirusTotal's for a day, and the other way round.
        origin = (host or DEFAULT_HOST).rstrip("/").lower()
        self.cache_provider = PROVIDER if origin == DEFAULT_HOST else f"{PROVIDER}@{origin}"
        self.cache = cache or EnrichmentCache()
        self.time_budget = time_budget
        self.request_timeout = request_timeout
        self.breaker = breaker or CircuitBreaker(clock=clock)
        self.quota_policy = quota_policy
        from wia_security.connectors.delivery.urls import tls_options, tls_verification, warn_plain_http_secret
        if host:
            warn_plain_http_secret(f"virustotal:{host}", host, "VirusTotal API key")
        # verify_tls: the older spelling of tls_verify. vt-py hands its verify_ssl to aiohttp's connector as
        # `ssl`, which also takes an SSLContext: the one that trusts ca_file.
        verification = tls_verification(f"virustotal:{host or 'https://www.virustotal.com'}", *tls_options(
            {"tls_verify": tls_verify, "ca_file": ca_file, "verify_tls": verify_tls}))
        self.verify_tls: bool | ssl.SSLContext = (ssl.create_default_context(cafile=verification)
                                                  if isinstance(verification, str) else verification)
        self._clock, self._sleep = clock, sleep
        self.quota_blocked_until = 0.0
        self.quota_blocks = 0          # backoffs in a row that ended with the quota still exceeded
        self.requests = 0
        self.unplaced = 0                  # events passed on unenriched: see occupied_path
        self.unplaced_paths: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vt-enricher", daemon=True)
        self._thread.start()
        self._client = asyncio.run_coroutine_threadsafe(self._new_client(), self._loop).result(30)

    async def _new_client(self) -> Any:
        return _client_class(self._vt)(self._api_key, agent="wia-security", host=self.host,
                                       timeout=int(max(1, self.request_timeout)), verify_ssl=self.verify_tls,
                                       proxy=environment_proxy(self.host or DEFAULT_HOST))

    def __repr__(self) -> str:  # never the key
        return f"<VirusTotalEnricher host={self.host or 'https://www.virustotal.com'} breaker={self.breaker.state}>"

    # -- one lookup ------------------------------------------------------------------------------------
    def _fetch(self, kind: str, value: str, timeout: float) -> dict[str, Any]:
        obj_id = self._vt.url_id(value) if kind == "url" else value
        coro = asyncio.wait_for(self._client.get_object_async(_PATHS[kind].format(obj_id)), timeout)
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        self.requests += 1
        try:
            obj = future.result(timeout + 1.0)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:   # vt-py could not read the answer
            raise MalformedAnswer(f"{type(exc).__name__}: {str(exc)[:120]}") from None
        except BaseException:
            future.cancel()
            raise
        try:
            return summarize(kind, value, str(obj.id), obj.to_dict().get("attributes", {}))
        except MalformedAnswer:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise MalformedAnswer(f"{type(exc).__name__}: {str(exc)[:120]}") from None

    def lookup(self, kind: str, value: str, run: _Run) -> dict[str, Any] | None:
        """The cached or fetched result for one observable; None when it could not be had (run says why)."""
        cached = self.cache.get(self.cache_provider, kind, value)
        if cached is not None:
            return cached | {"cached": True}
        attempt = 0
        while True:
            now = self._clock()
            if now >= run.deadline:
                run.degrade("partial", "time budget exhausted")
                return None
            if now < self.quota_blocked_until:
                run.degrade("partial", "VirusTotal quota exceeded; backing off")
                return None
            if not self.breaker.allow():
                run.degrade("unavailable", f"circuit open after: {self.breaker.last_error}")
                return None
            timeout = min(self.request_timeout, run.deadline - now)
            try:
                result = self._fetch(kind, value, timeout)
            except self._vt.APIError as exc:
                if exc.code in NOT_FOUND_CODES:
                    self.breaker.success()
                    self.quota_blocks = 0
                    result = {"type": kind, "value": value, "found": False}
                    self.cache.put(self.cache_provider, kind, value, result)
                    return result
                if exc.code in QUOTA_CODES:
                    attempt += 1
                    # VirusTotal sends no Retry-After and its quotas are per minute: wait at least half
                    # the backoff ceiling (jitter above that spreads clients out).
                    ceiling = self.quota_policy.backoff_ceiling(attempt)
                    delay = self.quota_policy.delay(attempt, retry_after=ceiling / 2)
                    # Sleeping in the batch suits a per-minute quota; once a backoff has ended still over
                    # quota (a daily one spent), every batch slept and asked again: 1,179 requests and 41%
                    # of an hour asleep. Then the backoff doubles per block instead, up to QUOTA_MAX_BLOCK.
                    if not self.quota_blocks and attempt < self.quota_policy.max_attempts \
                            and self._clock() + delay < run.deadline:
                        self._sleep(delay)
                        continue
                    block = min(QUOTA_MAX_BLOCK, max(delay, self.quota_policy.max_backoff / 2) * 2 ** self.quota_blocks
                                if self.quota_blocks else delay)
                    self.quota_blocks += 1
                    self.quota_blocked_until = self._clock() + block
                    run.degrade("partial", "VirusTotal quota exceeded; backing off")
                    return None
                if exc.code in REQUEST_CODES:         # not cached: it may be answered later (NotAvailableYet)
                    self.breaker.success()
                    run.degrade("partial", f"VirusTotal refused the lookup of {kind} {value[:200]} ({exc.code})")
                    return None
                if exc.code in AUTH_CODES:   # will not heal by retrying: stay open for the whole cooldown
                    self.breaker.failure(f"{exc.code}", cooldown=self.breaker.cooldown)
                    run.degrade("unavailable", f"VirusTotal refused the API key ({exc.code})")
                    return None
                self.breaker.failure(f"{exc.code}")
                run.degrade("partial", f"VirusTotal error {exc.code}")
                return None
            except MalformedAnswer as exc:
                self.breaker.success()          # VirusTotal is up; this one answer is unreadable (not cached)
                run.degrade("partial", f"VirusTotal sent an unreadable {kind} object for {value[:200]}: {exc}")
                return None
            except (asyncio.TimeoutError, TimeoutError):
                self.breaker.failure("timeout")
                run.degrade("partial", "VirusTotal did not answer in time")
                return None
            except Exception as exc:  # noqa: BLE001 - connection errors and the like: VT is down, delivery goes on
                self.breaker.failure(type(exc).__name__)
                run.degrade("partial", f"VirusTotal unreachable ({type(exc).__name__})")
                return None
            self.breaker.success()
            self.quota_blocks = 0
            self.cache.put(self.cache_provider, kind, value, result)
            return result

    # -- events ----------------------------------------------------------------------------------------
    def enrich_all(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of the events, each with meta.custom.enrichment.virustotal when it has observables."""
        run = _Run(deadline=self._clock() + self.time_budget)
        results: dict[tuple[str, str], dict[str, Any] | None] = {}
        # Why each observable was not checked. An event's notes are those of its own observables: the run's
        # notes went into every event of the batch, so one event named another's URL, domain or hash ("refused
        # the lookup of url http://…"): data of one source (or tenant) written into another's events.
        reasons: dict[tuple[str, str], tuple[str, str]] = {}
        out = []
        for event in events:
            pairs = observables(event)
            if not pairs:
                out.append(event)
                continue
            taken = occupied_path(event)
            if taken is not None:
                # The producer's own value sits where the verdict goes: delivered as it came (nothing of the
                # producer's overwritten, no quota spent), counted and named once per path.
                self.unplaced += 1
                if taken not in self.unplaced_paths:
                    self.unplaced_paths.append(taken)
                    log.warning("VirusTotal enrichment left out: %s of event %s is the producer's own value, "
                                "not overwritten", taken, str(event.get("id"))[:80])
                out.append(event)
                continue
            found, missing = [], []
            for pair in pairs:
                if pair not in results:
                    run.last = None
                    results[pair] = self.lookup(*pair, run)
                    if results[pair] is None:
                        reasons[pair] = run.last or ("partial", "not looked up")
                (found if results[pair] is not None else missing).append(results[pair] or
                                                                         {"type": pair[0], "value": pair[1]})
            enriched = copy.deepcopy(event)
            own = [reasons[(m["type"], m["value"])] for m in missing]
            block = {"provider": PROVIDER, "checked_at": now_iso(),
                     "status": "complete" if not missing else
                     "unavailable" if any(status == "unavailable" for status, _ in own) else "partial",
                     "indicators": found}
            if missing:
                block["not_checked"] = missing
                block["notes"] = list(dict.fromkeys(note for _, note in own))
            enriched.setdefault("meta", {}).setdefault("custom", {}).setdefault("enrichment", {})[PROVIDER] = block
            out.append(enriched)
        return out

    def enrich(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.enrich_all([event])[0]

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._client.close_async(), self._loop).result(10)
        except Exception:  # noqa: BLE001 - closing a broken session must not fail the caller
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self.cache.close()


class EnrichingSink(BaseSink):
    """Wraps any sink: events are enriched (within the enricher's budget) and then handed on.
    An enrichment failure of any kind is logged and the original events are delivered."""

    def __init__(self, inner: Sink, enricher: VirusTotalEnricher) -> None:
        self.inner, self.enricher = inner, enricher
        self.name = f"{inner.name}+virustotal"

    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport:
        try:
            enriched = self.enricher.enrich_all(events)
        except Exception as exc:  # noqa: BLE001 - never block delivery on enrichment
            log.warning("enrichment skipped: %s: %s", type(exc).__name__, exc)
            enriched = list(events)
        return self.inner.send(enriched)

    @property
    def stats(self) -> Any:
        """The wrapped sink's per-destination counts (a --config fan-out), which forward reports."""
        return getattr(self.inner, "stats", None)

    def flush(self) -> DeliveryReport:
        return self.inner.flush()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.enricher.close()
