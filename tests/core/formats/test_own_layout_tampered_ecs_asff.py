"""ECS documents and ASFF findings in this project's own layout (`wia.*`; `.../wia.*` ProductFields) give their
WIA event back as written: a tampered one used to come back invalid from `to_wia` / `to_wia_each`. Now refused
as the CEF, LEEF, STIX and OCSF readers refuse theirs (test_own_layout_tampered.py): the member alone, named."""
from __future__ import annotations

import copy

import pytest

from wia_security.errors import ConversionError
from wia_security.formats.asff import AsffFormat
from wia_security.formats.ecs import EcsFormat
from wia_security.validation import validate_event

from strategies import event_dicts

ECS, ASFF = EcsFormat(), AsffFormat()
ACCOUNT = "123456789012"
FIELD = f"{ACCOUNT}/default/wia."


@pytest.fixture(scope="module")
def alert():
    return next(e for e in event_dicts(60, seed=7, event_type="alert"))


def _ecs_cases(doc):
    def wia(path, value):
        d = copy.deepcopy(doc)
        node = d["wia"]
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
        return d
    return {
        "wrong type under wia.data": (wia(["data", "count"], "three"), "/wia/data/count", "/data/count"),
        "unknown priority": (wia(["data", "priority"], "urgent-ish"), "/wia/data/priority", "/data/priority"),
        "confidence out of range": (wia(["meta", "confidence"], 7), "/wia/meta/confidence", "/meta/confidence"),
    }


def test_a_tampered_ecs_document_of_this_projects_layout_is_refused_naming_where(alert):
    doc = ECS.from_wia(alert)
    assert ECS.to_wia(doc) == [alert]                                  # untouched: as written
    for name, (tampered, path, pointer) in _ecs_cases(doc).items():
        with pytest.raises(ConversionError) as caught:
            ECS.to_wia(tampered)
        assert caught.value.path == path, name
        assert f"not valid WIA at {pointer}" in str(caught.value), name
        [outcome] = ECS.to_wia_each(tampered)
        assert outcome.events == [] and outcome.error is not None and outcome.error.path == path, name
        # inside a _search response only that hit is refused
        response = {"hits": {"hits": [{"_index": "wia", "_source": tampered}, {"_index": "wia", "_source": doc}]}}
        bad, good = ECS.to_wia_each(response)
        assert bad.error.path == f"/hits/hits/0/_source{path}" and good.events == [alert], name


def test_a_tampered_asff_finding_of_this_projects_layout_is_refused_naming_where(alert):
    finding = ASFF.from_wia(alert, account_id=ACCOUNT)
    assert ASFF.to_wia(finding) == [alert]
    tampered = copy.deepcopy(finding)
    tampered["ProductFields"][FIELD + "data.priority"] = '"urgent-ish"'
    with pytest.raises(ConversionError) as caught:
        ASFF.to_wia(tampered)
    assert caught.value.path == "/ProductFields" and "not valid WIA at /data/priority" in str(caught.value)
    outcomes = ASFF.to_wia_each({"Findings": [tampered, finding]})
    assert outcomes[0].events == [] and outcomes[0].error.path == "/Findings/0/ProductFields"
    assert outcomes[1].events == [alert]


@pytest.mark.parametrize("seed", range(3))
def test_own_documents_of_every_type_still_come_back_valid_and_equal(seed):
    for event in event_dicts(70, seed=seed):
        assert ECS.to_wia(ECS.from_wia(event)) == [event]
        [back] = ASFF.to_wia(ASFF.from_wia(event, account_id=ACCOUNT))
        assert validate_event(back).valid
