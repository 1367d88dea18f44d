"""An in-process Security Command Center v2 gRPC server, assembled from the real client's own method table.

`google-cloud-securitycenter` ships client stubs only. The client's gRPC transport names every RPC
with its path and the proto-plus request/response classes it (de)serializes; `method_table()`
records them by handing the transport a recording channel, and `start_scc()` serves those exact
methods with `grpc.method_handlers_generic_handler`, over TLS with a throwaway certificate. The
RPCs the connector uses follow the documented contract (contract test server):

- CreateSource / GetSource / ListSources: sources live under `organizations/{org}`.
- CreateFinding: the source must exist (NOT_FOUND); `finding_id` must be 1-32 alphanumerics
  (INVALID_ARGUMENT); an existing id is ALREADY_EXISTS.
- UpdateFinding: "creates or updates"; an empty update mask replaces every mutable field, a mask
  updates the named ones (`source_properties.<key>` for one property).
- Output-only fields of the v2 Finding (`state`, `create_time`, `security_marks`, `mute_info`, ...: the
  client's own Finding docstring) are ignored on create and update: a new finding is ACTIVE, an
  updated one keeps its state. Immutable fields (`category`, `resource_name`, `parent`) sent with
  another value in an update are INVALID_ARGUMENT (AIP-203; the same value is ignored). An empty
  update mask replaces every mutable field, `mute` included. A finding written whole (create, update
  with an empty mask) needs a `resource_name` of 1 to 255 characters (INVALID_ARGUMENT "ResourceName is
  invalid", as SCC answers). `external_uri` "is guaranteed to be either
  empty or a well formed URL": one that is not an http(s) URL is INVALID_ARGUMENT. `event_time` after the server's clock is INVALID_ARGUMENT ("This must
  not be set to a value greater than the current timestamp").
- SetFindingState: ACTIVE / INACTIVE, the only way to change a finding's state.
- ListFindings: parent `.../sources/{id or -}/locations/{loc}`, `filter` with `field="value"` terms
  joined by AND (category, state, severity, finding_class, resource_name), page_size (default 10,
  max 1000) and page tokens.
Everything else answers UNIMPLEMENTED. `fail_next(code)` injects errors; `override_next(rpc, fn)` answers
the next call of `rpc` with `fn(request, context, impl)` instead (a delay, raw `bytes` that are not the
response message, an abort with any code).
"""
from __future__ import annotations

import os
import re
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import grpc

from .sentinel_contract import throwaway_certificate

# gRPC C-core logs connection teardown (GOAWAY) at INFO when the server stops: keep test output clean.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

SERVICE = "google.cloud.securitycenter.v2.SecurityCenter"
_FINDING_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_SOURCE = re.compile(r"^organizations/(\d+)/sources/(\d+|-)(?:/locations/([a-z0-9-]+))?$")
_FILTER_TERM = re.compile(r'^\s*(\w+)\s*=\s*"([^"]*)"\s*$')
#: Fields of the v2 Finding its docstring marks "Immutable" (parent: "immutable after creation time").
IMMUTABLE = ("category", "resource_name", "parent")
#: Fields of the v2 Finding its docstring marks "Output only" (set by the server, ignored in requests).
OUTPUT_ONLY = ("state", "canonical_name", "security_marks", "create_time", "mute_info", "mute_update_time",
               "external_systems", "contacts", "parent_display_name")


class _RecordingChannel(grpc.Channel):
    """A channel that only records what the transport asks of it."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[Callable, Callable]] = {}

    def unary_unary(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        self.calls[method] = (request_serializer, response_deserializer)
        return lambda *a, **k: None

    def unary_stream(self, method, *args, **kwargs):
        return lambda *a, **k: None

    stream_unary = stream_stream = unary_stream

    def subscribe(self, callback, try_to_connect=False):
        pass

    def unsubscribe(self, callback):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def method_table() -> dict[str, tuple[type, type]]:
    """RPC name -> (request class, response class), as the installed client's gRPC transport declares them."""
    from google.cloud.securitycenter_v2.services.security_center.transports.grpc import SecurityCenterGrpcTransport

    recorder = _RecordingChannel()
    transport = SecurityCenterGrpcTransport(channel=recorder)
    # Newer transports wrap the channel in a logging interceptor that defers unary_unary() until a
    # call, and build (and cache) every stub while constructing: point the stub factory at the
    # recorder and rebuild the stubs from the transport's own RPC properties below.
    if hasattr(transport, "_logged_channel"):
        transport._logged_channel = recorder
    transport._stubs = {}
    for name, attr in vars(SecurityCenterGrpcTransport).items():
        if isinstance(attr, property) and name not in ("grpc_channel", "kind", "host"):
            try:
                getattr(transport, name)
            except Exception:  # noqa: BLE001 - properties that are not RPC stubs
                pass
    table = {}
    for path, (serialize, deserialize) in recorder.calls.items():
        service, _, rpc = path.strip("/").rpartition("/")
        request_cls, response_cls = getattr(serialize, "__self__", None), getattr(deserialize, "__self__", None)
        if service == SERVICE and isinstance(request_cls, type) and isinstance(response_cls, type):
            table[rpc] = (request_cls, response_cls)      # proto-plus classes (iam_policy_pb2 ones skipped)
    return table


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class SccState:
    sources: dict[str, Any] = field(default_factory=dict)        # source name -> Source
    findings: dict[str, Any] = field(default_factory=dict)       # finding name -> Finding
    calls: list[str] = field(default_factory=list)
    faults: list[tuple[grpc.StatusCode, str, float | None]] = field(default_factory=list)
    overrides: list[tuple[str, Callable]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_source: int = 1000

    def override_next(self, rpc: str, fn: Callable, times: int = 1) -> None:
        self.overrides.extend([(rpc, fn)] * times)

    def fail_next(self, code: grpc.StatusCode, times: int = 1, message: str = "injected",
                  retry_delay: float | None = None) -> None:
        """Fail the next `times` calls with `code`; `retry_delay` adds a google.rpc.RetryInfo detail (AIP-194)."""
        self.faults.extend([(code, message, retry_delay)] * times)


class FakeSecurityCenter:
    """The RPCs the connector uses, on an in-memory store."""

    def __init__(self, state: SccState, types: Any) -> None:
        self.state, self.t = state, types

    # sources
    def CreateSource(self, request: Any) -> Any:  # noqa: N802
        if not re.fullmatch(r"organizations/\d+", request.parent):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid parent {request.parent!r}")
        self.state.next_source += 1
        source = self.t.Source(request.source)
        source.name = f"{request.parent}/sources/{self.state.next_source}"
        self.state.sources[source.name] = source
        return source

    def GetSource(self, request: Any) -> Any:  # noqa: N802
        try:
            return self.state.sources[request.name]
        except KeyError:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"source {request.name} not found") from None

    def ListSources(self, request: Any) -> Any:  # noqa: N802
        found = [s for n, s in self.state.sources.items() if n.startswith(request.parent + "/")]
        return self.t.ListSourcesResponse(sources=found)

    # findings
    def _source_of(self, parent: str) -> tuple[str, str]:
        m = _SOURCE.match(parent)
        if not m:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid parent {parent!r}")
        source = f"organizations/{m.group(1)}/sources/{m.group(2)}"
        if m.group(2) != "-" and source not in self.state.sources:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"source {source} not found")
        return source, m.group(3) or "global"

    def CreateFinding(self, request: Any) -> Any:  # noqa: N802
        source, location = self._source_of(request.parent)
        if not _FINDING_ID.match(request.finding_id):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         "finding_id must be alphanumeric and 1 to 32 characters long")
        name = f"{source}/locations/{location}/findings/{request.finding_id}"
        if name in self.state.findings:
            raise _Abort(grpc.StatusCode.ALREADY_EXISTS, f"finding {name} already exists")
        finding = self._writable(request.finding)
        finding.name, finding.parent = name, f"{source}/locations/{location}"
        finding.canonical_name = name
        finding.create_time = _now()
        finding.state = self.t.Finding.State.ACTIVE
        self.state.findings[name] = finding
        return finding

    def UpdateFinding(self, request: Any) -> Any:  # noqa: N802
        name = request.finding.name
        m = re.match(r"^(organizations/\d+/sources/\d+)(?:/locations/([a-z0-9-]+))?/findings/([A-Za-z0-9]{1,32})$", name)
        if not m:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid finding name {name!r}")
        self._source_of(m.group(1))
        full = f"{m.group(1)}/locations/{m.group(2) or 'global'}/findings/{m.group(3)}"
        current = self.state.findings.get(full)
        paths = list(request.update_mask.paths) if request.update_mask else []
        if current is not None:
            self._immutable_kept(current, request.finding, paths)
        if current is None or not paths:
            updated = self._writable(request.finding)
            if current is not None:        # output-only fields survive a full replacement
                for name in OUTPUT_ONLY:
                    setattr(updated, name, getattr(current, name))
        else:
            if "event_time" in paths:
                self._writable(request.finding)        # the event_time rule
            updated = self.t.Finding(current)
            whole = [p for p in paths if not p.startswith("source_properties.") and p not in OUTPUT_ONLY]
            if whole:                       # a map or message named whole is replaced, an unset one cleared
                from google.protobuf import field_mask_pb2
                field_mask_pb2.FieldMask(paths=whole).MergeMessage(
                    self.t.Finding.pb(request.finding), self.t.Finding.pb(updated),
                    replace_message_field=True, replace_repeated_field=True)
            for path in paths:
                if path.startswith("source_properties."):
                    key = path.split(".", 1)[1]
                    if key in request.finding.source_properties:
                        updated.source_properties[key] = request.finding.source_properties[key]
                    elif key in updated.source_properties:
                        del updated.source_properties[key]
        updated.name = updated.canonical_name = full
        updated.parent = full.rsplit("/findings/", 1)[0]
        if current is None:
            updated.create_time = _now()
            updated.state = self.t.Finding.State.ACTIVE
        self.state.findings[full] = updated
        return updated

    @staticmethod
    def _immutable_kept(current: Any, requested: Any, paths: list[str]) -> None:
        """AIP-203: an immutable field sent unchanged is ignored, a change is INVALID_ARGUMENT."""
        for name in IMMUTABLE:
            if (not paths or name in paths) and getattr(requested, name) and \
                    getattr(requested, name) != getattr(current, name):
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name} is immutable: cannot change "
                             f"{getattr(current, name)!r} to {getattr(requested, name)!r}")

    def _writable(self, requested: Any) -> Any:
        """The finding as a create/update request gives it: output-only fields dropped, event_time checked."""
        finding = self.t.Finding(requested)
        for name in OUTPUT_ONLY:
            finding.__delattr__(name)
        if not 1 <= len(finding.resource_name) <= 255:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         "ResourceName is invalid. It must be less than 256 characters and at least 1 character.")
        if finding.external_uri and not _web_url(finding.external_uri):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"external_uri {finding.external_uri!r} is not a well formed URL")
        if "event_time" in finding and finding.event_time > _now():
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         "event_time must not be set to a value greater than the current timestamp")
        return finding

    def SetFindingState(self, request: Any) -> Any:  # noqa: N802
        finding = self.state.findings.get(_with_location(request.name))
        if finding is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"finding {request.name} not found")
        finding.state = request.state
        return finding

    def ListFindings(self, request: Any) -> Any:  # noqa: N802
        source, location = self._source_of(request.parent)
        prefix = "" if source.endswith("/-") else f"{source}/locations/{location}/findings/"
        org_prefix = source.rsplit("/sources/", 1)[0] + "/sources/"
        terms = []
        if request.filter.strip():
            for part in re.split(r"\s+AND\s+", request.filter.strip()):
                m = _FILTER_TERM.match(part)
                if not m:
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported filter term {part!r}")
                terms.append((m.group(1), m.group(2)))
        matched = []
        for name in sorted(self.state.findings):
            finding = self.state.findings[name]
            if not name.startswith(prefix or org_prefix):
                continue
            if all(_field_text(finding, key) == value for key, value in terms):
                matched.append(finding)
        size = request.page_size or 10
        if size > 1000:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be at most 1000")
        start = int(request.page_token or 0)
        page = matched[start:start + size]
        token = str(start + size) if start + size < len(matched) else ""
        results = [self.t.ListFindingsResponse.ListFindingsResult(finding=f) for f in page]
        return self.t.ListFindingsResponse(list_findings_results=results, next_page_token=token,
                                           total_size=len(matched))


def _web_url(text: str) -> bool:
    from urllib.parse import urlsplit
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in text)


def _with_location(name: str) -> str:
    if "/locations/" in name:
        return name
    head, _, finding_id = name.rpartition("/findings/")
    return f"{head}/locations/global/findings/{finding_id}"


def _field_text(finding: Any, key: str) -> str:
    value = getattr(finding, key)
    return value.name if hasattr(value, "name") and not isinstance(value, str) else str(value)


def _now() -> Any:
    import datetime as dt
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class SccServer:
    """A running server: `endpoint` (host:port), `ca_file`, `state`, `organization`, `source` (created)."""

    port: int
    ca_file: str
    state: SccState
    organization: str
    server: grpc.Server = field(repr=False)
    fake: FakeSecurityCenter = field(repr=False)

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    def create_source(self, display_name: str = "WIA Security") -> str:
        return self.fake.CreateSource(self.fake.t.CreateSourceRequest(
            parent=f"organizations/{self.organization}", source={"display_name": display_name})).name

    def reset(self) -> None:
        self.state.sources.clear()
        self.state.findings.clear()
        self.state.calls.clear()
        self.state.faults.clear()
        self.state.overrides.clear()

    def stop(self) -> None:
        self.server.stop(grace=None)


def start_scc(workdir: Path, organization: str = "123456789") -> SccServer:
    from google.cloud import securitycenter_v2 as types

    state = SccState()
    fake = FakeSecurityCenter(state, types)
    handlers = {}
    for rpc, (request_cls, response_cls) in method_table().items():
        handlers[rpc] = grpc.unary_unary_rpc_method_handler(
            _serve(rpc, getattr(fake, rpc, None), state),
            request_deserializer=_codec(request_cls)[0], response_serializer=_raw_or(_codec(response_cls)[1]))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    cert, key = throwaway_certificate(workdir)
    port = server.add_secure_port("localhost:0", grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())]))
    server.start()
    return SccServer(port, str(cert), state, organization, server, fake)


def _codec(cls: type) -> tuple[Callable, Callable]:
    """(deserialize, serialize) of a proto-plus class, or of a plain protobuf class (e.g. Empty)."""
    if hasattr(cls, "meta") and hasattr(cls, "pb"):
        return cls.deserialize, cls.serialize
    return cls.FromString, lambda message: message.SerializeToString()


def _raw_or(serialize: Callable) -> Callable:
    """The response serializer, passing `bytes` from an override through as they are."""
    return lambda message: message if isinstance(message, bytes) else serialize(message)


def _serve(rpc: str, impl: Callable | None, state: SccState) -> Callable:
    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        with state.lock:
            state.calls.append(rpc)
            override = next((o for o in state.overrides if o[0] == rpc), None)
            if override is not None:
                state.overrides.remove(override)
            fault = state.faults.pop(0) if state.faults and override is None else None
        if override is not None:
            def call_impl(req: Any) -> Any:
                with state.lock:
                    return impl(req)  # type: ignore[misc]
            try:
                return override[1](request, context, call_impl)
            except _Abort as exc:           # the contract's own answer, reached through call_impl
                context.abort(exc.code, exc.message)
        if fault:
            code, message, delay = fault
            if delay is None:
                context.abort(code, message)
            from google.protobuf import any_pb2, duration_pb2
            from google.rpc import error_details_pb2, status_pb2
            from grpc_status import rpc_status
            detail = any_pb2.Any()
            detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
                seconds=int(delay), nanos=int((delay % 1) * 1e9))))
            context.abort_with_status(rpc_status.to_status(status_pb2.Status(
                code=code.value[0], message=message, details=[detail])))
        if impl is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{rpc} is not part of the contract server")
        try:
            with state.lock:
                return impl(request)
        except _Abort as exc:
            context.abort(exc.code, exc.message)
    return handler


def _pytest_fixtures() -> Any:
    import pytest

    @pytest.fixture(scope="session")
    def scc_server(tmp_path_factory: Any) -> Any:
        server = start_scc(tmp_path_factory.mktemp("scc-tls"))
        yield server
        server.stop()

    @pytest.fixture
    def scc(scc_server: SccServer) -> SccServer:
        scc_server.reset()
        return scc_server

    return scc_server, scc


scc_server, scc = _pytest_fixtures()
