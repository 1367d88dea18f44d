"""An SQS contract layer in front of moto for the message size limits as SQS documents them.

moto checks a message against its queue's MaximumMessageSize in characters (`len` of the body), refuses a
whole SendMessageBatch (400) for one entry over it, and bounds a batch by 1 MiB whatever the queue. SQS
counts bytes: "the message size includes the message body and any message attributes" (UTF-8), and
refuses a message over the queue's MaximumMessageSize with 400 InvalidParameterValue "One or more
parameters are invalid. Reason: Message must be shorter than N bytes." (N: the queue's limit). How it
refuses one such entry of a SendMessageBatch has been reported both ways, so the layer does either:
`batch_entry="failed"` answers the batch 200 with that entry in `Failed` (InvalidParameterValue,
SenderFault; as a real queue answered in localstack/localstack#8570) and bounds the batch's bytes together
by SQS's own limit (1 MiB); `batch_entry="whole"` bounds them by the queue's MaximumMessageSize, so such an
entry refuses the whole call (as floci-io/floci#894 reports). Over the bound: 400 BatchRequestTooLong
"Batch requests cannot be longer than N bytes. You have sent M bytes.".

`get_queue_attributes=False` answers GetQueueAttributes 400 AccessDenied, as SQS does to a role without
sqs:GetQueueAttributes on the queue. boto3 reaches the layer through AWS_ENDPOINT_URL_SQS (JSON protocol);
tests that rely on it say "contract" in their names."""
from __future__ import annotations

import json
from typing import Any

from servers.fault_proxy import FaultProxy

JSON = "application/x-amz-json-1.0"
#: SQS's largest message and batch since 2025
SQS_MAX_BYTES = 1_048_576


def _error(query_code: str, type_name: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return 400, {"Content-Type": JSON, "x-amzn-query-error": f"{query_code};Sender"}, json.dumps(
        {"__type": f"com.amazonaws.sqs#{type_name}", "message": message}).encode()


def too_long(limit: int) -> str:
    return f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."


def message_bytes(entry: dict[str, Any]) -> int:
    """A message's size as SQS counts it: its body's UTF-8 bytes and each attribute's name, type and value."""
    size = len(str(entry.get("MessageBody", "")).encode("utf-8", "surrogatepass"))
    for name, attribute in (entry.get("MessageAttributes") or {}).items():
        value = attribute.get("StringValue") or attribute.get("BinaryValue") or ""
        size += len(name.encode()) + len(str(attribute.get("DataType", "")).encode()) + len(str(value).encode())
    return size


class SqsLimits(FaultProxy):
    def __init__(self, upstream: str, *, batch_entry: str = "failed", get_queue_attributes: bool = True) -> None:
        super().__init__(upstream)
        self.upstream_url = upstream
        self._moto_sqs: Any = None              # the queues' MaximumMessageSize is read from moto directly
        assert batch_entry in ("failed", "whole")
        self.batch_entry, self.get_queue_attributes = batch_entry, get_queue_attributes
        self.refused: list[tuple[str, int]] = []          # (operation, bytes) of each refusal, in order
        self.attribute_reads = 0

    def _limit_of(self, queue_url: str) -> int:
        import boto3
        with self.lock:
            if self._moto_sqs is None:
                self._moto_sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=self.upstream_url)
        attributes = self._moto_sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MaximumMessageSize"])["Attributes"]
        return int(attributes["MaximumMessageSize"])

    def _refuse(self, operation: str, size: int, answer: tuple[int, dict[str, str], bytes]) -> tuple[int, dict[str, str], bytes]:
        self._count(operation, size)
        return answer

    def _count(self, operation: str, size: int) -> None:
        with self.lock:
            self.refused.append((operation, size))

    def forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
        if target == "AmazonSQS.GetQueueAttributes":
            with self.lock:
                self.attribute_reads += 1
            if not self.get_queue_attributes:
                return _error("AccessDenied", "AccessDeniedException", "Access to the resource "
                              f"{json.loads(body).get('QueueUrl')} is denied.")
        if target == "AmazonSQS.SendMessage":
            request = json.loads(body)
            size, limit = message_bytes(request), self._limit_of(request["QueueUrl"])
            if size > limit:
                return self._refuse("SendMessage", size, _error("InvalidParameterValue", "InvalidParameterValue",
                                                                too_long(limit)))
        if target == "AmazonSQS.SendMessageBatch":
            return self._batch(method, path, headers, json.loads(body))
        return super().forward(method, path, headers, body)

    def _batch(self, method: str, path: str, headers: Any, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        limit = self._limit_of(request["QueueUrl"])
        entries = request.get("Entries") or []
        sizes = [message_bytes(entry) for entry in entries]
        over = [entry for entry, size in zip(entries, sizes) if size > limit]
        bound = limit if self.batch_entry == "whole" else SQS_MAX_BYTES
        if sum(sizes) > bound:
            return self._refuse("SendMessageBatch", sum(sizes), _error(
                "AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong",
                f"Batch requests cannot be longer than {bound} bytes. You have sent {sum(sizes)} bytes."))
        if not over:
            return super().forward(method, path, headers, json.dumps(request).encode())
        # batch_entry "failed": the entries within the limit are sent, the one over it answered in Failed
        for entry in over:
            self._count("SendMessageBatch entry", message_bytes(entry))
        kept = [entry for entry in entries if entry not in over]
        answer: dict[str, Any] = {"Successful": [], "Failed": [
            {"Id": entry["Id"], "SenderFault": True, "Code": "InvalidParameterValue", "Message": too_long(limit)}
            for entry in over]}
        if kept:
            status, out, data = super().forward(method, path, headers, json.dumps({**request, "Entries": kept}).encode())
            if status != 200:
                return status, out, data
            stored = json.loads(data)
            answer["Successful"] = stored.get("Successful", [])
            answer["Failed"] += stored.get("Failed", [])
        return 200, {"Content-Type": JSON}, json.dumps(answer).encode()
