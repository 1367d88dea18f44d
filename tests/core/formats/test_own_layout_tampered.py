"""Documents in this project's own layout (a CEF/LEEF line `from_wia` wrote, a STIX object carrying the
WIA extension, an OCSF event with `unmapped.wia`) give the WIA event back as it was written. One that
was tampered with must not give a library user an event the validator refuses: `to_wia` raises the
format's ConversionError naming where (the line's key, or the JSON pointer in the document) and why;
`to_wia_each` gives that member one refused outcome and the document's other members as before.
The CLI (`convert --from`) dead-letters such a member once, with that reason."""
from __future__ import annotations

import copy
import json
import random
from typing import Any, Callable

import pytest

from wia_corpus import builder_events
from wia_security import convert, jsonio, validate_event
from wia_security.cli import main
from wia_security.errors import ConversionError
from wia_security.formats import get_format
from wia_security.formats.stix import WIA_EXTENSION


def _alert() -> dict[str, Any]:
    """A full alert whose severity is a whole number, so CEF's header and LEEF's `sev` carry it alone."""
    event = copy.deepcopy(builder_events()[0][1])
    event["severity"] = 8
    assert validate_event(event, warnings=False).valid
    return event


ALERT = _alert()


def refusal(fmt: str, doc: Any) -> ConversionError:
    """The error `to_wia` raises for `doc`; `to_wia_each` refuses the same member with the same error."""
    reader = get_format(fmt)
    with pytest.raises(ConversionError) as info:
        events = reader.to_wia(doc)
        pytest.fail(f"{fmt}: accepted {[validate_event(e, warnings=False).errors[:1] for e in events]}")
    outcomes = reader.to_wia_each(doc)
    refused = [o for o in outcomes if o.error is not None]
    assert refused and str(refused[0].error) == str(info.value)
    assert info.value.format_name == fmt and info.value.path
    return info.value


# --- CEF and LEEF: one line -----------------------------------------------------------------------------
CEF_LINE = convert(ALERT, to="cef")
LEEF_LINE = convert(ALERT, to="leef")


def _replace(line: str, old: str, new: str) -> str:
    assert line.count(old) == 1, (old, line)
    return line.replace(old, new)


@pytest.mark.parametrize("tamper,path,why", [
    # a mapped key whose text no longer is what the schema wants
    (lambda l: _replace(l, " cnt=3 ", " cnt=three "), "extension/cnt", "/data/count: 'three' is not of type integer"),
    # a carried value outside its enum
    (lambda l: _replace(l, "wia.data.priority=critical", "wia.data.priority=urgent"), "extension/wia.data.priority",
     "/data/priority"),
    # the header's severity out of range
    (lambda l: _replace(l, "|8|", "|42|"), "header", "/severity: 42"),
    # another event type: the header names one, a carried key another
    (lambda l: l + " wia.type=bogus", "extension/wia.type", "/type"),
    # (an alert's assignee is text; the incident schema reads wia.data.assignee as JSON)
    (lambda l: _replace(l, "|alert|", "|incident|"), "extension/wia.data.assignee", "not JSON"),
    (lambda l: "CEF:0|WIA|Security|1.0.0|incident|T|5|cs1Label=wiaEventId cs1=6f1d7c52-5a39-4d5e-9a43-8f0c2f6b1e21 "
               "rt=1765704600000 wia.source.type=custom wia.source.name=x cat=malware",
     "/data/incident_id", "required property 'incident_id'"),
    # wia.extra overriding a member the event must have; the key applied last is named
    (lambda l: l + ' wia.extra={"id":5}', "extension/wia.extra", "/id: 5 is not of type string"),
    (lambda l: l + ' wia.extra={"id":5} wia.id=6', "extension/wia.id", "/id: '6' is not a valid uuid"),
])
def test_tampered_cef_lines_are_refused_with_where_and_why(tamper: Callable[[str], str], path: str, why: str) -> None:
    error = refusal("cef", tamper(CEF_LINE))
    assert error.path == path and why in error.reason, str(error)


@pytest.mark.parametrize("tamper,path,why", [
    (lambda l: _replace(l, "^sev=8^", "^sev=42^"), "attributes/sev", "/severity: 42"),
    (lambda l: _replace(l, "wia.data.priority=critical", "wia.data.priority=urgent"), "attributes/wia.data.priority",
     "/data/priority"),
    (lambda l: _replace(l, "wia.data.count=3", "wia.data.count=\"3\""), "attributes/wia.data.count",
     "/data/count: '3' is not of type integer"),
    (lambda l: l + "^wia.type=bogus", "attributes/wia.type", "/type"),
    (lambda l: _replace(l, "|alert|", "|incident|"), "attributes/wia.data.alert_id", "not JSON"),
    (lambda l: l + '^wia.extra={"id":5}', "attributes/wia.extra", "/id: 5 is not of type string"),
    (lambda l: "LEEF:2.0|WIA|Security|1.0.0|incident|^|wia.id=6f1d7c52-5a39-4d5e-9a43-8f0c2f6b1e21^"
               "devTime=2025-12-14T09:30:00.000+0000^sev=5^wia.source.type=custom^wia.source.name=x^cat=malware",
     "/data/incident_id", "required property 'incident_id'"),
])
def test_tampered_leef_lines_are_refused_with_where_and_why(tamper: Callable[[str], str], path: str, why: str) -> None:
    error = refusal("leef", tamper(LEEF_LINE))
    assert error.path == path and why in error.reason, str(error)


@pytest.mark.parametrize("fmt,line,sep", [("cef", CEF_LINE, " "), ("leef", LEEF_LINE, "^")])
def test_carried_json_that_is_garbage_or_too_deep_names_its_key(fmt: str, line: str, sep: str) -> None:
    where = "extension" if fmt == "cef" else "attributes"
    error = refusal(fmt, line + sep + "wia.meta.custom=[1,")
    assert error.path == f"{where}/wia.meta.custom" and "not JSON" in error.reason
    error = refusal(fmt, line + sep + "wia.meta.custom=" + "[" * 100_000 + "]" * 100_000)
    assert error.path == f"{where}/wia.meta.custom", str(error)
    error = refusal(fmt, line + sep + "wia.extra=[1]")
    assert error.path == f"{where}/wia.extra" and "JSON object" in error.reason


@pytest.mark.parametrize("fmt", ["cef", "leef"])
def test_own_lines_still_come_back_exactly(fmt: str) -> None:
    for _, event in builder_events():
        assert get_format(fmt).to_wia(convert(event, to=fmt)) == [event]


# --- STIX: the WIA extension --------------------------------------------------------------------------
def _bundle() -> dict[str, Any]:
    events = [e for _, e in builder_events()][::9][:4]
    from wia_security.formats.stix import to_bundle
    return json.loads(json.dumps(to_bundle(events)))


BUNDLE = _bundle()
CARRIERS = [i for i, o in enumerate(BUNDLE["objects"]) if WIA_EXTENSION in o.get("extensions", {})]
EXT = f"extensions/{WIA_EXTENSION}"


def _stix_tampered(change: Callable[[dict[str, Any]], None]) -> tuple[dict[str, Any], int]:
    doc = copy.deepcopy(BUNDLE)
    at = CARRIERS[1]
    change(doc["objects"][at]["extensions"])
    return doc, at


@pytest.mark.parametrize("change,below,why", [
    (lambda x: x[WIA_EXTENSION]["event"].pop("data"), "/event/data", "required property 'data' is missing"),
    (lambda x: x[WIA_EXTENSION]["event"].__setitem__("severity", "high"), "/event/severity", "not of type number"),
    (lambda x: x[WIA_EXTENSION]["event"].__setitem__("type", "bogus"), "/event/type", "'bogus' is not one of"),
    (lambda x: x[WIA_EXTENSION]["event"].__setitem__("timestamp", "yesterday"), "/event/timestamp", "date-time"),
    (lambda x: x[WIA_EXTENSION].__setitem__("event", "not an object"), "/event", "must be a JSON object"),
    (lambda x: x[WIA_EXTENSION].__setitem__("event", [1]), "/event", "must be a JSON object"),
    (lambda x: x[WIA_EXTENSION].pop("event"), "/event", "has no `event`"),
    (lambda x: x.__setitem__(WIA_EXTENSION, "garbage"), "", "must be a JSON object"),
])
def test_a_tampered_wia_extension_refuses_its_event_alone(change: Callable[[dict[str, Any]], None], below: str,
                                                          why: str) -> None:
    doc, at = _stix_tampered(change)
    error = refusal("stix", doc)
    assert error.path == f"/objects/{at}/{EXT}{below}" and why in error.reason, str(error)
    outcomes = get_format("stix").to_wia_each(doc)
    good = get_format("stix").to_wia_each(BUNDLE)
    assert len(outcomes) == len(good)
    for before, after in zip(good, outcomes):
        if before.path == f"/objects/{at}":
            assert after.error is not None and after.member == doc["objects"][at]     # the carrier, to fix and re-read
        else:
            assert after.error is None and after.events == before.events
    # the objects made with the refused event stay claimed by it: none turns into an event of its own
    assert sum(o.ok for o in outcomes) == len(CARRIERS) - 1


def test_a_single_tampered_object_is_refused_at_its_own_pointer() -> None:
    obj = copy.deepcopy(BUNDLE["objects"][CARRIERS[0]])
    obj["extensions"][WIA_EXTENSION]["event"]["severity"] = 11
    error = refusal("stix", obj)
    assert error.path == f"/{EXT}/event/severity", str(error)
    assert get_format("stix").to_wia_each(obj)[0].member is None        # the document is the member


def test_own_bundles_still_come_back_exactly() -> None:
    events = [e for _, e in builder_events()]
    from wia_security.formats.stix import to_bundle
    assert get_format("stix").to_wia(json.loads(json.dumps(to_bundle(events)))) == events


# --- OCSF: the `unmapped.wia` patch -------------------------------------------------------------------
OCSF_DOC = json.loads(json.dumps(convert(ALERT, to="ocsf")))


def _ocsf_tampered(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(OCSF_DOC)
    change(doc)
    return doc


@pytest.mark.parametrize("change,path,why", [
    (lambda d: d["unmapped"]["wia"].__setitem__("severity", "high"), "/unmapped/wia/severity", "not of type number"),
    (lambda d: d["unmapped"]["wia"].__setitem__("type", "bogus"), "/unmapped/wia/type",
     "sets `type` to 'bogus', but this OCSF event's class (class_uid 2004) makes it 'alert'"),
    (lambda d: d["unmapped"]["wia"].setdefault("data", {}).__setitem__("count", "x"), "/unmapped/wia/data/count",
     "not of type integer"),
    (lambda d: d["unmapped"]["wia"].__setitem__("version", None), "/unmapped/wia/version", "required property"),
    (lambda d: d["unmapped"].__setitem__("wia", "garbage"), "/unmapped/wia", "must be a JSON object"),
    (lambda d: d["unmapped"].__setitem__("wia", [1, 2]), "/unmapped/wia", "must be a JSON object"),
])
def test_a_tampered_ocsf_patch_is_refused_with_where_and_why(change: Callable[[dict[str, Any]], None], path: str,
                                                             why: str) -> None:
    error = refusal("ocsf", _ocsf_tampered(change))
    assert error.path == path and why in error.reason, str(error)


def test_one_tampered_element_of_an_ocsf_array_refuses_only_itself() -> None:
    bad = _ocsf_tampered(lambda d: d["unmapped"]["wia"].__setitem__("severity", "high"))
    outcomes = get_format("ocsf").to_wia_each([OCSF_DOC, bad])
    assert outcomes[0].events == [ALERT]
    assert outcomes[1].error is not None and outcomes[1].error.path == "/1/unmapped/wia/severity"
    assert refusal("ocsf", [OCSF_DOC, bad]).path == "/1/unmapped/wia/severity"


def test_own_ocsf_events_still_come_back_exactly() -> None:
    for _, event in builder_events():
        assert get_format("ocsf").to_wia(json.loads(json.dumps(convert(event, to="ocsf")))) == [event]


# --- seeded mutations of own-layout documents -----------------------------------------------------------
def _mutations(doc: Any, rnd: random.Random) -> Any:
    """`doc` (JSON) with one value somewhere below it replaced by a value of another kind, or removed."""
    doc = copy.deepcopy(doc)
    path: list[Any] = []
    node = doc
    while isinstance(node, (dict, list)) and node and (not path or rnd.random() < 0.8):
        key = rnd.choice(list(node)) if isinstance(node, dict) else rnd.randrange(len(node))
        path.append(key)
        parent, node = node, node[key]
    if not path:
        return doc
    if isinstance(parent, dict) and rnd.random() < 0.25:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rnd.choice(["", "x", -1, 10**30, 1.5, True, None, [], {}, [1], {"a": 1}, "2025-13-45"])
    return doc


@pytest.mark.parametrize("fmt", ["cef", "leef", "stix", "ocsf"])
def test_mutated_own_documents_give_valid_events_or_errors_with_paths(fmt: str) -> None:
    """1,200 seeded mutations of documents this project wrote (the WIA extension's event, the OCSF
    patch, a line's values): every event `to_wia` / `to_wia_each` gives is valid, or the member is
    refused with a path; never another exception."""
    rnd = random.Random(102)
    events = [e for _, e in builder_events()]
    reader = get_format(fmt)
    seen = {"read": 0, "refused": 0}
    for _ in range(300):
        event = rnd.choice(events)
        if fmt in ("cef", "leef"):
            # a line written from a mutated event (written as is: `from_wia` trusts its input)
            try:
                doc: Any = convert(_mutations(event, rnd), to=fmt)
            except (ConversionError, TypeError, ValueError, AttributeError, KeyError):
                continue
        else:
            written = json.loads(json.dumps(convert(event, to=fmt)))
            if fmt == "stix":
                carrier = next(o for o in written["objects"] if WIA_EXTENSION in o.get("extensions", {}))
                carrier["extensions"][WIA_EXTENSION] = _mutations(carrier["extensions"][WIA_EXTENSION], rnd)
            elif "unmapped" in written:
                written["unmapped"] = _mutations(written["unmapped"], rnd)
            doc = written
        outcomes = reader.to_wia_each(doc)
        for outcome in outcomes:
            if outcome.error is None:
                for got in outcome.events:
                    result = validate_event(got, warnings=False)
                    assert result.valid, (fmt, [(i.path, i.message) for i in result.errors], str(doc)[:300])
                seen["read"] += 1
            else:
                assert outcome.error.path, (fmt, str(outcome.error))
                seen["refused"] += 1
        first = next((o.error for o in outcomes if o.error is not None), None)
        try:
            reader.to_wia(doc)
        except ConversionError as exc:
            assert first is not None and str(exc) == str(first)
        else:
            assert first is None
    assert seen["read"] > 20 and seen["refused"] > 20, seen


# --- the CLI --------------------------------------------------------------------------------------------
def _documents(fmt: str) -> tuple[list[Any], str]:
    """(one good document and one tampered one, the tampered one's path)."""
    if fmt == "cef":
        return [CEF_LINE, _replace(CEF_LINE, " cnt=3 ", " cnt=three ")], "extension/cnt"
    if fmt == "leef":
        return [LEEF_LINE, _replace(LEEF_LINE, "^sev=8^", "^sev=42^")], "attributes/sev"
    if fmt == "stix":
        return [BUNDLE, _stix_tampered(lambda x: x[WIA_EXTENSION].__setitem__("event", "x"))[0]], \
            f"/objects/{CARRIERS[1]}/{EXT}/event"
    return [OCSF_DOC, _ocsf_tampered(lambda d: d["unmapped"]["wia"].__setitem__("severity", "high"))], \
        "/unmapped/wia/severity"


@pytest.mark.parametrize("fmt", ["cef", "leef", "stix", "ocsf"])
def test_convert_from_dead_letters_a_tampered_member_once_with_the_reason(fmt: str, tmp_path, capsys) -> None:
    docs, path = _documents(fmt)
    src = tmp_path / f"in.{fmt}"
    src.write_text("".join((d if isinstance(d, str) else json.dumps(d)) + "\n" for d in docs))
    out, dead = tmp_path / "out.ndjson", tmp_path / "dead.ndjson"
    code = main(["convert", str(src), "--from", fmt, "-o", str(out), "--dead-letter", str(dead),
                 "--summary", "json"])
    err = capsys.readouterr().err
    assert code == 1
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(letters) == 1, letters
    assert letters[0]["where"] == f"{src}:2"
    assert letters[0]["reason"].startswith(f"cannot convert from {fmt}: {fmt} at {path}: ")
    assert letters[0]["errors"][0]["path"] == path and letters[0]["errors"][0]["code"] == "conversion_refused"
    assert f"{src}:2: cannot convert from {fmt}: {fmt} at {path}" in err
    # the good document's events, then the tampered document's other events (a bundle's), as they came
    good = get_format(fmt).to_wia(docs[0]) + [e for o in get_format(fmt).to_wia_each(docs[1]) for e in o.events]
    assert out.read_bytes() == b"".join(jsonio.dumpb(e) + b"\n" for e in good)
    assert len(good) == (1 if fmt != "stix" else 2 * len(CARRIERS) - 1)
    summary = json.loads(err.strip().splitlines()[-1])
    assert summary["rejected"] == 1


@pytest.mark.parametrize("fmt", ["cef", "leef", "stix", "ocsf"])
def test_convert_round_trip_of_valid_events_is_byte_identical(fmt: str, tmp_path, capsys) -> None:
    events = [e for _, e in builder_events()]
    src = tmp_path / "events.ndjson"
    src.write_bytes(b"".join(jsonio.dumpb(e) + b"\n" for e in events))
    mid, back = tmp_path / f"mid.{fmt}", tmp_path / "back.ndjson"
    assert main(["convert", str(src), "--to", fmt, "-o", str(mid)]) == 0
    assert main(["convert", str(mid), "--from", fmt, "-o", str(back)]) == 0
    capsys.readouterr()
    got = [json.loads(line) for line in back.read_text().splitlines()]
    assert got == events
    if fmt == "stix":                   # the extension keeps the event's own member order
        assert back.read_bytes() == src.read_bytes()
