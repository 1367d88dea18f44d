"""Lambda packaging: the SAM template passes cfn-lint and grants only what the forwarder needs; the zip
runs its handler from the zip alone in a fresh venv holding only what the Lambda runtime provides
(boto3). The zip test is marked slow: it builds the package and, once, a venv cached in lambda/build/."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_DIR = ROOT / "lambda"
TEMPLATE = LAMBDA_DIR / "template.yaml"


def cfn_lint() -> str:
    exe = Path(sys.executable).with_name("cfn-lint")
    if not exe.exists():
        pytest.fail("cfn-lint is not installed (it is in the test extra)")
    return str(exe)


def template() -> dict:
    from cfnlint.decode import decode
    parsed, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return parsed


def test_template_passes_cfn_lint():
    run = subprocess.run([cfn_lint(), str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def _statements(policy_doc) -> list:
    out = []
    for statement in policy_doc["Statement"]:
        if isinstance(statement, dict) and "Fn::If" in statement:
            out += [s for s in statement["Fn::If"][1:] if isinstance(s, dict) and "Effect" in s]
        else:
            out.append(statement)
    return out


def test_template_grants_least_privilege():
    resources = template()["Resources"]
    role = resources["ForwarderRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in _statements(p["PolicyDocument"])]
    assert statements and not role.get("ManagedPolicyArns")
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), statement           # no wildcard actions
        assert statement["Resource"] != "*" and "*" != statement["Resource"], statement
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["ImportFindings"]["Action"] == "securityhub:BatchImportFindings"
    assert "product/${AWS::AccountId}/default" in by_sid["ImportFindings"]["Resource"]["Fn::Sub"]
    assert by_sid["ReadSecrets"]["Resource"] == {"Ref": "SecretArns"}
    assert by_sid["WriteDeadLetters"]["Action"] == "sqs:SendMessage"
    assert by_sid["ReadDeadLetterLimit"]["Action"] == "sqs:GetQueueAttributes"
    assert set(by_sid) == {"Logs", "ReadIngestQueue", "WriteDeadLetters", "ReadDeadLetterLimit", "ImportFindings",
                           "ReadSecrets", "ReadParameters", "ReadStream", "ReadIngestObjects", "ListIngestBucket",
                           "StreamFailures"}
    # the role may only be assumed by Lambda for this account
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_template_wires_partial_batch_responses_dead_letters_and_alarms():
    resources = template()["Resources"]
    function = resources["Forwarder"]["Properties"]
    assert function["Handler"] == "wia_lambda.handler.handler"
    assert function["Role"] == {"Fn::GetAtt": ["ForwarderRole", "Arn"]}
    assert function["Events"]["Queue"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert resources["StreamMapping"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert function["DeadLetterQueue"]["TargetArn"] == {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}
    assert resources["IngestQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == \
        {"Fn::GetAtt": ["IngestRedriveQueue", "Arn"]}
    env = function["Environment"]["Variables"]
    assert set(env) == {"WIA_CONFIG", "WIA_DEAD_LETTER", "WIA_SQS_MAX_RECEIVE_COUNT",
                        "WIA_KINESIS_FAILURE_QUEUE"}   # no secret in the environment
    # the forwarder knows the redrive policy's last receive because both come from one parameter
    assert env["WIA_SQS_MAX_RECEIVE_COUNT"] == {"Ref": "MaxReceiveCount"} == \
        resources["IngestQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    assert env["WIA_DEAD_LETTER"] == {"Ref": "DeadLetterQueue"}
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    metrics = {(a["Namespace"], a["MetricName"]) for a in alarms.values()}
    assert {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("AWS/Lambda", "IteratorAge"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/SQS", "ApproximateAgeOfOldestMessage")} <= metrics
    assert all(q["Properties"].get("SqsManagedSseEnabled") for n, q in resources.items() if q["Type"] == "AWS::SQS::Queue")
    assert resources["ForwarderUrl"]["Properties"]["AuthType"] == "AWS_IAM"
    # SQS visibility timeout at least 6x the function timeout (Lambda's guidance for SQS sources)
    assert resources["IngestQueue"]["Properties"]["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert resources["StreamFailureQueue"]["Properties"]["VisibilityTimeout"] >= 6 * function["Timeout"]


def test_the_ingest_queue_runs_a_bounded_number_of_invocations():
    """Security Hub takes 10 BatchImportFindings a second per account and Region (burst 30). Without a bound the
    SQS event source scaled up on a backlog, most imports were throttled past the retry budget, and messages used
    up MaxReceiveCount receives and were dead-lettered. MaximumConcurrency holds the backlog in the queue,
    unreceived; reserved concurrency would not (Lambda receives, then throttles, and each receive counts)."""
    parsed = template()
    queue = parsed["Resources"]["Forwarder"]["Properties"]["Events"]["Queue"]["Properties"]
    assert queue["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaxConcurrency"}}
    assert "ReservedConcurrentExecutions" not in parsed["Resources"]["Forwarder"]["Properties"]
    parameter = parsed["Parameters"]["MaxConcurrency"]
    assert (parameter["MinValue"], parameter["MaxValue"]) == (2, 1000)        # what an SQS event source takes
    # one import at a time per invocation, each a few hundred milliseconds: 3 stay about Security Hub's 10 a second
    assert parameter["Default"] == 3
    groups = parsed["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert any("MaxConcurrency" in group["Parameters"] for group in groups)


def test_template_default_config_is_one_the_forwarder_accepts():
    import tomllib

    from wia_security.connectors.config import parse_config
    default = template()["Parameters"]["DestinationsConfig"]["Default"]
    config = parse_config(tomllib.loads(default))
    assert [d.url for d in config.destinations] == ["securityhub://"]


# -- the zip, alone, in a fresh venv ----------------------------------------------------------------

def _runtime_venv() -> Path:
    """A venv with only what the Lambda runtime provides (boto3), cached under lambda/build/."""
    path = LAMBDA_DIR / "build" / f"zip-test-venv-py{sys.version_info.major}.{sys.version_info.minor}"
    python = path / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import boto3"], capture_output=True).returncode == 0:
        return path
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    run = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "boto3"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return path


@pytest.mark.slow
def test_zip_runs_its_handler_alone_in_a_fresh_venv_with_only_boto3(aws, tmp_path, samples):
    import importlib.util
    spec = importlib.util.spec_from_file_location("wia_lambda_build", LAMBDA_DIR / "build.py")
    lambda_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lambda_build)

    from wia_security import __version__
    zip_path = lambda_build.build(tmp_path / "dist", stage=tmp_path / "stage")
    assert zip_path.name == f"wia-security-lambda-{__version__}.zip"
    extracted = tmp_path / "zip"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        zf.extractall(extracted)
    assert "wia_lambda/handler.py" in names and "wia_security/connectors/aws/securityhub.py" in names
    assert not any(n.startswith(("boto3/", "botocore/")) for n in names)
    embedded = (extracted / "wia_security" / "_version.py").read_text()
    assert f'__version__ = "{__version__}"' in embedded

    python = _runtime_venv() / "bin" / "python"
    sqs = aws.client("sqs")
    sqs.create_queue(QueueName="wia-dead-letter")
    alert = samples["alert-sample"]
    event = {"Records": [
        {"messageId": "m-ok", "body": json.dumps(alert), "eventSource": "aws:sqs"},
        {"messageId": "m-bad", "body": "{truncated", "eventSource": "aws:sqs"}]}
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(extracted)!r})
        from wia_lambda.handler import handler
        print(json.dumps(handler(json.loads(sys.argv[1]), None)))
        import wia_security
        print(json.dumps({{"file": wia_security.__file__}}))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"WIA_CONFIG": '[destinations.securityhub]\nurl = "securityhub://us-east-1"\n',
                "WIA_DEAD_LETTER": "sqs://sqs.us-east-1.amazonaws.com/123456789012/wia-dead-letter"})
    run = subprocess.run([str(python), "-I", "-c", script, json.dumps(event)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert {"batchItemFailures": []} in lines
    assert any(str(line.get("file", "")).startswith(str(extracted)) for line in lines)   # the zip's own copy
    import boto3
    stored = boto3.client("securityhub", region_name="us-east-1", endpoint_url=aws.moto.url).get_findings()["Findings"]
    assert [f["Id"] for f in stored] == [alert["id"]]
    dead = sqs.receive_message(QueueUrl=sqs.get_queue_url(QueueName="wia-dead-letter")["QueueUrl"])["Messages"]
    assert json.loads(dead[0]["Body"])["where"].startswith("sqs:m-bad:")
