"""Upgrading the app as a security team does: install version N, configure it in Splunk Web (local/,
storage/passwords), let the modular input run, then install N+1 over it. Splunk replaces the app's
files and keeps local/, metadata/local.meta and the modular-input checkpoint directory
($SPLUNK_HOME/var/lib/splunk/modinputs/wia_events, outside the app).

Two views: a live upgrade between two builds of the current tree (the version bumped), and the
current build installed over what each released version left behind (tests/splunk_app/released/<version>/:
its local/ settings and its checkpoints, written by that version), which catches a renamed setting
or a changed checkpoint name or shape that a same-tree upgrade cannot see."""
from __future__ import annotations

import json
import shutil
import sys
import tarfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from wia_security import __version__, validate_event

from .conftest import ROOT
from .splunkconf import read_conf, read_spec
from .splunkd_stub import Splunkd
from .test_modular_input import run_input, streamed

sys.path.append(str(ROOT / "tests" / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)

from intel_http import Fault  # noqa: E402
from wia_gateway_feed import GatewayFeed  # noqa: E402

RELEASED = Path(__file__).resolve().parent / "released"
RELEASES = sorted(p.name for p in RELEASED.iterdir() if p.is_dir())
#: Settings Splunk itself keeps in any inputs.conf stanza (inputs.conf.spec of Splunk), beside the input's own.
SPLUNK_INPUT_SETTINGS = {"interval", "index", "host", "source", "sourcetype", "disabled", "python.version",
                         "python.required", "start_by_shell", "run_introspection"}


def bumped(version: str) -> str:
    major, minor, _patch = (int(p) for p in version.split(".")[:3])
    return f"{major}.{minor + 1}.0"


def install(package: Path, apps: Path) -> Path:
    """Apps > Install app from file: the package's wia_security/ under etc/apps."""
    apps.mkdir(parents=True, exist_ok=True)
    with tarfile.open(package) as tar:
        tar.extractall(apps, filter="data")
    return apps / "wia_security"


def upgrade(package: Path, apps: Path) -> Path:
    """Install with "Upgrade app" ticked: the package replaces the app's files; what Splunk wrote into the
    installed app (local/, metadata/local.meta) stays."""
    app = apps / "wia_security"
    keep = apps.parent / "kept-during-upgrade"
    shutil.copytree(app / "local", keep / "local")
    if (app / "metadata" / "local.meta").exists():
        shutil.copy2(app / "metadata" / "local.meta", keep / "local.meta")
    shutil.rmtree(app)
    install(package, apps)
    assert not (app / "local").exists(), "the package brought a local/ folder: it would overwrite the admin's settings"
    assert not (app / "metadata" / "local.meta").exists(), "the package brought metadata/local.meta"
    shutil.copytree(keep / "local", app / "local")
    if (keep / "local.meta").exists():
        shutil.copy2(keep / "local.meta", app / "metadata" / "local.meta")
    shutil.rmtree(keep)
    return app


def layered(app: Path, conf: str) -> dict[str, dict[str, str]]:
    """A conf file as Splunk reads an app's: default/ under local/."""
    merged: dict[str, dict[str, str]] = {}
    for layer in ("default", "local"):
        path = app / layer / f"{conf}.conf"
        if path.exists():
            for stanza, keys in read_conf(path).items():
                merged.setdefault(stanza, {}).update(keys)
    return merged


def input_params(app: Path, stanza: str) -> dict[str, str]:
    """What splunkd hands the input: the scheme's default stanza under the input's own."""
    inputs = layered(app, "inputs")
    return {**inputs.get("wia_events", {}), **inputs[stanza]}


def config_xml(splunkd: Splunkd, checkpoint_dir: Path, stanza: str, params: dict[str, str]) -> str:
    body = "".join(f'<param name="{escape(k)}">{escape(v)}</param>' for k, v in params.items())
    return (f"<input><server_host>sh1</server_host><server_uri>{splunkd.url}</server_uri>"
            f"<session_key>{splunkd.session_key}</session_key><checkpoint_dir>{checkpoint_dir}</checkpoint_dir>"
            f'<configuration><stanza name="{escape(stanza)}" app="wia_security">{body}</stanza></configuration></input>')


def local_files(app: Path) -> dict[str, bytes]:
    files = {str(p.relative_to(app)): p.read_bytes() for p in (app / "local").rglob("*") if p.is_file()}
    if (app / "metadata" / "local.meta").exists():
        files["metadata/local.meta"] = (app / "metadata" / "local.meta").read_bytes()
    return files


@pytest.fixture
def splunkd():
    with Splunkd() as server:
        yield server


@pytest.fixture(scope="module")
def samples() -> list[dict]:
    return [validate_event(json.loads(p.read_text()), lenient=True).event for p in sorted((ROOT / "samples").glob("*.json"))]


@pytest.fixture(scope="module")
def next_release(built_app, app_build, tmp_path_factory):
    """The current tree rebuilt as the next release (version bumped), packaged as make dist does."""
    original = app_build.version
    app_build.version = lambda: bumped(__version__)
    try:
        out = tmp_path_factory.mktemp("next_release")
        return app_build.package(app_build.build_tree(out / "tree"), out / "dist")
    finally:
        app_build.version = original


def test_every_release_changes_the_build_number_and_it_only_rises(app_build):
    """Splunk's app.conf spec: every release changes both version and build (Splunk Web serves
    appserver/static under the build, so an unchanged one leaves browsers on the old setup script)."""
    versions = ["0.1.0", "0.1.1", "0.1.999", "0.2.0", "0.999.0", "1.0.0", "1.0.1", "2.0.0", "2147.483.647"]
    numbers = [app_build.build_number(v) for v in versions]
    assert numbers == sorted(set(numbers)) and numbers[0] > 0
    assert app_build.build_number("0.2.0rc1") == app_build.build_number("0.2.0")
    for refused in ("0.0.0", "1.1000.0", "1.0.1000", "one.two"):
        with pytest.raises(ValueError):
            app_build.build_number(refused)


def test_the_build_ships_no_local_settings_even_from_a_tree_that_has_them(app_build, monkeypatch, tmp_path):
    """A source tree linked into a development Splunk collects local/ and metadata/local.meta; packaged,
    they would overwrite every admin's own settings on upgrade."""
    source = tmp_path / "src" / "wia_security"
    shutil.copytree(ROOT / "splunk_app" / "wia_security", source,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (source / "local").mkdir()
    (source / "local" / "inputs.conf").write_text("[wia_events://dev]\nsource_url = gateway+http://127.0.0.1:1\n")
    (source / "local" / "app.conf").write_text("[install]\nis_configured = true\n")
    (source / "metadata" / "local.meta").write_text("[views/wia_overview]\nowner = dev\n")
    (source / "bin" / "local").mkdir()              # only the app's own local/ is Splunk's
    (source / "bin" / "local" / "keep.txt").write_text("not a conf layer\n")
    monkeypatch.setattr(app_build, "APP_SRC", source)
    app = app_build.build_tree(tmp_path / "out", third_party=False)
    assert not (app / "local").exists() and not (app / "metadata" / "local.meta").exists()
    assert (app / "metadata" / "default.meta").exists() and (app / "bin" / "local" / "keep.txt").exists()
    assert read_conf(app / "default" / "app.conf")["install"]["is_configured"] == "false"


def test_app_conf_follows_splunks_packaging_rules(built_app, app_build):
    app, package = built_app
    conf = read_conf(app / "default" / "app.conf")
    assert conf["install"]["is_configured"] == "false"        # the setup page sets true in local/app.conf
    assert conf["install"]["build"] == str(app_build.build_number(__version__))
    assert conf["id"]["version"] == conf["launcher"]["version"] == __version__
    assert conf["package"] == {"id": "wia_security", "check_for_updates": "false"}   # not on Splunkbase
    with tarfile.open(package) as tar:
        names = tar.getnames()
    assert not [n for n in names if n.startswith("wia_security/local/") or n in ("wia_security/local",
                                                                                  "wia_security/metadata/local.meta")]


def test_upgrade_keeps_settings_and_secrets_and_resumes_from_the_checkpoint(built_app, next_release, app_build, splunkd,
                                                                          tmp_path, samples):
    """Version N indexes part of the gateway's feed; N+1 is installed over it; N+1's first run indexes
    exactly the rest (nothing read again, nothing skipped) with the settings and credential N's admin
    stored, and reports its own version and build while the admin's is_configured stays."""
    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    import requests
    _, package_n = built_app
    splunk_home = tmp_path / "splunk"
    apps, checkpoints = splunk_home / "etc" / "apps", splunk_home / "var" / "lib" / "splunk" / "modinputs" / "wia_events"
    token = "upgrade-test-gateway-token-0123456789"
    gateway = GatewayServer(GatewaySettings(tokens=[token], store=f"sqlite:///{tmp_path}/events.db",
                                            dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)).start()
    try:
        def publish(batch: list[dict]) -> None:
            reply = requests.post(f"{gateway.url}/v1/events", json=batch, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert reply.status_code == 200, reply.text

        app = install(package_n, apps)
        build_n = layered(app, "app")["install"]["build"]
        # what Splunk Web writes while the admin configures N: local/ confs, storage/passwords (kept by splunkd
        # in the app's local/passwords.conf, encrypted), permissions in metadata/local.meta
        (app / "local").mkdir()
        (app / "local" / "inputs.conf").write_text(
            "[wia_events://soc_gateway]\n"
            f"source_url = {gateway.url.replace('http://', 'gateway+http://')}\n"
            "credential = soc_gateway_token\nverify_tls = true\npage_size = 2\nmax_events = 3\nretries = 1\n"
            "retry_backoff = 0.5\ninterval = 60\nindex = security\ndisabled = 0\n")
        (app / "local" / "app.conf").write_text("[install]\nis_configured = true\n")
        (app / "local" / "wia_security.conf").write_text(
            "[destination:default]\nurl = xsoar+https://xsoar.soc.example\ncredential = xsoar_api_key\nverify_tls = true\n")
        (app / "local" / "passwords.conf").write_text(
            "[credential:wia_security:soc_gateway_token:]\npassword = $7$opaque-encrypted-by-splunkd\n")
        (app / "metadata" / "local.meta").write_text("[views/wia_overview]\nowner = admin\naccess = read : [ soc ]\n")
        splunkd.passwords[("wia_security", "soc_gateway_token")] = token
        configured = local_files(app)

        publish(samples[:5])
        first = run_input(app, [], config_xml(splunkd, checkpoints, "wia_events://soc_gateway",
                                              input_params(app, "wia_events://soc_gateway")))
        assert first.returncode == 0, first.stderr
        indexed_by_n = [e["event"] for e in streamed(first.stdout)]
        assert indexed_by_n == samples[:4]                   # pages of 2 until max_events (3) is reached
        checkpoint_files = sorted(p.name for p in checkpoints.iterdir())

        app = upgrade(next_release, apps)
        assert local_files(app) == configured                # every setting, credential and permission kept
        assert sorted(p.name for p in checkpoints.iterdir()) == checkpoint_files
        app_conf = layered(app, "app")
        assert app_conf["id"]["version"] == bumped(__version__)
        assert int(app_conf["install"]["build"]) == app_build.build_number(bumped(__version__)) > int(build_n)
        assert app_conf["install"]["is_configured"] == "true"       # the setup page does not come back

        publish(samples[5:])
        second = run_input(app, [], config_xml(splunkd, checkpoints, "wia_events://soc_gateway",
                                               input_params(app, "wia_events://soc_gateway")))
        assert second.returncode == 0, second.stderr
        assert [e["event"] for e in streamed(second.stdout)] == samples[4:]     # no repeat, no gap
    finally:
        gateway.stop()
    assert token not in first.stdout + first.stderr + second.stdout + second.stderr


@pytest.fixture(params=RELEASES)
def released_install(request, built_app, tmp_path):
    """The current build installed over what a released version left in $SPLUNK_HOME."""
    _, package = built_app
    home = tmp_path / "splunk"
    shutil.copytree(RELEASED / request.param, home)
    app = upgrade(package, home / "etc" / "apps")
    return request.param, app, home / "var" / "lib" / "splunk" / "modinputs" / "wia_events"


def test_every_setting_a_released_version_wrote_is_still_read(released_install):
    """No setting renamed or dropped: each key the release's admin set is still documented and the current
    input's validation accepts each stanza as that version wrote it; the alert action's parameters and
    destinations likewise."""
    release, app, _ = released_install
    spec = read_spec(app / "README" / "inputs.conf.spec")["wia_events://<name>"]
    local = read_conf(app / "local" / "inputs.conf")
    assert local, f"released/{release} has no inputs"
    for stanza, keys in local.items():
        assert not set(keys) - spec - SPLUNK_INPUT_SETTINGS, f"{release} {stanza}: settings the current app no longer knows"
        params = "".join(f'<param name="{escape(k)}">{escape(v)}</param>' for k, v in input_params(app, stanza).items())
        check = run_input(app, ["--validate-arguments"], f'<items><item name="{escape(stanza)}">{params}</item></items>')
        assert check.returncode == 0, f"{release} {stanza}: {check.stdout}"
    settings_spec = read_spec(app / "README" / "wia_security.conf.spec")
    for stanza, keys in read_conf(app / "local" / "wia_security.conf").items():
        pattern = "settings" if stanza == "settings" else "destination:<name>"
        assert stanza == "settings" or stanza.startswith("destination:")
        assert set(keys) <= settings_spec[pattern], f"{release} wia_security.conf [{stanza}]"
    action_spec = read_spec(app / "README" / "alert_actions.conf.spec")["wia_send_event"]
    action_defaults = read_conf(app / "default" / "alert_actions.conf")["wia_send_event"]
    prefix = "action.wia_send_event.param."
    used = {k[len("action.wia_send_event."):] for s in read_conf(app / "local" / "savedsearches.conf").values()
            for k in s if k.startswith(prefix)}
    assert used and used <= action_spec and used <= set(action_defaults)


#: start_time (new since 0.1.0) set on the released inputs: a released checkpoint is never moved by it (the samples
#: happened on 2025-12-14, long before 3 days ago: read from the cutoff, none of them would be indexed).
START_TIME = {"start_time": "3 days"}


def test_gateway_input_resumes_from_a_released_checkpoint(released_install, splunkd, samples):
    release, app, checkpoints = released_install
    splunkd.passwords[("wia_security", "soc_gateway_token")] = "released-gateway-token"
    with GatewayFeed(token="released-gateway-token") as feed:
        feed.events.extend(samples[:6])
        params = {**input_params(app, "wia_events://soc_gateway"), "source_url": feed.url.replace("http://", "gateway+http://"),
                  **START_TIME}
        run = run_input(app, [], config_xml(splunkd, checkpoints, "wia_events://soc_gateway", params))
    assert run.returncode == 0, run.stderr
    assert feed.requests[0].query["after"] == ["4"]                 # the released cursor, not the feed's start
    assert [e["event"] for e in streamed(run.stdout)] == samples[4:6], release


def test_taxii_input_resumes_from_a_released_checkpoint(released_install, splunkd, samples):
    """The released position (the last page's date_added) is asked for again from 1 microsecond before, and
    the event ids the release remembered are not indexed a second time."""
    from wia_security import convert
    release, app, checkpoints = released_install
    splunkd.passwords[("wia_security", "intel_taxii_password")] = "released-taxii-password"
    objects = [o for e in samples[:2] for o in convert(e, to="stix")["objects"] if o["type"] != "extension-definition"]
    with GatewayFeed() as taxii:       # a TAXII stand-in here: a released date_added no live server can hand back
        collection = "/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/"
        taxii.faults.append(Fault(200, {"more": False, "objects": objects}, path_prefix=f"{collection}objects/",
                                  headers={"X-TAXII-Date-Added-Last": "2026-01-05T10:00:00.000000Z",
                                           "Content-Type": "application/taxii+json;version=2.1"}))
        params = {**input_params(app, "wia_events://intel_taxii"), "source_url": f"taxii+{taxii.url}{collection}", **START_TIME}
        run = run_input(app, [], config_xml(splunkd, checkpoints, "wia_events://intel_taxii", params))
    assert run.returncode == 0, run.stderr
    assert taxii.requests[0].query["added_after"] == ["2026-01-05T09:59:59.999999Z"]
    assert [e["event"] for e in streamed(run.stdout)] == [samples[1]], release     # samples[0] was indexed by the release
    assert "duplicates=1" in run.stderr


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_kafka_input_resumes_from_released_partition_offsets(released_install, splunkd, samples):
    """Released offsets {"0": 2, "1": 1}: partition 0 continues at its third message, partition 1 at its second."""
    from confluent_kafka import Producer
    from servers.tansu import start_tansu
    release, app, checkpoints = released_install
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=2)
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for partition, events in ((0, samples[0:3]), (1, samples[3:5])):
            for event in events:
                producer.produce(topic, key=event["id"].encode(), value=json.dumps(event).encode(), partition=partition)
        assert producer.flush(15) == 0
        del producer                      # librdkafka stops its threads when the Producer is freed
        params = {**input_params(app, "wia_events://edr_kafka"), "source_url": f"kafka://{broker.bootstrap}/{topic}", **START_TIME}
        run = run_input(app, [], config_xml(splunkd, checkpoints, "wia_events://edr_kafka", params))
    finally:
        broker.kill()
    assert run.returncode == 0, run.stderr
    assert sorted(e["event"]["id"] for e in streamed(run.stdout)) == sorted([samples[2]["id"], samples[4]["id"]]), release
    assert "duplicates=0" in run.stderr      # read from the released offsets, not again from 0 (the ids it remembers hid that)
