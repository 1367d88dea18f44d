"""Path 4: an SQS batch (messages from a moto queue) -> the Lambda forwarder's handler (in process, HEC token from
moto's Secrets Manager) -> the gateway's HEC endpoint -> the XSOAR pack's fetch-incidents against the gateway's
feed (the integration loaded as XSOAR loads it, with the pack tests' stand-ins for demistomock). Every message is
counted (an incident, or in the SQS dead letter with its reason), and each incident carries its event unchanged,
the severity and the indicators the project's own XSOAR mapping gives (connectors/soar/mapping.py)."""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
import uuid
from pathlib import Path

import pytest
from e2e_helpers import TOKEN, expected
from strategies import event_dicts

pytest.importorskip("boto3", reason="the aws extra is not installed")
pytest.importorskip("starlette", reason="the server extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "lambda", ROOT / "tests" / "lambda", ROOT / "tests" / "xsoar_pack" / "stubs"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import demistomock  # noqa: E402
import lambda_events as shapes  # noqa: E402
from servers.moto import aws, moto_session  # noqa: E402,F401  (fixtures)

from wia_security.connectors.gateway import GatewaySettings  # noqa: E402
from wia_security.connectors.gateway.server import GatewayServer  # noqa: E402
from wia_security.connectors.soar.mapping import xsoar_custom_fields, xsoar_severity  # noqa: E402

INTEGRATION = ROOT / "xsoar_pack" / "Packs" / "WIASecurity" / "Integrations" / "WIASecurity" / "WIASecurity.py"


def load_integration():
    spec = importlib.util.spec_from_file_location("WIASecurityE2E", INTEGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fetch(integration, gw, last_run: dict | None) -> tuple[list[dict], dict]:
    params = {"url": gw.url, "source_type": "gateway", "credentials": {"identifier": "", "password": TOKEN},
              "max_fetch": "200", "incidentType": "WIA Security Event", "first_fetch": ""}
    demistomock.reset(params=params, args={}, command="fetch-incidents", last=last_run)
    try:
        integration.main()
    except SystemExit:
        pass
    assert not [m for level, m in demistomock.logs if level == "error"], demistomock.logs
    return demistomock.incidents_out[-1], demistomock.last_run


def with_indicators(events: list[dict]) -> list[dict]:
    """Alerts and threat intel carry data.indicators, incidents data.iocs: one of each shape repeats an indicator."""
    out = copy.deepcopy(events)
    for event in out:
        listed = event.get("data", {}).get("indicators") or event.get("data", {}).get("iocs")
        if listed:
            listed.append(dict(listed[0]))
            break
    return out


def test_lambda_to_gateway_hec_to_xsoar_fetch(aws, tmp_path, monkeypatch):  # noqa: F811
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/gateway.db",
                                       dead_letter=str(tmp_path / "gateway-dead.ndjson"), taxii=False)).start()
    try:
        arn = aws.client("secretsmanager").create_secret(Name="wia/gateway-hec",
                                                          SecretString=json.dumps({"token": TOKEN}))["ARN"]
        sqs = aws.client("sqs")
        dead_queue = sqs.create_queue(QueueName="wia-dead-letter")["QueueUrl"]
        ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
        events = with_indicators([*event_dicts(8, seed=1430, event_type="alert"),
                                  *event_dicts(4, seed=1431, event_type="incident"),
                                  *event_dicts(4, seed=1432, event_type="threat_intel"),
                                  *event_dicts(4, seed=1433)])
        for i, event in enumerate(events):                    # every severity band, fractions at the edges
            event["severity"] = [0, 0.5, 1, 3.9, 4, 6.99, 7, 8.5, 9, 10][i % 10]
        invalid = {**event_dicts(1, seed=1434)[0], "severity": 11}
        bodies = [json.dumps(e) for e in events[:10]] + ['{"id": "cut', json.dumps(invalid)]
        bodies += ["\n".join(json.dumps(e) for e in events[10:])]          # one message of NDJSON
        event = shapes.sqs_event(sqs, ingest, bodies)
        monkeypatch.setenv("WIA_CONFIG", f'[destinations.gateway]\nurl = "splunk+http://127.0.0.1:{gw.port}"\n'
                                         f'token_secretsmanager = "{arn}#token"\nack = true\n')
        monkeypatch.setenv("WIA_DEAD_LETTER", f"sqs://sqs.us-east-1.amazonaws.com/123456789012/wia-dead-letter")
        from wia_lambda import handler as module
        module.reset()
        try:
            response = module.handler(event, None)
        finally:
            module.reset()
        assert response == {"batchItemFailures": []}
        dead = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=dead_queue, MaxNumberOfMessages=10)["Messages"]]

        integration = load_integration()
        incidents, state = fetch(integration, gw, None)
        again, _ = fetch(integration, gw, state)
    finally:
        gw.stop()

    # counted: 20 events as incidents, the cut message and the invalid event in the dead letter with reasons
    assert len(dead) == 2, dead
    reasons = " ".join(json.dumps(d) for d in dead)
    assert "/severity" in reasons and invalid["id"] in reasons
    assert again == []                                    # a second fetch: nothing twice
    by_id = {json.loads(i["rawJSON"])["id"]: i for i in incidents}
    assert sorted(by_id) == sorted(e["id"] for e in events)
    for sent in events:
        incident = by_id[sent["id"]]
        assert json.loads(incident["rawJSON"]) == expected(sent)
        assert incident["severity"] == xsoar_severity(sent), (sent["severity"], incident["severity"])
        assert (incident.get("CustomFields") or {}).get("wiaindicators") == xsoar_custom_fields(sent).get("wiaindicators"), sent["id"]
    assert uuid.UUID(incidents[0]["dbotMirrorId"])
