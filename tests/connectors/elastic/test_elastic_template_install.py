"""The index template the sink installs, against osmem-server ("emulator" tests) with both clients: one
template per index prefix, so sinks with different prefixes on one cluster keep each other's; a template
of the same name with a version at least the sink's is left as it is (an operator's own, or a newer
release's); an older or unversioned one is replaced; the single shared template older releases wrote
for a prefix is handed over."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from test_elastic_sink import CLIENTS, deliver, make_sink, reader, unique_events
from wia_security.connectors.elastic import template


def templates(url: str) -> dict[str, dict[str, Any]]:
    found = reader(url).indices.get_index_template()["index_templates"]
    return {t["name"]: t["index_template"] for t in found}


def wia_field_type(url: str, index: str) -> str | None:
    mapping = reader(url).indices.get_mapping(index=index)
    return next(iter(mapping.values()))["mappings"].get("properties", {}).get("wia", {}).get("type")


def on_day(events: list[dict[str, Any]], day: str) -> list[dict[str, Any]]:
    for event in events:
        event["type"] = "alert"
        event["timestamp"] = f"{day}T10:00:00Z"
    return events


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_sinks_with_different_prefixes_keep_each_others_template(kind: str, osmem: str) -> None:
    # Both used to PUT the one template `wia-security`: the second sink's pattern replaced the first's, and
    # the first prefix's next daily index was made without the ECS mappings (and the 1,000-field limit).
    assert deliver(make_sink(kind, osmem, index="soc-a"), on_day(unique_events(3, seed=51), "2025-12-14")).delivered == 3
    assert deliver(make_sink(kind, osmem, index="soc-b"), on_day(unique_events(3, seed=52), "2025-12-14")).delivered == 3
    # a new day's index of the first prefix, made after the second sink started, still gets the mappings
    first = make_sink(kind, osmem, index="soc-a", install_template=False)         # a sink already running
    assert deliver(first, on_day(unique_events(3, seed=53), "2025-12-15")).delivered == 3
    assert wia_field_type(osmem, "soc-a-alert-2025.12.15") == "flat_object"
    assert wia_field_type(osmem, "soc-b-alert-2025.12.14") == "flat_object"
    installed = templates(osmem)
    assert installed["soc-a"]["index_patterns"] == ["soc-a-*"] and installed["soc-b"]["index_patterns"] == ["soc-b-*"]
    # the default prefix keeps the template name it always had
    assert deliver(make_sink(kind, osmem), unique_events(2, seed=54)).delivered == 2
    assert templates(osmem)["wia-security"]["index_patterns"] == ["wia-security-*"]


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_a_template_with_a_version_at_least_the_sinks_is_left_alone(kind: str, osmem: str) -> None:
    client = reader(osmem)
    own = {"index_patterns": ["wia-security-*"], "priority": 200, "version": template.TEMPLATE_VERSION + 1,
           "template": {"settings": {"index.number_of_replicas": 0}}, "_meta": {"description": "the operator's"}}
    client.indices.put_index_template(name="wia-security", body=own)
    assert deliver(make_sink(kind, osmem), unique_events(2, seed=55)).delivered == 2
    kept = templates(osmem)["wia-security"]
    assert kept["version"] == template.TEMPLATE_VERSION + 1 and kept["_meta"] == {"description": "the operator's"}


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("version", [None, template.TEMPLATE_VERSION - 1])
def test_emulator_an_older_or_unversioned_template_is_replaced(kind: str, version: int | None, osmem: str) -> None:
    client = reader(osmem)
    old = {"index_patterns": ["wia-security-*"], "priority": 200, "template": {"settings": {}}}
    if version is not None:
        old["version"] = version
    client.indices.put_index_template(name="wia-security", body=old)
    assert deliver(make_sink(kind, osmem), unique_events(2, seed=56)).delivered == 2
    replaced = templates(osmem)["wia-security"]
    assert replaced["version"] == template.TEMPLATE_VERSION and replaced["_meta"]["ecs_version"] == template.ECS_VERSION


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_the_shared_template_an_older_release_wrote_for_a_prefix_is_handed_over(kind: str, osmem: str) -> None:
    # Older releases named every prefix's template `wia-security`. Elasticsearch refuses two templates with
    # overlapping patterns and one priority, so the new per-prefix template could not be added beside it.
    client = reader(osmem)
    legacy = template.index_template(["soc-a-*"], "opensearch")
    client.indices.put_index_template(name="wia-security", body=legacy)
    assert deliver(make_sink(kind, osmem, index="soc-a"), on_day(unique_events(2, seed=57), "2025-12-14")).delivered == 2
    installed = templates(osmem)
    assert "wia-security" not in installed and installed["soc-a"]["index_patterns"] == ["soc-a-*"]


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_another_prefixs_or_a_foreign_shared_template_is_not_touched(kind: str, osmem: str) -> None:
    client = reader(osmem)
    client.indices.put_index_template(name="wia-security", body=template.index_template(["soc-b-*"], "opensearch"))
    assert deliver(make_sink(kind, osmem, index="soc-a"), on_day(unique_events(2, seed=58), "2025-12-14")).delivered == 2
    assert templates(osmem)["wia-security"]["index_patterns"] == ["soc-b-*"]


#: The template's content for each TEMPLATE_VERSION: a change to the template without a new version would be
#: left out by every cluster that has the old one (it is not replaced when its version is the sink's).
TEMPLATE_DIGESTS = {1: "ec7c7134ab0fec34"}


def test_a_changed_template_comes_with_a_new_version() -> None:
    bodies = [template.index_template(["p-*"], flavor, data_stream=stream)
              for flavor in ("elasticsearch", "opensearch") for stream in (False, True)]
    digest = hashlib.sha256(json.dumps(bodies, sort_keys=True).encode()).hexdigest()[:16]
    assert TEMPLATE_DIGESTS.get(template.TEMPLATE_VERSION) == digest, (
        f"the template changed: raise TEMPLATE_VERSION and record {template.TEMPLATE_VERSION + 1}: {digest!r}")


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_a_template_the_server_refuses_is_named_in_the_reason(kind: str, osmem: str) -> None:
    # an operator's template over the same indices at the same priority: the server refuses ours (400), and each
    # event was dead-lettered with only "HTTP 400: illegal_argument_exception: index template [wia-security] ...",
    # cut at 200 characters, as if the documents had been refused; a key without the template privileges (403)
    # read the same way
    reader(osmem).indices.put_index_template(name="ops-own", body={
        "index_patterns": ["wia-*"], "priority": template.TEMPLATE_PRIORITY, "template": {"settings": {}}})
    report = deliver(make_sink(kind, osmem), unique_events(2, seed=55))
    assert report.delivered == 0 and len(report.failed) == 2
    for rejected in report.failed:
        assert rejected.reason.startswith("installing the index template 'wia-security' failed "
                                          "(install_template=false leaves templates to you): HTTP 400: "), rejected.reason
        assert "ops-own" in rejected.reason and not rejected.retryable
    assert deliver(make_sink(kind, osmem, install_template=False), unique_events(2, seed=55)).delivered == 2


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_the_template_of_the_other_naming_is_replaced(kind: str, osmem: str) -> None:
    # A sink with naming=datastream installs the prefix's template declaring data streams; a daily sink with the
    # same prefix found it current (same version) and kept it, so each of its daily indices was to be a data
    # stream, which takes no `index` action: every event refused (osmem: "data streams are not supported").
    deliver(make_sink(kind, osmem, naming="datastream"), unique_events(2, seed=56))    # osmem has no data streams
    assert "data_stream" in templates(osmem)["wia-security"]
    report = deliver(make_sink(kind, osmem), on_day(unique_events(2, seed=57), "2025-12-14"))
    assert (report.delivered, [r.reason for r in report.failed]) == (2, [])
    assert "data_stream" not in templates(osmem)["wia-security"]
    # and back: the datastream sink puts its own again
    deliver(make_sink(kind, osmem, naming="datastream"), unique_events(1, seed=58))
    assert "data_stream" in templates(osmem)["wia-security"]
