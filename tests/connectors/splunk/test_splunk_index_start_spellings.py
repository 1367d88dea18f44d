"""`--index-start` takes an RFC 3339 time in any spelling the standard allows (lower-case t and z, 1-12 fraction digits,
any offset, a trailing line break), as the instant's epoch seconds; without an offset it is refused, naming why."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from wia_security.connectors.splunk.search import index_start
from wia_security.errors import ConfigError


@pytest.mark.parametrize("text, moment", [
    ("2026-03-14T15:09:26Z", datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone.utc)),
    ("2026-03-14T15:09:26z", datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone.utc)),
    ("2026-03-14t15:09:26.25z", datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone.utc)),
    ("2026-03-14T15:09:26.123456789012Z", datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone.utc)),
    ("2026-03-15T09:00:00+14:00", datetime(2026, 3, 14, 19, 0, tzinfo=timezone.utc)),
    ("2026-03-14T12:00:00-19:22\n", datetime(2026, 3, 15, 7, 22, tzinfo=timezone.utc)),
    ("2026-03-14T15:09:26-00:00", datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone.utc)),
])
def test_index_start_reads_every_rfc3339_spelling(text, moment):
    assert index_start(text, now=0) == int(moment.timestamp())


def test_index_start_without_an_offset_is_refused():
    with pytest.raises(ConfigError, match="with an offset"):
        index_start("2026-03-14T15:09:26", now=0)
