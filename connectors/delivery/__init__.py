"""The shared delivery machinery: batching, retries with backoff, per-item outcomes, dead letters, fan-out.

Connector authors subclass `BatchingSink` (see docs/connectors/delivery.md):

    class AcmeSink(BatchingSink):
        max_batch_events = ACME_MAX_EVENTS_PER_REQUEST      # product limits: named constants
        max_batch_bytes = ACME_MAX_REQUEST_BYTES
        item_separator = b"\\n"

        def encode(self, event): return jsonio.dumpb(to_acme(event))
        def post(self, batch):                              # one request
            r = self.session.post(self.url, data=batch.body())
            if r.status_code != 200:
                raise error_for_response(r)                 # retryable by status, honours Retry-After
            return [Outcome.delivered() if ok else Outcome.failed(why) for ok, why in parse(r)]

`http` (requests-based helpers) is imported on use so sinks without HTTP need no requests.
"""
from __future__ import annotations

from .batching import (DELIVERED, DUPLICATE, FAILED, RETRY, Batch, BatchingSink, BatchItem, Outcome,
                       classify_exception)
from .dead_letter import DeadLetter, SinkDeadLetter, SqliteDeadLetter, open_dead_letter
from .fanout import DestinationStats, FanOut
from .policy import DeliveryPolicy, parse_retry_after

__all__ = [
    "BatchingSink", "Batch", "BatchItem", "Outcome", "DELIVERED", "DUPLICATE", "RETRY", "FAILED",
    "classify_exception", "DeliveryPolicy", "parse_retry_after", "FanOut", "DestinationStats",
    "DeadLetter", "SqliteDeadLetter", "SinkDeadLetter", "open_dead_letter",
]
