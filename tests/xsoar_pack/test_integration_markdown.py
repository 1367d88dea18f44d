"""War-room entries hold text from events (titles, source names, ids, validation messages quoting values, keys):
whoever writes events writes there. The readable output must show that text, never let it become markdown: no
heading, list item or table row of its own, no link or image (a tracking pixel, a phishing link in an analyst's war
room). CommonServerPython's tableToMarkdown escapes a cell's `|` and line breaks only (the stub does as the real
one), so links and images in cells, and any text outside a table, are the integration's to escape."""
from __future__ import annotations

import json
import re

from wia_security import AlertBuilder

from .conftest import run_command

HOSTILE = "x | y\n\n# Injected heading\n- injected item\n![pixel](https://evil.example/p.png) [reset](https://evil.example/r)"
TOKEN = "markdown-feed-token-7c1e"


def assert_inert(markdown: str, table_columns: int | None = None) -> None:
    """The hostile text stayed text: one heading (the entry's own), no list item, no link or image, and every table
    row has the header's columns."""
    lines = markdown.split("\n")
    assert [line for line in lines if line.lstrip().startswith("#")] == [lines[0]], markdown
    assert lines[0].startswith("### ") and "Injected" in markdown, markdown
    assert not [line for line in lines if re.match(r"\s*[-*+] injected", line)], markdown
    assert not re.search(r"(?<!\\)!\[", markdown) and not re.search(r"(?<!\\)\]\(", markdown), markdown
    if table_columns is not None:
        rows = [line for line in lines if line.startswith("|")]
        assert rows and all(len(re.findall(r"(?<!\\)\|", row)) == table_columns + 1 for row in rows), markdown


def test_validate_event_title_and_errors_stay_text(integration, demisto):
    event = AlertBuilder().title("fine").severity(5).build().to_dict()
    event["id"] = HOSTILE                                  # any string: the event is being validated
    event["data"]["[click](https://evil.example/k)"] = 1   # a key the schema refuses: quoted in Path / Message
    (entry,) = run_command(integration, demisto, "wia-validate-event", {"event": json.dumps(event)})
    assert entry["EntryContext"]["WIA.Validation(val.EventID && val.EventID == obj.EventID)"]["EventID"] == HOSTILE
    assert_inert(entry["HumanReadable"], table_columns=3)


def test_get_events_table_and_problem_lines_stay_text(integration, demisto):
    from wia_gateway_feed import GatewayFeed
    good = AlertBuilder().title(HOSTILE).severity(5).source("scanner", name=HOSTILE).build().to_dict()
    broken = dict(AlertBuilder().title("broken").build().to_dict(), id=HOSTILE, severity=42)
    with GatewayFeed(token=TOKEN) as feed:
        feed.events.extend([good, broken])
        params = {"url": feed.url, "source_type": "gateway", "credentials": {"identifier": "", "password": TOKEN}}
        (entry,) = run_command(integration, demisto, "wia-get-events", {"limit": "5"}, params)
    assert [e["id"] for e in entry["Contents"]] == [good["id"]]
    assert entry["Contents"][0]["data"]["title"] == HOSTILE                # the context keeps the value as it is
    assert "rejected" in entry["HumanReadable"]
    assert_inert(entry["HumanReadable"], table_columns=7)
