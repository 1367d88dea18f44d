"""Lambda invocation events in the documented shapes, built from what moto actually holds where a
service is involved (SQS messages received from a moto queue, Kinesis records read from a moto
stream, S3 notifications naming objects in a moto bucket)."""
from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import quote_plus

REGION = "us-east-1"
ACCOUNT = "123456789012"


def sqs_event(sqs: Any, queue_url: str, bodies: list[str]) -> dict[str, Any]:
    """Send `bodies` to a moto queue, receive them, and shape them as the SQS event source does."""
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    received: list[dict[str, Any]] = []
    while len(received) < len(bodies):
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        received += got.get("Messages", [])
    by_body = {}
    for m in received:
        by_body.setdefault(m["Body"], []).append(m)
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_url.rsplit('/', 1)[-1]}"
    records = []
    for body in bodies:                         # keep the order the test wrote them in
        m = by_body[body].pop(0)
        records.append({
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION,
        })
    return {"Records": records}


def kinesis_event(kinesis: Any, stream: str, blobs: list[bytes]) -> dict[str, Any]:
    """Put `blobs` on a moto stream (one shard), read them back, and shape them as the Kinesis event source does."""
    for i, blob in enumerate(blobs):
        kinesis.put_record(StreamName=stream, Data=blob, PartitionKey=str(i))
    shard = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = kinesis.get_records(ShardIterator=iterator, Limit=len(blobs))["Records"]
    arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream}"
    return {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"], "data": base64.b64encode(r["Data"]).decode(),
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp()},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{shard}:{r['SequenceNumber']}",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/wia-forwarder",
        "awsRegion": REGION, "eventSourceARN": arn} for r in got]}


def s3_notification(bucket: str, keys: list[str], sizes: list[int] | None = None) -> dict[str, Any]:
    """An S3 event notification (keys URL-encoded as S3 sends them: spaces as '+')."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2025-12-14T09:30:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"}, "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "wia-ingest",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key, safe="/"), "size": (sizes or [0] * len(keys))[i],
                          "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}},
    } for i, key in enumerate(keys)]}


def eventbridge_event(detail: Any, *, source: str = "wia.security", detail_type: str = "WIA Security Event") -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
            "account": ACCOUNT, "time": "2025-12-14T09:30:00Z", "region": REGION, "resources": [],
            "detail": detail}


def s3_object_created(bucket: str, key: str) -> dict[str, Any]:
    return eventbridge_event({"version": "0", "bucket": {"name": bucket},
                              "object": {"key": key, "size": 10, "etag": "abc", "sequencer": "1"},
                              "request-id": "N4N7GDK58NMKJ12R", "requester": ACCOUNT, "reason": "PutObject"},
                             source="aws.s3", detail_type="Object Created")


def function_url_event(body: bytes | str, *, method: str = "POST", base64_body: bool = False,
                       headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A Lambda Function URL (payload format 2.0) request."""
    raw = body if isinstance(body, bytes) else body.encode()
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/x-ndjson", **(headers or {})},
        "requestContext": {"accountId": "anonymous", "apiId": "abcdefghijklmnop",
                           "domainName": "abcdefghijklmnop.lambda-url.us-east-1.on.aws",
                           "http": {"method": method, "path": "/", "protocol": "HTTP/1.1",
                                    "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
                           "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
                           "time": "14/Dec/2025:09:30:00 +0000", "timeEpoch": 1765704600000},
        "body": base64.b64encode(raw).decode() if base64_body else raw.decode(),
        "isBase64Encoded": base64_body,
    }


def api_gateway_v1_event(body: str, *, method: str = "POST") -> dict[str, Any]:
    """An API Gateway REST API (payload format 1.0) proxy request."""
    return {"resource": "/events", "path": "/events", "httpMethod": method,
            "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
            "queryStringParameters": None, "pathParameters": None, "stageVariables": None,
            "requestContext": {"resourceId": "123456", "resourcePath": "/events", "httpMethod": method,
                               "stage": "prod", "requestId": str(uuid.uuid4()), "accountId": ACCOUNT,
                               "identity": {"sourceIp": "203.0.113.7"}},
            "body": body, "isBase64Encoded": False}


def sns_envelope(message: str) -> str:
    return json.dumps({"Type": "Notification", "MessageId": str(uuid.uuid4()),
                       "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:wia-events", "Message": message,
                       "Timestamp": "2025-12-14T09:30:00.000Z", "SignatureVersion": "1"})


class LambdaContext:
    """The parts of Lambda's context object the handler reads: a request id and the time left."""

    def __init__(self, seconds: float) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))
