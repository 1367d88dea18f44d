"""Option combinations that make no sense, bad values and outputs that would eat their inputs: each a usage
error (exit 2) with a message that says what to do, before anything is read or written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bad_inputs import VALID, valid_line

SAMPLES = sorted(str(p) for p in Path(__file__).resolve().parents[3].joinpath("samples").glob("*.json"))


@pytest.fixture
def one(tmp_path) -> Path:
    path = tmp_path / "in.ndjson"
    path.write_bytes(valid_line() + b"\n")
    return path


@pytest.mark.parametrize("args", [
    ["convert", "--to", "ocsf", "-o", "in.ndjson", "in.ndjson"],
    ["convert", "--to", "ocsf", "--dead-letter", "in.ndjson", "in.ndjson"],
    ["forward", "--to", "file:///{tmp}/in.ndjson", "in.ndjson"],
    ["forward", "--dead-letter", "in.ndjson", "in.ndjson"],
])
def test_an_output_that_is_also_an_input_is_refused_and_the_input_survives(cli, tmp_path, one, args):
    before = one.read_bytes()
    r = cli(*[a.format(tmp=tmp_path) for a in args])
    assert r.code == 2
    assert "also an INPUT" in r.err
    assert one.read_bytes() == before


@pytest.mark.parametrize("args", [
    ["--to", "sqlite:///{tmp}/store.db"],
    ["--config", "{tmp}/wia.toml"],                         # a fan-out with the store among its destinations
    ["--to", "file:///{tmp}/out.ndjson", "--dead-letter", "sqlite:///{tmp}/store.db"],
])
def test_forward_refuses_a_sqlite_store_that_is_also_an_input(cli, tmp_path, one, args):
    """The store is a file the destination writes though the sink has no `path`: reading it while
    inserting into it would read the run's own output."""
    assert cli("forward", "--to", f"sqlite:///{tmp_path}/store.db", "in.ndjson").code == 0
    (tmp_path / "wia.toml").write_text(f'[destinations.copy]\nurl = "file://{tmp_path}/copy.ndjson"\n'
                                       f'[destinations.store]\nurl = "sqlite:///{tmp_path}/store.db"\n')
    before = rows(tmp_path / "store.db")
    assert len(before) == 1
    store_bytes = (tmp_path / "store.db").read_bytes()
    r = cli("forward", *[a.format(tmp=tmp_path) for a in args], "store.db")
    assert r.code == 2, r.err
    assert "also an INPUT (store.db)" in r.err
    assert rows(tmp_path / "store.db") == before              # nothing read from it went into it
    # refused before anything was opened: the store's file is untouched (opening it bumps its header),
    # and no other destination or dead letter was created
    assert (tmp_path / "store.db").read_bytes() == store_bytes
    assert not (tmp_path / "wia-dead-letter.ndjson").exists()
    assert not (tmp_path / "copy.ndjson").exists() and not (tmp_path / "out.ndjson").exists()


def rows(db: Path) -> list[tuple]:
    import sqlite3
    with sqlite3.connect(db) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [(t, *row) for t in sorted(tables) for row in conn.execute(f'SELECT * FROM "{t}"')]


def test_convert_output_and_dead_letter_cannot_be_one_file(cli, tmp_path, one):
    (tmp_path / "out.ndjson").write_text("")
    r = cli("convert", "--to", "ocsf", "-o", "out.ndjson", "--dead-letter", "out.ndjson", "in.ndjson")
    assert r.code == 2 and "same file" in r.err


@pytest.mark.parametrize("args, says", [
    (["convert", "--to", "ocsff", "in.ndjson"], "did you mean 'ocsf'?"),
    (["convert", "--from", "stx", "in.ndjson"], "did you mean 'stix'?"),
    (["query", "--type", "alrt"], "did you mean 'alert'?"),
    (["query", "--type", "endpoint"], "did you mean 'endpoint_event'?"),
])
def test_an_unknown_name_suggests_the_closest_valid_one(cli, one, args, says):
    r = cli(*args)
    assert r.code == 2 and says in r.err


def test_an_unknown_converter_option_is_one_usage_error_not_a_dead_letter_per_event(cli, tmp_path, one):
    r = cli("convert", "--to", "stix", "--option", "wia_extensoin=false", "in.ndjson")
    assert r.code == 2
    assert "--option wia_extensoin: not an option of the stix format" in r.err
    assert not (tmp_path / "wia-dead-letter.ndjson").exists()


@pytest.mark.parametrize("args, says", [
    # formats that take any keyword used to ignore a misspelt option silently (OCSF kept unmapped=True)
    (["--to", "ocsf", "--option", "unmaped=false"], "not an option of the ocsf format when writing (it takes "
                                                    "unmapped) (did you mean 'unmapped'?)"),
    (["--to", "asff", "--option", "acount_id=123456789012"], "(did you mean 'account_id'?)"),
    (["--to", "ecs", "--option", "index=x"], "not an option of the ecs format when writing (it takes none)"),
    (["--from", "ocsf", "--option", "unmapped=false"], "not an option of the ocsf format when reading"),
])
def test_every_format_names_the_options_it_takes(cli, tmp_path, one, args, says):
    r = cli("convert", *args, "in.ndjson")
    assert r.code == 2 and says in r.err
    assert not (tmp_path / "wia-dead-letter.ndjson").exists()


def test_every_declared_format_option_is_accepted_by_its_converter(samples):
    from wia_security.formats import FORMATS, get_format
    values = {"account_id": "123456789012", "region": "eu-west-1", "partition": "aws", "generator_id": "g",
              "product_arn": "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default",
              "delimiter": "^", "vendor": "V", "product": "P", "unmapped": False, "wia_extension": False}
    for name in FORMATS:
        fmt = get_format(name)
        fmt.from_wia(samples["alert-sample"], **{k: values[k] for k in fmt.options})


@pytest.mark.parametrize("args, says", [
    (["convert", "--list-formats", "in.ndjson"], "--list-formats takes no INPUT"),
    (["forward", "--enrich-cache", "c.db", "in.ndjson"], "--enrich-cache is the cache of --enrich"),
    (["validate", "--quiet", "--format", "json", "in.ndjson"], "--quiet applies to --format text only"),
    (["forward", "--batch-size", "-5", "in.ndjson"], "--batch-size must be at least 1"),
    (["forward", "--batch-size", "0", "in.ndjson"], "--batch-size must be at least 1"),
    (["pull", "kafka://127.0.0.1:9/t", "--idle-timeout", "-1"], "--idle-timeout must be a positive number"),
    (["query", "--min-severity", "11"], "--min-severity: 11 is outside the WIA severity range 0 to 10"),
    (["query", "--max-severity", "-1"], "--max-severity: -1 is outside the WIA severity range"),
    (["query", "--min-severity", "nan"], "--min-severity: nan is outside the WIA severity range"),
    (["query", "--id", "not-a-uuid"], "--id: 'not-a-uuid' is not an event id"),
    (["query", "--limit", "-1"], "--limit: must be 0 (no limit) or more"),
])
def test_meaningless_combinations_and_bad_values_are_usage_errors(cli, one, args, says):
    cli("forward", "--lenient", *SAMPLES)              # a store for query to open
    r = cli(*args)
    assert r.code == 2, r.err
    assert says in r.err


@pytest.mark.parametrize("args, says", [
    (["enrich", "--ttl", "-1", "in.ndjson"], "--ttl must be 0 or more seconds"),
    (["enrich", "--budget", "0", "in.ndjson"], "--budget must be a positive number of seconds"),
    (["enrich", "-o", "in.ndjson", "in.ndjson"], "is also an input"),
])
def test_enrich_values_are_checked_before_the_key(cli, monkeypatch, one, args, says):
    monkeypatch.setenv("VT_API_KEY", "k")
    before = one.read_bytes()
    r = cli(*args)
    assert r.code == 2 and says in r.err
    assert one.read_bytes() == before


def test_forward_to_standard_output_keeps_the_summary_out_of_the_event_stream(cli, tmp_path, one):
    r = cli("forward", "--to", "-", "--summary", "json", "in.ndjson")
    assert r.code == 0
    [event] = [json.loads(line) for line in r.out.splitlines()]       # only the event on stdout
    assert event["id"] == VALID["id"]
    summary = json.loads(r.err.strip().splitlines()[-1])
    assert summary["delivered"] == 1


def test_forward_names_the_first_rejects_on_stderr_with_file_and_line(cli, tmp_path):
    lines = [json.dumps(VALID), "{broken", json.dumps(dict(VALID, severity=42))]
    (tmp_path / "in.ndjson").write_text("\n".join(lines) + "\n")
    r = cli("forward", "--to", "sqlite:///s.db", "in.ndjson")
    assert r.code == 1
    assert "in.ndjson:2: unparseable input:" in r.err
    assert "in.ndjson:3: invalid: /severity:" in r.err


def test_query_says_on_stderr_when_the_limit_cut_the_answer(cli, tmp_path):
    cli("forward", "--lenient", *SAMPLES)
    r = cli("query", "--limit", "2", "--format", "ndjson")
    assert r.code == 0 and len(r.out.splitlines()) == 2
    assert "showing 2 of 7 matching events (newest first); --limit 0 shows all" in r.err
    r = cli("query", "--limit", "7", "--format", "ndjson")
    assert len(r.out.splitlines()) == 7 and "showing" not in r.err


@pytest.mark.parametrize("command", [[], ["validate"], ["forward"], ["convert"], ["query"], ["pull"], ["enrich"],
                                     ["attack"]])
def test_help_documents_the_exit_codes_the_commands_use(cli, command):
    r = cli(*command, "--help")
    assert r.code == 0
    text = " ".join(r.out.split())
    for code in ("130 interrupted", "143 terminated", "141 output pipe closed", "2 usage or I/O error"):
        assert code in text, (command, code)


@pytest.mark.parametrize("query, says", [("executon", "did you mean 'execution'?"),
                                         ("powershel", "did you mean 'PowerShell'?")])
def test_attack_suggests_the_closest_name_when_nothing_matches(cli, query, says):
    r = cli("attack", query)
    assert r.code == 1 and says in r.err


def test_attack_with_a_blank_query_is_a_usage_error(cli):
    r = cli("attack", "   ")
    assert r.code == 2 and "give a technique or tactic id" in r.err


@pytest.mark.parametrize("args, says", [
    (["frward", "in.ndjson"], "did you mean 'forward'?"),
    (["validate", "--format", "jsn", "in.ndjson"], "did you mean 'json'?"),
    (["intel", "pull", "mips"], "did you mean 'misp'?"),
])
def test_a_misspelled_command_or_choice_gets_the_closest_valid_one(cli, one, args, says):
    r = cli(*args)
    assert r.code == 2 and says in r.err


def test_a_dead_letter_refused_after_it_was_opened_is_closed(cli, tmp_path, one, monkeypatch):
    """A dead letter found to write an INPUT only once open (here: one whose writer reports the input
    as its file) is refused, and closed: a sink dead letter's sink or store was left open."""
    import wia_security.connectors.delivery as delivery

    class Opened:
        path, closed = str(one), False

        def close(self) -> None:
            self.closed = True

    opened = Opened()
    monkeypatch.setattr(delivery, "open_dead_letter", lambda spec: opened)
    r = cli("forward", "--to", f"file://{tmp_path}/out.ndjson", "--dead-letter", "elsewhere.ndjson", "in.ndjson")
    assert r.code == 2 and "also an INPUT" in r.err
    assert opened.closed
