"""Microsoft Sentinel contract server: Logs Ingestion API + SecurityInsights incidents over TLS, and a
managed-identity token endpoint, following Microsoft's documented behaviour.

No Azure emulator exists for these APIs, so this is a *contract* server, driven in tests by the real
`azure-monitor-ingestion`, `azure-mgmt-securityinsight` and `azure-identity` clients:

- Logs Ingestion API (`POST /dataCollectionRules/{dcrImmutableId}/streams/{stream}?api-version=2023-01-01`):
  bearer token required (401 otherwise), `Content-Encoding: gzip` honoured, a body over 1 MiB
  (compressed or not) answered 413 `ContentLengthLimitExceeded`, a body that is not a JSON array
  400 `InvalidContent`, an unknown DCR 404, an unknown stream 400 `InvalidStream`, success 204.
  The stream's datetime columns (`datetime_columns`, the project's DCR declares TimeGenerated and EventTime)
  are read as Log Analytics holds them (UTC, 100-ns ticks): only the spelling Microsoft documents for an
  ingested datetime, YYYY-MM-DDThh:mm:ss[.fffffff]Z, is read; any other value is stored empty (null, as the
  service stores a value it cannot read: the call still answers 204) and listed in `unread_datetimes`.
- SecurityInsights incidents (ARM, api-version 2021-10-01 as the 1.0.0 client sends it):
  PUT (201 create / 200 update, 400 for a missing title/severity/status or a Closed incident without
  a classification), GET, LIST (with `$top` paging through `nextLink`).
- App Service managed identity endpoint (`IDENTITY_ENDPOINT`, plain http on loopback as in App
  Service): `X-IDENTITY-HEADER` must match, answers `{access_token, expires_on, resource, token_type}`.
  Tokens are audience-bound: one asked for another resource than `ingestion_audience` or
  `management_audience` (the public cloud's by default, a sovereign cloud's when set) is refused with 401.

azure-core refuses a bearer token over plain http, hence TLS with a throwaway certificate the tests
trust through the clients' `connection_verify`.
"""
from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import re
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: Logs Ingestion API: maximum size of one call (Azure Monitor service limits, Logs Ingestion API).
MAX_INGESTION_REQUEST_BYTES = 1024 * 1024
INGESTION_API_VERSION = "2023-01-01"
MONITOR_SCOPE = "https://monitor.azure.com"
MANAGEMENT_SCOPE = "https://management.azure.com"
#: The documented spelling of an ingested datetime value: UTC with Z; up to 7 fraction digits (ticks).
DOCUMENTED_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?Z")


def throwaway_certificate(directory: Path, hostname: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for `hostname` and 127.0.0.1 (PEM files cert, key), valid one day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class IngestionRequest:
    dcr: str
    stream: str
    compressed_bytes: int
    body_bytes: int
    records: int
    status: int


@dataclass
class SentinelState:
    """Everything the server saw and holds; tests read and reset it."""

    token: str = field(default_factory=lambda: "tok-" + secrets.token_hex(16))
    identity_header: str = field(default_factory=lambda: secrets.token_hex(8))
    dcrs: dict[str, set[str]] = field(default_factory=dict)            # dcr id -> stream names
    rows: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[IngestionRequest] = field(default_factory=list)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)             # Authorization headers seen
    faults: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    incident_number: int = 0
    #: the request size answered 413 beyond (a proxy in front of the endpoint may allow less than the API)
    max_request_bytes: int = MAX_INGESTION_REQUEST_BYTES
    #: the audience the ingestion endpoint's cloud takes tokens for (a sovereign cloud's: https://monitor.azure.us)
    ingestion_audience: str = MONITOR_SCOPE
    #: the audience the management endpoint's cloud takes tokens for (https://management.usgovcloudapi.net ...)
    management_audience: str = MANAGEMENT_SCOPE
    #: the input stream's columns of type datetime (azure_function/deploy/sentinel.json's DCR)
    datetime_columns: tuple[str, ...] = ("TimeGenerated", "EventTime")
    #: (column, value) of every datetime value not read (stored as null)
    unread_datetimes: list[tuple[str, Any]] = field(default_factory=list)

    def fail_next(self, status: int, times: int = 1, *, retry_after: str | None = None,
                  code: str = "ServiceUnavailable") -> None:
        """Answer the next `times` ingestion requests with `status` (and Retry-After when given)."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        body = {"error": {"code": code, "message": f"injected {status}"}}
        self.faults.extend([(status, headers, body)] * times)

    def deny_next(self, times: int = 1, dcr: str = "dcr-00000000000000000000000000000000") -> None:
        """Answer the next `times` ingestion requests as the service does while the identity's role on the DCR
        is missing or still propagating: 403 OperationFailed (azure-monitor-ingestion TROUBLESHOOTING.md,
        "Troubleshooting authorization errors": "The permissions may take up to 30 minutes to propagate")."""
        body = {"error": {"code": "OperationFailed", "message": "The authentication token provided does not have "
                          f"access to ingest data for the data collection rule with immutable Id '{dcr}'."}}
        self.faults.extend([(403, {}, body)] * times)

    def all_rows(self) -> list[dict[str, Any]]:
        return [row for rows in self.rows.values() for row in rows]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:   # keep test output quiet
        pass

    # -- helpers ------------------------------------------------------------------------------
    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._reply(status, {"error": {"code": code, "message": message}}, headers)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        self.server.state.authorizations.append(auth)
        if auth != f"Bearer {self.server.state.token}":
            self._error(401, "InvalidAuthenticationToken", "The access token is missing or invalid.")
            return False
        return True

    # -- routes -------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if parts.path == "/msi/token":
            return self._token(parse_qs(parts.query))
        if "/providers/Microsoft.SecurityInsights/incidents" in parts.path:
            if not self._authorized():
                self._body()
                return
            return self._incidents_get(parts)
        self._error(404, "NotFound", f"no route for GET {parts.path}")

    def do_PUT(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        body = self._body()
        if "/providers/Microsoft.SecurityInsights/incidents/" not in parts.path:
            return self._error(404, "NotFound", f"no route for PUT {parts.path}")
        if not self._authorized():
            return
        self._incident_put(parts, body)

    def do_POST(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        body = self._body()
        segments = parts.path.strip("/").split("/")
        if len(segments) == 4 and segments[0] == "dataCollectionRules" and segments[2] == "streams":
            return self._ingest(segments[1], segments[3], parse_qs(parts.query), body)
        self._error(404, "NotFound", f"no route for POST {parts.path}")

    # -- managed identity ----------------------------------------------------------------------
    def _token(self, query: dict[str, list[str]]) -> None:
        state = self.server.state
        if self.headers.get("X-IDENTITY-HEADER") != state.identity_header:
            return self._reply(400, {"statusCode": 400, "message": "X-IDENTITY-HEADER is missing or wrong"})
        resource = query.get("resource", [""])[0]
        state.token_requests.append({k: v[0] for k, v in query.items()})
        # A token is for one audience, and a service takes only its own (Entra ID access tokens' `aud`): a token
        # asked for another resource than this cloud's ingestion or management audience is refused when used.
        known = resource.rstrip("/") in (state.ingestion_audience, state.management_audience)
        token = state.token if known else f"{state.token}-aud-{secrets.token_hex(4)}"
        self._reply(200, {"access_token": token, "expires_on": str(int(time.time()) + 3600),
                          "resource": resource, "token_type": "Bearer"})

    # -- Logs Ingestion API ---------------------------------------------------------------------
    def _ingest(self, dcr: str, stream: str, query: dict[str, list[str]], raw: bytes) -> None:
        state = self.server.state
        if not self._authorized():
            return
        if query.get("api-version", [""])[0] != INGESTION_API_VERSION:
            return self._error(400, "InvalidApiVersion", f"api-version must be {INGESTION_API_VERSION}")
        with state.lock:
            fault = state.faults.pop(0) if state.faults else None
        if fault:
            status, headers, body = fault
            state.requests.append(IngestionRequest(dcr, stream, len(raw), -1, 0, status))
            return self._reply(status, body, headers)
        if dcr not in state.dcrs:
            return self._error(404, "NotFound", f"Data collection rule {dcr} was not found.")
        if stream not in state.dcrs[dcr]:
            return self._error(400, "InvalidStream", f"Stream {stream} is not declared in the data collection rule.")
        if len(raw) > state.max_request_bytes:
            return self._too_large(dcr, stream, raw, len(raw))
        body = raw
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                body = gzip.decompress(raw)
            except OSError:
                return self._error(400, "InvalidContent", "The body is not valid gzip.")
        if len(body) > state.max_request_bytes:
            return self._too_large(dcr, stream, raw, len(body))
        try:
            rows = json.loads(body)
        except ValueError:
            rows = None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            state.requests.append(IngestionRequest(dcr, stream, len(raw), len(body), 0, 400))
            return self._error(400, "InvalidContent", "The request body must be a JSON array of objects.")
        with state.lock:
            for row in rows:
                for column in state.datetime_columns:
                    value = row.get(column)
                    if value is not None and not (isinstance(value, str) and DOCUMENTED_DATETIME.fullmatch(value)):
                        state.unread_datetimes.append((column, value))
                        row[column] = None
            state.rows.setdefault((dcr, stream), []).extend(rows)
            state.requests.append(IngestionRequest(dcr, stream, len(raw), len(body), len(rows), 204))
        self._reply(204)

    def _too_large(self, dcr: str, stream: str, raw: bytes, size: int) -> None:
        self.server.state.requests.append(IngestionRequest(dcr, stream, len(raw), size, 0, 413))
        self._error(413, "ContentLengthLimitExceeded",
                    f"The request is {size} bytes; the maximum is {self.server.state.max_request_bytes} bytes.")

    # -- SecurityInsights incidents ---------------------------------------------------------------
    def _incident_put(self, parts: Any, raw: bytes) -> None:
        state = self.server.state
        incident_id = parts.path.rstrip("/").rsplit("/", 1)[1]
        try:
            doc = json.loads(raw)
            props = doc["properties"]
        except (ValueError, KeyError, TypeError):
            return self._error(400, "BadRequest", "The request body must carry 'properties'.")
        missing = [k for k in ("title", "severity", "status") if not props.get(k)]
        if missing:
            return self._error(400, "BadRequest", f"Missing required properties: {', '.join(missing)}")
        if props["severity"] not in ("High", "Medium", "Low", "Informational"):
            return self._error(400, "BadRequest", f"Invalid severity {props['severity']!r}")
        if props["status"] not in ("New", "Active", "Closed"):
            return self._error(400, "BadRequest", f"Invalid status {props['status']!r}")
        if props["status"] == "Closed" and not props.get("classification"):
            return self._error(400, "BadRequest", "A closed incident needs a classification.")
        now = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        with state.lock:
            existing = state.incidents.get(incident_id)
            if existing is None:
                state.incident_number += 1
                number, created = state.incident_number, now
            else:
                number, created = existing["properties"]["incidentNumber"], existing["properties"]["createdTimeUtc"]
            stored = {
                "id": parts.path, "name": incident_id, "type": "Microsoft.SecurityInsights/Incidents",
                "etag": f'"{secrets.token_hex(8)}"',
                "properties": {**props, "incidentNumber": number, "createdTimeUtc": created,
                               "lastModifiedTimeUtc": now,
                               "incidentUrl": f"https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident{parts.path}"},
            }
            state.incidents[incident_id] = stored
        self._reply(200 if existing else 201, stored)

    def _incidents_get(self, parts: Any) -> None:
        state = self.server.state
        path = parts.path.rstrip("/")
        if not path.endswith("/incidents"):
            incident_id = path.rsplit("/", 1)[1]
            found = state.incidents.get(incident_id)
            if found is None:
                return self._error(404, "NotFound", f"Incident {incident_id} not found")
            return self._reply(200, found)
        query = parse_qs(parts.query)
        top = int(query.get("$top", ["50"])[0])
        skip = int(query.get("$skipToken", ["0"])[0])
        items = sorted(state.incidents.values(), key=lambda i: i["properties"]["incidentNumber"])
        page = items[skip:skip + top]
        body: dict[str, Any] = {"value": page}
        if skip + top < len(items):
            host = self.headers.get("Host")
            body["nextLink"] = (f"https://{host}{path}?api-version={query['api-version'][0]}"
                                f"&$top={top}&$skipToken={skip + top}")
        self._reply(200, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: SentinelState


@dataclass
class SentinelContract:
    """A running contract server: `endpoint` (https, ingestion + management), `identity_endpoint`
    (http), `ca_file` to trust, `state` to inspect."""

    state: SentinelState
    port: int
    identity_port: int
    ca_file: str
    _servers: list[_Server] = field(default_factory=list, repr=False)

    @property
    def endpoint(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def identity_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.identity_port}/msi/token"

    def add_dcr(self, dcr: str = "dcr-00000000000000000000000000000000",
                streams: tuple[str, ...] = ("Custom-WIASecurity",)) -> str:
        self.state.dcrs[dcr] = set(streams)
        return dcr

    def reset(self) -> None:
        token, header = self.state.token, self.state.identity_header
        self.state.__init__()               # type: ignore[misc]
        self.state.token, self.state.identity_header = token, header

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


def start_sentinel_contract(workdir: Path) -> SentinelContract:
    cert, key = throwaway_certificate(workdir)
    state = SentinelState()
    https = _Server(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    https.socket = context.wrap_socket(https.socket, server_side=True)
    identity = _Server(("127.0.0.1", 0), _Handler)
    for server in (https, identity):
        server.state = state
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="sentinel-contract").start()
    return SentinelContract(state, https.server_address[1], identity.server_address[1], str(cert),
                            [https, identity])


def _pytest_fixtures() -> Any:
    import pytest

    @pytest.fixture(scope="session")
    def sentinel_server(tmp_path_factory: Any) -> Any:
        server = start_sentinel_contract(tmp_path_factory.mktemp("sentinel-tls"))
        yield server
        server.stop()

    @pytest.fixture
    def sentinel(sentinel_server: SentinelContract, monkeypatch: Any) -> SentinelContract:
        """The contract server, reset, with one DCR, and this process's managed identity pointing at it
        (App Service style: IDENTITY_ENDPOINT + IDENTITY_HEADER)."""
        sentinel_server.reset()
        sentinel_server.add_dcr()
        monkeypatch.setenv("IDENTITY_ENDPOINT", sentinel_server.identity_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", sentinel_server.state.identity_header)
        for name in ("MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_CLIENT_ID"):
            monkeypatch.delenv(name, raising=False)
        return sentinel_server

    return sentinel_server, sentinel


sentinel_server, sentinel = _pytest_fixtures()
