"""The connector, cloud, format and validation documents (docs/connectors, docs/cloud, docs/formats,
docs/validation.md), as written: every link and repository path resolves; every `wia-security ...` example
parses, and the destinations it names are built offline (no request is sent); every TOML example loads and
opens its destinations; every option listed in an option table is accepted by that connector, and every option
the connector accepts is listed; the delivery-policy table and the limits quoted as `CONSTANT` = value match
the code. README.md's command-line block is run by tests/core/cli/test_readme_examples.py; section 8 parses
the examples of README.md and the other docs pages (dashboard, compliance, Splunk app, XSOAR pack), runs
the dashboard and compliance ones, checks every `--flag` that prose names, and that every option has help.

Offline: clients are constructed (boto3, azure, elasticsearch-py, demisto-py, requests sessions) but nothing
is sent; the few constructors that would talk to a server get a stand-in for that one call (STS
GetCallerIdentity, the TAXII API root, PyMISP's login check, librdkafka's Producer, Google ADC)."""
from __future__ import annotations

import fnmatch
import inspect
import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from wia_security.cli import build_parser
from wia_security.connectors import SINKS
from wia_security.connectors.config import Destination, is_secret_key, parse_config, resolve_options
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.glob("connectors/*.md"), *DOCS.glob("cloud/*.md"), *DOCS.glob("formats/*.md"),
                DOCS / "validation.md"])
PAGE_IDS = [str(p.relative_to(DOCS)) for p in PAGES]
SECRET = "docs-example-secret-0123456789"
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def page(name: str) -> str:
    return (DOCS / name).read_text()


def blocks(text: str, langs: tuple[str, ...]) -> list[str]:
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M) if m.group(1) in langs]


def section(text: str, heading: str) -> str:
    """The text under the first heading containing `heading`, up to the next heading."""
    match = re.search(rf"^#+ [^\n]*{re.escape(heading)}[^\n]*\n", text, re.M)
    assert match, f"no heading containing {heading!r}"
    end = re.search(r"^#+ ", text[match.end():], re.M)
    return text[match.end(): match.end() + end.start() if end else None]


def tables(text: str) -> list[list[list[str]]]:
    """Markdown tables as rows of cells (header first, separator dropped). `\\|` stays inside a cell."""
    found, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            found.append(rows)
            rows = []
    return found


# -- offline construction ----------------------------------------------------------------------------------------

class _FakeSts:
    def get_caller_identity(self) -> dict[str, str]:
        return {"Account": "123456789012"}


class _FakeProducer:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    def flush(self, timeout: float = 0) -> int:
        return 0


class _FakeMisp:
    _PyMISP__session = None

    def __init__(self, url: str, key: Any, verify: Any, timeout: Any, **answer_bounds: Any) -> None:
        assert isinstance(key, str) and key, "PyMISP takes the key as a str"
        self.url = url


def _client_certificate(path: Path) -> None:
    """A throwaway client certificate and its key in one PEM file (a sink loads it when it is made)."""
    from servers.certificates import issue, make_ca, write_certificate, write_key
    key, cert = issue(make_ca("docs CA"), "docs-client", server=False)
    write_key(path, key)
    certificate = path.with_suffix(".crt")
    write_certificate(certificate, cert)
    path.write_bytes(path.read_bytes() + certificate.read_bytes())


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Environment variables and secret files the examples name, and stand-ins for the constructor calls that
    would reach a server. Returns a function that opens a destination URL with options the way a
    `[destinations.NAME]` table does (`*_env` resolved), and closes it."""
    monkeypatch.setenv("MISP_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.chdir(tmp_path)
    _client_certificate(tmp_path / "client.pem")       # the syslog sink's client_cert (VALUES)
    import wia_security.connectors.intel.misp as misp
    import wia_security.connectors.kafka as kafka
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    monkeypatch.setattr(misp, "_client", _FakeMisp)
    monkeypatch.setattr(kafka, "Producer", _FakeProducer)
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), "docs-project"))

    def open_url(url: str, **options: Any) -> Any:
        for name in set(re.findall(r"_env=([A-Z_][A-Z0-9_]*)", url)) | {
                v for k, v in options.items() if k.endswith("_env")}:
            monkeypatch.setenv(name, SECRET)
        options = resolve_options(options)
        url = re.sub(r"<[^>]+>", "123", url)            # <ORG_ID>-style placeholders
        url = re.sub(r"((?:ca_certs|ca_file)=)[^&]+", r"\g<1>" + SYSTEM_CA, url)   # a CA file that exists here
        scheme = url.split("://", 1)[0].split("+", 1)[0]
        if scheme in ("file", "sqlite"):                   # write under tmp_path, not /var/lib/wia
            url = f"{scheme}:///{tmp_path}/{url.rstrip('/').rsplit('/', 1)[-1]}"
        if scheme == "securityhub" and "account_id" not in url:
            options.setdefault("sts_client", _FakeSts())
        if scheme == "taxii":
            options.setdefault("max_content_length", 1_000_000)
        sink = Destination("docs", url, options, None).open()
        close = getattr(sink, "close", None)
        if close:
            close()
        return sink

    return open_url


# -- 1. links and repository paths ---------------------------------------------------------------------------------

SOURCE_FILE_NAMES = {f.name for top in ("core", "connectors", "tests", "benchmarks", "scripts", "lambda",
                                         "azure_function", "gcp_function")
                     for f in ROOT.joinpath(top).rglob("*.py") if "build" not in f.parts}
#: Folders builds write (git-ignored): a path in them is named by the docs but exists only after a build.
GENERATED_DIRS = {"build", "dist"}
REPO_PATH = re.compile(r"`((?:docs|core|connectors|tests|benchmarks|scripts|lambda|azure_function|gcp_function|"
                       r"samples)/[A-Za-z0-9_./*-]+)`")


@pytest.mark.parametrize("path", PAGES, ids=PAGE_IDS)
def test_links_and_repository_paths_resolve(path):
    text = path.read_text()
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        if not (path.parent / target.split("#", 1)[0]).exists():
            missing.append(target)
    for target in REPO_PATH.findall(text):
        target = target.rstrip(".")
        if GENERATED_DIRS & set(target.split("/")):
            continue        # made by a build (or a test that builds): there or not depending on what ran first
        if "<" in target or not any(ROOT.glob(target)):
            missing.append(target)
    for name in re.findall(r"`([A-Za-z0-9_*]+\.py)`", text):        # a bare module or test file name
        if not any(fnmatch.fnmatch(known, name) for known in SOURCE_FILE_NAMES):
            missing.append(name)
    assert not missing, f"{path.relative_to(ROOT)}: no such file: {missing}"


# -- 2. command-line examples --------------------------------------------------------------------------------------

def command_lines(text: str) -> list[tuple[str, bool]]:
    """Lines of shell code blocks (continuations joined) and inline code spans that mention `wia-security `."""
    lines = [(line, True) for block in blocks(text, ("", "sh", "bash", "console", "shell"))
             for line in block.replace("\\\n", " ").splitlines()]
    lines += [(span, False) for span in re.findall(r"`([^`\n]*wia-security [^`\n]*)`", text)]
    return [(line, in_block) for line, in_block in lines if "wia-security " in line]


def cli_examples(text: str) -> list[list[str]]:
    """`wia-security ...` commands in code blocks (backslash continuations joined) and in inline code spans
    that give arguments, cut at the first pipe or redirection, `VAR=value` prefixes dropped."""
    examples = []
    for line, in_block in command_lines(text):
        start = line.find("wia-security ")
        if start < 0 or "INPUT..." in line:          # the synopsis in formats/README.md is not a command
            continue
        before = line[:start].strip()
        if before and not re.match(r"[A-Z_]+=|.*\|$", before):          # VAR=value prefixes, or a pipe
            continue                                      # prose that mentions the command
        lexer = shlex.shlex(line[start:], posix=True, punctuation_chars="|<>;&")
        lexer.whitespace_split, lexer.commenters = True, "#"
        words = []
        for word in lexer:
            if word and set(word) <= set("|<>;&"):
                break
            words.append(word)
        if in_block or len(words) > 2:                    # `wia-security forward` alone names the command
            examples.append(words[1:])
    return examples


EXAMPLES = [(p, argv) for p in PAGES for argv in cli_examples(p.read_text())]


def test_the_pages_have_command_line_examples():
    pages = {p.relative_to(DOCS).as_posix() for p, _ in EXAMPLES}
    assert {"connectors/splunk.md", "connectors/soar.md", "connectors/delivery.md", "connectors/gateway.md",
            "connectors/intel.md", "cloud/aws.md", "cloud/azure.md", "cloud/gcp.md", "formats/README.md"} <= pages
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("path,argv", EXAMPLES, ids=[f"{p.relative_to(DOCS)}: {' '.join(a)}" for p, a in EXAMPLES])
def test_every_command_example_parses(path, argv):
    build_parser().parse_args(argv)            # SystemExit(2) on an option the command does not have


DESTINATION_FLAGS = ("--to", "--store")
URL_EXAMPLES = [(p, a[i + 1]) for p, a in EXAMPLES for i, w in enumerate(a[:-1])
                if w in DESTINATION_FLAGS and "://" in a[i + 1]]


@pytest.mark.parametrize("path,url", URL_EXAMPLES, ids=[f"{p.relative_to(DOCS)}: {u}" for p, u in URL_EXAMPLES])
def test_every_destination_url_in_an_example_opens(offline, path, url):
    sink = offline(url)
    assert type(sink).__module__.startswith("wia_security.connectors")


def test_urls_with_shell_metacharacters_are_quoted():
    """Unquoted, `?` is a glob (zsh stops with "no matches found") and `&` ends the command."""
    bad = []
    for path in PAGES:
        for line, _ in command_lines(path.read_text()):
            for word in shlex.split(line[line.find("wia-security "):], comments=True):
                if "://" in word and ("?" in word or "&" in word) and f"'{word}'" not in line \
                        and f'"{word}"' not in line:
                    bad.append(f"{path.relative_to(DOCS)}: {word}")
    assert not bad


# -- 3. TOML examples ----------------------------------------------------------------------------------------------

TOML_EXAMPLES = [(p, b) for p in PAGES for b in blocks(p.read_text(), ("toml",))]


@pytest.mark.parametrize("path,body", TOML_EXAMPLES, ids=[str(p.relative_to(DOCS)) for p, _ in TOML_EXAMPLES])
def test_every_toml_example_loads_and_its_destinations_open(offline, monkeypatch, tmp_path, path, body):
    """As `forward --config` reads it, every destination (disabled ones too) built offline; secrets by
    reference get a value, and files and databases are written under tmp_path."""
    data = tomllib.loads(body)
    assert data.get("destinations"), "a TOML example is a whole config file"
    if path.name == "aws.md":
        # The Lambda forwarder resolves *_secretsmanager / *_ssm references itself (tests/lambda); here the
        # rest of the file is checked with the references replaced by environment variables.
        for table in data["destinations"].values():
            for key in [k for k in table if k.endswith(("_secretsmanager", "_ssm"))]:
                table[key.rsplit("_", 1)[0] + "_env"] = "DOCS_SECRET_REF"
                del table[key]
    for table in data["destinations"].values():
        for key, value in list(table.items()):
            if key.endswith("_env"):
                monkeypatch.setenv(value, SECRET)
            elif key == "ca_file":                  # checked when the destination opens: a real CA bundle
                table[key] = SYSTEM_CA
            elif key.endswith("_file"):
                secret = tmp_path / Path(value).name
                secret.write_text(SECRET + "\n")
                table[key] = str(secret)
        table.pop("enabled", None)
    if "forward" in data:
        data["forward"]["dead_letter"] = f"sqlite:///{tmp_path}/dl.db"
    for table in data["destinations"].values():     # file and sqlite destinations write under tmp_path
        if table.get("url", "").startswith(("file://", "sqlite://")):
            table["url"] = re.sub(r":///.*/", f":///{tmp_path}/", table["url"])
    config = parse_config(data, source=str(path))
    assert config.destinations
    for destination in config.destinations:
        options = dict(destination.options)
        if destination.url.startswith("securityhub:") and "account_id" not in destination.url:
            options.setdefault("sts_client", _FakeSts())
        if destination.url.startswith("taxii"):
            options.setdefault("max_content_length", 1_000_000)     # else the API root is read
        sink = Destination(destination.name, destination.url, options, destination.delivery).open()
        sink.close()


# -- 4. option tables ----------------------------------------------------------------------------------------------

def _init_keywords(cls: type, *drop: str) -> set[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    internal = {"self", "delivery", "dead_letter", "name", "sleep", "clock", "client", "sts_client", "machinery",
                "client_options", "options", "display"}
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - internal - set(drop)


def _code_options() -> dict[str, set[str]]:
    from wia_security.connectors import elastic, qradar, taxii
    from wia_security.connectors.aws import securityhub
    from wia_security.connectors.azure import sentinel
    from wia_security.connectors.gcp import scc
    from wia_security.connectors.intel import misp
    from wia_security.connectors.soar import splunk_soar, xsoar
    from wia_security.connectors.splunk import hec
    return {
        "splunk": set(hec.OPTIONS),
        "phantom": set(splunk_soar.OPTIONS),
        "xsoar": set(xsoar.OPTIONS),
        "elasticsearch": set(elastic._URL_KEYS) | {"api_key", "username", "password"},
        "qradar": set(qradar._URL_KEYS),
        # KafkaSink.from_url keeps its option list in local variables: written out here
        "kafka": {"format", "username", "password", "sasl_mechanism", "ssl_key_password", "delivery_timeout_ms", "config"},
        "taxii": _init_keywords(taxii.TaxiiSink, "collection_url"),
        "misp": (set(misp.MispSink.URL_OPTIONS) | set(misp.MispSink.OPTIONS)) - {"delivery", "dead_letter", "sleep",
                                                                                   "clock"},
        "securityhub": _init_keywords(securityhub.SecurityHubSink) | {"region"},
        "sentinel": _init_keywords(sentinel.SentinelSink, "endpoint", "rule_id") | {"stream"},
        "sentinel-incidents": _init_keywords(sentinel.SentinelIncidents, "subscription_id", "resource_group",
                                             "workspace"),
        "scc": _init_keywords(scc.SccSink, "source", "credentials"),     # credentials: Python only
    }


#: (page, heading) -> (scheme, a URL to add the option to). One option table under each heading.
OPTION_TABLES = {
    ("connectors/splunk.md", "HEC sink"): ("splunk", "splunk+https://splunk.example.com:8088"),
    ("connectors/soar.md", "Splunk SOAR: `phantom"): ("phantom", "phantom+https://soar.example.com"),
    ("connectors/soar.md", "Cortex XSOAR: `xsoar"): ("xsoar", "xsoar+https://api-xsoar.example.com"),
    ("connectors/elastic.md", "Options"): ("elasticsearch", "elasticsearch+https://es.example:9200"),
    ("connectors/qradar.md", "Syslog sink"): ("qradar", "qradar+tls://qradar.example:6514"),
    ("connectors/kafka.md", "URL and options"): ("kafka", "kafka+sasl_ssl://broker:9093/wia-events"),
    ("connectors/taxii.md", "Sink:"): ("taxii", "taxii+https://taxii.example/api1/collections/91a7b528/"),
    ("connectors/intel.md", "MISP (pymisp)"): ("misp", "misp+https://misp.example.org"),
    ("cloud/aws.md", "Security Hub connector ("): ("securityhub", "securityhub://eu-west-1"),
    ("cloud/azure.md", "Sentinel connector ("): (
        "sentinel", "sentinel://dce.eastus-1.ingest.monitor.azure.com/dcr-0123456789abcdef0123456789abcdef"),
    ("cloud/azure.md", "Sentinel incidents"): (
        "sentinel-incidents", "sentinel-incidents:///subscriptions/00000000-0000-0000-0000-000000000000/"
        "resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws"),
    ("cloud/gcp.md", "SCC connector"): ("scc", "scc://organizations/123/sources/456"),
}

#: A value each option takes (the TOML/keyword form); options not listed get "x".
VALUES: dict[str, Any] = {
    "gzip": True, "ack": True, "ack_timeout": 5, "timeout": 5, "max_content_length": 100_000, "fields": "none",
    "tls_verify": True, "verify": True, "ca_file": SYSTEM_CA, "ca_certs": SYSTEM_CA, "scope": "all", "naming": "daily", "format": "cef",
    "install_template": False, "mapping_dialect": "opensearch", "request_timeout": 5, "facility": 13,
    "max_message_bytes": 10_000, "delimiter": "^", "framing": "lf", "hostname": "collector-1", "server_name": "qradar.example",
    "client_cert": "client.pem", "client_key": "client.pem",
    "delivery_timeout_ms": 5000, "config": {"linger.ms": 20}, "sasl_mechanism": "PLAIN", "username": "wia",
    "status_timeout": 5, "send_extension_definition": False, "distribution": 1, "verify_tls": True, "tag": "tlp:amber",
    "account_id": "123456789012", "region": "eu-west-1", "product_arn": None, "stream": "Custom-WIASecurity",
    "credential": "default", "client_id": "00000000-0000-0000-0000-000000000001", "location": "global",
    "auth": "anonymous", "resource": "//cloudresourcemanager.googleapis.com/projects/p", "endpoint": None,
    "credentials": "anonymous", "base_url": "https://management.example", "index": "wia",
    "auth_id": 17, "label": "events", "sensitivity": "amber", "channel": "8d1e3a2c-0000-4000-8000-000000000000",
    "user": "wia", "incident_type": "WIA Security Event", "audience": "https://monitor.azure.us",
}
SECRETS = {"token", "password", "api_key", "key", "ssl_key_password"}
#: Options that are given only with another one (the syslog sink's client_key is the key of client_cert).
PAIRED: dict[str, dict[str, Any]] = {"client_key": {"client_cert": "client.pem"}}


def option_names(cell: str) -> list[str]:
    """Option names in a table's first cell: every `code` span that is an identifier (`token_env` counts as
    `token`); "delivery keys" stands for the DeliveryPolicy keys."""
    names = []
    for span in re.findall(r"`([^`]+)`", cell):
        if re.fullmatch(r"[a-z][a-z0-9_]*", span):
            base = re.sub(r"_(env|file)$", "", span)
            names.append(base if base in SECRETS or is_secret_key(base) else span)
    return list(dict.fromkeys(names))


def documented_options(name: str, heading: str) -> tuple[list[list[str]], list[str]]:
    text = section(page(name), heading)
    option_tables = [t for t in tables(text) if t[0][0].lower() == "option"]
    assert len(option_tables) == 1, f"{name} § {heading}: expected one table headed | option | default | meaning |"
    rows = option_tables[0][1:]
    return rows, [n for row in rows for n in option_names(row[0])]


@pytest.mark.parametrize("where", OPTION_TABLES, ids=[f"{p} § {h}" for p, h in OPTION_TABLES])
def test_option_tables_list_exactly_what_the_connector_accepts(where):
    scheme, _ = OPTION_TABLES[where]
    rows, names = documented_options(*where)
    documented = set(names)
    code = _code_options()[scheme]
    assert not documented - code, f"documented but not accepted by the code: {sorted(documented - code)}"
    assert not code - documented, f"accepted by the code but not documented: {sorted(code - documented)}"
    assert len(names) == len(documented), "an option is listed twice"
    if SINKS[scheme].split(":")[1] not in ("KafkaSink", "SentinelIncidents"):
        assert any("delivery" in row[0] for row in rows), "the delivery keys are not mentioned"


@pytest.mark.parametrize("where", OPTION_TABLES, ids=[f"{p} § {h}" for p, h in OPTION_TABLES])
def test_every_documented_option_is_taken_from_a_config_file(offline, where):
    scheme, url = OPTION_TABLES[where]
    rows, names = documented_options(*where)
    url_only = {n for row in rows if "(URL only)" in row[-1] for n in option_names(row[0])}
    base: dict[str, Any] = {}
    if scheme in ("splunk", "phantom", "xsoar"):
        base["token_env"] = "DOCS_TOKEN"
    if scheme == "securityhub":
        base["account_id"] = "123456789012"
    if scheme == "scc":
        base["auth"] = "anonymous"
    if scheme == "kafka":                              # sasl_mechanism goes with SASL credentials
        base.update(username="wia", password_env="DOCS_TOKEN")
    for name in names:
        options, target = dict(base), url
        if name in url_only:                           # a query-string key that a TOML table cannot give
            target = f"{url}?{name}={VALUES.get(name, 'x')}"
        elif name in SECRETS:
            options[f"{name}_env"] = "DOCS_TOKEN"
        elif VALUES.get(name, "x") is not None:
            options[name] = VALUES.get(name, "x")
            options.update(PAIRED.get(name, {}))
        else:
            continue                                   # an option whose only useful value needs a server
        try:
            offline(target, **options)
        except ConfigError as exc:
            pytest.fail(f"{where[0]}: option {name!r}: {exc}")


BATCHING = [w for w in OPTION_TABLES if OPTION_TABLES[w][0] not in ("kafka", "sentinel-incidents")]


@pytest.mark.parametrize("where", BATCHING, ids=[f"{p} § {h}" for p, h in BATCHING])
def test_delivery_keys_are_taken_in_the_delivery_table(monkeypatch, offline, where):
    """`[destinations.NAME.delivery]` reaches every batching sink (delivery.md, "Configuration")."""
    scheme, url = OPTION_TABLES[where]
    monkeypatch.setenv("DOCS_TOKEN", SECRET)
    base = {"splunk": {"token_env": "DOCS_TOKEN"}, "phantom": {"token_env": "DOCS_TOKEN"},
            "xsoar": {"token_env": "DOCS_TOKEN"}, "securityhub": {"account_id": "123456789012"},
            "scc": {"auth": "anonymous"}, "taxii": {"max_content_length": 1_000_000}}.get(scheme, {})
    sink = Destination("docs", url, resolve_options(base), DeliveryPolicy(max_attempts=2, max_wait=0)).open()
    try:
        assert sink.policy.max_attempts == 2
    finally:
        sink.close()


# -- 5. numbers the pages quote ------------------------------------------------------------------------------------

def test_the_delivery_policy_table_matches_the_code():
    rows = [t for t in tables(page("connectors/delivery.md")) if t[0][0] == "key"][0][1:]
    defaults = {f.name: f.default for f in DeliveryPolicy.__dataclass_fields__.values()}
    documented = {re.sub(r"`", "", r[0]): float(r[1].replace(",", "")) for r in rows}
    assert documented == defaults


UNITS = {"": 1, "bytes": 1, "KB": 1024, "KiB": 1024, "MB": 1024 ** 2, "MiB": 1024 ** 2, "s": 1}
#: page -> the modules whose constants it quotes
PAGE_MODULES = {
    "connectors/splunk.md": ["connectors.splunk.hec"],
    "connectors/soar.md": ["connectors.soar.splunk_soar", "connectors.soar.xsoar"],
    "connectors/elastic.md": ["connectors.elastic", "connectors.elastic.template"],
    "connectors/qradar.md": ["connectors.qradar"],
    "connectors/kafka.md": ["connectors.kafka"],
    "connectors/taxii.md": ["connectors.taxii"],
    "connectors/intel.md": ["connectors.intel.virustotal", "connectors.intel.cache", "connectors.intel.misp"],
    "connectors/gateway.md": ["connectors.gateway.settings", "connectors.gateway.stream", "connectors.gateway.server",
                              "connectors.gateway.taxii_server", "connectors.websocket_client"],
    "connectors/delivery.md": ["connectors.delivery.batching", "connectors.delivery.http", "connectors.delivery.policy"],
    "cloud/aws.md": ["connectors.aws.securityhub", "connectors.relay", "lambda:wia_lambda.stream_recovery"],
    "cloud/azure.md": ["connectors.azure.sentinel", "connectors.relay"],
    "cloud/gcp.md": ["connectors.gcp.scc", "connectors.relay"],
}


def quoted_constants(text: str) -> list[tuple[str, str]]:
    """`NAME = value` spans, `NAME` = value, value (`NAME`), and rows of a `| constant |` table."""
    found = re.findall(r"`([A-Z][A-Z0-9_]{2,})\s+=\s+([^`]+)`", text)       # not `VAR=x command`
    found += re.findall(r"`([A-Z][A-Z0-9_]{2,})`\s*=?\s*([\d,.]*\d(?: ?[KM]i?B| bytes)?)", text)
    found += [(name, value) for value, name in       # "10 MiB (`NAME`)", "5,000 events, `NAME`"
              re.findall(r"(?<![\w.])([\d,.]*\d(?: ?[KM]i?B| bytes)?)(?: [a-z]+)?[ ,(]+`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`",
                         text)]
    for table in tables(text):
        if table[0][0].lower() != "constant":
            continue
        for row in table[1:]:
            match = re.fullmatch(r"`([A-Z][A-Z0-9_]{2,})`", row[0])
            if match and len(row) > 1:
                found.append((match.group(1), row[1]))
    return found


def number(text: str) -> float | None:
    match = re.match(r"\s*([\d,]+(?:\.\d+)?)\s*(KiB|KB|MiB|MB|bytes|s)?\b", text)
    if not match:
        return None
    return float(match.group(1).replace(",", "")) * UNITS[match.group(2) or ""]


@pytest.mark.parametrize("name", sorted(PAGE_MODULES))
def test_quoted_constants_match_the_code(name):
    import importlib
    if any(m.startswith("lambda:") for m in PAGE_MODULES[name]) and str(ROOT / "lambda") not in sys.path:
        sys.path.insert(0, str(ROOT / "lambda"))         # the forwarder's own package, as tests/lambda does
    modules = [importlib.import_module(m.removeprefix("lambda:") if m.startswith("lambda:") else f"wia_security.{m}")
               for m in PAGE_MODULES[name]]
    quoted = quoted_constants(page(name))
    checked = 0
    for constant, value in quoted:
        owners = [m for m in modules if hasattr(m, constant)]
        assert owners, f"{name}: `{constant}` is not a constant of {PAGE_MODULES[name]}"
        actual = getattr(owners[0], constant)
        if isinstance(actual, tuple):
            assert [float(n) for n in re.findall(r"[\d.]+", value)] == list(actual), (constant, value, actual)
        elif isinstance(actual, str):
            assert value.strip().strip("`\"'") == actual, (constant, value, actual)
        else:
            expected = number(value)
            if expected is None:                  # `A = B = 1`: the last part is the value
                expected = number(value.rsplit("=", 1)[-1])
            assert expected == actual, f"{name}: `{constant}` is quoted as {value!r}, the code says {actual!r}"
        checked += 1
    assert checked or name in ("connectors/kafka.md", "connectors/taxii.md", "connectors/gateway.md"), name


def test_gateway_flags_in_the_page_exist():
    """Every `--flag` the gateway page names is an option of `wia-security serve`."""
    text = page("connectors/gateway.md")
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    flags = {s for a in serve._actions for s in a.option_strings}
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text))
    assert named <= flags, sorted(named - flags)
    assert flags - {"-h", "--help"} <= named, f"serve flags the page does not describe: {sorted(flags - named - {'-h', '--help'})}"


# -- 6. Python examples --------------------------------------------------------------------------------------------

#: Where the names a snippet uses without importing them live.
SNIPPET_MODULES = ("wia_security", "wia_security.connectors.kafka", "wia_security.connectors.taxii",
                   "wia_security.connectors.websocket_client", "wia_security.connectors.intel.misp",
                   "wia_security.connectors.intel.virustotal", "wia_security.connectors.intel.cache",
                   "wia_security.connectors.splunk.search", "wia_security.connectors.qradar")
PYTHON_EXAMPLES = [(p, b) for p in PAGES for b in blocks(p.read_text(), ("python", "py"))]


def _lookup(name: str, imported: dict[str, Any]) -> Any:
    import importlib
    if name in imported:
        return imported[name]
    for module in SNIPPET_MODULES:
        value = getattr(importlib.import_module(module), name, None)
        if value is not None:
            return value
    return None


@pytest.mark.parametrize("path,body", PYTHON_EXAMPLES, ids=[f"{p.relative_to(DOCS)}#{i}" for i, (p, _) in
                                                            enumerate(PYTHON_EXAMPLES)])
def test_every_python_example_compiles_imports_and_calls_with_real_signatures(path, body):
    """Each snippet compiles; what it imports exists; every call of a library class or function, and of a method
    on an object the snippet built from one, binds to the real signature (no server is contacted)."""
    import ast
    import importlib
    tree = ast.parse(body)
    imported: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wia_security"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                imported[alias.asname or alias.name] = getattr(module, alias.name)
    instances: dict[str, type] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
            targets = [(t.id, node.value.func.id) for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.withitem) and isinstance(node.context_expr, ast.Call) and \
                isinstance(node.context_expr.func, ast.Name) and isinstance(node.optional_vars, ast.Name):
            targets = [(node.optional_vars.id, node.context_expr.func.id)]
        else:
            targets = []
        for var, cls_name in targets:
            cls = _lookup(cls_name, imported)
            if isinstance(cls, type):
                instances[var] = cls
    checked = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args) or \
                any(k.arg is None for k in node.keywords):
            continue
        target: Any = None
        if isinstance(node.func, ast.Name):
            target = _lookup(node.func.id, imported)
        elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id in instances:
            cls = instances[node.func.value.id]
            assert hasattr(cls, node.func.attr), f"{cls.__name__} has no method {node.func.attr}"
            target = getattr(cls, node.func.attr)
            node = ast.Call(node.func, [ast.Constant(None), *node.args], node.keywords)   # self
        if target is None or not callable(target) or getattr(target, "__module__", "").split(".")[0] != "wia_security":
            continue
        args = [None] * len(node.args)
        kwargs = {k.arg: None for k in node.keywords}
        try:
            inspect.signature(target).bind(*args, **kwargs)
        except TypeError as exc:
            pytest.fail(f"{path.relative_to(DOCS)}: {ast.unparse(node)}: {exc}")
        checked += 1
    assert checked or "class " in body, "no call of the library checked"


# -- 7. converter options ------------------------------------------------------------------------------------------

FORMAT_PAGES = sorted(p.stem for p in DOCS.glob("formats/*.md") if p.stem != "README")


@pytest.mark.parametrize("name", FORMAT_PAGES)
def test_format_pages_name_exactly_the_converter_options(name):
    """The options a page names (an option table, "option `x`", "options `x=`, `y=`") are the format's
    `options` (what `convert --option` accepts), and each of them is named."""
    from wia_security.formats import get_format
    text = page(f"formats/{name}.md")
    named = {row[0].strip("`") for t in tables(text) if t[0][0].lower() == "option" for row in t[1:]}
    for match in re.finditer(r"[Oo]ptions?\s+((?:`\w+(?:=[^`]*)?`(?:,\s+|\s+and\s+|\s+or\s+)?)+)", text):
        named |= set(re.findall(r"`(\w+)", match.group(1)))
    assert named == set(get_format(name).options), f"{name}.md names {sorted(named)}"


def test_the_convert_examples_of_the_format_pages_run_on_the_samples(tmp_path):
    """In page order, in one directory (asff.md's findings feed the `--from asff` example): no traceback, exit 0
    (or 1 where the strict samples are refused), and every `-o` file written."""
    import gzip
    import json
    import shutil
    import subprocess
    import sys
    samples = sorted(ROOT.joinpath("samples").glob("*.json"))
    events = b"".join(json.dumps(json.loads(p.read_text())).encode() + b"\n" for p in samples)
    for name in ("events.ndjson", "FILE"):
        (tmp_path / name).write_bytes(events)
    (tmp_path / "alerts.ndjson.gz").write_bytes(gzip.compress(events))
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    runs = [argv for p, argv in EXAMPLES if p.parent.name == "formats" and argv[0] == "convert"]
    runs.sort(key=lambda argv: "--from" in argv)                 # the writers first
    assert len(runs) >= 6
    for argv in runs:
        import glob
        expanded = [m for word in argv for m in (sorted(glob.glob(word, root_dir=tmp_path)) or [word])]
        r = subprocess.run([sys.executable, "-m", "wia_security", *expanded], cwd=tmp_path, input=events,
                           capture_output=True, timeout=60)
        err = r.stderr.decode()
        assert "Traceback" not in err and r.returncode in (0, 1), (argv, err)
        if "-o" in argv:
            assert (tmp_path / argv[argv.index("-o") + 1]).stat().st_size > 0, argv


@pytest.mark.parametrize("where", OPTION_TABLES, ids=[f"{p} § {h}" for p, h in OPTION_TABLES])
def test_defaults_in_option_tables_match_the_constructor(where):
    """A default written as a number, true/false or a `literal` equals the constructor's default."""
    import importlib
    scheme, _ = OPTION_TABLES[where]
    module_name, class_name = SINKS[scheme].split(":")
    cls = getattr(importlib.import_module(f"wia_security.connectors.{module_name}"), class_name)
    params = inspect.signature(cls.__init__).parameters
    rows, _ = documented_options(*where)
    checked = 0
    for row in rows:
        names = option_names(row[0])
        if len(names) != 1 or names[0] not in params or params[names[0]].default is inspect.Parameter.empty:
            continue
        default, cell = params[names[0]].default, row[1].strip()
        if isinstance(default, bool):
            if cell.split()[0].lower() in ("true", "false"):
                assert (cell.split()[0].lower() == "true") == default, (names[0], cell, default)
                checked += 1
        elif isinstance(default, (int, float)) and number(cell) is not None:
            assert number(cell) == default, (names[0], cell, default)
            checked += 1
        elif isinstance(default, str) and re.match(r"`[^`]+`", cell):
            assert re.match(r"`([^`]+)`", cell).group(1) == default, (names[0], cell, default)
            checked += 1
    assert checked or scheme in ("sentinel-incidents", "misp", "kafka"), "no default checked"


QUERY_TABLES = [w for w in OPTION_TABLES if OPTION_TABLES[w][0] not in ("kafka", "taxii", "misp")]


@pytest.mark.parametrize("where", QUERY_TABLES, ids=[f"{p} § {h}" for p, h in QUERY_TABLES])
def test_every_documented_option_is_taken_from_the_url_query(monkeypatch, offline, where):
    """The same options as query-string keys (`--to 'scheme://host?option=value'`); secrets as `<key>_env`."""
    from urllib.parse import quote
    scheme, url = OPTION_TABLES[where]
    rows, names = documented_options(*where)
    names = [n for n in names if not any(n in option_names(r[0]) and "(table only)" in r[-1] for r in rows)]
    base = {"splunk": "token_env=DOCS_TOKEN&", "phantom": "token_env=DOCS_TOKEN&", "xsoar": "token_env=DOCS_TOKEN&",
            "securityhub": "account_id=123456789012&", "scc": "auth=anonymous&"}.get(scheme, "")
    monkeypatch.setenv("DOCS_TOKEN", SECRET)
    checked = 0
    for name in names:
        value = VALUES.get(name, "x")
        if name in SECRETS or value is None or isinstance(value, dict):
            continue                          # secrets never go in a URL; `config` is a table
        text = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            paired = "".join(f"{k}={v}&" for k, v in PAIRED.get(name, {}).items())
            own_base = "".join(f"{pair}&" for pair in base.split("&") if pair and not pair.startswith(f"{name}="))
            offline(f"{url}?{own_base}{paired}{name}={quote(text, safe='/:')}")   # a key given twice is refused
        except ConfigError as exc:
            pytest.fail(f"{where[0]}: ?{name}=: {exc}")
        checked += 1
    assert checked


def test_the_splunk_search_source_table_lists_its_options():
    from wia_security.connectors.splunk import search
    rows, names = documented_options("connectors/splunk.md", "Search source")
    assert set(names) == set(search.OPTIONS)
    assert search.SplunkSearchSource.from_url("splunk+https://splunk.example.com:8089", token="t", app="search",
                                              owner="nobody", tls_verify=False).app == "search"


# -- 8. the other pages, the flags prose names, and --help -----------------------------------------------------------

#: Pages whose `wia-security ...` examples the sections above do not parse (README.md's command-line block is
#: also run by tests/core/cli/test_readme_examples.py; its other code spans are checked here).
OTHER_PAGES = [ROOT / "README.md", DOCS / "dashboard.md", DOCS / "compliance.md", DOCS / "splunk_app.md",
               DOCS / "xsoar_pack.md"]
OTHER_EXAMPLES = [(p, argv) for p in OTHER_PAGES for argv in cli_examples(p.read_text())]


def _subparsers() -> dict[str, Any]:
    import argparse
    found: dict[str, Any] = {}

    def walk(parser: Any, path: str) -> None:
        found[path] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}".strip())
    walk(build_parser(), "")
    return found


def _flags(parser: Any) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


ALL_FLAGS = set().union(*(_flags(p) for p in _subparsers().values()))
ALL_PAGES = sorted({*PAGES, *OTHER_PAGES, *DOCS.glob("*.md"), *DOCS.glob("*/*.md")})


@pytest.mark.parametrize("path,argv", OTHER_EXAMPLES,
                         ids=[f"{p.relative_to(ROOT)}: {' '.join(a)}" for p, a in OTHER_EXAMPLES])
def test_every_command_example_of_the_other_pages_parses(path, argv):
    build_parser().parse_args(argv)            # SystemExit(2) on an option the command does not have


def test_the_other_pages_have_command_line_examples():
    pages = {p.name for p, _ in OTHER_EXAMPLES}
    assert {"README.md", "dashboard.md", "compliance.md"} <= pages


#: `--flag` spans in the pages that belong to other tools (a browser, benchmarks, build and cloud CLIs).
FOREIGN_FLAGS = {
    "--remote-debugging-pipe",                         # Chromium (dashboard.md)
    "--instructions", "--rss-mb", "--osmem-events",    # benchmarks/*.py
    "--with", "--architecture", "--python-version",    # the Lambda zip build, pip (cloud/aws.md)
    "--retry", "--trigger-topic", "--timeout",         # gcloud functions deploy (cloud/gcp.md)
    "--cert",                                          # openssl / kcat (connectors/kafka.md)
    "--mode",                                          # az deployment group create (cloud/azure.md)
    "--guided", "--confirm-changeset",                 # sam deploy (cloud/aws.md)
    "--validate-arguments",                            # splunkd's modular input protocol (splunk_app.md)
}


def test_flags_named_in_prose_exist():
    """Outside code blocks: a span `COMMAND --flag ...` (`forward --to -`, `convert --from`) names options of that
    command; a span that is only `--flag ...` names an option of some command, unless it is another tool's."""
    commands = _subparsers()
    bad = []
    for path in ALL_PAGES:
        text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
        for span in re.findall(r"`([^`\n]+)`", text):
            words = span.split()
            if not words:
                continue
            named = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", span)
            if words[0] == "wia-security":
                words = words[1:]
            command = " ".join(w for w in words[:2] if not w.startswith("-"))
            while command and command not in commands:
                command = command.rsplit(" ", 1)[0] if " " in command else ""
            if command:
                bad += [f"{path.relative_to(ROOT)}: `{span}`" for f in named if f not in _flags(commands[command])]
            elif words and words[0].startswith("--"):
                bad += [f"{path.relative_to(ROOT)}: `{span}`" for f in named if f not in ALL_FLAGS | FOREIGN_FLAGS]
    assert not bad, bad


def test_every_option_of_every_command_says_what_it_does():
    """`wia-security COMMAND --help` explains every option (a bare `--title TITLE` line tells nothing)."""
    import argparse
    silent = [f"{path or 'wia-security'}: {a.option_strings or a.dest}"
              for path, parser in _subparsers().items() for a in parser._actions
              if not a.help and not isinstance(a, argparse._SubParsersAction)]
    assert not silent, silent


def test_the_dashboard_and_compliance_examples_run(tmp_path):
    """In one directory holding the store (the samples, forwarded with --lenient), events.ndjson, samples/ and the
    demo week made by the caption's own command: no traceback, exit 0 (or 1 where the strict samples are refused),
    every `-o` / `--json` file written, and the file the screenshot command opens is one a report wrote."""
    import glob
    import json
    import shutil
    import subprocess
    samples = sorted(ROOT.joinpath("samples").glob("*.json"))
    (tmp_path / "events.ndjson").write_bytes(
        b"".join(json.dumps(json.loads(p.read_text())).encode() + b"\n" for p in samples))
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    run = [sys.executable, "-m", "wia_security"]
    assert subprocess.run([*run, "forward", "--lenient", "events.ndjson"], cwd=tmp_path,
                          capture_output=True).returncode == 0
    caption = page("dashboard.md")
    assert "`python tests/core/dashboard/dataset.py > week.ndjson`" in caption
    week = subprocess.run([sys.executable, str(ROOT / "tests/core/dashboard/dataset.py")], capture_output=True,
                          check=True, timeout=120)
    (tmp_path / "week.ndjson").write_bytes(week.stdout)
    runs = [argv for p, argv in OTHER_EXAMPLES if p.name in ("dashboard.md", "compliance.md")
            and argv[0] in ("report", "compliance") and "FILE" not in argv]
    assert len(runs) >= 6
    written = set()
    for argv in runs:
        expanded = [m for word in argv for m in (sorted(glob.glob(word, root_dir=tmp_path)) or [word])]
        r = subprocess.run([*run, *expanded], cwd=tmp_path, capture_output=True, timeout=120)
        err = r.stderr.decode()
        assert "Traceback" not in err and r.returncode in (0, 1), (argv, err)
        for flag in ("-o", "--json"):
            if flag in argv:
                out = argv[argv.index(flag) + 1]
                assert (tmp_path / out).stat().st_size > 0, argv
                written.add(out)
    shot = re.search(r"`python tests/core/dashboard/chromium.py (\S+) ", caption).group(1)
    assert shot in written, f"the screenshot command opens {shot}, which no report example writes"
