"""`wia-security pull` refuses, before opening anything, a flag meant for another kind of source (it was
ignored: a --checkpoint given to a Kafka pull kept no position) and a Kafka source without a consumer group
(the error named the library's `group_id` and came after the destination store had been created)."""
from __future__ import annotations

import pytest

KAFKA = "kafka://127.0.0.1:9/wia-events"           # nothing listens there: every case must stop before connecting
# `unknown_key` makes KafkaSource refuse at once should the flag check not come first (a consumer of a broker
# that is not there never stops, --idle-timeout or not)
KAFKA_REFUSED_LATER = f"{KAFKA}?group=siem&unknown_key=1"
TAXII = "taxii+https://127.0.0.1:9/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/"
SPLUNK = "splunk+https://127.0.0.1:9?token_env=WIA_TEST_SPLUNK_TOKEN"


@pytest.mark.parametrize(("source", "flags", "named"), [
    (KAFKA_REFUSED_LATER, ["--checkpoint", "k.json"], "--checkpoint"),
    (KAFKA_REFUSED_LATER, ["--query", "search x", "--earliest=-7d"], "--query, --earliest"),
    (TAXII, ["--idle-timeout", "5"], "--idle-timeout"),
    (TAXII, ["--group", "siem", "--window", "60"], "--group, --window"),
    (SPLUNK, ["--idle-timeout", "5"], "--idle-timeout"),
])
def test_a_flag_of_another_source_is_refused_before_anything_is_opened(cli, tmp_path, monkeypatch, source, flags, named):
    monkeypatch.setenv("WIA_TEST_SPLUNK_TOKEN", "splunk-token-0123456789")
    kind = source.split(":", 1)[0].split("+", 1)[0]
    r = cli("pull", source, *flags)
    assert r.code == 2
    assert r.err == f"wia-security: {named}: not for a {kind} source (see wia-security pull --help)\n", r.err
    assert list(tmp_path.iterdir()) == []                 # no store, no dead letter, no checkpoint


def test_a_kafka_source_without_a_group_says_how_to_give_one_and_creates_nothing(cli, tmp_path):
    r = cli("pull", KAFKA, "--idle-timeout", "1")
    assert r.code == 2
    assert r.err == ("wia-security: kafka sources need a consumer group, which keeps the position (offsets are "
                     "committed per group): add ?group=NAME to the URL or give --group NAME\n"), r.err
    assert list(tmp_path.iterdir()) == []                 # the default wia-events.db was created before
