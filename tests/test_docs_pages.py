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
