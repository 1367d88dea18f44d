"""WIA Security for Cortex XSOAR: fetch WIA events as incidents; validate, convert, send and look up.

Layout as XSOAR's HelloWorld: a Client (HTTP to a WIA gateway or a TAXII 2.1 collection), one
function per command, and main() dispatching demisto.command(). The WIA Security core
(`wia_security`: model, validator, converters, ATT&CK table) is embedded by the pack build
(xsoar_pack/build.py) as a zip in WIA_CORE_ZIP_B64, so the integration runs in the plain
demisto/python3 image with nothing else installed.
"""
import demistomock as demisto  # noqa: F401
from CommonServerPython import *  # noqa: F401

import atexit
import base64
import hashlib
import json
import math
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import time
import zipimport
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import urllib3

# The build replaces this with the base64 zip of the wia_security package.
WIA_CORE_ZIP_B64 = ""


def _load_core() -> None:
    """Puts the embedded core zip on sys.path (zipimport); without one, an installed wia_security is used.

    The zip goes where no other user can reach it: an anonymous memory file (memfd, read by zipimport as
    /proc/self/fd/N), else a file made with O_EXCL|O_NOFOLLOW in a fresh 0700 directory of this process,
    removed at this process's exit (not a forked child's) or at once if the write fails. Never a shared temp folder under a name known in advance: a zip someone planted there
    would be imported, a symlink written through. Each command may be a new process (the zip is rewritten,
    about a millisecond); XSOAR's Python loop runs the script again in the same process, so a core already
    loaded there is reused (registry below), not written once per command, and another version's loaded there
    (a pack upgrade) is dropped first (_forget_other_cores)."""
    if not WIA_CORE_ZIP_B64:
        return
    blob = base64.b64decode(WIA_CORE_ZIP_B64)
    digest = hashlib.sha256(blob).hexdigest()
    registry = sys.modules.get(_CORE_REGISTRY)
    if registry is None:
        registry = sys.modules[_CORE_REGISTRY] = ModuleType(_CORE_REGISTRY)
        registry.paths = {}             # sha256 of a zip -> where this process put it
    path = registry.paths.get(digest) or _private_zip(blob, f"wia_security_core_{digest[:16]}")
    registry.paths[digest] = path
    _forget_other_cores(path, set(registry.paths.values()))
    if path not in sys.path:
        sys.path.insert(0, path)


def _forget_other_cores(path: str, known: set[str]) -> None:
    """Drops what another version of this integration loaded in this process: XSOAR's Python loop may keep the
    process across a pack upgrade, and `import wia_security` (or kafka) would find the old core's modules in
    sys.modules before looking at the new zip, so the new version would run the old core. Other cores are the
    paths in `known` and zips named wia_security_core_* (0.1.0 put its zip in the temp folder under that name)."""
    stale = [entry for entry in sys.path if isinstance(entry, str) and entry != path
             and (entry in known or os.path.basename(entry).startswith("wia_security_core_"))]
    if not stale:
        return
    prefixes = tuple(entry.rstrip("/") + "/" for entry in stale)
    packages = {name.partition(".")[0] for name, module in list(sys.modules.items())
                if (getattr(module, "__file__", None) or "").startswith(prefixes)}
    for name in [name for name in list(sys.modules) if name.partition(".")[0] in packages]:
        del sys.modules[name]
    sys.path[:] = [entry for entry in sys.path if entry not in stale]
    for entry in stale:
        sys.path_importer_cache.pop(entry, None)


#: sys.modules entry that outlives one run of the script (XSOAR's Python loop execs it per command).
_CORE_REGISTRY = "_wia_security_xsoar_core"


def _private_zip(blob: bytes, name: str) -> str:
    """A path to `blob` that only this process (or its user, for the fallback file) can read or replace."""
    if hasattr(os, "memfd_create"):
        fd = -1
        try:
            fd = os.memfd_create(name, os.MFD_CLOEXEC)          # kept open: zipimport reopens it on each import
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view):]
            path = f"/proc/self/fd/{fd}"
            zipimport.zipimporter(path)     # readable as a zip there (no /proc, say)? Its directory is cached for the import
            return path
        except (OSError, zipimport.ZipImportError):     # no memfd (a seccomp profile may refuse it): a private file
            pass
        if fd >= 0:
            os.close(fd)
    directory = tempfile.mkdtemp(prefix="wia-security-core-")      # a new directory, mode 0700
    path = os.path.join(directory, f"{name}.zip")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)    # a full disk: neither the partial zip nor its directory stays
        raise
    atexit.register(_remove_core_directory, directory, os.getpid())
    return path


def _remove_core_directory(directory: str, owner_pid: int) -> None:
    """Removes the fallback core at exit, in the process that wrote it only: a child of a bare os.fork() inherits
    the atexit functions, and its exit would remove the zip its parent still imports from."""
    if os.getpid() == owner_pid:
        shutil.rmtree(directory, ignore_errors=True)


_load_core()

import wia_security  # noqa: E402
from wia_security import kafka_sasl  # noqa: E402
from wia_security.attack import table as attack_table  # noqa: E402
from wia_security.kafka_offsets import offsets_out_of_range  # noqa: E402
from wia_security.pem import PRIVATE_KEY_LABELS, blocks, private_pem_files  # noqa: E402
from wia_security.redact import proxy_credentials  # noqa: E402
from wia_security.severity import band  # noqa: E402
from wia_security.start_time import event_before, start_cutoff  # noqa: E402
from wia_security.start_time import kafka_start_offsets as start_offsets  # noqa: E402
from wia_security.taxii_settle import DEFAULT_SETTLE_SECONDS, SettleWindow, instant, iso_micro, just_before, settle_seconds  # noqa: E402

''' CONSTANTS '''

INTEGRATION_NAME = "WIA Security"
TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
CONVERT_FORMATS = ("stix", "ocsf", "ecs", "asff")
#: WIA severity band -> XSOAR incident severity (0.5 info, 1 low, 2 medium, 3 high, 4 critical)
XSOAR_SEVERITY = {"informational": 0.5, "low": 1, "medium": 2, "high": 3, "critical": 4, "emergency": 4}
#: Ids of events made incidents, remembered in the last-run state to drop events a source hands over twice.
RECENT_IDS = 5000
#: Most event ids last_run keeps as read at its TAXII instant (ids_at_added_after; see taxii_ids_at_instant). With
#: recent_ids, last_run holds at most 10,000 event ids (about 400 KB of JSON with UUID ids).
TAXII_MAX_IDS_AT_INSTANT = 5000
#: Ids of rejected (invalid) events last_run keeps apart, each with its version's digest (rejected_ids, about 60 bytes
#: each): the same version read again is not reported again, a corrected version is fetched.
REJECTED_IDS = 1000
DEFAULT_MAX_FETCH = 50
#: The event types of the WIA Security standard (wia-get-events event_type).
EVENT_TYPES = ("alert", "threat_intel", "vulnerability", "incident", "network_event", "endpoint_event", "auth_event")
#: Largest limit / max_fetch taken (XSOAR creates incidents in one call; a source is read in pages of this).
MAX_LIMIT = 10_000
#: Seconds the pre-flight connection to one Kafka bootstrap broker may take (connect, TLS handshake, first answer).
KAFKA_CONNECT_TIMEOUT = 10
KAFKA_CLIENT_ID = "wia-security-xsoar"
#: Seconds one fetch (or wia-get-events) polls a Kafka topic at most: it stops at max_fetch messages, two idle
#: seconds, or this. XSOAR stops a command after its timeout (3 minutes by default) and saves no last run then, so a
#: topic written to about once a second kept every fetch polling past it, reading the same messages again, for ever.
#: 60 s leaves the pre-flight (10 s per broker), kafka-python's bootstrap and the incidents' creation their time.
KAFKA_FETCH_SECONDS = 60
#: Seconds one fetch (or wia-get-events) reads pages of a gateway or a TAXII collection at most: past them it stops
#: after the page it read, with its place kept as at max_fetch, and the next fetch goes on. Pages whose events are
#: all skipped (a TAXII collection of other STIX than WIA events, events already fetched) do not count toward
#: max_fetch, and a fetch walking many of them ran past XSOAR's command timeout, which saves no last run: the next
#: fetch walked the same pages again, for ever. A fetch stops so only once its position has moved.
FETCH_PAGES_SECONDS = 60
#: kafka-python's SASL mechanism when none is configured and the pre-flight login could not ask the broker (no
#: broker answered it), over TLS that verifies the broker only: the integration's default before mechanisms were
#: discovered. Elsewhere test-module and fetch fail asking for ?sasl_mechanism= (kafka_undiscovered_mechanism).
KAFKA_UNDISCOVERED_SASL_MECHANISM = "PLAIN"
#: How to move a TAXII last_run stored past the server's clock back (said with SettleWindow.stored_past's warning).
TAXII_RESET = ("to resume, reset the instance's last run (Reset the \"last run\" timestamp, in the instance's settings): "
               "the next fetch reads the collection from the First fetch time (from its beginning when that is "
               "empty), and each event it holds from there becomes an incident again; `!wia-get-events "
               "after=<instant>` lists what was missed without making incidents")
#: The First fetch time parameter: how far back a new instance (or one whose last run was reset) starts reading.
FIRST_FETCH_PARAM = "First fetch time"
#: last_run key holding the first fetch's cutoff (RFC 3339, UTC) until the fetch has a position of its own in the
#: source: fixed at the first fetch, so a first fetch that finds nothing (or a gateway walk of old events spread over
#: several fetches) does not move it on with the clock.
FIRST_FETCH_KEY = "first_fetch_cutoff"
#: Most pages of Get Manifest a TAXII settle split reads (what was added in the last `settle` seconds).
TAXII_MAX_RECENT_PAGES = 1000
#: The characters that make markdown of text (CommonServerPython's MARKDOWN_CHARS, with < and > for raw HTML):
#: escaped in text from events before it reaches a war-room entry (md_text, md_cell).
MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-!|<>")
#: The Source type parameter's options.
SOURCE_TYPES = ("gateway", "taxii", "kafka")
#: What test-module says when the source answers 404 (what the Source URL should be instead).
NOT_FOUND_HINTS = {
    "gateway": "the Source URL has no WIA gateway feed (GET /v1/events was not found): give the gateway's address "
               "without a path (https://gateway.example.com); for a TAXII 2.1 collection, set Source type to taxii",
    "taxii": "the Source URL is not a TAXII 2.1 collection (Get Objects, <Source URL>/objects/, was not found): give the "
             "collection's URL (https://taxii.example.com/api1/collections/<collection-id>); for a WIA gateway, set "
             "Source type to gateway",
}
#: cliName of the pack's WIA Indicators incident field, which fetch-incidents sets itself (event_to_incident).
INDICATORS_FIELD = "wiaindicators"

''' CLIENT CLASS '''


class Client(BaseClient):
    """The configured source: a WIA gateway (GET/POST /v1/events), a TAXII 2.1 collection (HTTP) or
    a Kafka topic (kafka-python, embedded with the core)."""

    def __init__(self, base_url: str, source_type: str, verify: bool, proxy: bool, token: str | None = None,
                 username: str | None = None, stix_content: str = "wia", client_certificate: str | None = None,
                 client_key: str | None = None, client_key_passphrase: str | None = None,
                 settle: float = DEFAULT_SETTLE_SECONDS):
        headers = {"User-Agent": f"wia-security-xsoar/{wia_security.__version__}"}
        auth = None
        if username and token:
            auth = (username, token)
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        super().__init__(base_url=base_url.rstrip("/"), verify=verify, proxy=proxy, headers=headers, auth=auth)
        self.source_type = source_type
        self.stix_content = stix_content
        self.settle = settle                # TAXII: seconds of the server's clock whose objects are left to settle
        self._no_manifest = False           # TAXII: Get Manifest failed once; the settle split uses Get Objects
        #: masks what this client logs itself (main() sets the instance's Redactor): an error it only logs may quote
        #: the request, Authorization or Proxy-Authorization included
        self.redact: Any = str
        self.kafka_url, self.kafka_username, self.kafka_password = base_url, username, token
        self.use_proxy = proxy              # said when Kafka brokers cannot be reached: Kafka never uses the proxy
        self.verify = verify
        # mutual TLS with the Kafka brokers: PEM text from XSOAR's credential store, loaded into the TLS context
        self.client_certificate, self.client_key = client_certificate or None, client_key or None
        self.client_key_passphrase = client_key_passphrase or None

    def gateway_events(self, after: str | None, limit: int) -> dict[str, Any]:
        """The gateway's arrival-order feed: GET /v1/events?after=<cursor>&limit=N (first cursor "0")
        -> {"events": [...], "next": <cursor>}; the same cursor comes back when nothing is new."""
        return self._http_request("GET", "/v1/events", params={"after": after or "0", "limit": limit})

    def gateway_send(self, event: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/events with one WIA event as the JSON body."""
        return self._http_request("POST", "/v1/events", json_data=event)

    def kafka_messages(self, offsets: dict[str, int], limit: int,
                       since: datetime | None = None) -> tuple[list[dict[str, Any]], dict[str, int], list[str]]:
        """Up to `limit` messages (one WIA event as JSON each) after `offsets` (partition -> next
        offset), read on manually assigned partitions: no consumer group, the last-run state alone
        says where to resume. A partition without an offset starts at its beginning, or with `since` (the first
        fetch's cutoff) at its first message stamped at or after it (kafka_start_offsets), recorded in the offsets
        returned whether or not a message is read there. Returns (events, new offsets, problems)."""
        from urllib.parse import parse_qsl, unquote, urlsplit

        from kafka import KafkaConsumer, TopicPartition

        # "kafka+sasl_ssl" is no RFC 3986 scheme (the underscore): urlsplit would not split it off
        scheme, _, rest = self.kafka_url.partition("://")
        scheme = scheme.lower()
        parts = urlsplit("kafka://" + rest)
        protocols = {"kafka": "PLAINTEXT", "kafka+ssl": "SSL", "kafka+sasl": "SASL_PLAINTEXT", "kafka+sasl_ssl": "SASL_SSL"}
        topic = unquote(parts.path.strip("/"))
        if scheme not in protocols or not parts.netloc or not topic:
            raise DemistoException("a Kafka source URL is kafka://broker:9092[,broker2:9092]/TOPIC "
                                   "(kafka+ssl://, kafka+sasl_ssl://, kafka+sasl://)")
        # auto_offset_reset: where kafka-python goes when a position is out of the broker's range after the check of
        # kafka_offsets_in_range (retention deleting between the two): kafka-python's default, "latest", skipped
        # everything the partition held
        config: dict[str, Any] = {"bootstrap_servers": parts.netloc.split(","), "security_protocol": protocols[scheme],
                                  "enable_auto_commit": False, "group_id": None, "client_id": "wia-security-xsoar",
                                  "auto_offset_reset": "earliest"}
        if "sasl" in scheme:
            # no ?sasl_mechanism=: the pre-flight login picks the strongest the broker offers (kafka_sasl_login)
            config.update(sasl_mechanism=dict(parse_qsl(parts.query)).get("sasl_mechanism") or None,
                          sasl_plain_username=self.kafka_username, sasl_plain_password=self.kafka_password)
        unasked: list[str] = []       # why the SASL pre-flight could not ask each bootstrap server
        if "ssl" in scheme:
            config["ssl_context"] = self.kafka_tls_context()
            self.kafka_tls_check(config["bootstrap_servers"], config["ssl_context"], config, unasked)
        elif self.client_certificate or self.client_key:
            raise DemistoException("a Kafka client certificate is presented over TLS only: use kafka+ssl:// or "
                                   "kafka+sasl_ssl://, or clear the Kafka client certificate parameter")
        elif "sasl" in scheme:
            kafka_sasl_check(config["bootstrap_servers"], config, unasked, proxy=self.use_proxy)
        else:
            unreachable = kafka_unreachable(config["bootstrap_servers"])
            if unreachable:
                raise kafka_unreachable_error(unreachable, self.use_proxy)
        if "sasl" in scheme and not config["sasl_mechanism"]:
            kafka_undiscovered_mechanism(config, config.get("ssl_context"), unasked)
        kafka_python_scram_username(config)
        consumer = KafkaConsumer(**config)
        events: list[dict[str, Any]] = []
        problems: list[str] = []
        offsets = dict(offsets)
        try:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise DemistoException(f"Kafka topic {topic!r} does not exist")
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            offsets.update(kafka_offsets_in_range(consumer, [tp for tp in assigned if str(tp.partition) in offsets], offsets))
            if since is not None:
                offsets.update(kafka_start_offsets(consumer, [tp for tp in assigned if str(tp.partition) not in offsets],
                                                   since))
            for tp in assigned:
                if str(tp.partition) in offsets:
                    consumer.seek(tp, offsets[str(tp.partition)])
                else:
                    consumer.seek_to_beginning(tp)
            idle = 0
            deadline = time.monotonic() + KAFKA_FETCH_SECONDS
            while idle < 2 and len(events) < limit and time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=1000, max_records=limit - len(events))
                if not batch:
                    idle += 1
                    continue
                idle = 0
                for tp, records in sorted(batch.items(), key=lambda item: item[0].partition):
                    for record in records:
                        try:
                            if record.value is None:       # a tombstone (null value) of a compacted topic
                                raise ValueError("no value (a tombstone)")
                            value = json.loads(record.value.decode("utf-8"))
                            if not isinstance(value, dict):
                                raise ValueError(f"a JSON {type(value).__name__}")
                            events.append(value)
                        except (ValueError, RecursionError) as exc:
                            problems.append(f"{topic}/{tp.partition}@{record.offset} is not a WIA event: {exc}")
                        offsets[str(tp.partition)] = record.offset + 1
        finally:
            consumer.close()
        return events, offsets, problems

    def kafka_tls_context(self) -> ssl.SSLContext:
        """TLS for kafka+ssl:// and kafka+sasl_ssl://: the broker's certificate verified against the trusted
        CAs (the image's, plus any the engine adds) with its host name checked; with "Trust any
        certificate" neither (kafka-python's own ssl_check_hostname=False still verified the CA)."""
        context = ssl.create_default_context()
        if not self.verify:
            demisto.info(f"{INTEGRATION_NAME}: Trust any certificate is ticked: the Kafka broker's TLS certificate "
                         "and host name are not verified (not secure)")
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_certificate or self.client_key:
            load_client_certificate(context, self.client_certificate, self.client_key, self.client_key_passphrase)
        return context

    def kafka_tls_check(self, servers: list[str], context: ssl.SSLContext, config: dict[str, Any],
                        unasked: list[str] | None = None) -> None:
        """A TLS handshake and one Kafka request (ApiVersions) with the bootstrap servers before kafka-python
        starts: kafka-python only logs a refused certificate and, 30 s later, reports "Unable to bootstrap"
        without the reason. The request matters for client certificates: under TLS 1.3 a broker refuses a
        missing or untrusted one only after the client's side of the handshake is done. With SASL the login
        follows on the same connection (kafka_sasl_login). `unasked` gets why each server left aside could not
        be asked (for kafka_undiscovered_mechanism)."""
        refused = None
        found = kafka_sasl.TlsFindings()    # servers reached that gave no Kafka answer over TLS: what happened
        unasked = [] if unasked is None else unasked
        unreachable: list[str] = []
        for server in servers:
            try:
                host, port = kafka_sasl.broker_address(server)
                raw = socket.create_connection((host, port), timeout=KAFKA_CONNECT_TIMEOUT)
            except (OSError, ValueError) as exc:
                unasked.append(f"{server}: {exc}")
                unreachable.append(f"{server}: {exc}")
                continue          # not reachable from here: another server may be
            with raw:
                try:
                    # a plaintext Kafka listener is named when it does not answer the hello in a second, or cuts it off
                    tls = kafka_sasl.tls_handshake(raw, context, host, port, KAFKA_CLIENT_ID)
                except kafka_sasl.PlainKafkaListener:
                    found.plain_kafka = found.plain_kafka or server
                    unasked.append(f"{server}: a plaintext Kafka listener")
                    continue
                except ssl.SSLCertVerificationError as exc:
                    refused = refused or f"{server}: {exc.verify_message}"
                    continue
                except ssl.SSLError as exc:
                    unasked.append(f"{server}: {found.handshake_failed(server, exc)}")
                    continue
                except OSError as exc:
                    # nothing answered the hello in time (a plaintext listener waits for the rest of a "request"):
                    # kafka-python would wait for it and say only "Unable to bootstrap", as for a refused certificate
                    found.handshake_unanswered(server, exc, KAFKA_CONNECT_TIMEOUT)
                    unasked.append(f"{server}: {exc}")
                    continue
                with tls:
                    try:
                        versions = kafka_sasl.api_versions(tls, KAFKA_CLIENT_ID)
                    except TimeoutError as exc:
                        unasked.append(f"{server}: {exc or 'no answer in time'}")
                        continue  # a slow broker: kafka-python waits longer
                    except (kafka_sasl.NotKafka, OSError) as exc:
                        found.no_kafka_answer(server, exc, tls)
                        continue
                    if "SASL" in config["security_protocol"]:
                        try:
                            kafka_sasl_login(tls, server, versions, config, lambda: kafka_connect(server, context))
                        except (OSError, kafka_sasl.NotKafka) as exc:
                            # no answer the check can read: kafka-python's own login decides, with the mechanism
                            # configured or kafka_undiscovered_mechanism's
                            unasked.append(f"{server}: {exc or 'no answer in time'}")
                    return
        if len(unreachable) == len(servers):
            raise kafka_unreachable_error(unreachable, self.use_proxy)
        if refused:
            raise DemistoException(f"the Kafka broker's TLS certificate was refused ({refused}). Add the CA that "
                                   "issued it to the engine's trusted certificates and use a broker address the "
                                   "certificate names, or tick Trust any certificate (not secure).")
        if found.plain_kafka:
            plain = "kafka+sasl://" if "SASL" in config["security_protocol"] else "kafka://"
            raise DemistoException(f"the Kafka broker {found.plain_kafka} answered a Kafka request sent without TLS, and "
                                   "not the TLS handshake: this is a plaintext Kafka listener. Use the port of the "
                                   f"brokers' TLS listener in the Source URL, or {plain} to read this one without TLS.")
        presented = "the client certificate given was not accepted" if self.client_certificate else \
            "no client certificate was given"
        if found.client_refused:
            raise DemistoException(f"the Kafka broker refused the TLS connection ({found.client_refused}): {presented}. "
                                   "A broker that demands client certificates (mutual TLS) needs the Kafka client "
                                   "certificate and key parameters, with a certificate issued by a CA the broker trusts.")
        if found.closed:
            why = ("a broker that does not accept the client certificate given (mutual TLS) may end the connection so: "
                   "it needs a certificate issued by a CA the broker trusts") if self.client_certificate else \
                ("no client certificate was given, and a broker that demands one (mutual TLS) may end the connection "
                 "so: it needs the Kafka client certificate and key parameters, with a certificate issued by a CA the "
                 "broker trusts")
            raise DemistoException(f"the Kafka broker closed the TLS connection after the handshake without answering "
                                   f"({found.closed}): {why}. Otherwise check that the Source URL names the brokers' "
                                   "Kafka TLS listener.")
        if found.failures:
            raise DemistoException(f"the Kafka brokers could not be reached over TLS ({'; '.join(found.failures + found.no_handshake)}). "
                                   "Check that the Source URL names the brokers' Kafka TLS listener (host and port).")
        if found.no_handshake:
            raise DemistoException(f"the TLS handshake with the Kafka brokers failed ({'; '.join(found.no_handshake)}); "
                                   "is the listener TLS (kafka+ssl://) or plain (kafka://)? Check the Source URL.")

    def taxii_objects(self, added_after: str | None, limit: int, next_token: str | None = None,
                      endpoint: str = "objects") -> tuple[Any, Any, timedelta]:
        """TAXII 2.1 Get Objects (section 5.4; or Get Manifest, 5.3): one page after `added_after` (continued
        with the server's `next` token); returns (envelope, response headers, round trip: request sent ->
        answer's headers read)."""
        params: dict[str, Any] = {"limit": limit}
        if added_after:
            params["added_after"] = added_after
        if next_token:
            params["next"] = next_token
        started = time.monotonic()
        response = self._http_request("GET", f"/{endpoint}/", params=params, resp_type="response",
                                      headers={**self._headers, "Accept": TAXII_MEDIA_TYPE})
        elapsed = getattr(response, "elapsed", None)
        round_trip = elapsed if isinstance(elapsed, timedelta) else timedelta(seconds=time.monotonic() - started)
        return response.json(), response.headers, round_trip

    def taxii_recent(self, cutoff: datetime) -> list[Any] | None:
        """The Get Manifest entries of what was added after `cutoff` (the ids to hold of a page straddling the
        settle cutoff), every page of them; a server answering Get Manifest with an error (many do not serve it) or
        with what is not a TAXII envelope gets Get Objects with the same filter instead, which lists them too.
        None when the server says more follow without a `next` token: they cannot all be listed, so the whole
        page waits."""
        for endpoint in ("objects",) if self._no_manifest else ("manifest", "objects"):
            entries: list[Any] = []
            next_token = None
            try:
                for _ in range(TAXII_MAX_RECENT_PAGES):
                    envelope, _, _ = self.taxii_objects(iso_micro(cutoff), MAX_LIMIT, next_token, endpoint=endpoint)
                    listed = feed_list(envelope, "objects", f"the TAXII server's Get {endpoint.title()}")
                    entries += listed
                    if not envelope.get("more") or not listed:
                        return entries
                    next_token = envelope.get("next")
                    if not next_token:
                        return None
                return None             # a `next` that never ends: they cannot all be listed
            except (DemistoException, ValueError) as exc:      # ValueError: an answer that is not JSON
                # Whatever Get Manifest answers, Get Objects can list the same ids: raising would fail every fetch
                # that meets a straddling page, and a collection added to all the time always has one.
                if endpoint != "manifest":
                    raise
                self._no_manifest = True
                # masked before the cut: a secret cut in two is no longer seen whole by the Redactor
                demisto.debug(f"{INTEGRATION_NAME}: Get Manifest failed ({self.redact(str(exc))[:200]}); the objects "
                              "added after the settle cutoff are listed with Get Objects instead")
        return None


''' HELPER FUNCTIONS '''


def kafka_connect(server: str, context: ssl.SSLContext | None = None) -> socket.socket:
    """A connection to a bootstrap server host[:port] (an IPv6 literal in brackets), over TLS with `context`."""
    host, port = kafka_sasl.broker_address(server)
    raw = socket.create_connection((host, port), timeout=KAFKA_CONNECT_TIMEOUT)
    try:
        return context.wrap_socket(raw, server_hostname=host) if context is not None else raw
    except BaseException:
        raw.close()
        raise


def kafka_start_offsets(consumer: Any, partitions: list[Any], since: datetime) -> dict[str, int]:
    """Where a new instance starts reading with a First fetch time (wia_security.start_time.kafka_start_offsets)."""
    from kafka.errors import KafkaError
    try:
        return start_offsets(consumer, partitions, since)
    except KafkaError as exc:
        raise DemistoException(f"the Kafka broker could not look up the offsets of {FIRST_FETCH_PARAM} "
                               f"{iso_micro(since)} (ListOffsets by timestamp, Kafka 0.10.1 and later): {exc}; clear "
                               f"{FIRST_FETCH_PARAM} to read the topic from its beginning") from None


def kafka_offsets_in_range(consumer: Any, partitions: list[Any], offsets: dict[str, int]) -> dict[str, int]:
    """The last run's offsets of `partitions` the broker does not hold (wia_security.kafka_offsets), each moved to the
    partition's first offset and logged: past the end, the topic was deleted and created again (or emptied), and what
    it holds now is new; before the first offset, the broker deleted messages (retention) before a fetch read them.
    A broker that cannot list offsets leaves them to kafka-python's reset, "earliest" here (logged at debug)."""
    from kafka.errors import KafkaError
    try:
        moves = offsets_out_of_range(consumer, partitions, offsets)
    except KafkaError as exc:
        demisto.debug(f"{INTEGRATION_NAME}: the Kafka broker did not list the partitions' first and end offsets ({exc}); "
                      "an offset it no longer holds is read from the partition's first offset")
        return {}
    for move in moves:
        where = f"{INTEGRATION_NAME}: Kafka {move.topic}/{move.partition}"
        if move.recreated:
            demisto.info(f"{where}: the last run's offset {move.stored} is past the partition's end {move.end} (the topic "
                         f"was deleted and created again, or emptied): reading it from its first offset {move.start}")
        else:
            demisto.error(f"{where}: messages {move.stored} to {move.start - 1} were deleted by the broker (retention) "
                          f"before a fetch read them; reading from the oldest left, offset {move.start}. Fetch more "
                          "often, or raise max_fetch or the topic's retention")
    return {move.partition: move.start for move in moves}


def kafka_sasl_check(servers: list[str], config: dict[str, Any], unasked: list[str] | None = None,
                     proxy: bool = False) -> None:
    """kafka+sasl:// (no TLS): the SASL login with the first bootstrap server that answers, before kafka-python
    starts. Silent servers are left to kafka-python; when none accepts a connection the error says why for each
    (kafka_unreachable_error). `unasked` gets why each could not be asked (for kafka_undiscovered_mechanism)."""
    unreachable: list[str] = []
    for server in servers:
        try:
            sock = kafka_connect(server)
        except (OSError, ValueError) as exc:
            unreachable.append(f"{server}: {exc}")
            if unasked is not None:
                unasked.append(f"{server}: {exc}")
            continue
        try:
            with sock:
                kafka_sasl_login(sock, server, kafka_sasl.api_versions(sock, KAFKA_CLIENT_ID), config,
                                 lambda: kafka_connect(server))
                return
        except (OSError, ValueError, kafka_sasl.NotKafka) as exc:
            if unasked is not None:
                unasked.append(f"{server}: {exc or 'no answer in time'}")
            continue
    if len(unreachable) == len(servers):
        raise kafka_unreachable_error(unreachable, proxy)


def kafka_unreachable(servers: list[str]) -> list[str]:
    """kafka:// (no pre-flight of its own): why each bootstrap server refused a TCP connection, or [] as soon as one
    accepts (closed at once)."""
    failures: list[str] = []
    for server in servers:
        try:
            kafka_connect(server).close()
            return []
        except (OSError, ValueError) as exc:
            failures.append(f"{server}: {exc}")
    return failures


def kafka_unreachable_error(failures: list[str], proxy: bool) -> DemistoException:
    """No bootstrap server accepted a connection: kafka-python would retry for 30 s and then say only "Unable to
    bootstrap". With Use system proxy settings ticked, that Kafka never uses the proxy."""
    note = (" Use system proxy settings does not apply to Kafka: the integration connects to the brokers directly, "
            "never through the proxy, so the engine must reach them without it.") if proxy else ""
    return DemistoException(f"none of the Kafka bootstrap servers accepted a connection ({'; '.join(failures)}): check "
                            f"the host names and ports in the Source URL, and that the engine can reach them.{note}")


def kafka_undiscovered_mechanism(config: dict[str, Any], context: ssl.SSLContext | None, unasked: list[str]) -> None:
    """kafka-python's SASL mechanism when none is configured and the pre-flight login could not choose one
    (`unasked`: why, per server). Over TLS that verifies the broker, KAFKA_UNDISCOVERED_SASL_MECHANISM (PLAIN, the
    integration's default before discovery), logged; elsewhere PLAIN would go to whatever is on the path, so
    test-module and fetch fail asking for ?sasl_mechanism= (or a connection the check can finish on)."""
    why = "; ".join(unasked) or "no login was made"
    if kafka_sasl.verifies_broker(context):
        config["sasl_mechanism"] = KAFKA_UNDISCOVERED_SASL_MECHANISM
        demisto.info(f"{INTEGRATION_NAME}: no SASL mechanism configured and the pre-flight check could not ask the "
                     f"Kafka brokers ({why}): using {KAFKA_UNDISCOVERED_SASL_MECHANISM} over TLS that verifies the "
                     "broker; add ?sasl_mechanism= to the Source URL to choose")
        return
    raise DemistoException(f"no SASL mechanism configured and the pre-flight check could not ask the Kafka brokers "
                           f"which to use ({why}); {kafka_sasl.plain_withheld_reason(context)}, so it is not assumed: "
                           "add ?sasl_mechanism=SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN to the Source URL (the one the "
                           "broker is configured for), or check that the brokers are reachable Kafka listeners")


def kafka_python_scram_first(name: str) -> bytes:
    """kafka-python's SCRAM client-first message for user `name` (kafka_sasl.scram_username_for reads it)."""
    from kafka.net.sasl.scram import ScramClient        # where kafka-python 3.0 keeps it
    return ScramClient(name, "probe", "SCRAM-SHA-256").first_message()


def kafka_python_scram_username(config: dict[str, Any]) -> None:
    """With SCRAM, the user name in `config` in the form kafka-python must be given it for the broker to read it
    (kafka_sasl.scram_username_for): kafka-python 3.0 sends ',' and '=' unescaped, so the pre-flight logged in and
    kafka-python's login was refused until its 30 s "Unable to bootstrap". PLAIN sends the name as it is. A name
    kafka-python cannot send right is refused here, before kafka-python starts."""
    if not str(config.get("sasl_mechanism") or "").startswith("SCRAM-"):
        return
    username = config.get("sasl_plain_username") or ""
    sent = kafka_sasl.scram_username_for(username, kafka_python_scram_first)
    if sent is None:
        raise DemistoException(f"the Kafka user in the Credentials parameter ({username!r}) contains ',' or '=', which "
                               "SCRAM sends as =2C and =3D (RFC 5802), and the embedded kafka-python's SCRAM client was "
                               "not found to send them so: the broker would refuse its login. Use a Kafka user without "
                               "',' and '=' (or ?sasl_mechanism=PLAIN over TLS, if the broker offers it).")
    config["sasl_plain_username"] = sent


def kafka_sasl_login(sock: socket.socket, server: str, versions: bytes, config: dict[str, Any],
                     reconnect: Any) -> None:
    """The SASL login (wia_security.kafka_sasl: SaslHandshake, then SaslAuthenticate with PLAIN or SCRAM, the
    server signature verified) before kafka-python's. kafka-python retries a refused password or mechanism until
    its 30 s bootstrap timeout and then says only "Unable to bootstrap"; here the refusal is a DemistoException
    naming the broker, the user and the mechanism (never the password). Without ?sasl_mechanism= the login picks
    the strongest mechanism the broker offers that takes the user (PLAIN only over TLS that verifies the broker:
    kafka_sasl.discovery_choices), and kafka-python gets that one."""
    tls = sock.context if isinstance(sock, ssl.SSLSocket) else None
    try:
        login = kafka_sasl.log_in(sock, server, versions=versions, mechanism=config["sasl_mechanism"],
                                  username=config.get("sasl_plain_username") or "",
                                  password=config.get("sasl_plain_password") or "", client_id=KAFKA_CLIENT_ID,
                                  reconnect=reconnect, choices=kafka_sasl.discovery_choices(tls))
    except kafka_sasl.PlainWithheld as exc:
        # PLAIN listed alone where discovery may not pick it (kafka_sasl.discovery_choices): nothing was sent
        remedy = "use kafka+sasl_ssl:// to a TLS listener" if tls is None else \
            "untick Trust any certificate (the broker's certificate trusted by the engine)"
        raise DemistoException(f"SASL login not attempted: the Kafka broker {server} lists {', '.join(exc.offered)} and "
                               f"{kafka_sasl.plain_withheld_reason(tls)}, so PLAIN is not chosen when no mechanism is "
                               f"configured. Add ?sasl_mechanism=PLAIN to the Source URL to log in with PLAIN anyway, "
                               f"or {remedy}") from None
    except kafka_sasl.MechanismNotOffered as exc:
        raise DemistoException(f"{exc.describe()}: set ?sasl_mechanism= in the URL to one of them") from None
    except kafka_sasl.LoginRefused as exc:
        raise DemistoException(f"SASL login refused: {exc.describe()}: check the Credentials parameter (username and "
                               "password) and ?sasl_mechanism= in the URL") from None
    except kafka_sasl.SaslError as exc:
        raise DemistoException(exc.describe()) from None
    config["sasl_mechanism"] = login.mechanism
    if login.discovered:
        demisto.info(f"{INTEGRATION_NAME}: {login.describe(server, tls=tls is not None)}")
    elif login.mechanism == "PLAIN" and kafka_sasl.plain_warning(tls):
        demisto.info(f"{INTEGRATION_NAME}: the Kafka broker {server}: {kafka_sasl.plain_warning(tls)}")


def pem_blocks(text: str | None, what: str, labels: tuple[str, ...]) -> bytes:
    """The PEM blocks with one of `labels` in a parameter, re-wrapped (a PEM pasted into a one-line field
    reaches the integration with its line breaks turned into spaces). The error names the parameter, never
    its content."""
    found = blocks(text, labels)
    if not found:
        raise DemistoException(f"the {what} is not PEM text (-----BEGIN {labels[0]}----- ... -----END {labels[0]}-----)")
    return "".join(found).encode("ascii", "replace")


def load_client_certificate(context: ssl.SSLContext, certificate: str | None, key: str | None,
                            passphrase: str | None) -> None:
    """Loads the Kafka client certificate (with any intermediate CAs) and its private key, decrypted with
    `passphrase` if it is encrypted, into `context`. Errors say which parameter is wrong, never a secret."""
    if not certificate or not key:
        raise DemistoException("the Kafka client certificate parameter needs both the certificate (PEM) and its "
                               "private key (PEM)")
    cert_pem = pem_blocks(certificate, "Kafka client certificate", ("CERTIFICATE",))
    key_pem = pem_blocks(key, "Kafka client private key", PRIVATE_KEY_LABELS)
    keys = len(blocks(key, PRIVATE_KEY_LABELS))
    if keys > 1:            # OpenSSL would take the first one silently
        raise DemistoException(f"the Kafka client private key parameter holds {keys} private keys: give exactly one, "
                               "the client certificate's")
    asked = []

    def password() -> str:
        asked.append(True)
        if not passphrase:
            raise DemistoException("the Kafka client private key is encrypted: set the Kafka client private key "
                                   "passphrase parameter")
        return passphrase

    with private_pem_files(cert_pem, key_pem, name="wia-kafka-tls") as (cert_path, key_path):
        try:
            context.load_cert_chain(cert_path, key_path, password=password)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc):
                raise DemistoException("the Kafka client private key does not belong to the client certificate") from None
            if asked:
                raise DemistoException("the Kafka client private key could not be decrypted with the Kafka client "
                                       "private key passphrase: check the passphrase") from None
            raise DemistoException(f"the Kafka client certificate or private key could not be loaded "
                                   f"({exc.reason or 'unreadable PEM'})") from None


def parse_event_arg(args: dict[str, Any], name: str = "event") -> dict[str, Any]:
    """The WIA event given as JSON text in `name` (or as an already parsed object)."""
    value = args.get(name)
    if isinstance(value, dict):
        return value
    if not value:
        raise DemistoException(f"the {name} argument is required (a WIA event as JSON)")
    if not isinstance(value, str):
        raise DemistoException(f"the {name} argument must be one WIA event (a JSON object), not a {type(value).__name__}")
    try:
        event = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise DemistoException(f"the {name} argument is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise DemistoException(f"the {name} argument must be a JSON object, not {type(event).__name__}")
    return event


def positive_int(value: Any, name: str, default: int) -> int:
    """A whole-number argument or parameter from 1 to MAX_LIMIT; the error names it."""
    if value in (None, ""):
        return default
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdecimal() or not 1 <= int(text) <= MAX_LIMIT:
        raise DemistoException(f"{name} must be a whole number from 1 to {MAX_LIMIT}, not {text[:40]!r}")
    return int(text)


def boolean_arg(value: Any, name: str) -> bool:
    try:
        return argToBoolean(value)
    except ValueError:
        raise DemistoException(f"{name} must be true or false, not {str(value)[:40]!r}") from None


def rfc3339(value: str, name: str) -> str:
    """A TAXII added_after timestamp (RFC 3339, UTC or with an offset); the error names the argument."""
    from datetime import datetime
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise DemistoException(f"{name} must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z "
                               f"for a TAXII source, not {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise DemistoException(f"{name} must carry a time zone (Z or +hh:mm), not {value[:40]!r}")
    return value.strip()


def check_url(url: str) -> str:
    """The source URL, refused when it carries user:password (they belong in the Credentials parameter,
    which XSOAR stores encrypted and masks; in the URL they would surface in errors). The message never
    repeats them."""
    from urllib.parse import urlsplit
    try:
        # split the scheme off by hand: urlsplit reads no scheme (and so no user:password) in kafka+sasl_ssl://
        _, sep, rest = url.partition("://")
        parts = urlsplit("scheme://" + rest if sep else url)
        userinfo = parts.username is not None or parts.password is not None
    except ValueError:
        raise DemistoException("the Source URL parameter is not a URL") from None
    if userinfo:
        raise DemistoException("the Source URL must not carry user:password; put them in the Credentials "
                               "parameter (user name and API token or password)")
    return url


class Redactor:
    """Masks the instance's secrets in messages: a source answering an error may echo the request
    (its Authorization header), and the error text reaches the war room and the server log."""

    def __init__(self, secret: str | None, username: str | None = None, *others: str | None) -> None:
        from urllib.parse import quote
        self._values: set[str] = set()
        if secret and len(secret) >= 4:
            self._values |= {secret, quote(secret, safe="")}
            if username:
                self._values.add(base64.b64encode(f"{username}:{secret}".encode()).decode("ascii"))
        for other in others:            # further secrets (a client key and its passphrase), as is and URL-quoted
            if other and len(other) >= 4:
                self._values |= {other, quote(other, safe="")}

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def md_text(value: Any, limit: int = 200) -> str:
    """`value` as literal text on one line of markdown (an entry's title, a list item): whoever writes events writes
    ids, titles and the values validation messages quote, so line breaks become spaces (no heading or list item of
    its own) and every character that makes markdown is escaped (no link, image or emphasis). Cut at `limit`."""
    text = " ".join(str(value).splitlines())[:limit]
    return "".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in text)


def md_cell(value: Any) -> Any:
    """A string cell for tableToMarkdown, which escapes only its `|` and line breaks (a link or an image in a cell
    stays markdown): the other characters that make markdown escaped; other values as they are."""
    if not isinstance(value, str):
        return value
    return "".join("\\" + c if c in MARKDOWN_SPECIAL and c != "|" else c for c in value)


def md_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows with each string cell through md_cell (for the readable output only: the context keeps the values)."""
    return [{key: md_cell(value) for key, value in row.items()} for row in rows]


def xsoar_severity(event: dict[str, Any]) -> float:
    return XSOAR_SEVERITY.get(band(event.get("severity")), 0)


def event_title(event: dict[str, Any]) -> str:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    for key in ("title", "threat_name"):
        if isinstance(data.get(key), str) and data[key].strip():
            return data[key].strip()
    kind = str(event.get("type", "event")).replace("_", " ")
    what = data.get("event_type") or data.get("result") or ""
    return f"WIA {kind}: {str(what).replace('_', ' ')}".strip(": ")


#: RFC 3339 date-time as XSOAR's server reads it (Go's time.RFC3339: 'T' and 'Z' upper case, nothing after the offset).
STRICT_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)")


def xsoar_occurred(timestamp: Any) -> Any:
    """The incident's occurred: the event's timestamp, as given when XSOAR reads it as it is, else the same instant in
    UTC. The schema's date-time is checked as JSON Schema checks it (case-insensitive, one trailing line break
    allowed), so '2026-01-31t12:00:00z' is a valid event's timestamp that XSOAR's RFC 3339 reader refuses."""
    if not isinstance(timestamp, str) or STRICT_RFC3339.fullmatch(timestamp):
        return timestamp
    moment = instant(timestamp.strip())
    try:
        return iso_micro(moment) if moment is not None else timestamp
    except (OverflowError, ValueError):     # the first hours of the year 1 with an offset east of UTC
        return timestamp


def event_indicators(event: dict[str, Any]) -> list[str]:
    """The event's indicators as the WIA Indicators field holds them, type:value (ip:198.51.100.7), each once: an alert's
    or a threat_intel event's data.indicators and an incident's data.iocs, entries with a string type and value (a type
    whose schema does not define the key leaves it free: an alert's "iocs": 5 is valid). The XSOAR connector
    (connectors/soar/mapping.py) writes the same values."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    found = []
    for key in ("indicators", "iocs"):
        listed = data.get(key)
        for item in listed if isinstance(listed, list) else ():
            if isinstance(item, dict) and isinstance(item.get("type"), str) and isinstance(item.get("value"), str):
                found.append(f"{item['type']}:{item['value']}")
    return list(dict.fromkeys(found))


def event_to_incident(event: dict[str, Any], incident_type: str | None) -> dict[str, Any]:
    incident = {"name": event_title(event), "occurred": xsoar_occurred(event.get("timestamp")), "severity": xsoar_severity(event),
                "rawJSON": json.dumps(event), "dbotMirrorId": str(event.get("id"))}
    if incident_type:
        incident["type"] = incident_type
    indicators = event_indicators(event)
    if indicators:
        # Set here, not by the incoming mapper: a mapper path reads one place of rawJSON as it is, and the field joins
        # two arrays (indicators, iocs) into type:value entries. XSOAR keeps a fetched incident's CustomFields; the
        # mapper sets the fields it maps beside them.
        incident["CustomFields"] = {INDICATORS_FIELD: indicators}
    return incident


def event_summary(event: dict[str, Any]) -> dict[str, Any]:
    mitre = event.get("mitre") or {}
    return {"ID": event.get("id"), "Type": event.get("type"), "Timestamp": event.get("timestamp"),
            "Severity": event.get("severity"), "Title": event_title(event),
            "Source": (event.get("source") or {}).get("name"),
            "Technique": mitre.get("sub_technique") or mitre.get("technique")}


def step_back(timestamp: str) -> str | None:
    """One microsecond before an RFC 3339 timestamp (TAXII added_after is exclusive); None before the first
    instant of the year 1 (ask from the beginning). ValueError when it is not a timestamp."""
    return just_before(timestamp)


def settle_param(value: Any) -> float:
    """The TAXII settle window parameter (seconds, 0 to a day; empty: the default); the error names it."""
    if value in (None, ""):
        return DEFAULT_SETTLE_SECONDS
    try:
        return settle_seconds(str(value).strip())
    except ValueError as exc:
        raise DemistoException(f"TAXII settle window (seconds) {exc}") from None


def first_fetch_cutoff(value: Any, now: datetime | None = None) -> datetime | None:
    """The First fetch time parameter as the instant a new instance starts reading at (None: empty, everything the
    source holds): wia_security.start_time, the parser the Splunk app's start_time shares. The error names the
    parameter and the forms it takes."""
    try:
        return start_cutoff(value, now)
    except ValueError as exc:
        raise DemistoException(f"{FIRST_FETCH_PARAM} {exc}") from None


def first_fetch_state(value: Any) -> dict[str, Any]:
    """The last run a fetch starts from when XSOAR has none (a new instance, or after "Reset the last run"): the
    First fetch time's cutoff, or nothing (read the source from its beginning)."""
    cutoff = first_fetch_cutoff(value)
    return {FIRST_FETCH_KEY: iso_micro(cutoff)} if cutoff is not None else {}


def events_from_stix(objects: list[dict[str, Any]], stix_content: str,
                     problems: list[str] | None = None) -> list[dict[str, Any]]:
    """WIA events in a page of STIX objects. "wia": only the objects carrying the WIA property
    extension (each holds its whole event, so paging cannot split an event); "stix": the page read
    natively, event by event, so an object the reader cannot use refuses only the events that need it
    (each reported in `problems` with its JSON pointer in the page's objects; without `problems`, the
    first refusal raises)."""
    from wia_security.formats.stix import WIA_EXTENSION
    stix = wia_security.formats.get_format("stix")
    objects = [o for o in objects if isinstance(o, dict)]
    if stix_content == "stix":
        chunks = [objects] if objects else []
    else:
        chunks = [[o] for o in objects if isinstance(o.get("extensions"), dict) and WIA_EXTENSION in o["extensions"]]
    events: list[dict[str, Any]] = []
    for chunk in chunks:
        for outcome in stix.to_wia_each(chunk):      # never raises: each refusal is an outcome
            try:
                if outcome.error is not None:
                    raise outcome.error
                events += [wia_security.Event.from_dict(e).to_dict() for e in outcome.events]
            except Exception as exc:  # noqa: BLE001 - a malformed object is reported; the rest of the page is read
                if problems is None:
                    raise
                problems.append(f"STIX {chunk[0].get('type')} {chunk[0].get('id')} gave no WIA event: {exc}"
                                if len(chunk) == 1 else f"a STIX event of the page was refused: {exc}")
    return events


def feed_list(body: Any, key: str, who: str, required: bool = False) -> list[Any]:
    """The `key` array of a source's answer; an answer of another shape is an error, so the last-run
    state does not move past what could not be read. `required`: the key must be there (the gateway's feed always
    sends it; a TAXII envelope leaves `objects` out when there are none), else an answer from something other than
    the source (a health page, another service's JSON) read as an empty page: test-module 'ok', no incident ever."""
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(items, (list, type(None))) or (required and items is None):
        raise DemistoException(f"{who} answered a JSON {type(body).__name__} without a {key!r} array")
    return items or []


def pull_events(client: Client, state: dict[str, Any], limit: int, last_run: bool = True,
                types: set[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any], list[str], tuple[int, bool]]:
    """Up to `limit` new, valid WIA events from the source after `state`; (events, new state, problems, held).
    `held`: (TAXII objects left for a later read by the settle window, on the last page read and on later pages,
    whether there are more than that: the later pages' could not all be listed).

    `types`: only events of these types are returned and count toward `limit` (wia-get-events' event_type; the others
    are read past, as skipped events are).

    `last_run`: `state` is the instance's last run (a TAXII added_after stored past the server's clock is then kept
    and said), not a command's arguments.

    A state holding the first fetch's cutoff (FIRST_FETCH_KEY) and no position yet starts there: TAXII asks for what
    was added from it on, Kafka starts each partition at its first message stamped at or after it; the gateway's feed
    has no time filter, so its events with a timestamp before it are skipped while the cursor walks the feed. The key
    is dropped once the fetch has a position of its own (TAXII added_after, Kafka offsets) or, gateway, once the
    walk reached the end of the feed (later arrivals are fetched whatever their timestamp).

    Invalid events are not turned into incidents; each is reported (event id and JSON-pointer
    errors) so nothing disappears silently."""
    recent = list(state.get("recent_ids") or [])
    # Rejected events are remembered apart from those made incidents (recent_ids): a later, corrected version of one
    # must become an incident, not be skipped as "a newer version of an event already fetched".
    rejected = rejected_ids(state)
    # TAXII: every fetch reads last_run's instant again (added_after is exclusive); the events read there are
    # skipped by ids_at_added_after, which forgets none of them while the position stays on that instant, so
    # a fetch gets past an instant holding more events than recent_ids keeps (one Add of many indicators).
    at_instant = taxii_ids(state) if client.source_type == "taxii" else []
    seen = set(recent) | set(at_instant)
    events: list[dict[str, Any]] = []
    problems: list[str] = []
    new_state = dict(state)
    next_token = None
    cutoff = instant(state.get(FIRST_FETCH_KEY))
    before_cutoff = 0                   # gateway events skipped as older than the first fetch's cutoff
    taxii_after = step_back(state["added_after"]) if state.get("added_after") else \
        step_back(iso_micro(cutoff)) if cutoff is not None else None
    window = SettleWindow(client.settle) if client.source_type == "taxii" else None
    capped_at = None                    # TAXII: the instant whose ids were more than last_run keeps
    stored_past: str | None = None      # TAXII: why last_run's added_after, past the server's clock, is kept
    held = (0, False)
    deadline = time.monotonic() + FETCH_PAGES_SECONDS
    while len(events) < limit:
        taxii_position = None
        if client.source_type == "kafka":
            batch, offsets, kafka_problems = client.kafka_messages(new_state.get("offsets") or {}, limit - len(events),
                                                                   since=cutoff)
            problems += kafka_problems
            new_state["offsets"] = offsets
            new_state.pop(FIRST_FETCH_KEY, None)   # every partition has its offset now (kafka_messages)
            more = False
        elif client.source_type == "taxii":
            # Within a fetch, pages follow `next` (objects added in one request share one date_added);
            # across fetches the state is the last page's date_added, read again from 1 microsecond
            # before (added_after is exclusive) with the event ids already fetched skipped.
            # Objects added within the last `settle` seconds of the server's clock are left for a later fetch
            # (the server may still be adding the rest of their request): the fetch stops at the first page
            # reaching past that cutoff, reads the older part of a page straddling it, and last_run stays
            # before what it held (wia_security.taxii_settle).
            # A page of at most half the remembered ids: after a split, what was read of the page comes again
            # (from its first date_added) and must still be remembered to be skipped (an object can make more
            # than one event); a page of max_fetch objects (up to MAX_LIMIT) outgrew RECENT_IDS.
            # Each page asks for no more than the fetch still takes: a later page of max_fetch made up to twice it.
            envelope, headers, round_trip = client.taxii_objects(taxii_after, min(limit - len(events), RECENT_IDS // 2),
                                                                 next_token)
            objects = feed_list(envelope, "objects", "the TAXII server")
            # medallion (the OASIS reference server) sends only -First when a page holds one object.
            first, last_header = headers.get("X-TAXII-Date-Added-First"), headers.get("X-TAXII-Date-Added-Last")
            last = last_header or first
            if last:
                try:
                    step_back(last)
                except (ValueError, OverflowError):
                    # Kept in last_run, it would fail every later fetch: fail this one, last_run unchanged.
                    raise DemistoException(f"the TAXII server's X-TAXII-Date-Added-Last {last[:40]!r} is not a timestamp") from None
            settled = window.page(objects, first, last_header, date_header=headers.get("Date"), round_trip=round_trip,
                                  recent=client.taxii_recent)
            stored_past = stored_past or (window.stored_past(state.get("added_after")) if last_run else None)
            objects = settled.objects
            problems += [f"STIX object #{i} of the page is a JSON {type(o).__name__}, not an object"
                         for i, o in enumerate(objects) if not isinstance(o, dict)]
            batch = events_from_stix(objects, client.stix_content, problems)
            next_token = envelope.get("next")
            more = not settled.done and bool(envelope.get("more")) and bool(objects) and bool(next_token)
            # kept once the page's events are read (below), with the ids read at it
            # objects stamped ahead of the server's clock were read: last_run stays at the cutoff (capped). A last_run
            # stored past the server's clock stays where it is: moved back to the cutoff, it would skip, unsaid,
            # everything added since the fetch that stored it.
            taxii_position = None if stored_past else settled.position if settled.done or settled.capped else last
            if settled.held:
                # the fetch's held objects in all (Get Manifest lists those of later pages); this page's where it cannot
                held = ((len(settled.held), bool(envelope.get("more"))) if settled.held_in_all is None
                        else (settled.held_in_all, False))
                demisto.debug(f"{INTEGRATION_NAME}: {held[0]}{' or more' if held[1] else ''} TAXII object(s) added in the last "
                              f"{client.settle:g} s of the server's clock left for a later fetch (still settling)")
        else:
            # no more than the fetch still takes: the cursor moves past the whole page, so what a bigger page held
            # past max_fetch would be made incidents beyond it (up to twice max_fetch when earlier events were skipped)
            page = client.gateway_events(new_state.get("cursor"), limit - len(events))
            batch = feed_list(page, "events", "the gateway", required=True)
            nxt = page.get("next")
            more = bool(batch) and bool(nxt) and nxt != new_state.get("cursor")
            if nxt:
                new_state["cursor"] = nxt
            if cutoff is not None:
                kept = [event for event in batch if not event_before(event, cutoff)]
                before_cutoff += len(batch) - len(kept)
                batch = kept
                if not more:
                    new_state.pop(FIRST_FETCH_KEY, None)    # the end of the feed: the backlog is behind
        page_ids: list[str] = []
        for index, event in enumerate(batch):
            if not isinstance(event, dict):
                problems.append(f"item #{index} of the page rejected: a JSON {type(event).__name__}, not a WIA event object")
                continue
            event_id = str(event.get("id", ""))
            if event_id:
                page_ids.append(event_id)
            digest = version_digest(event) if event_id in rejected else None
            if digest is not None and rejected[event_id] == digest:
                continue                # this version was rejected and reported when first read
            if event_id and event_id in seen and digest is None:
                if client.source_type == "gateway" and event_id in recent:
                    # The gateway's feed serves an id again only as a newer version of it (its store keeps the newest
                    # version, at a new position). fetch-incidents can only create incidents: a second one for the id
                    # would split its history, so it is skipped, said, and remembered as seen last.
                    demisto.info(f"{INTEGRATION_NAME}: event {event_id[:64]} (timestamp {str(event.get('timestamp'))[:40]}) "
                                 "is a newer version of an event already fetched: no second incident is made (its "
                                 "incident keeps the version fetched first; `!wia-get-events` shows the newest)")
                    recent.remove(event_id)
                    recent.append(event_id)
                continue
            result = wia_security.validate_event(event)
            errors = [f"{e.path or '/'}: {e.message}" for e in result.errors[:5]]
            where = None if errors else non_finite_at(event)
            if where is not None:
                # Python's json read it (a Kafka message, a TAXII answer) and the schema leaves data's extra properties
                # free, but JSON cannot carry it: the incident's rawJSON and the context would not be JSON
                errors = [f"{where}: NaN or Infinity, which JSON cannot carry (an incident's rawJSON is JSON)"]
            if errors:
                problems.append(f"event {event_id or '?'} rejected: " + "; ".join(errors))
                if event_id:
                    rejected.pop(event_id, None)            # re-inserted: the newest rejection is kept longest
                    rejected[event_id] = digest or version_digest(event)
                continue
            if types and event.get("type") not in types:
                continue
            events.append(event)
            if event_id:
                rejected.pop(event_id, None)
                seen.add(event_id)
                recent.append(event_id)
        if taxii_position:
            at_instant, capped = taxii_ids_at_instant(new_state.get("added_after"), at_instant, taxii_position, page_ids)
            new_state["added_after"], new_state["ids_at_added_after"] = taxii_position, at_instant
            capped_at = taxii_position if capped else capped_at
            new_state.pop(FIRST_FETCH_KEY, None)
        if not more:
            break
        if time.monotonic() >= deadline and position(new_state) != position(state):
            # as a stop at max_fetch: the state is that of the pages read. Not before the position moved: a TAXII fetch
            # reads last_run's instant again from its first object, so one stopped within it would never get past it
            demisto.info(f"{INTEGRATION_NAME}: stopped reading after {FETCH_PAGES_SECONDS:g} s with {len(events)} new "
                         "event(s); more pages follow, read by the next fetch")
            break
    if before_cutoff:
        demisto.info(f"{INTEGRATION_NAME}: {before_cutoff} gateway event(s) with a timestamp before the first fetch's "
                     f"cutoff {iso_micro(cutoff)} ({FIRST_FETCH_PARAM}) skipped")
    if stored_past:
        # an error line: every fetch from there makes no incident until the last run is reset; the objects stamped
        # ahead are those it was taken from, and last_run does not stay at the cutoff (ahead_warning): not said
        demisto.error(f"{INTEGRATION_NAME}: {stored_past}; {TAXII_RESET}")
    for warning in (None if stored_past else window.ahead_warning(), window.date_warning()) if window else ():
        if warning:
            demisto.info(f"{INTEGRATION_NAME}: {warning}")
    if capped_at:
        demisto.info(f"{INTEGRATION_NAME}: the TAXII collection holds more than {TAXII_MAX_IDS_AT_INSTANT} event ids "
                     f"added at {capped_at[:40]}; last_run keeps the first {TAXII_MAX_IDS_AT_INSTANT} read there and the "
                     f"last {RECENT_IDS} read anywhere, so later fetches may make incidents again of others added then")
    new_state["recent_ids"] = recent[-RECENT_IDS:]
    new_state["rejected_ids"] = dict(list(rejected.items())[-REJECTED_IDS:])
    return events, new_state, problems, held


def non_finite_at(value: Any) -> str | None:
    """The JSON pointer of a NaN or Infinity in `value` (the first in document order), or None. A walk with a stack:
    an event nested as deep as json.loads allows must not end the fetch with a RecursionError."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path or "/"
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        stack += reversed([(f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}", child) for key, child in children])
    return None


def position(state: dict[str, Any]) -> tuple[Any, Any]:
    """Where a gateway or TAXII read resumes: the gateway cursor, the TAXII added_after."""
    return state.get("cursor"), state.get("added_after")


def rejected_ids(state: dict[str, Any]) -> dict[str, str]:
    """last_run's rejected_ids, event id -> version_digest (none in a last_run written before it existed, where
    recent_ids also holds the ids of events rejected then)."""
    kept = state.get("rejected_ids")
    return {str(k): str(v) for k, v in kept.items()} if isinstance(kept, dict) else {}


def version_digest(event: dict[str, Any]) -> str:
    """Tells one version of an event from another: a digest of its whole content (a corrected version may keep its
    timestamp when it comes from a TAXII or Kafka source)."""
    text = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def taxii_ids(state: dict[str, Any]) -> list[str]:
    """last_run's ids_at_added_after (none in a last_run written before it existed, or not a list)."""
    ids = state.get("ids_at_added_after")
    return [str(i) for i in ids] if isinstance(ids, list) else []


def taxii_ids_at_instant(previous: str | None, kept: list[str], position: str,
                         page_ids: list[str]) -> tuple[list[str], bool]:
    """(the event ids a later fetch, reading again from `position`, a date_added, meets again and skips; whether
    some were left out): on the instant kept before, those kept plus the page's; on a new one, the page's alone
    (objects are listed in date_added order, so earlier pages hold nothing added at it; the page's objects added
    before it are not listed again from there and merely take room; after a settle split, `position` is the
    page's first instant and the page's ids are those read of it up to the cutoff). At most
    TAXII_MAX_IDS_AT_INSTANT, the first read kept: past that, the others are skipped by recent_ids alone (each
    event once while the instant holds no more than both caps together)."""
    at = instant(position)
    same = previous is not None and at is not None and instant(previous) == at
    ids = list(dict.fromkeys([*kept, *page_ids] if same else page_ids))
    return ids[:TAXII_MAX_IDS_AT_INSTANT], len(ids) > TAXII_MAX_IDS_AT_INSTANT


''' COMMAND FUNCTIONS '''


def test_module(client: Client, params: dict[str, Any] | None = None) -> str:
    """Reads one page from the source as a fetch reads it: proves the URL, the credentials and the TLS settings, and
    that the answer is the source's (a JSON answer of another shape fails every fetch). With Fetch incidents ticked,
    the fetch's own parameters are checked too: 'ok' would otherwise be followed by every fetch failing."""
    params = params or {}
    if client.source_type != "kafka" and (client.client_certificate or client.client_key):
        raise DemistoException("the Kafka client certificate parameter applies to Kafka sources over TLS only; clear it")
    scheme = client.kafka_url.partition("://")[0].lower()
    if client.source_type == "kafka" and "sasl" not in scheme and (client.kafka_username or client.kafka_password):
        # kafka:// and kafka+ssl:// log in to no broker: the user name and password were never sent, and a broker
        # that demands SASL would fail every fetch after kafka-python's 30 s "Unable to bootstrap"
        raise DemistoException(f"the Credentials parameter is sent to Kafka brokers over SASL only, and a {scheme}:// "
                               "Source URL uses none: use kafka+sasl_ssl:// (or kafka+sasl://) for brokers that log "
                               "users in, or clear the Credentials parameter")
    if client.source_type not in SOURCE_TYPES:
        # every command but these would read it as a gateway
        raise DemistoException(f"Source type must be {', '.join(SOURCE_TYPES[:-1])} or {SOURCE_TYPES[-1]}, "
                               f"not {str(client.source_type)[:40]!r}")
    if client.source_type != "kafka" and scheme.startswith("kafka"):
        raise DemistoException(f"a {scheme}:// Source URL is a Kafka topic: set Source type to kafka (it is "
                               f"{client.source_type})")
    if boolean_arg(params.get("isFetch", False), "Fetch incidents"):
        positive_int(params.get("max_fetch"), "Maximum number of incidents per fetch", DEFAULT_MAX_FETCH)
        first_fetch_cutoff(params.get("first_fetch"))
    try:
        if client.source_type == "taxii":
            envelope, _, _ = client.taxii_objects(None, 1)
            feed_list(envelope, "objects", "the TAXII server")
        elif client.source_type == "kafka":
            client.kafka_messages({}, 1)
        else:
            feed_list(client.gateway_events(None, 1), "events", "the gateway", required=True)
    except DemistoException as exc:
        # "Error in API call [404] - Not Found" and the server's page say nothing of what is wrong: the URL is not
        # of the source type's kind (a TAXII collection given as a gateway, an API root given as a collection)
        hint = NOT_FOUND_HINTS.get(client.source_type) if str(exc).startswith("Error in API call [404]") else None
        if hint is None:
            raise
        raise DemistoException(f"{hint} ({str(exc).splitlines()[0]})") from None
    return "ok"


def fetch_incidents(client: Client, last_run: dict[str, Any], max_fetch: int, incident_type: str | None,
                    first_fetch: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One fetch from `last_run`; `first_fetch` (the First fetch time parameter) is read only when there is none
    (a new instance, or its last run reset): an instance's last run is never moved by it."""
    if not last_run:
        last_run = first_fetch_state(first_fetch)
    events, state, problems, _ = pull_events(client, last_run, max_fetch)
    for problem in problems:
        demisto.error(f"{INTEGRATION_NAME}: {problem}")
    return state, [event_to_incident(e, incident_type) for e in events]


def validate_event_command(args: dict[str, Any]) -> CommandResults:
    event = parse_event_arg(args)
    result = wia_security.validate_event(event, lenient=boolean_arg(args.get("lenient", False), "lenient"))
    outputs = {"EventID": event.get("id"), "Valid": result.valid,
               "Errors": [{"Path": e.path, "Code": e.code, "Message": e.message} for e in result.errors],
               "Warnings": [{"Path": w.path, "Code": w.code, "Message": w.message} for w in result.warnings]}
    readable = tableToMarkdown(f"WIA event {md_text(event.get('id'), 100)} is {'valid' if result.valid else 'invalid'}",
                               md_rows(outputs["Errors"]), headers=["Path", "Code", "Message"])
    return CommandResults(outputs_prefix="WIA.Validation", outputs_key_field="EventID", outputs=outputs,
                          readable_output=readable, raw_response=outputs)


def convert_event_command(args: dict[str, Any]) -> CommandResults:
    event = parse_event_arg(args)
    target = str(args.get("format", "")).lower()
    if target not in CONVERT_FORMATS:
        raise DemistoException(f"format must be one of {', '.join(CONVERT_FORMATS)}, not {target!r}")
    result = wia_security.validate_event(event)
    if not result.valid:
        raise DemistoException("the event is not a valid WIA event: " +
                               "; ".join(f"{e.path or '/'}: {e.message}" for e in result.errors[:5]))
    options = {}
    if target == "asff":
        options = {k: v for k, v in (("account_id", args.get("aws_account_id")), ("region", args.get("aws_region"))) if v}
    try:
        document = wia_security.convert(event, to=target, **options)
    except wia_security.UnknownFormatError:
        raise DemistoException(f"the embedded WIA Security core {wia_security.__version__} has no {target} converter") from None
    outputs = {"EventID": event.get("id"), "Format": target, "Document": document}
    return CommandResults(outputs_prefix="WIA.Conversion", outputs_key_field=["EventID", "Format"], outputs=outputs,
                          readable_output=f"### WIA event {md_text(event.get('id'), 100)} as {target}\n```json\n"
                                          f"{json.dumps(document, indent=2)[:4000]}\n```", raw_response=document)


def send_event_command(client: Client, args: dict[str, Any]) -> CommandResults:
    event = parse_event_arg(args)
    result = wia_security.validate_event(event)
    if not result.valid:
        raise DemistoException("not sent, the event is not a valid WIA event: " +
                               "; ".join(f"{e.path or '/'}: {e.message}" for e in result.errors[:5]))
    if client.source_type != "gateway":
        raise DemistoException("wia-send-event posts to a WIA gateway: set the instance's source type to gateway")
    response = client.gateway_send(event)
    outputs = {"EventID": event.get("id"), "Status": "sent", "Response": response}
    return CommandResults(outputs_prefix="WIA.Sent", outputs_key_field="EventID", outputs=outputs,
                          readable_output=f"Sent WIA event {md_text(event.get('id'), 100)} to the gateway.", raw_response=response)


def get_events_command(client: Client, args: dict[str, Any]) -> CommandResults:
    limit = positive_int(args.get("limit"), "limit", 10)
    types = set(argToList(args.get("event_type")))
    unknown = sorted(types - set(EVENT_TYPES))
    if unknown:
        raise DemistoException(f"event_type {', '.join(unknown)} is not a WIA event type; use {', '.join(EVENT_TYPES)}")
    state = {}
    after = str(args.get("after") or "").strip()
    if after:
        if client.source_type == "gateway":
            state["cursor"] = after
        elif client.source_type == "taxii":
            state["added_after"] = rfc3339(after, "after")
        else:
            raise DemistoException("after applies to gateway and TAXII sources; a Kafka source is read from its beginning")
    # the types are filtered while reading: filtered after, `limit` events of other types left none to show
    events, _, problems, (held, more_held) = pull_events(client, state, limit, last_run=False, types=types)
    events = events[:limit]
    readable = tableToMarkdown("WIA events", md_rows([event_summary(e) for e in events]),
                               headers=["ID", "Type", "Timestamp", "Severity", "Title", "Source", "Technique"])
    if problems:
        readable += "\n" + "\n".join(f"- {md_text(p, 1000)}" for p in problems)
    if held:
        # fetches log this at debug level only; a user who just added an object would see nothing and no reason
        readable += (f"\n\n{held}{' or more' if more_held else ''} TAXII object(s) added in the last {client.settle:g} s "
                     "of the server's clock are held (the server may still be adding the rest of their request); a "
                     "later call reads them (parameter TAXII settle window (seconds)).")
    return CommandResults(outputs_prefix="WIA.Event", outputs_key_field="id", outputs=events,
                          readable_output=readable, raw_response=events)


def attack_lookup_command(args: dict[str, Any]) -> CommandResults:
    t = attack_table()
    rows = []
    for key in argToList(args.get("technique")):
        tech = t.technique(key) or next(iter(t.techniques_named(key)), None)
        if tech is None:
            raise DemistoException(f"{key!r} is not an ATT&CK v{t.version} Enterprise technique id or name")
        replacement = t.replacement(tech.id) if tech.status == "revoked" else None
        rows.append({"ID": tech.id, "Name": tech.name, "Status": tech.status, "URL": tech.url,
                     "IsSubtechnique": tech.is_subtechnique, "ParentID": tech.parent_id,
                     "Tactics": [{"ID": tac.id, "Name": tac.name} for tac in (t.tactic(i) for i in tech.tactic_ids) if tac],
                     "RevokedBy": replacement.id if replacement else None, "AttackVersion": t.version})
    readable = tableToMarkdown(f"MITRE ATT&CK v{t.version}",
                               [{**r, "Tactics": ", ".join(x["Name"] for x in r["Tactics"])} for r in rows],
                               headers=["ID", "Name", "Tactics", "Status", "RevokedBy", "URL"])
    return CommandResults(outputs_prefix="WIA.Attack.Technique", outputs_key_field="ID", outputs=rows,
                          readable_output=readable, raw_response=rows)


''' MAIN FUNCTION '''


def credential_param(params: dict[str, Any], name: str) -> dict[str, str]:
    """A type-9 (credentials) parameter as {identifier, password}; anything else reads as empty."""
    value = params.get(name)
    if not isinstance(value, dict):
        return {}
    return {k: str(value[k]) for k in ("identifier", "password") if value.get(k)}


def main() -> None:  # pragma: no cover - exercised through the tests' demistomock
    params = demisto.params()
    args = demisto.args()
    command = demisto.command()
    demisto.debug(f"{INTEGRATION_NAME}: command {command}")
    credentials = params.get("credentials") or {}
    if not isinstance(credentials, dict):
        credentials = {}
    client_certificate = credential_param(params, "kafka_client_certificate")
    key_passphrase = credential_param(params, "kafka_client_key_passphrase")
    # proxy_credentials(): the *_PROXY variables' user:password in each form a proxy's 407 page or a client's
    # error may quote them (the Proxy-Authorization base64 too), with "Use system proxy settings"
    redact = Redactor(credentials.get("password") or None, credentials.get("identifier") or None,
                      client_certificate.get("password"), key_passphrase.get("password"), *proxy_credentials())
    try:
        verify = not boolean_arg(params.get("insecure", False), "Trust any certificate")
        if not verify:
            # the user chose not to verify: requests would warn about it on every call; only then silence it
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        client = Client(base_url=check_url(str(params.get("url") or "")), source_type=params.get("source_type", "gateway"),
                        verify=verify,
                        proxy=boolean_arg(params.get("proxy", False), "Use system proxy settings"),
                        token=credentials.get("password") or None, username=credentials.get("identifier") or None,
                        stix_content=params.get("stix_content") or "wia",
                        client_certificate=client_certificate.get("identifier"), client_key=client_certificate.get("password"),
                        client_key_passphrase=key_passphrase.get("password"),
                        settle=settle_param(params.get("settle")))
        client.redact = redact
        if command == "test-module":
            return_results(test_module(client, params))
        elif command == "fetch-incidents":
            state, incidents = fetch_incidents(client, demisto.getLastRun() or {},
                                               positive_int(params.get("max_fetch"), "Maximum number of incidents per fetch",
                                                            DEFAULT_MAX_FETCH),
                                               params.get("incidentType"), params.get("first_fetch"))
            demisto.incidents(incidents)
            demisto.setLastRun(state)
        elif command == "wia-validate-event":
            return_results(validate_event_command(args))
        elif command == "wia-convert-event":
            return_results(convert_event_command(args))
        elif command == "wia-send-event":
            return_results(send_event_command(client, args))
        elif command == "wia-get-events":
            return_results(get_events_command(client, args))
        elif command == "wia-attack-lookup":
            return_results(attack_lookup_command(args))
        else:
            raise NotImplementedError(f"command {command} is not implemented")
    except Exception as exc:
        return_error(redact(f"Failed to execute {command} command.\nError:\n{exc}"))


''' ENTRY POINT '''

if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
