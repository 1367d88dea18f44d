"""What the pages say, checked against the code where a reader cannot check it: the Markdown renders as written
(every code block closes on a line of its own), every setting a deployable reads from its environment is named
on its page, and the config file's `[forward]` keys are the ones the example shows. tests/test_docs_examples.py
checks the examples, option tables and constants."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKDOWN = sorted({ROOT / "README.md", ROOT / "CHANGELOG.md", *DOCS.rglob("*.md")})
MARKDOWN_IDS = [str(p.relative_to(ROOT)) for p in MARKDOWN]


# -- Markdown --------------------------------------------------------------------------------------------------------

def fence_problems(text: str) -> list[str]:
    """CommonMark closes a ``` block only with a line of backticks and blanks: text after them on the line
    (```` ``` Sinks not built on ````) leaves the block open, so the prose after it renders as code and the
    next block's fences swap over. A block left open at the end swallows the rest of the page."""
    problems, opening = [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = re.match(r" {0,3}(`{3,})(.*)$", line)
        if not match:
            continue
        if opening is None:
            opening = number
        elif match.group(2).strip():
            problems.append(f"line {number}: {line.strip()!r} does not close the block opened at line {opening}")
        else:
            opening = None
    if opening is not None:
        problems.append(f"the block opened at line {opening} is never closed")
    return problems


@pytest.mark.parametrize("path", MARKDOWN, ids=MARKDOWN_IDS)
def test_every_code_block_closes_on_a_line_of_its_own(path):
    assert not fence_problems(path.read_text())


def test_the_fence_check_finds_a_closing_fence_with_text_after_it():
    assert fence_problems("```toml\na = 1\n``` Sinks not built on\nprose\n```\n```\nsummary\n```\n")
    assert fence_problems("text\n```sh\nwia-security forward x\n")
    assert not fence_problems("```toml\na = 1\n```\n\nprose\n```\nsummary\n```  \n")


# -- the deployables' settings -----------------------------------------------------------------------------------------

def environment_settings(*files: Path) -> set[str]:
    """`WIA_*` names a module reads from its environment: string constants named `ENV_*` or `*_ENV`, and string
    literals passed to `os.environ.get`/`os.environ[...]`/`getenv` or to a helper reading one by name
    (`seconds_from_env("WIA_TIME_BUDGET", ...)`)."""
    names: set[str] = set()
    for file in files:
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                    isinstance(node.value.value, str) and node.value.value.startswith("WIA_"):
                if any(isinstance(t, ast.Name) and (t.id.startswith("ENV_") or t.id.endswith("_ENV"))
                       for t in node.targets):
                    names.add(node.value.value)
            elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and \
                    isinstance(node.args[0].value, str) and node.args[0].value.startswith("WIA_"):
                func = ast.unparse(node.func)
                if func.endswith(("environ.get", "getenv", "_from_env", "environ.__getitem__")):
                    names.add(node.args[0].value)
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ") and \
                    isinstance(node.slice, ast.Constant) and str(node.slice.value).startswith("WIA_"):
                names.add(node.slice.value)
    return {name.rstrip("_") for name in names}


DEPLOYABLES = {
    "cloud/aws.md": sorted(ROOT.joinpath("lambda/wia_lambda").rglob("*.py")),
    "cloud/azure.md": [ROOT / "azure_function/function_app.py"],
    "cloud/gcp.md": [ROOT / "gcp_function/main.py"],
}


@pytest.mark.parametrize("page", sorted(DEPLOYABLES))
def test_every_setting_a_deployable_reads_is_on_its_page(page):
    """The Lambda read WIA_LENIENT (and its config's [forward] table) with no word of it in aws.md."""
    settings = environment_settings(*DEPLOYABLES[page])
    assert settings, f"no WIA_* setting found in {DEPLOYABLES[page]}"
    text = (DOCS / page).read_text()
    missing = sorted(name for name in settings if f"`{name}" not in text)
    assert not missing, f"{page} does not name {missing}"


def test_the_settings_finder_reads_the_ways_the_code_reads_them(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('import os\nENV_A = "WIA_A"\nB_ENV = "WIA_B"\nos.environ.get("WIA_C")\nos.environ["WIA_D"]\n'
                      'seconds_from_env("WIA_E", 1.0, None)\nOTHER = "WIA_NOT_A_SETTING"\n')
    assert environment_settings(module) == {"WIA_A", "WIA_B", "WIA_C", "WIA_D", "WIA_E"}


def test_the_pages_say_which_functions_read_the_forward_table():
    """Each deployable page that takes a config says what becomes of its `[forward]` table."""
    for page in DEPLOYABLES:
        assert "`[forward]`" in (DOCS / page).read_text(), page


# -- the config file -----------------------------------------------------------------------------------------------

def test_the_forward_table_of_the_example_config_lists_every_key():
    import tomllib

    from wia_security.connectors.config import FORWARD_KEYS
    text = (DOCS / "connectors/delivery.md").read_text()
    examples = [tomllib.loads(b) for b in re.findall(r"^```toml\n(.*?)^```", text, re.S | re.M)]
    forward = [e["forward"] for e in examples if "forward" in e]
    assert len(forward) == 1
    assert set(forward[0]) == set(FORWARD_KEYS)


# -- README.md: what the commands do on a signal -------------------------------------------------------------------

def test_the_readme_names_every_command_that_stops_cleanly_on_a_signal():
    """A command module that reads under `StopSignals()` finishes what it read on Ctrl-C/SIGTERM (exit 130/143); the
    README's paragraph on it named forward, replay, convert and validate after enrich had gained it too."""
    text = (ROOT / "README.md").read_text()
    paragraph = text[text.index("Ctrl-C (SIGINT) or SIGTERM during"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    named = set(re.findall(r"`(?:wia-security )?([a-z]+)[ `]", paragraph))
    stopping = {path.stem for path in ROOT.joinpath("core/cli").glob("*.py") if "StopSignals()" in path.read_text()}
    assert stopping >= {"forward", "replay", "convert", "validate", "enrich", "pull"}
    assert stopping <= named, f"README.md does not say what {sorted(stopping - named)} do on Ctrl-C"


# -- dashboard.md: what report and compliance print on standard error ----------------------------------------------

def _shape(quoted: str) -> str:
    """A line quoted in the page as a pattern: its placeholders (file, line, /json/path, message, reason, N,
    numbers, output names) stand for any text of their kind."""
    pattern = re.escape(quoted)
    for placeholder, meaning in ((r"file:line", r"\S+:\d+"), (r"/json/path", r"/\S*"), (r"message", r".+"),
                                 (r"reason", r".+"), (r"\[code\]", r"\[[a-z_]+\]"), (r"\+N", r"\+\d+"),
                                 (r"soc\-week\.html", r"\S+\.html"), (r"soc\-week\.json", r"\S+\.json"),
                                 (r"1,000", r"[\d,]+"), (r"990", r"\d+"), (r"10", r"\d+"), (r"2", r"\d+")):
        pattern = pattern.replace(placeholder, meaning)
    return pattern


def test_report_prints_its_rejects_and_its_summary_as_the_dashboard_page_shows(tmp_path):
    """The page showed rejects as `file:line: ...` where report writes `wia-security: file:line: ... (+N more)`."""
    import json
    import subprocess
    import sys
    text = (DOCS / "dashboard.md").read_text()
    paragraph = " ".join(text[text.index("`inputs` says how many"):].split("\n\n", 1)[0].split())
    reject = re.search(r"as `([^`]+\[code\])` \(the first schema error, with `(\([^`]+\))`", paragraph)
    unparsed = re.search(r"`([^`]+\[parse_error\])`", paragraph)
    summary = re.search(r"sums it up: `([^`]+)`", paragraph)
    assert reject and unparsed and summary, "the paragraph no longer quotes the lines this test checks"
    samples = sorted(ROOT.joinpath("samples").glob("*.json"))        # two of them are invalid in strict mode
    (tmp_path / "events.ndjson").write_text("".join(json.dumps(json.loads(p.read_text())) + "\n" for p in samples))
    (tmp_path / "cut.json").write_text('{"type": "alert",\n')
    run = subprocess.run([sys.executable, "-m", "wia_security", "report", "cut.json", "events.ndjson",
                          "--since", "2025-12-14T07:00:00Z", "--until", "2025-12-15T00:00:00Z", "-o", "r.html"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    lines = run.stderr.splitlines()
    schema_rejects = [line for line in lines if line.endswith("more)")]
    assert schema_rejects and all(re.fullmatch(_shape(reject.group(1)) + " " + _shape(reject.group(2)), line)
                                  for line in schema_rejects), lines
    assert any(re.fullmatch("wia-security: " + _shape(unparsed.group(1)), line) for line in lines), lines
    assert re.fullmatch(_shape(summary.group(1)), lines[-1]), lines[-1]


# -- README.md: the artefacts `make dist` writes -------------------------------------------------------------------

def built_artefacts() -> list[str]:
    """The file names each build script writes into dist/, with the version as `<v>` (the Lambda's architecture
    suffix dropped, and its template beside the zip added)."""
    names = []
    for script in ("splunk_app/build.py", "xsoar_pack/build.py", "lambda/build.py", "azure_function/build.py",
                   "gcp_function/build.py"):
        text = ROOT.joinpath(script).read_text()
        constants = dict(re.findall(r'^([A-Z_]+) = "([^"]+)"$', text, re.M))
        for template in re.findall(r'(?:dist|out_dir) / f"([^"]+)"', text):
            name = re.sub(r"\{[^}]*version[^}]*\}", "<v>", template).replace("{suffix}", "")
            names.append(re.sub(r"\{([A-Z_]+)\}", lambda m: constants[m.group(1)], name))
    names += [n.replace(".zip", ".template.yaml") for n in names if n.startswith("wia-security-lambda-")]
    return names


def test_the_readme_names_every_artefact_make_dist_builds():
    """README's deployables table left out the GCP function's IAM role file, which its deploy steps need."""
    names = built_artefacts()
    assert len(names) == 8, names
    table = (ROOT / "README.md").read_text().split("## Deployables", 1)[1].split("\n## ", 1)[0]
    assert not [n for n in names if f"`{n}`" not in table and f"`{n.replace('.template.yaml', '.zip')}` + SAM" not in table]


# -- splunk_app.md: the input's parameters and the alert action's ---------------------------------------------------

def _spec_keys(name: str, prefix: str = "") -> set[str]:
    text = ROOT.joinpath("splunk_app/wia_security/README", name).read_text()
    return set(re.findall(rf"^{re.escape(prefix)}([a-z_]+) = ", text, re.M))


def test_the_modular_input_table_lists_every_parameter_of_its_spec():
    from test_docs_examples import section, tables
    text = (DOCS / "splunk_app.md").read_text()
    table = next(t for t in tables(section(text, "Modular input `wia_events`")) if t[0][0] == "parameter")
    documented = {name for row in table[1:] for name in re.findall(r"`([a-z_]+)`", row[0])}
    documented |= {"tls_verify"} if "may call it `tls_verify`" in text else set()   # the verify_tls row's alias
    assert documented == _spec_keys("inputs.conf.spec")


def test_the_alert_action_section_names_every_parameter_of_its_spec():
    """The page named param.title, .severity, .destination and .mitre_technique; not .description (which it
    never said was read) nor .category (which the result's own category field wins over)."""
    text = (DOCS / "splunk_app.md").read_text()
    assert set(re.findall(r"`param\.([a-z_]+)`", text)) == _spec_keys("alert_actions.conf.spec", "param.")


# -- every option of the commands that move events is on some page -------------------------------------------------

#: Commands whose every option a page names: the ones that read, deliver, pull or query events. (`attack`,
#: `report` and `compliance` options are described by `--help` and the examples; `serve` by gateway.md's own test.)
DOCUMENTED_COMMANDS = ("forward", "replay", "pull", "enrich", "intel pull", "convert", "validate", "query")


def test_every_option_of_the_commands_that_move_events_is_named_on_a_page():
    """forward --enrich-cache, enrich --out/--key-env/--budget, intel pull --key-env, pull --group, validate --quiet and
    --no-warnings and most of query's filters were only in --help."""
    import argparse

    from test_docs_examples import _subparsers
    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *DOCS.rglob("*.md")])
    commands = _subparsers()
    missing = []
    for name in DOCUMENTED_COMMANDS:
        for action in commands[name]._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            longs = [s for s in action.option_strings if s.startswith("--")]
            if longs and not any(re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", text) for s in longs):
                missing.append(f"{name} {longs[0]}")
    assert not missing, f"named on no page: {missing}"


# -- delivery.md: replay's summary -----------------------------------------------------------------------------------

def test_the_replay_summary_keys_are_the_ones_the_page_lists(tmp_path):
    """The page's list of `replay --summary json` keys lacked not_dead_letters, parts, dead_letter, destination and
    dry_run, which every summary carries."""
    import json
    import subprocess
    import sys
    text = (DOCS / "connectors/delivery.md").read_text()
    bullet = text[text.index("- **Summary** (standard output; `--summary json`)"):]
    bullet = bullet[:bullet.index("Exit code")]
    listed = set(re.findall(r"`([a-z_]+)`", bullet)) - {"summary"}
    samples = sorted(ROOT.joinpath("samples").glob("*.json"))       # two are invalid in strict mode
    (tmp_path / "events.ndjson").write_text("".join(json.dumps(json.loads(p.read_text())) + "\n" for p in samples))
    run = [sys.executable, "-m", "wia_security"]
    subprocess.run([*run, "forward", "events.ndjson", "--to", "sqlite:///x.db"], cwd=tmp_path, capture_output=True,
                   timeout=120)
    keys = set()
    for extra, config in (([], None), (["--dry-run"], None), ([], "[destinations.store]\nurl = 'sqlite:///x.db'\n")):
        target = ["--to", "sqlite:///x.db"]
        if config:
            (tmp_path / "wia.toml").write_text(config)
            target = ["--config", "wia.toml"]
        answer = subprocess.run([*run, "replay", "wia-dead-letter.ndjson", *target, "--lenient", *extra,
                                 "--summary", "json", "--dead-letter", "replay-dl.ndjson"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert answer.returncode == 0, answer.stderr
        keys |= set(json.loads(answer.stdout))
    assert keys == listed, f"not on the page: {sorted(keys - listed)}; not in the summary: {sorted(listed - keys)}"


def test_the_forward_summary_keys_are_the_ones_the_page_lists(tmp_path):
    """No page listed the keys of `forward --summary json`."""
    import json
    import subprocess
    import sys
    text = (DOCS / "connectors/delivery.md").read_text()
    paragraph = text[text.index("`forward --summary json` prints"):].split("\n\n", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", paragraph)) - {"forward", "replay"}
    samples = sorted(ROOT.joinpath("samples").glob("*.json"))
    (tmp_path / "events.ndjson").write_text("".join(json.dumps(json.loads(p.read_text())) + "\n" for p in samples))
    (tmp_path / "wia.toml").write_text("[destinations.a]\nurl = 'sqlite:///a.db'\n[destinations.b]\nurl = 'sqlite:///b.db'\n")
    keys = set()
    for target in (["--to", "sqlite:///x.db"], ["--config", "wia.toml"]):
        answer = subprocess.run([sys.executable, "-m", "wia_security", "forward", "events.ndjson", *target,
                                 "--summary", "json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert answer.returncode == 1, answer.stderr            # the two strict-mode rejects
        summary = json.loads(answer.stdout)
        keys |= set(summary) | set().union(*(set(d) for d in summary.get("destinations", {}).values()))
    early_end = {"interrupted", "stopped", "aborted", "in_flight"}
    assert keys <= listed, f"not on the page: {sorted(keys - listed)}"
    assert listed - keys <= early_end, f"on the page, not in a summary: {sorted(listed - keys - early_end)}"


# -- validation.md: what `validate` prints ----------------------------------------------------------------------------

def test_validate_prints_what_the_validation_page_says(tmp_path):
    """No page described validate's output (README only its first line); validation.md now does, and this runs it."""
    import json
    import subprocess
    import sys
    text = (DOCS / "validation.md").read_text()
    section = text[text.index("## The command: `wia-security validate`"):text.index("## Which schema")]
    json_part = section[section.index("`--format json`:"):]
    result_keys = set(re.findall(r'"([a-z_]+)"', json_part.split("each error or warning", 1)[0]))
    issue_keys = set(re.findall(r'"([a-z_]+)"', json_part.split("each error or warning", 1)[1].split("and a last")[0]))
    issue_keys |= set(re.findall(r"also `([a-z_]+)`", json_part))
    summary_keys = set(re.findall(r'"([a-z_]+)"', json_part.split("a last line", 1)[1])) - {"summary"}
    samples = sorted(ROOT.joinpath("samples").glob("*.json"))
    (tmp_path / "events.ndjson").write_text("".join(json.dumps(json.loads(p.read_text())) + "\n" for p in samples))
    (tmp_path / "cut.ndjson").write_text('{"a":}\n{"a": \n')
    (tmp_path / "empty.ndjson").write_text("")
    run = [sys.executable, "-m", "wia_security", "validate"]
    answer = subprocess.run([*run, "--format", "json", "events.ndjson", "cut.ndjson", "empty.ndjson"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert answer.returncode == 1
    lines = [json.loads(line) for line in answer.stdout.splitlines()]
    assert set(lines[-1]) == {"summary"} and set(lines[-1]["summary"]) == summary_keys
    assert set().union(*(set(r) for r in lines[:-1])) == result_keys
    issues = [i for r in lines[:-1] for i in r["errors"] + r["warnings"]]
    assert set().union(*(set(i) for i in issues)) == issue_keys
    shapes = [_shape_of(quoted) for quoted in re.findall(r"`(FILE:LINE(?::COLUMN)?: [^`]+)`", section)]
    summary_line = re.search(r"summary goes to standard error: `([^`]+)`", " ".join(section.split())).group(1)
    text_run = subprocess.run([*run, "events.ndjson", "cut.ndjson"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
    for line in text_run.stdout.splitlines():
        assert any(re.fullmatch(shape, line) for shape in shapes), line
    assert re.fullmatch(_shape_of(summary_line), text_run.stderr.strip().splitlines()[-1])


def _shape_of(quoted: str) -> str:
    pattern = re.escape(quoted)
    for placeholder, meaning in ((r"FILE:LINE:COLUMN", r"\S+:\d+:\d+"), (r"FILE:LINE", r"\S+:\d+"), (r"TYPE", r"[a-z_]+"), (r"ID", r"\S+"),
                                 (r"/json/path", r"/\S*"), (r"message", r".+"), (r"reason", r".+"),
                                 (r"\[code\]", r"\[[a-z_]+\]"), (r"7", r"\d+"), (r"5", r"\d+"), (r"2", r"\d+"),
                                 (r"0", r"\d+"), (r"1\\ warning", r"\d+\\ warnings?")):
        pattern = pattern.replace(placeholder, meaning)
    return pattern


def test_every_file_a_command_writes_by_default_is_named_on_a_page():
    """Where a command keeps or writes something when no flag says where (a checkpoint, a cursor, a dead letter, the
    store) is what a reader looks for afterwards: `pull`'s wia-taxii-checkpoint.json and `intel pull otx`'s
    wia-otx-state.json were only in --help."""
    from test_docs_examples import _subparsers
    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *DOCS.rglob("*.md")])
    defaults = set()
    for parser in _subparsers().values():
        for action in parser._actions:
            found = re.findall(r"default ([\w.:/-]+\.(?:json|ndjson|db))", action.help or "")
            if isinstance(action.default, str):
                found.append(action.default)
            defaults |= {f for f in found if re.search(r"\.(?:json|ndjson|db)$", f)}
    assert {"wia-taxii-checkpoint.json", "wia-otx-state.json", "wia-dead-letter.replay.ndjson"} <= defaults
    assert not sorted(d for d in defaults if f"`{d}`" not in text)


# -- links and paths of the pages test_docs_examples.py does not walk ------------------------------------------------

OTHER_PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", DOCS / "dashboard.md", DOCS / "compliance.md",
               DOCS / "splunk_app.md", DOCS / "builders.md"]
APP = ROOT / "splunk_app" / "wia_security"


@pytest.mark.parametrize("path", OTHER_PAGES, ids=[p.name for p in OTHER_PAGES])
def test_links_and_repository_paths_of_the_other_pages_resolve(path):
    """As test_docs_examples checks the connector, cloud and format pages; also `splunk_app/...`, `xsoar_pack/...`,
    `scripts/...` paths, and splunk_app.md's app-relative `bin/`, `default/`, `README/` ones."""
    from test_docs_examples import REPO_PATH
    text = path.read_text()
    missing = [target for target in re.findall(r"\]\(([^)\s]+)\)", text)
               if not target.startswith(("http://", "https://", "#", "mailto:"))
               and not (path.parent / target.split("#", 1)[0]).exists()]
    missing += [t for t in (t.rstrip(".") for t in REPO_PATH.findall(text)) if "<" not in t and not any(ROOT.glob(t))]
    for target in re.findall(r"`((?:splunk_app|xsoar_pack|scripts|\.ci)/[A-Za-z0-9_./*-]+)`", text):
        if "<" not in target and not any(ROOT.glob(target.rstrip("."))):
            missing.append(target)
    if path.name == "splunk_app.md":
        for target in re.findall(r"`((?:bin|default|README)/[A-Za-z0-9_./*-]+)`", text):
            if target != "bin/lib" and not any(APP.glob(target.rstrip("."))):     # bin/lib: made by the build
                missing.append(target)
    assert not missing, f"{path.name}: no such file: {missing}"


def test_the_readme_exit_code_table_has_the_codes_the_commands_say():
    """The codes every command's --help lists (common.EXIT_CODES_HELP) are the rows of README's table."""
    from wia_security.cli.common import EXIT_CODES_HELP
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| exit code | meaning |"):].split("\n\n", 1)[0]
    rows = {int(code) for line in table.splitlines()[2:] for code in re.findall(r"\d+", line.split("|")[1])}
    assert rows == {int(code) for code in re.findall(r"\b(\d+) [a-z]", EXIT_CODES_HELP.split(":", 1)[1])}
