"""Kafka tests run against tansu (tests/servers/tansu.py)."""
import pytest

pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")

from servers.tansu import tansu  # noqa: E402,F401  (fixture)
