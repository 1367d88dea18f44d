"""The delivery machinery itself: batching by count/bytes/time, retries, per-item outcomes, accounting.

A scripted BatchingSink stands in for a product here (the machinery is what is under test); the
HTTP behaviour against a contract server is tested in tests/connectors/splunk/.
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from wia_security import jsonio
from wia_security.connectors.delivery import Batch, BatchingSink, DeliveryPolicy, Outcome
from wia_security.errors import ConfigError, DeliveryError

FAST = dict(initial_backoff=0.001, max_backoff=0.002, max_wait=0)


def events(n: int) -> list[dict[str, Any]]:
    return [{"id": str(uuid.UUID(int=i + 1)), "n": i} for i in range(n)]


class Scripted(BatchingSink):
    """Records every posted batch; `script(batch)` decides the outcomes."""

    max_batch_events = 100
    max_batch_bytes = 10_000

    def __init__(self, script=None, **kw: Any) -> None:
        kw.setdefault("delivery", DeliveryPolicy(**FAST))
        super().__init__(name="scripted", **kw)
        self.script = script or (lambda batch: None)
        self.posts: list[list[int]] = []
        self.sleeps: list[float] = []
        self._sleep = self.sleeps.append
        self.lock_seen: list[bool] = []

    def encode(self, event: dict[str, Any]) -> bytes:
        if event.get("bad"):
            raise ValueError("cannot encode this one")
        return jsonio.dumpb(event)

    def post(self, batch: Batch):
        self.posts.append([e["n"] for e in batch.events])
        return self.script(batch)


def account(reports, sent: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """(delivered event numbers are not known per report, so) check counts add up and return failed ns."""
    delivered = sum(r.delivered + r.duplicates for r in reports)
    failed = [f.event["n"] for r in reports for f in r.failed]
    assert delivered + len(failed) == len(sent), (delivered, len(failed), len(sent))
    return delivered, failed


def test_batches_by_count_and_flush_sends_the_rest():
    sink = Scripted(delivery=DeliveryPolicy(max_events=10, **FAST))
    evs = events(25)
    r1 = sink.send(evs)
    assert r1.delivered == 10           # the first batch; the second may still be in flight
    r2 = sink.flush()
    assert r2.delivered == 15 and [len(p) for p in sink.posts] == [10, 10, 5]
    assert [n for p in sink.posts for n in p] == list(range(25))       # order kept, no duplicates


def test_a_full_batch_is_posted_while_the_next_is_encoded_one_at_a_time():
    gate, posting = threading.Event(), threading.Event()
    encoded_while_posting: list[int] = []
    in_flight = [0]

    class Slow(Scripted):
        def encode(self, event):
            if event["n"] == 12:
                posting.wait(5)         # the worker has taken the batch of 0..9
            if posting.is_set():
                encoded_while_posting.append(event["n"])
            if event["n"] == 15:
                gate.set()              # the batch of 10..19 is half encoded: let the post finish
            return super().encode(event)

        def post(self, batch):
            in_flight[0] += 1
            assert in_flight[0] == 1    # never two requests at once
            posting.set()
            gate.wait(5)
            posting.clear()
            in_flight[0] -= 1
            return super().post(batch)

    sink = Slow(delivery=DeliveryPolicy(max_events=10, **FAST))
    report = sink.send(events(30))
    report.merge(sink.flush())
    assert report.delivered == 30 and [n for p in sink.posts for n in p] == list(range(30))
    assert {12, 13, 14, 15} <= set(encoded_while_posting)     # encoding went on during the first post
    assert sink.close().delivered == 0


def test_encoding_lets_the_worker_take_the_interpreter_lock_while_a_batch_is_in_flight(monkeypatch):
    from wia_security.connectors.delivery import batching

    encoded: list[int] = []
    yielded_before: list[int] = []          # the event about to be encoded at each yield
    answered = threading.Event()

    class Counting(Scripted):
        def encode(self, event):
            encoded.append(event["n"])
            if event["n"] == 80:             # the first batch's answer arrives; wait until it is settled
                answered.set()
                self._in_flight.exception(timeout=10)      # returns once it is settled
            return super().encode(event)

        def post(self, batch):
            if batch.events[0]["n"] == 0:
                assert answered.wait(10)
            return super().post(batch)

    monkeypatch.setattr(batching, "yield_gil", lambda: yielded_before.append(len(encoded)))
    sink = Counting(delivery=DeliveryPolicy(max_events=50, **FAST))
    assert sink.send(events(100)).delivered + sink.flush().delivered == 100
    # None before the first batch leaves (nothing in flight), one every YIELD_EVERY events while it
    # is in flight, none once it is settled (a yield costs a sleep).
    every = batching.YIELD_EVERY
    assert yielded_before == [n for n in range(51, 81) if n % every == 0] != []

    class Synchronous(Counting):
        pipelined = False

        def post(self, batch):
            return Scripted.post(self, batch)

    yielded_before.clear()
    Synchronous(delivery=DeliveryPolicy(max_events=50, **FAST)).send(events(100))
    assert yielded_before == []             # nothing ever in flight: no reason to yield


def test_not_pipelined_sinks_settle_every_full_batch_within_send():
    class Synchronous(Scripted):
        pipelined = False

    sink = Synchronous(delivery=DeliveryPolicy(max_events=10, **FAST))
    assert sink.send(events(25)).delivered == 20 and [len(p) for p in sink.posts] == [10, 10]


def test_batches_by_bytes_counting_separators():
    one = len(jsonio.dumpb(events(1)[0]))
    sink = Scripted(delivery=DeliveryPolicy(max_bytes=3 * one + 2, **FAST))    # exactly 3 items + 2 "\n"
    sink.send(events(7))
    sink.flush()
    assert [len(p) for p in sink.posts] == [3, 3, 1]


def test_product_limits_cap_the_policy():
    sink = Scripted(delivery=DeliveryPolicy(max_events=10_000, max_bytes=10**9, **FAST))
    assert sink.policy.max_events == Scripted.max_batch_events
    assert sink.policy.max_bytes == Scripted.max_batch_bytes


def test_oversized_and_unencodable_events_fail_alone():
    sink = Scripted()
    big = {"id": "x", "n": 1, "pad": "x" * 20_000}
    report = sink.send([{"id": "a", "n": 0}, big, {"id": "b", "n": 2, "bad": True}, {"id": "c", "n": 3}])
    report.merge(sink.flush())
    assert report.delivered == 2
    reasons = {f.event["n"]: f.reason for f in report.failed}
    assert "over this destination's 10,000-byte request limit" in reasons[1]
    assert "cannot encode" in reasons[2]
    assert all(not f.retryable and f.sink == "scripted" for f in report.failed)


def test_a_malformed_event_that_breaks_the_encoder_fails_alone_naming_the_schema_error(caplog):
    from wia_security.builders import AlertBuilder

    class Converting(Scripted):
        def encode(self, event):
            return jsonio.dumpb({"host": event["context"]["host"].get("hostname")})

        def post(self, batch):
            self.posts.append([e["id"] for e in batch.events])

    def alert() -> dict[str, Any]:
        return AlertBuilder().source("edr", "EDR").title("t").severity(5).host(hostname="h").build().to_dict()

    first, broken, last = alert(), alert(), alert()
    broken["context"]["host"] = "not-an-object"              # .get on a str: AttributeError
    sink = Converting()
    report = sink.send([first, broken, last])
    report.merge(sink.flush())
    assert report.delivered == 2 and sink.posts == [[first["id"], last["id"]]]
    (failed,) = report.failed
    assert failed.event is broken
    assert failed.reason.startswith("cannot encode event for scripted: invalid WIA event: /context/host:")
    assert failed.errors and failed.errors[0]["path"] == "/context/host"

    class Buggy(Scripted):                  # a valid event and an encoder bug: reported and logged
        def encode(self, event):
            raise AttributeError("no attribute 'oops'")

    report = Buggy().send([first])
    assert report.failed[0].reason == "cannot encode event for scripted: AttributeError: no attribute 'oops'"
    assert "AttributeError" in caplog.text


def test_per_item_outcomes_retry_only_the_retryable():
    def script(batch: Batch):
        if batch.attempt == 1:
            return [Outcome.delivered(), Outcome.retry("busy"), Outcome.failed("bad field"), Outcome.duplicate()]
        return None
    sink = Scripted(script)
    report = sink.send(events(4))
    report.merge(sink.flush())
    assert sink.posts == [[0, 1, 2, 3], [1]]
    assert (report.delivered, report.duplicates) == (2, 1)
    assert [(f.event["n"], f.reason, f.retryable) for f in report.failed] == [(2, "bad field", False)]


def test_whole_batch_error_retries_then_gives_up_with_reason():
    def script(batch):
        raise DeliveryError("HTTP 503: busy", retryable=True)
    sink = Scripted(script, delivery=DeliveryPolicy(max_attempts=3, **FAST))
    sink.send(events(5))
    report = sink.flush()
    assert len(sink.posts) == 3 and len(sink.sleeps) == 2
    assert len(report.failed) == 5
    assert all(f.retryable and "gave up after 3 attempt(s)" in f.reason and "HTTP 503: busy" in f.reason
               for f in report.failed)


def test_permanent_error_is_not_retried():
    def script(batch):
        raise DeliveryError("HTTP 400: invalid data", retryable=False)
    sink = Scripted(script)
    sink.send(events(3))
    report = sink.flush()
    assert len(sink.posts) == 1 and not sink.sleeps
    assert [f.reason for f in report.failed] == ["HTTP 400: invalid data"] * 3


@pytest.mark.parametrize("exc, retried", [
    (ConnectionResetError("reset by peer"), True),
    (TimeoutError("timed out"), True),
    (RuntimeError("a bug"), False),
])
def test_unexpected_exceptions_are_classified_never_raised(exc, retried):
    calls = []

    def script(batch):
        calls.append(1)
        if len(calls) == 1:
            raise exc
        return None
    sink = Scripted(script)
    sink.send(events(2))
    report = sink.flush()
    if retried:
        assert report.delivered == 2 and len(calls) == 2
    else:
        assert len(report.failed) == 2 and "RuntimeError: a bug" in report.failed[0].reason and len(calls) == 1


def test_retry_after_is_a_floor_for_the_delay():
    def script(batch):
        return [Outcome.retry("throttled", retry_after=0.05)] if batch.attempt == 1 else None
    sink = Scripted(script, delivery=DeliveryPolicy(max_events=1, **FAST))
    sink.send(events(1))
    assert sink.sleeps == [0.05]


def test_retry_after_beyond_the_elapsed_budget_gives_up_at_once():
    def script(batch):
        raise DeliveryError("HTTP 429", retryable=True, retry_after=3600)
    sink = Scripted(script, delivery=DeliveryPolicy(max_elapsed=10, **FAST))
    sink.send(events(1))
    report = sink.flush()
    assert not sink.sleeps and len(sink.posts) == 1
    assert "would exceed the 10s budget" in report.failed[0].reason


def test_backoff_is_full_jitter_under_an_exponential_cap():
    policy = DeliveryPolicy(initial_backoff=1, backoff_multiplier=2, max_backoff=5)
    assert [policy.backoff_ceiling(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    delays = [policy.delay(3) for _ in range(500)]
    assert 0 <= min(delays) < 0.5 and 3.5 < max(delays) <= 4        # spread over [0, cap]


def test_wrong_outcome_count_is_a_connector_bug_not_a_loss():
    sink = Scripted(lambda batch: [Outcome.delivered()])
    sink.send(events(3))
    report = sink.flush()
    assert len(report.failed) == 3 and "connector bug" in report.failed[0].reason


def test_max_wait_timer_flushes_and_the_next_call_returns_the_report():
    sink = Scripted(delivery=DeliveryPolicy(max_wait=0.05, initial_backoff=0.001, max_backoff=0.002))
    assert sink.send(events(3)).delivered == 0                     # buffered
    deadline = time.monotonic() + 2
    while not sink.posts and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.posts == [[0, 1, 2]]                               # the timer sent them
    assert sink.flush().delivered == 3                             # and the report is not lost
    sink.close()


def test_close_flushes_buffered_events():
    sink = Scripted(delivery=DeliveryPolicy(max_wait=60, initial_backoff=0.001, max_backoff=0.002))
    sink.send(events(4))
    report = sink.close()
    assert report.delivered == 4 and sink.posts == [[0, 1, 2, 3]]
    with pytest.raises(DeliveryError):
        sink.send(events(1))


def test_with_block_puts_uncollected_failures_in_the_dead_letter():
    put = []

    class Box:
        def put(self, rejected):
            put.append(rejected)

    with Scripted(lambda b: [Outcome.failed("nope")] * len(b), dead_letter=Box()) as sink:
        sink.send(events(2))
    assert [r.reason for r in put] == ["nope", "nope"]


def test_concurrent_senders_and_timer_lose_and_duplicate_nothing():
    sink = Scripted(delivery=DeliveryPolicy(max_events=7, max_wait=0.001, initial_backoff=0.001, max_backoff=0.002))
    evs = events(2000)
    reports = []
    lock = threading.Lock()

    def worker(chunk):
        for i in range(0, len(chunk), 13):
            r = sink.send(chunk[i:i + 13])
            with lock:
                reports.append(r)
    threads = [threading.Thread(target=worker, args=(evs[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reports.append(sink.close())
    posted = sorted(n for p in sink.posts for n in p)
    assert posted == list(range(2000))                             # each exactly once
    assert sum(r.delivered for r in reports) == 2000


def test_policy_validation_names_the_key():
    with pytest.raises(ConfigError) as err:
        DeliveryPolicy.from_mapping({"max_events": "lots"}, source="wia.toml")
    assert err.value.key == "max_events" and "wia.toml" in str(err.value)
    with pytest.raises(ConfigError) as err:
        DeliveryPolicy.from_mapping({"max_evnets": 3})
    assert "unknown delivery option" in str(err.value)
    assert DeliveryPolicy.from_mapping({"max_events": "3", "max_wait": 1}).max_events == 3


def _client_network_errors() -> list[BaseException]:
    """Network failures as the clients the sinks use raise them (their own classes, not the builtins)."""
    import azure.core.exceptions as azure
    import botocore.exceptions as boto
    import urllib3.exceptions as urllib3
    return [urllib3.ReadTimeoutError(None, "/", "Read timed out"), urllib3.NewConnectionError(None, "refused"),
            urllib3.MaxRetryError(None, "/", None), urllib3.ConnectTimeoutError("timed out"),
            azure.ServiceRequestError("connection refused"), azure.ServiceResponseError("connection closed"),
            boto.ResponseStreamingError(error="cut"), boto.ConnectionClosedError(endpoint_url="https://x"),
            boto.EndpointConnectionError(endpoint_url="https://x"), boto.ReadTimeoutError(endpoint_url="https://x")]


@pytest.mark.parametrize("exc", _client_network_errors(), ids=lambda e: f"{type(e).__module__}.{type(e).__name__}")
def test_client_libraries_network_errors_are_retryable(exc):
    from wia_security.connectors.delivery.batching import classify_exception
    error = classify_exception(exc)
    assert error.retryable and error.reason.startswith("network error: ")


def test_a_certificate_failure_inside_a_client_error_is_not_retried():
    import urllib3.exceptions as urllib3
    from wia_security.connectors.delivery.batching import classify_exception
    inner = urllib3.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    error = classify_exception(urllib3.MaxRetryError(None, "/", inner))
    assert not error.retryable and error.reason.startswith("TLS verification failed")
