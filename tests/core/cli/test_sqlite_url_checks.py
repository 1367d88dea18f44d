"""`sqlite:` URLs in forward, serve and --config files: a query string or fragment is refused (it was ignored:
`sqlite:///x.db?mode=ro` opened x.db read-write), and a store, dead letter or destination that cannot be
opened because `sqlite:///dir/x.db` reads ./dir/x.db gets the four-slash hint query and replay give."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from bad_inputs import VALID

from wia_security.connectors.config import parse_config
from wia_security.connectors.delivery import open_dead_letter
from wia_security.errors import ConfigError

TOKEN = "sqlite-url-checks-token-0123456789"
ACCEPTED = ("accepted: sqlite:///relative/path.db or sqlite:////absolute/path.db, with no ?query or #fragment "
            "(write a ? or # in the file name as %3F or %23)")


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("WIA_GATEWAY_TOKENS", TOKEN)


@pytest.fixture
def busy_port():
    """A port already taken: a serve that was not refused fails to bind at once instead of serving for ever."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield str(taken.getsockname()[1])


@pytest.fixture
def event_file(tmp_path: Path) -> Path:
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(VALID) + "\n")
    return src


# --- query strings and fragments ---------------------------------------------------------------------------

BAD_URLS = [
    ("sqlite:///x.db?mode=ro", "sqlite:///x.db?mode=***: a sqlite: URL takes no query string"),
    ("sqlite:///x.db?s3cr3tvalue&timeout=5", "sqlite:///x.db?***&timeout=***: a sqlite: URL takes no query string"),
    ("sqlite:///x.db#old", "sqlite:///x.db#...: a sqlite: URL takes no fragment"),
    ("sqlite:///x.db?", "sqlite:///x.db?: a sqlite: URL takes no query string"),
]


@pytest.mark.parametrize("url, said", BAD_URLS)
@pytest.mark.parametrize("flag", ["--to", "--dead-letter", "--dead-letter sink+"])
def test_forward_refuses_a_sqlite_url_with_a_query_or_fragment(cli, tmp_path, event_file, flag, url, said):
    option, _, prefix = flag.partition(" ")
    r = cli("forward", str(event_file), option, prefix + url)
    assert r.code == 2
    assert f"wia-security: {said} (nothing would read it); {ACCEPTED}" in r.err, r.err
    assert "s3cr3tvalue" not in r.err and "=ro" not in r.err and "=5" not in r.err
    assert not (tmp_path / "x.db").exists()           # nothing opened, nothing created


def test_a_percent_encoded_question_mark_is_part_of_the_file_name(cli, tmp_path, event_file):
    assert cli("forward", str(event_file), "--to", "sqlite:///x%3Fy.db").code == 0
    assert (tmp_path / "x?y.db").is_file()


# --- sqlite: without // (as JDBC writes it): it was taken as a path, a file named 'sqlite:x.db' ---------------

NO_SLASHES = [
    ("sqlite:x.db", "sqlite:x.db: a sqlite: URL has // after the scheme (for x.db: sqlite:///x.db)"),
    ("SQLite:/abs/x.db", "SQLite:/abs/x.db: a sqlite: URL has // after the scheme (for /abs/x.db: sqlite:////abs/x.db)"),
    ("sqlite:x.db?key=s3cr3tvalue", "sqlite:x.db?key=***: a sqlite: URL has // after the scheme"),
]


@pytest.mark.parametrize("url, said", NO_SLASHES)
@pytest.mark.parametrize("flag", ["--to", "--dead-letter", "--dead-letter sink+"])
def test_forward_refuses_a_sqlite_url_without_slashes(cli, tmp_path, event_file, flag, url, said):
    option, _, prefix = flag.partition(" ")
    r = cli("forward", str(event_file), "--lenient", option, prefix + url, *(["--to", "-"] if option != "--to" else []))
    assert r.code == 2, r.err
    assert f"wia-security: {said}" in r.err and ACCEPTED in r.err
    assert "s3cr3tvalue" not in r.err
    assert not any(p.name.lower().startswith("sqlite") for p in tmp_path.iterdir())      # no file named so


@pytest.mark.parametrize("flag", ["--store", "--dead-letter"])
def test_serve_refuses_a_sqlite_url_without_slashes_before_start(cli, tmp_path, busy_port, flag):
    r = cli("serve", "--port", busy_port, flag, "sqlite:x.db")
    assert r.code == 2
    assert f"wia-security: {flag}: sqlite:x.db: a sqlite: URL has // after the scheme (for x.db: sqlite:///x.db)" in r.err
    assert not any(p.name.lower().startswith("sqlite") for p in tmp_path.iterdir())


def test_a_config_file_refuses_a_sqlite_url_without_slashes():
    with pytest.raises(ConfigError, match=r"destinations.store.url: sqlite:x.db: a sqlite: URL has // after"):
        parse_config({"destinations": {"store": {"url": "sqlite:x.db"}}}, source="wia.toml")
    with pytest.raises(ConfigError, match=r"forward.dead_letter: sqlite:dl.db: a sqlite: URL has // after"):
        parse_config({"forward": {"dead_letter": "sqlite:dl.db"},
                      "destinations": {"out": {"url": "file:///tmp/out.ndjson"}}}, source="wia.toml")


@pytest.mark.parametrize("url, said", BAD_URLS)
def test_a_config_file_refuses_a_sqlite_destination_or_dead_letter_with_a_query(url, said):
    with pytest.raises(ConfigError) as caught:
        parse_config({"destinations": {"store": {"url": url}}}, source="wia.toml")
    assert str(caught.value).startswith(f"wia.toml: destinations.store.url: {said}")
    with pytest.raises(ConfigError) as caught:
        parse_config({"forward": {"dead_letter": "sink+" + url},
                      "destinations": {"out": {"url": "file:///tmp/out.ndjson"}}}, source="wia.toml")
    assert str(caught.value).startswith(f"wia.toml: forward.dead_letter: {said}")


@pytest.mark.parametrize("url, said", BAD_URLS)
def test_open_dead_letter_refuses_a_sqlite_url_with_a_query(tmp_path, monkeypatch, url, said):
    monkeypatch.chdir(tmp_path)
    for spec in (url, "sink+" + url):
        with pytest.raises(ConfigError) as caught:
            open_dead_letter(spec)
        assert str(caught.value).startswith(said)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("flag", ["--store", "--to", "--dead-letter"])
def test_serve_refuses_a_sqlite_url_with_a_query_before_start(cli, tmp_path, busy_port, flag):
    r = cli("serve", "--port", busy_port, flag, "sqlite:///x.db?mode=ro")
    assert r.code == 2
    assert f"wia-security: {flag}: sqlite:///x.db?mode=***: a sqlite: URL takes no query string" in r.err, r.err
    assert not (tmp_path / "x.db").exists()


def test_serve_refuses_a_config_file_with_such_a_url_before_start(cli, tmp_path, busy_port):
    (tmp_path / "wia.toml").write_text('[destinations.store]\nurl = "sqlite:///x.db#old"\n')
    r = cli("serve", "--port", busy_port, "--no-store", "--config", "wia.toml")
    assert r.code == 2
    assert ("wia-security: --config: wia.toml: destinations.store.url: sqlite:///x.db#...: a sqlite: URL takes "
            "no fragment") in r.err, r.err


# --- the four-slash hint ------------------------------------------------------------------------------------

def _hint(absolute: Path) -> str:
    return (f"(sqlite:/// is followed by a path relative to the current directory; for {absolute} write "
            f"sqlite:///{absolute})")


@pytest.fixture
def stores(tmp_path: Path) -> Path:
    """A directory that exists at its absolute path only: sqlite:///<it>/x.db reads ./<it>/x.db."""
    where = tmp_path / "stores"
    where.mkdir()
    return where


@pytest.mark.parametrize("flag", ["--to", "--dead-letter", "--dead-letter sink+"])
def test_forward_gives_the_four_slash_hint_for_a_store_it_cannot_open(cli, event_file, stores, flag):
    option, _, prefix = flag.partition(" ")
    target = stores / "x.db"
    r = cli("forward", str(event_file), option, f"{prefix}sqlite://{target}")   # three slashes
    assert r.code == 2
    assert str(target)[1:] in r.err and _hint(target) in r.err, r.err
    r = cli("forward", str(event_file), option, f"{prefix}sqlite:///{target}")  # four: as meant
    assert r.code == 0, r.err


@pytest.mark.parametrize("name, in_url", [("a?b.db", "a%3Fb.db"), ("a%3Fb.db", "a%253Fb.db"), ("a#b.db", "a%23b.db")])
def test_the_four_slash_hint_percent_encodes_what_a_url_reads_otherwise(cli, event_file, stores, name, in_url):
    """The URL the hint gives opens the file it names: a ? or # in the name was given as is (a query or fragment,
    refused), a % as is (read as an escape: a file named a%3Fb.db became a?b.db)."""
    r = cli("forward", str(event_file), "--to", f"sqlite://{stores}/{in_url}")        # three slashes
    assert r.code == 2
    meant = f"sqlite:///{stores}/{in_url}"
    assert f"for {stores / name} write {meant})" in r.err, r.err
    assert cli("forward", str(event_file), "--to", meant).code == 0
    assert [p.name for p in stores.iterdir()] == [name]


def test_forward_config_gives_the_hint_for_a_destination_and_its_dead_letter(cli, tmp_path, event_file, stores):
    target = stores / "a.db"
    (tmp_path / "dest.toml").write_text(f'[destinations.a]\nurl = "sqlite://{target}"\n')
    r = cli("forward", str(event_file), "--config", "dest.toml")
    assert r.code == 2
    assert "destinations.a" in r.err and _hint(target) in r.err, r.err
    (tmp_path / "dl.toml").write_text(f'[forward]\ndead_letter = "sqlite://{target}"\n'
                                      f'[destinations.out]\nurl = "file://{tmp_path}/out.ndjson"\n')
    r = cli("forward", str(event_file), "--config", "dl.toml")
    assert r.code == 2
    assert "dead-letter" in r.err and _hint(target) in r.err, r.err


def test_no_hint_when_the_absolute_reading_does_not_exist_either(cli, event_file):
    r = cli("forward", str(event_file), "--to", "sqlite:///no-such-wia-dir/x.db")
    assert r.code == 2
    assert "no-such-wia-dir/x.db" in r.err and "sqlite:/// is followed by" not in r.err


@pytest.mark.parametrize("flag", ["--store", "--to", "--dead-letter", "--dead-letter sink+"])
def test_serve_gives_the_four_slash_hint_before_start(cli, stores, busy_port, flag):
    option, _, prefix = flag.partition(" ")
    target = stores / "x.db"
    r = cli("serve", "--port", busy_port, option, f"{prefix}sqlite://{target}")
    assert r.code == 2
    assert f"cannot write {str(target)[1:]}" in r.err and _hint(target) in r.err, r.err


def test_serve_config_gives_the_hint_before_start(cli, tmp_path, stores, busy_port):
    target = stores / "a.db"
    (tmp_path / "wia.toml").write_text(f'[destinations.a]\nurl = "sqlite://{target}"\n')
    r = cli("serve", "--port", busy_port, "--no-store", "--config", "wia.toml")
    assert r.code == 2
    assert (f"wia-security: --config wia.toml: destinations.a.url sqlite://{target}: cannot write "
            f"{str(target)[1:]}") in r.err and _hint(target) in r.err, r.err
