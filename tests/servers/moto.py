"""moto server (`moto_server -H 127.0.0.1 -p N`) for SQS, Kinesis, S3, Secrets Manager, SSM and Security
Hub, plus a Security Hub *contract layer* in front of it for what moto lacks.

moto's Security Hub stores imported findings but ignores GetFindings `Filters`/`SortCriteria`, has no
BatchUpdateFindings, and checks none of BatchImportFindings' documented rules. `SecurityHubContract`
is an HTTP proxy for the securityhub endpoint only (boto3 reaches it through
`AWS_ENDPOINT_URL_SECURITYHUB`); it forwards to moto and adds, following the API reference:

- BatchImportFindings: at most 100 findings (InvalidInputException, 400) and 6 MB per request ("up to 6 MB
  per batch", partner guide; the request body as sent, over it 413 RequestEntityTooLargeException: the
  guide names no error, this is the contract's assumption); a finding over 240 KB or
  whose account does not match the caller's with the account's default product ARN comes back in
  `FailedFindings` (the reference does not enumerate ErrorCode values; the contract uses
  `InvalidInput` and `AccessDeniedException`); on a finding that exists, the customer-managed
  fields Note, UserDefinedFields, VerificationState and Workflow are ignored, as the API states.
- GetFindings: string filters (EQUALS, PREFIX, NOT_EQUALS, PREFIX_NOT_EQUALS, CONTAINS, NOT_CONTAINS;
  same-key positive comparisons OR-ed, negative ones AND-ed, keys AND-ed), number filters
  (Gte/Lte/Eq), date filters (Start/End), SortCriteria, MaxResults 1-100 and NextToken.
- BatchUpdateFindings (PATCH /findings/batchupdate): 1-100 identifiers, Workflow.Status enum, Note
  needs Text and UpdatedBy; unknown findings are `UnprocessedFindings` (ErrorCode `FindingNotFound`,
  a contract assumption); updates do not change UpdatedAt.
- Fault injection for tests: `throttle_next(n)` (429 LimitExceededException), `fail_finding(id, code)`.

Tests that rely on the layer say "contract" in their names.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .ports import free_port  # noqa: F401 - re-exported for the tests that import it from here

#: moto's default account (what STS GetCallerIdentity answers).
MOTO_ACCOUNT = "123456789012"
MAX_IMPORT_FINDINGS = 100
MAX_FINDING_BYTES = 240 * 1024
MAX_IMPORT_REQUEST_BYTES = 6 * 1024 * 1024
MANAGED_BY_CUSTOMER = ("Note", "UserDefinedFields", "VerificationState", "Workflow")
WORKFLOW_STATUSES = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")

#: GetFindings string filter -> how to read it from a finding.
_STRING_FIELDS = {
    "ProductArn": ("ProductArn",), "AwsAccountId": ("AwsAccountId",), "Id": ("Id",),
    "GeneratorId": ("GeneratorId",), "Region": ("Region",), "Type": ("Types", "*"), "Title": ("Title",),
    "Description": ("Description",), "SeverityLabel": ("Severity", "Label"), "RecordState": ("RecordState",),
    "WorkflowStatus": ("Workflow", "Status"), "VerificationState": ("VerificationState",),
    "ProductName": ("ProductName",), "CompanyName": ("CompanyName",), "ResourceType": ("Resources", "*", "Type"),
    "ResourceId": ("Resources", "*", "Id"), "ComplianceStatus": ("Compliance", "Status"),
}
_NUMBER_FIELDS = {"SeverityNormalized": ("Severity", "Normalized"), "Confidence": ("Confidence",),
                  "Criticality": ("Criticality",)}
_DATE_FIELDS = {"CreatedAt": ("CreatedAt",), "UpdatedAt": ("UpdatedAt",), "FirstObservedAt": ("FirstObservedAt",),
                "LastObservedAt": ("LastObservedAt",)}


@dataclass
class MotoServer:
    port: int
    process: subprocess.Popen = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10).read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def moto_server_binary() -> str:
    found = Path(sys.executable).with_name("moto_server")
    return str(found) if found.exists() else (shutil.which("moto_server") or "moto_server")


def start_moto() -> MotoServer:
    port = free_port()
    process = subprocess.Popen([moto_server_binary(), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
            return MotoServer(port, process)
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto_server did not answer within 30 s") from None
            time.sleep(0.1)


# -- Security Hub contract layer ---------------------------------------------------------------

@dataclass
class SecurityHubState:
    account_id: str = MOTO_ACCOUNT
    overlay: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)   # customer updates
    throttles: int = 0
    finding_faults: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    import_calls: list[int] = field(default_factory=list)       # findings per BatchImportFindings
    import_bytes: list[int] = field(default_factory=list)       # request body bytes per BatchImportFindings
    update_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def throttle_next(self, times: int = 1) -> None:
        self.throttles += times

    def fail_finding(self, finding_id: str, code: str = "InternalException",
                     message: str = "Internal service error", times: int = 1) -> None:
        self.finding_faults.setdefault(finding_id, []).extend([(code, message)] * times)


class _Handler(BaseHTTPRequestHandler):
    server: "_ContractServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._reply(status, {"__type": code, "Code": code, "Message": message}, {"x-amzn-ErrorType": code})

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        request = urllib.request.Request(self.server.moto_url + path, data=body if method != "GET" else None,
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def _relay(self, method: str, body: bytes) -> None:
        status, headers, data = self._forward(method, self.path, body)
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._relay("GET", b"")

    def do_DELETE(self) -> None:  # noqa: N802
        self._relay("DELETE", self._read())

    def do_POST(self) -> None:  # noqa: N802
        body = self._read()
        path = self.path.split("?", 1)[0]
        if path == "/findings/import":
            return self._import(body)
        if path == "/findings":
            return self._get_findings(body)
        self._relay("POST", body)

    def do_PATCH(self) -> None:  # noqa: N802
        body = self._read()
        if self.path.split("?", 1)[0] == "/findings/batchupdate":
            return self._batch_update(body)
        self._relay("PATCH", body)

    # BatchImportFindings ------------------------------------------------------------------------
    def _import(self, raw: bytes) -> None:
        state = self.server.state
        with state.lock:
            if state.throttles:
                state.throttles -= 1
                return self._error(429, "LimitExceededException", "Rate exceeded")
        findings = json.loads(raw or b"{}").get("Findings") or []
        state.import_calls.append(len(findings))
        state.import_bytes.append(len(raw))
        if len(raw) > MAX_IMPORT_REQUEST_BYTES:
            return self._error(413, "RequestEntityTooLargeException",
                               f"Request of {len(raw)} bytes exceeds the {MAX_IMPORT_REQUEST_BYTES} byte limit")
        if not findings or len(findings) > MAX_IMPORT_FINDINGS:
            return self._error(400, "InvalidInputException",
                               f"Findings must contain between 1 and {MAX_IMPORT_FINDINGS} findings")
        existing = {(f.get("ProductArn"), f.get("Id")) for f in self._all_findings()}
        failed, accepted = [], []
        for finding in findings:
            fid = finding.get("Id", "")
            fault = None
            with state.lock:
                if state.finding_faults.get(fid):
                    fault = state.finding_faults[fid].pop(0)
            size = len(json.dumps(finding, separators=(",", ":")).encode())
            default_product = f":product/{state.account_id}/default"
            if fault:
                failed.append({"Id": fid, "ErrorCode": fault[0], "ErrorMessage": fault[1]})
            elif size > MAX_FINDING_BYTES:
                failed.append({"Id": fid, "ErrorCode": "InvalidInput",
                               "ErrorMessage": f"Finding size {size} exceeds the 240 KB limit"})
            elif finding.get("AwsAccountId") != state.account_id or (
                    ":product/" in str(finding.get("ProductArn")) and str(finding.get("ProductArn")).endswith("/default")
                    and not str(finding.get("ProductArn")).endswith(default_product)):
                failed.append({"Id": fid, "ErrorCode": "AccessDeniedException",
                               "ErrorMessage": "The caller's account must match AwsAccountId for the default product"})
            else:
                if (finding.get("ProductArn"), fid) in existing:
                    finding = {k: v for k, v in finding.items() if k not in MANAGED_BY_CUSTOMER}
                accepted.append(finding)
        success = 0
        if accepted:
            status, _, data = self._forward("POST", "/findings/import", json.dumps({"Findings": accepted}).encode())
            if status != 200:
                return self._reply(status, json.loads(data or b"{}"))
            moto = json.loads(data)
            success = moto.get("SuccessCount", 0)
            failed += moto.get("FailedFindings", [])
        self._reply(200, {"FailedCount": len(failed), "SuccessCount": success, "FailedFindings": failed})

    def _all_findings(self) -> list[dict[str, Any]]:
        found, token = [], None
        while True:
            body = {"MaxResults": 100, **({"NextToken": token} if token else {})}
            status, _, data = self._forward("POST", "/findings", json.dumps(body).encode())
            page = json.loads(data or b"{}")
            found += page.get("Findings", [])
            token = page.get("NextToken")
            if not token:
                return found

    # GetFindings -------------------------------------------------------------------------------
    def _get_findings(self, raw: bytes) -> None:
        request = json.loads(raw or b"{}")
        limit = request.get("MaxResults", 100)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            return self._error(400, "InvalidInputException", "MaxResults must be between 1 and 100")
        findings = [self._with_overlay(f) for f in self._all_findings()]
        filters = request.get("Filters") or {}
        try:
            findings = [f for f in findings if _matches(f, filters)]
        except ValueError as exc:
            return self._error(400, "InvalidInputException", str(exc))
        for criterion in reversed(request.get("SortCriteria") or []):
            key = criterion.get("Field", "")
            findings.sort(key=lambda f: str(f.get(key, "")), reverse=criterion.get("SortOrder") == "desc")
        start = int(request.get("NextToken") or 0)
        page = findings[start:start + limit]
        body: dict[str, Any] = {"Findings": page}
        if start + limit < len(findings):
            body["NextToken"] = str(start + limit)
        self._reply(200, body)

    def _with_overlay(self, finding: dict[str, Any]) -> dict[str, Any]:
        overlay = self.server.state.overlay.get((finding.get("ProductArn"), finding.get("Id")))
        return {**finding, **overlay} if overlay else finding

    # BatchUpdateFindings -------------------------------------------------------------------------
    def _batch_update(self, raw: bytes) -> None:
        state = self.server.state
        request = json.loads(raw or b"{}")
        identifiers = request.get("FindingIdentifiers") or []
        if not 1 <= len(identifiers) <= 100:
            return self._error(400, "InvalidInputException", "FindingIdentifiers must hold 1 to 100 identifiers")
        workflow = request.get("Workflow")
        if workflow is not None and workflow.get("Status") not in WORKFLOW_STATUSES:
            return self._error(400, "InvalidInputException", f"Workflow.Status must be one of {WORKFLOW_STATUSES}")
        note = request.get("Note")
        if note is not None and not (note.get("Text") and note.get("UpdatedBy")):
            return self._error(400, "InvalidInputException", "Note needs Text and UpdatedBy")
        state.update_calls += 1
        known = {(f.get("ProductArn"), f.get("Id")) for f in self._all_findings()}
        processed, unprocessed = [], []
        for ident in identifiers:
            key = (ident.get("ProductArn"), ident.get("Id"))
            if key not in known:
                unprocessed.append({"FindingIdentifier": ident, "ErrorCode": "FindingNotFound",
                                    "ErrorMessage": "Finding not found"})
                continue
            update = state.overlay.setdefault(key, {})
            for member in ("Workflow", "Note", "VerificationState", "Confidence", "Criticality", "Types",
                           "UserDefinedFields", "RelatedFindings"):
                if member in request:
                    update[member] = request[member]
            if "Severity" in request:
                update["Severity"] = request["Severity"]
            if workflow is not None:
                update["RecordState"] = update.get("RecordState", "ACTIVE")
            processed.append(ident)
        self._reply(200, {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})


def _values(finding: Any, path: tuple[str, ...]) -> list[Any]:
    if not path:
        return [finding]
    head, rest = path[0], path[1:]
    if head == "*":
        return [v for item in (finding if isinstance(finding, list) else []) for v in _values(item, rest)]
    if not isinstance(finding, dict) or head not in finding:
        return []
    return _values(finding[head], rest)


def _matches(finding: dict[str, Any], filters: dict[str, Any]) -> bool:
    for key, conditions in filters.items():
        if key in _STRING_FIELDS:
            values = [str(v) for v in _values(finding, _STRING_FIELDS[key])]
            positive = [c for c in conditions if not c.get("Comparison", "").startswith("NOT_")
                        and c.get("Comparison") != "PREFIX_NOT_EQUALS"]
            negative = [c for c in conditions if c not in positive]
            if positive and not any(_string_ok(values, c) for c in positive):
                return False
            if not all(_string_ok(values, c) for c in negative):
                return False
        elif key in _NUMBER_FIELDS:
            values = [v for v in _values(finding, _NUMBER_FIELDS[key]) if isinstance(v, (int, float))]
            for c in conditions:
                if not any((c.get("Gte") is None or v >= c["Gte"]) and (c.get("Lte") is None or v <= c["Lte"])
                           and (c.get("Eq") is None or v == c["Eq"]) for v in values):
                    return False
        elif key in _DATE_FIELDS:
            values = [str(v) for v in _values(finding, _DATE_FIELDS[key])]
            for c in conditions:
                if not any((not c.get("Start") or v >= c["Start"]) and (not c.get("End") or v <= c["End"])
                           for v in values):
                    return False
        else:
            raise ValueError(f"the contract layer does not implement filter {key!r}")
    return True


def _string_ok(values: list[str], condition: dict[str, Any]) -> bool:
    value, comparison = str(condition.get("Value", "")), condition.get("Comparison", "EQUALS")
    if comparison == "EQUALS":
        return value in values
    if comparison == "PREFIX":
        return any(v.startswith(value) for v in values)
    if comparison == "CONTAINS":
        return any(value in v for v in values)
    if comparison == "NOT_EQUALS":
        return value not in values
    if comparison == "PREFIX_NOT_EQUALS":
        return not any(v.startswith(value) for v in values)
    if comparison == "NOT_CONTAINS":
        return not any(value in v for v in values)
    raise ValueError(f"unsupported comparison {comparison!r}")


class _ContractServer(ThreadingHTTPServer):
    daemon_threads = True
    state: SecurityHubState
    moto_url: str


@dataclass
class SecurityHubContract:
    port: int
    state: SecurityHubState
    server: _ContractServer = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.state.__init__()            # type: ignore[misc]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_securityhub_contract(moto: MotoServer) -> SecurityHubContract:
    server = _ContractServer(("127.0.0.1", 0), _Handler)
    server.state, server.moto_url = SecurityHubState(), moto.url
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="securityhub-contract").start()
    return SecurityHubContract(server.server_address[1], server.state, server)


@dataclass
class AwsTestEnv:
    """What a test gets: moto, the Security Hub contract layer, and boto3 clients on them."""

    moto: MotoServer
    securityhub: SecurityHubContract
    region: str = "us-east-1"
    account_id: str = MOTO_ACCOUNT

    def client(self, service: str) -> Any:
        import boto3
        url = self.securityhub.url if service == "securityhub" else self.moto.url
        return boto3.client(service, region_name=self.region, endpoint_url=url)


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


def _pytest_fixtures() -> Any:
    import pytest

    @pytest.fixture(scope="session")
    def moto_session() -> Any:
        pytest.importorskip("boto3", reason="the aws extra is not installed")
        moto = start_moto()
        contract = start_securityhub_contract(moto)
        yield moto, contract
        contract.stop()
        moto.stop()

    @pytest.fixture
    def aws(moto_session: Any, monkeypatch: Any) -> AwsTestEnv:
        """moto (reset) and the Security Hub contract layer; boto3 in this process points at them
        through AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SECURITYHUB, as a deployed function would be
        pointed at real endpoints — the code under test has no test hooks."""
        moto, contract = moto_session
        moto.reset()
        contract.reset()
        for key, value in AWS_ENV.items():
            monkeypatch.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", contract.url)
        return AwsTestEnv(moto, contract)

    return moto_session, aws


moto_session, aws = _pytest_fixtures()
