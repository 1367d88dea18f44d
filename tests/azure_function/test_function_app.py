"""Azure Function (v2 model): the functions called through `function_app.<fn>.build().get_user_function()`
with `azure.functions` objects, delivering through the real azure-monitor-ingestion and azure-identity
clients to the Sentinel TLS contract server (managed identity from its App Service identity endpoint)."""
from __future__ import annotations

import copy
import gzip
import json
import sys
import uuid
from pathlib import Path

import pytest

func = pytest.importorskip("azure.functions", reason="the azure extra is not installed")

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401

from wia_security import validate_event  # noqa: E402
from wia_security.connectors.azure.sentinel import COLUMNS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "azure_function"
DCR = "dcr-00000000000000000000000000000000"


class Out:
    """The output-binding object the Functions host passes (func.Out is the abstract interface)."""

    def __init__(self) -> None:
        self.value = None

    def set(self, value) -> None:
        self.value = value

    def get(self):
        return self.value

    def records(self) -> list[dict]:
        return [json.loads(line) for line in (self.value or "").splitlines()]


class RetryContext:
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self.retry_count, self.max_retry_count = retry_count, max_retry_count


class Context:
    def __init__(self, retry_count: int = 0, max_retry_count: int = 5) -> None:
        self.invocation_id = str(uuid.uuid4())
        self.function_name = "eventhub_to_sentinel"
        self.retry_context = RetryContext(retry_count, max_retry_count)


@pytest.fixture
def app(sentinel, monkeypatch):
    monkeypatch.syspath_prepend(str(FUNCTION_DIR))
    monkeypatch.setenv("WIA_SENTINEL_ENDPOINT", sentinel.endpoint)
    monkeypatch.setenv("WIA_SENTINEL_DCR_ID", DCR)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sentinel.ca_file)       # trust the contract server's throwaway CA
    monkeypatch.delenv("WIA_CONFIG", raising=False)
    import function_app
    function_app._runtime.clear()
    yield function_app
    sink = function_app._runtime.get("sink")
    if sink is not None:
        sink.close()
    function_app._runtime.clear()


def hub_event(body: bytes, seq: int) -> func.EventHubEvent:
    return func.EventHubEvent(body=body, partition_key="p0", sequence_number=seq, offset=str(seq * 100))


def fresh(event: dict) -> dict:
    event = copy.deepcopy(validate_event(event, lenient=True).event)
    event["id"] = str(uuid.uuid4())
    return event


def test_eventhub_batch_lands_in_sentinel_and_rejects_are_dead_lettered(app, sentinel, samples):
    fn = app.eventhub_to_sentinel.build().get_user_function()
    one = fresh(samples["alert-sample"])
    many = [fresh(samples["network-event-sample"]) for _ in range(3)]
    invalid = copy.deepcopy(one)
    invalid["id"] = "not-a-uuid"
    events = [hub_event(json.dumps(one).encode(), 1),
              hub_event(gzip.compress("\n".join(json.dumps(e) for e in many).encode()), 2),
              hub_event(b"{oops", 3),
              hub_event(json.dumps(invalid).encode(), 4)]
    out = Out()
    fn(events=events, deadletter=out, context=Context())
    rows = sentinel.state.rows[(DCR, "Custom-WIASecurity")]
    assert sorted(r["EventId"] for r in rows) == sorted([one["id"], *(e["id"] for e in many)])
    dead = out.records()
    assert [d["where"] for d in dead] == ["eventhub:p0:3:1", "eventhub:p0:4:1"]
    assert dead[0]["reason"].startswith("unparseable input") and dead[1]["reason"].startswith("invalid: /id")
    assert sentinel.state.token_requests[0]["resource"] == "https://monitor.azure.com"


def test_eventhub_retryable_failure_raises_then_dead_letters_on_the_last_retry(app, sentinel, samples):
    fn = app.eventhub_to_sentinel.build().get_user_function()
    event = fresh(samples["incident-sample"])
    sentinel.state.fail_next(503, times=100, retry_after="0")
    with pytest.raises(RuntimeError, match="must be retried"):
        fn(events=[hub_event(json.dumps(event).encode(), 7)], deadletter=Out(), context=Context(0, 5))
    out = Out()
    fn(events=[hub_event(json.dumps(event).encode(), 7)], deadletter=out, context=Context(5, 5))
    dead = out.records()
    assert len(dead) == 1 and dead[0]["event"]["id"] == event["id"]
    assert dead[0]["reason"].startswith("gave up after 6 attempt(s)") and "503" in dead[0]["reason"]


def test_http_trigger_answers_per_value(app, sentinel, samples):
    fn = app.http_to_sentinel.build().get_user_function()
    good = [fresh(samples["alert-sample"]), fresh(samples["vulnerability-sample"])]
    body = (json.dumps(good[0]) + "\n" + '{"version": "1.0.0"}' + "\n" + json.dumps(good[1]) + "\n").encode()
    out = Out()
    response = fn(req=func.HttpRequest(method="POST", url="/api/events", body=body), deadletter=out)
    assert response.status_code == 200
    answer = json.loads(response.get_body())
    assert answer["accepted"] == 2 and answer["delivered"] == 2 and [r["index"] for r in answer["rejected"]] == [1]
    assert len(out.records()) == 1
    assert sorted(r["EventId"] for r in sentinel.state.all_rows()) == sorted(g["id"] for g in good)


def test_http_trigger_503_names_values_to_resend(app, sentinel, samples):
    fn = app.http_to_sentinel.build().get_user_function()
    sentinel.state.fail_next(429, times=100, retry_after="0", code="TooManyRequests")
    event = fresh(samples["alert-sample"])
    response = fn(req=func.HttpRequest(method="POST", url="/api/events", body=json.dumps([event]).encode()),
                  deadletter=Out())
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert json.loads(response.get_body())["retry"] == [0]
    get = fn(req=func.HttpRequest(method="GET", url="/api/events", body=b""), deadletter=Out())
    assert get.status_code == 405


def test_functions_are_declared_for_the_host(app):
    """What the worker's indexer hands the host (function.json equivalents) and the retry policy."""
    functions = {f.get_function_name(): f for f in app.app.get_functions()}
    assert set(functions) == {"eventhub_to_sentinel", "http_to_sentinel"}
    hub = json.loads(functions["eventhub_to_sentinel"].get_function_json())["bindings"]
    trigger = next(b for b in hub if b["type"] == "eventHubTrigger")
    assert trigger["cardinality"] == "MANY" and trigger["connection"] == "WIA_EVENTHUB"
    assert trigger["eventHubName"] == "%WIA_EVENTHUB_NAME%"
    assert any(b["type"] == "blob" and b["direction"] == "OUT" and b["path"].startswith("wia-dead-letter/") for b in hub)
    retry = functions["eventhub_to_sentinel"].get_settings_dict("retry_policy")
    assert retry["strategy"] == "exponential_backoff" and retry["max_retry_count"] == "5"
    http = json.loads(functions["http_to_sentinel"].get_function_json())["bindings"]
    route = next(b for b in http if b["type"] == "httpTrigger")
    assert route["methods"] == ["POST"] and route["authLevel"] == "FUNCTION" and route["route"] == "events"


# -- the ARM template --------------------------------------------------------------------------------

def test_arm_template_matches_the_connector_and_grants_least_privilege():
    template = json.loads((FUNCTION_DIR / "deploy" / "sentinel.json").read_text())
    resources = {r["type"]: r for r in template["resources"] if r["type"] != "Microsoft.Authorization/roleAssignments"}
    table = resources["Microsoft.OperationalInsights/workspaces/tables"]["properties"]["schema"]["columns"]
    assert [(c["name"], c["type"]) for c in table] == \
        [(n, "dateTime" if t == "datetime" else t) for n, t, _ in COLUMNS]
    dcr = resources["Microsoft.Insights/dataCollectionRules"]["properties"]
    stream = dcr["streamDeclarations"]["Custom-WIASecurity"]["columns"]
    assert [(c["name"], c["type"]) for c in stream] == [(n, t) for n, t, _ in COLUMNS]
    flow = dcr["dataFlows"][0]
    assert flow["transformKql"] == "source" and flow["outputStream"] == "[format('Custom-{0}', variables('tableName'))]"
    assert template["variables"]["tableName"] == "WIASecurity_CL" and template["variables"]["streamName"] == "Custom-WIASecurity"
    roles = [r for r in template["resources"] if r["type"] == "Microsoft.Authorization/roleAssignments"]
    # Monitoring Metrics Publisher on the DCR only; Sentinel Responder on the workspace only when asked
    assert "3913510d-42f4-4e42-8a64-420c390055eb" in template["variables"]["monitoringMetricsPublisher"]
    assert "3e150937-b8fe-4cfb-8069-0eaf05ecd056" in template["variables"]["sentinelResponder"]
    assert roles[0]["scope"].startswith("[format('Microsoft.Insights/dataCollectionRules/")
    assert roles[1]["condition"] == "[parameters('grantIncidentResponder')]"
    assert set(template["outputs"]) == {"WIA_SENTINEL_ENDPOINT", "WIA_SENTINEL_DCR_ID", "WIA_SENTINEL_STREAM"}
    text = json.dumps(template)
    assert text.count("[") == text.count("]") and "password" not in text.lower() and "secret" not in text.lower()


def test_host_json_and_requirements():
    host = json.loads((FUNCTION_DIR / "host.json").read_text())
    assert host["version"] == "2.0" and host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    # Adaptive sampling drops telemetry of any type it is not told to keep: the "gave up", "rejected" and
    # configuration-error lines (traces) and exceptions are how an operator learns of dead letters.
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert {"Request", "Trace", "Exception"} <= set(sampling["excludedTypes"].split(";")), sampling
    requirements = (FUNCTION_DIR / "requirements.txt").read_text()
    for name in ("azure-functions", "azure-identity", "azure-monitor-ingestion", "azure-mgmt-securityinsight"):
        assert name in requirements
    sys.modules.pop("function_app", None)


#: Gzip that zlib cannot inflate ("invalid code lengths set"), a cut-off member, and a bomb (> 64 MiB inflated).
CORRUPT_GZIP = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage-garbage"
GZIP_BOMB = gzip.compress(b"\0" * (65 * 1024 * 1024), compresslevel=9)


def test_eventhub_poison_gzip_events_are_dead_lettered_not_retried_forever(app, sentinel, samples):
    fn = app.eventhub_to_sentinel.build().get_user_function()
    good, kept = fresh(samples["alert-sample"]), fresh(samples["alert-sample"])
    # a cut-off body: the events of its whole lines are delivered, the line it broke in is dead-lettered
    cut = gzip.compress(json.dumps(kept).encode() + b"\n" + json.dumps(good).encode())[:-12]
    events = [hub_event(CORRUPT_GZIP, 1), hub_event(cut, 2), hub_event(GZIP_BOMB, 3),
              hub_event(json.dumps(good).encode(), 4)]
    out = Out()
    fn(events=events, deadletter=out, context=Context())          # no exception: nothing to retry
    assert [r["EventId"] for r in sentinel.state.rows[(DCR, "Custom-WIASecurity")]] == [kept["id"], good["id"]]
    dead = out.records()
    assert [d["where"] for d in dead] == ["eventhub:p0:1:1", "eventhub:p0:2:2", "eventhub:p0:3:0"]
    assert "corrupt gzip data before the first line of eventhub:p0:1" in dead[0]["reason"]
    assert "the gzip stream is truncated in line 2 of eventhub:p0:2" in dead[1]["reason"]
    assert json.dumps(good).startswith(dead[1]["raw"]) and len(dead[1]["raw"]) > 100     # the torn line's bytes
    assert "inflates beyond 67,108,864 bytes" in dead[2]["reason"]
