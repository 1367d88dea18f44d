"""The seven upstream samples: five satisfy the schema; two carry nulls that only lenient mode accepts."""
from wia_security import Event, validate_event

NULL_SAMPLES = {
    "auth-event-sample": {"/data/source/hostname", "/data/session_id"},
    "incident-sample": {"/data/root_cause", "/data/lessons_learned", "/data/closed_at"},
}


def test_all_seven_samples_load_as_events(samples):
    assert len(samples) == 7
    for name, doc in samples.items():
        event = Event.from_dict(doc)
        assert event.to_dict() == doc, name
        assert type(event.data).__name__.endswith("Data"), name


def test_five_samples_are_valid_in_strict_mode(samples):
    valid = {name for name, doc in samples.items() if validate_event(doc).valid}
    assert valid == set(samples) - set(NULL_SAMPLES)


def test_null_samples_fail_strict_mode_naming_the_null_paths(samples):
    for name, paths in NULL_SAMPLES.items():
        result = validate_event(samples[name])
        assert not result.valid
        assert {e.path for e in result.errors} == paths
        assert {e.code for e in result.errors} == {"type"}


def test_null_samples_pass_lenient_mode_with_a_warning_per_dropped_null(samples):
    for name, paths in NULL_SAMPLES.items():
        result = validate_event(samples[name], lenient=True)
        assert result.valid, result.errors
        dropped = {w.path for w in result.warnings if w.code == "null_dropped"}
        assert dropped == paths
        for path in paths:
            parent, key = path.rsplit("/", 1)
            node = result.event
            for part in parent.strip("/").split("/"):
                node = node[part]
            assert key not in node
        # the caller's dict is untouched
        assert samples[name]["data"].get("session_id", "absent") is None or name != "auth-event-sample"
