"""Least privilege, checked against the code: the forwarder role grants exactly the IAM actions that the
AWS calls in the forwarder's code need, plus the ones Lambda itself makes with the execution role, each
on the resources the stack creates or its parameters name. The calls are found by grepping the code
for every operation of botocore's own service models, so a new boto3 call without its permission (or
a permission no code uses any more) fails here."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_lambda_package import _statements, template

botocore = pytest.importorskip("botocore")

ROOT = Path(__file__).resolve().parents[2]
#: the code a deployed forwarder runs that calls AWS: the handler package and the AWS connectors
CODE = [*sorted((ROOT / "lambda" / "wia_lambda").rglob("*.py")),
        ROOT / "connectors" / "aws" / "dead_letter.py", ROOT / "connectors" / "aws" / "securityhub.py"]
SERVICES = ("s3", "sqs", "securityhub", "secretsmanager", "ssm", "sts", "kinesis", "logs")

#: operations authorized by another action (IAM has no sqs:SendMessageBatch)
AUTHORIZED_BY = {"sqs:SendMessageBatch": "sqs:SendMessage"}
#: actions a call needs for one of its parameters, found by that parameter in the code: GetObject of a given
#: VersionId is authorized by s3:GetObjectVersion (a resumed Kinesis record's pinned object version)
PARAMETER_ACTIONS = {"s3:GetObjectVersion": r'\["VersionId"\]\s*=|\bVersionId='}
#: calls that need no permission
NO_PERMISSION = {"sts:GetCallerIdentity"}
#: calls in the connectors that the forwarder never makes: the Security Hub sink's workflow updates and
#: reads serve other tools (`update_workflow`, `get_events`), and the S3 dead letter (the forwarder's
#: own keyed one, wia_lambda/dead_letter.py) is used only when WIA_DEAD_LETTER is changed to s3:// (the
#: template sets it to its queue); each needs its own grant
NOT_IN_THE_FORWARDER = {"securityhub:BatchUpdateFindings", "securityhub:GetFindings", "s3:PutObject"}
#: what Lambda does with the execution role on the function's behalf, by statement
PLATFORM = {
    "Logs": {"logs:CreateLogStream", "logs:PutLogEvents"},                               # the runtime's stdout
    "ReadIngestQueue": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},  # SQS event source
    "ReadStream": {"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                   "kinesis:GetShardIterator", "kinesis:ListShards"},                    # Kinesis polling
    "WriteDeadLetters": {"sqs:SendMessage"},   # the async DLQ
    # the Kinesis on-failure destination: Lambda writes a failed batch's record there, and the event source
    # mapping that hands it to the forwarder reads and deletes it (the forwarder's own SendMessage there, a
    # failure record with a resume point, stream_recovery.resume_later, needs no more than this grant)
    "StreamFailures": {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
}
#: actions no call makes that change what S3 answers the calls made: without s3:ListBucket on the bucket,
#: S3 answers a GetObject of a missing key 403 AccessDenied, not 404 NoSuchKey (GetObject, "Permissions"),
#: so a deleted object could not be named as deleted (a resumed record's pinned object was retried to its
#: last receive and given up whole)
ANSWERS = {"ListIngestBucket": {"s3:ListBucket"}}
#: which statement grants each action the code needs
CODE_STATEMENT = {"sqs:SendMessage": "WriteDeadLetters", "sqs:GetQueueAttributes": "ReadDeadLetterLimit",
                  "securityhub:BatchImportFindings": "ImportFindings",
                  "secretsmanager:GetSecretValue": "ReadSecrets", "ssm:GetParameter": "ReadParameters",
                  "s3:GetObject": "ReadIngestObjects", "s3:GetObjectVersion": "ReadIngestObjects",
                  # a failed batch read back from the stream (stream_recovery.py): the polling's own actions
                  "kinesis:GetShardIterator": "ReadStream", "kinesis:GetRecords": "ReadStream"}


def code_actions() -> set[str]:
    """`service:Operation` for every botocore operation whose method the code names (`.get_object`)."""
    import botocore.session
    from botocore import xform_name
    text = "\n".join(path.read_text() for path in CODE)
    session = botocore.session.get_session()
    found = set()
    for service in SERVICES:
        model = session.get_service_model(service)
        prefix = model.signing_name if service != "logs" else "logs"
        for operation in model.operation_names:
            # called (`.get_object(`) or handed to a retry helper (`_call(kinesis.get_records, ...)`)
            if re.search(rf"\.{xform_name(operation)}\b", text):
                found.add(f"{prefix}:{operation}")
    found |= {action for action, parameter in PARAMETER_ACTIONS.items() if re.search(parameter, text)}
    return {AUTHORIZED_BY.get(a, a) for a in found}


def granted() -> dict[str, set[str]]:
    role = template()["Resources"]["ForwarderRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in _statements(p["PolicyDocument"])]
    out: dict[str, set[str]] = {}
    for s in statements:
        assert s["Effect"] == "Allow" and s["Sid"] not in out, s
        out[s["Sid"]] = set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    return out


def test_the_code_calls_what_the_review_says():
    # the inventory this test rests on: if it changes, the role must be reviewed again
    assert code_actions() == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "sqs:SendMessage",
                              "sqs:GetQueueAttributes", "secretsmanager:GetSecretValue",
                              "ssm:GetParameter", "securityhub:BatchImportFindings", "securityhub:BatchUpdateFindings",
                              "securityhub:GetFindings", "sts:GetCallerIdentity",
                              "kinesis:GetShardIterator", "kinesis:GetRecords"}
    forwarder = "\n".join(p.read_text() for p in (ROOT / "lambda" / "wia_lambda").rglob("*.py"))
    assert "update_workflow" not in forwarder and "get_events" not in forwarder


def test_each_statement_grants_exactly_what_code_or_platform_needs():
    needed: dict[str, set[str]] = {sid: set(actions) for sid, actions in {**PLATFORM, **ANSWERS}.items()}
    for action in code_actions() - NO_PERMISSION - NOT_IN_THE_FORWARDER:
        needed.setdefault(CODE_STATEMENT[action], set()).add(action)
    # before: sqs:ChangeMessageVisibility (the event source mapping never calls it) and
    # kinesis:SubscribeToShard (enhanced fan-out only, which the stack does not set up) were granted
    assert granted() == needed


def test_each_statement_names_its_resources():
    role = template()["Resources"]["ForwarderRole"]["Properties"]
    statements = {s["Sid"]: s for p in role["Policies"] for s in _statements(p["PolicyDocument"])}
    resources = {sid: s["Resource"] for sid, s in statements.items()}
    assert resources["Logs"] == {"Fn::Sub": "${ForwarderLogGroup.Arn}:log-stream:*"}
    assert resources["ReadIngestQueue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert resources["WriteDeadLetters"] == [{"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                                             {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}]
    # the dead letter's size limit is read from its own queue only (connectors/aws/dead_letter.py)
    assert resources["ReadDeadLetterLimit"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert resources["ImportFindings"] == {"Fn::Sub": "arn:${AWS::Partition}:securityhub:${AWS::Region}:"
                                                      "${AWS::AccountId}:product/${AWS::AccountId}/default"}
    assert resources["ReadSecrets"] == {"Ref": "SecretArns"}
    assert resources["ReadParameters"] == {"Ref": "SsmParameterArns"}
    assert resources["ReadStream"] == {"Ref": "KinesisStreamArn"}
    assert resources["StreamFailures"] == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    assert resources["ReadIngestObjects"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::StackName}-ingest-${AWS::AccountId}-${AWS::Region}/*"}
    # s3:ListBucket on the ingest bucket itself, not its objects nor any other bucket
    assert resources["ListIngestBucket"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::StackName}-ingest-${AWS::AccountId}-${AWS::Region}"}
    # the bucket the grants name is the one the stack creates, and they exist with it
    bucket = template()["Resources"]["IngestBucket"]["Properties"]["BucketName"]
    assert bucket == {"Fn::Sub": "${AWS::StackName}-ingest-${AWS::AccountId}-${AWS::Region}"}
    conditions = {branch[1]["Sid"]: branch[0] for s in role["Policies"][0]["PolicyDocument"]["Statement"]
                  if isinstance(s, dict) and "Fn::If" in s for branch in [s["Fn::If"]]}
    assert conditions["ListIngestBucket"] == conditions["ReadIngestObjects"] == "CreateBucket"


def test_the_function_timeout_fits_the_delivery_budget():
    """The arithmetic of docs/cloud/aws.md: one chunk of events (the relay's, one Security Hub request)
    may take the delivery budget plus one last attempt; the handler keeps that much in reserve, and the
    function's timeout leaves at least as much again to work in. Before: a 60 s timeout against a 60 s
    Security Hub answer wait, and chunks of 500 events (5 requests between two deadline checks)."""
    import sys
    sys.path.insert(0, str(ROOT / "lambda"))
    from wia_lambda.handler import DEFAULT_TIME_RESERVE
    from wia_lambda.settings import LAMBDA_CHUNK_EVENTS, LAMBDA_DELIVERY

    from wia_security.connectors.aws.securityhub import DEFAULT_TIMEOUT, MAX_BATCH_FINDINGS
    resources = template()["Resources"]
    timeout = resources["Forwarder"]["Properties"]["Timeout"]
    assert LAMBDA_CHUNK_EVENTS <= MAX_BATCH_FINDINGS                 # one request between deadline checks
    one_chunk = LAMBDA_DELIVERY["max_elapsed"] + DEFAULT_TIMEOUT     # retries, then a last attempt that hangs
    assert one_chunk < DEFAULT_TIME_RESERVE <= timeout / 2
    window = resources["Forwarder"]["Properties"]["Events"]["Queue"]["Properties"]["MaximumBatchingWindowInSeconds"]
    assert resources["IngestQueue"]["Properties"]["VisibilityTimeout"] >= 6 * timeout + window


def test_the_stream_failure_grant_is_the_queue_the_mappings_use_and_exists_with_it():
    """Lambda sends a failed batch's record to the mapping's on-failure destination, and the second
    mapping hands it to the forwarder: both name the one queue StreamFailures grants, and the grant, the
    queue, both mappings and the forwarder's WIA_KINESIS_FAILURE_QUEUE exist only with a stream."""
    resources = template()["Resources"]
    queue = {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    assert resources["StreamMapping"]["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == queue
    assert resources["StreamFailureMapping"]["Properties"]["EventSourceArn"] == queue
    assert resources["StreamFailureMapping"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    policy = resources["ForwarderRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    conditions = {branch[1]["Sid"]: branch[0] for s in policy["Statement"] if isinstance(s, dict) and "Fn::If" in s
                  for branch in [s["Fn::If"]]}
    assert conditions["StreamFailures"] == conditions["ReadStream"] == "HasKinesis"
    for name in ("StreamFailureQueue", "StreamMapping", "StreamFailureMapping"):
        assert resources[name]["Condition"] == "HasKinesis", name
    env = resources["Forwarder"]["Properties"]["Environment"]["Variables"]
    assert env["WIA_KINESIS_FAILURE_QUEUE"] == {"Fn::If": ["HasKinesis", queue, ""]}
    # a failed batch's range is the batch's records only with ParallelizationFactor 1 (stream_recovery.py)
    assert resources["StreamMapping"]["Properties"].get("ParallelizationFactor", 1) == 1
    # the forwarder writes a resumed failure record to WIA_KINESIS_FAILURE_QUEUE (above), the queue granted here
    assert "sqs:SendMessage" in granted()["StreamFailures"]
    # a failure record that can be neither recovered nor dead-lettered ends where it went before
    redrive = resources["StreamFailureQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]},
                       "maxReceiveCount": {"Ref": "MaxReceiveCount"}}
