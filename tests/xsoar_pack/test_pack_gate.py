"""The XSOAR pack's gate: demisto-sdk validate (offline config) passes on the source pack and fails on
a broken copy; demisto-sdk zip-packs makes the upload zip whose unified integration embeds the core
and runs in a bare interpreter with only the XSOAR stand-ins and requests (the demisto/python3 image)."""
from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from wia_security import __version__

from .conftest import HERE, ROOT


def _build():
    spec = importlib.util.spec_from_file_location("wia_xsoar_build", ROOT / "xsoar_pack" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["wia_xsoar_build"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build():
    module = _build()
    assert (module.SDK_BIN / "demisto-sdk").exists(), "demisto-sdk missing: run scripts/test-setup.d/51-demisto-sdk.sh"
    return module


@pytest.fixture(scope="module")
def pack_zip(build, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xsoar")
    built = build.repo_copy(tmp / "built", embed=True)
    return build.zip_pack(built, tmp / "dist")


def test_demisto_sdk_validate_passes_on_the_pack(build, tmp_path):
    run = build.validate(build.repo_copy(tmp_path / "source", embed=False))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "All validations passed" in output


@pytest.mark.parametrize("breakage,code", [
    ("category", "IN"),          # an integration category outside Config/approved_categories.json
    ("field", "IF"),             # an incident field of a type XSOAR does not have
])
def test_demisto_sdk_validate_catches_a_broken_pack(build, tmp_path, breakage, code):
    """Control: the same gate on a deliberately broken copy fails, so a pass above means something."""
    tree = tmp_path / "broken"
    shutil.copytree(ROOT / "xsoar_pack", tree, ignore=shutil.ignore_patterns("build.py", "__pycache__"))
    if breakage == "category":
        yml_path = tree / "Packs" / "WIASecurity" / "Integrations" / "WIASecurity" / "WIASecurity.yml"
        doc = yaml.safe_load(yml_path.read_text())
        doc["category"] = "Not An Approved Category"
        yml_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    else:
        field_path = tree / "Packs" / "WIASecurity" / "IncidentFields" / "incidentfield-WIA_Event_ID.json"
        field = json.loads(field_path.read_text())
        field["type"] = "notAFieldType"
        field_path.write_text(json.dumps(field, indent=4))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "init.defaultBranch=master"]
    subprocess.run([*git, "init", "-q"], cwd=tree, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tree, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "broken"], cwd=tree, check=True)
    run = build.validate(tree)
    assert run.returncode != 0
    assert f"[{code}" in run.stdout + run.stderr


def test_pack_version_is_the_core_version():
    metadata = json.loads((ROOT / "xsoar_pack" / "Packs" / "WIASecurity" / "pack_metadata.json").read_text())
    assert metadata["currentVersion"] == __version__
    assert (ROOT / "xsoar_pack" / "Packs" / "WIASecurity" / "ReleaseNotes" / f"{__version__.replace('.', '_')}.md").exists()


def test_zip_packs_makes_the_upload_zip_with_the_core_embedded(pack_zip):
    assert pack_zip.name == f"WIASecurity-{__version__}.zip"
    with zipfile.ZipFile(pack_zip) as zf:
        names = set(zf.namelist())
        unified = yaml.safe_load(zf.read("Integrations/integration-WIASecurity.yml"))
        metadata = json.loads(zf.read("metadata.json"))
    assert {"IncidentTypes/incidenttype-WIA_Security_Event.json", "Classifiers/classifier-mapper-incoming-WIA_Security.json",
            "Layouts/layoutscontainer-WIA_Security_Event.json", "Playbooks/playbook-WIA_Security_-_Enrich_and_Triage.yml"} <= names
    assert len([n for n in names if n.startswith("IncidentFields/") and n.endswith(".json")]) == 17
    assert metadata["currentVersion"] == __version__
    script = unified["script"]["script"]
    assert 'WIA_CORE_ZIP_B64 = ""' not in script and 'WIA_CORE_ZIP_B64 = "UEsDB' in script   # "PK\x03\x04" in base64
    assert unified["image"].startswith("data:image/png;base64,") and unified["detaileddescription"]
    commands = {c["name"]: c for c in unified["script"]["commands"]}
    assert set(commands) == {"wia-validate-event", "wia-convert-event", "wia-send-event", "wia-get-events", "wia-attack-lookup"}
    assert all(c["outputs"] for c in commands.values())
    credentials = next(p for p in unified["configuration"] if p["name"] == "credentials")
    assert credentials["type"] == 9


DRIVER = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import demistomock as demisto
from CommonServerPython import *
script = open(sys.argv[3], encoding="utf-8").read()
out = {}
for command, args in json.loads(sys.argv[4]):
    demisto.reset(params={"url": "http://127.0.0.1:9", "source_type": "gateway"}, args=args, command=command)
    namespace = {k: v for k, v in globals().items() if not k.startswith("__")}
    namespace["__name__"] = "__main__"
    import CommonServerPython
    namespace["__line__"] = CommonServerPython.__line__
    try:
        exec(compile(script, "integration-WIASecurity", "exec"), namespace)
    except SystemExit:
        pass
    out[command] = list(demisto.results_log)
import wia_security, kafka
out["core_from"] = wia_security.__file__
out["kafka_from"] = kafka.__file__
out["core_paths"] = [p for p in sys.path if p.startswith("/proc/self/fd/")]
print(json.dumps(out, default=str))
"""


def test_unified_integration_runs_with_nothing_but_the_image_libraries(pack_zip, tmp_path, sample_events):
    """Only the XSOAR stand-ins and requests (with its dependencies) on the path, no site-packages:
    the embedded core is what gets imported."""
    with zipfile.ZipFile(pack_zip) as zf:
        script = yaml.safe_load(zf.read("Integrations/integration-WIASecurity.yml"))["script"]["script"]
    (tmp_path / "integration.py").write_text(script)
    deps = tmp_path / "image-libs"
    import certifi, charset_normalizer, idna, requests, urllib3  # noqa: E401
    for module in (requests, urllib3, idna, certifi, charset_normalizer):
        shutil.copytree(Path(module.__file__).parent, deps / module.__name__, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "driver.py").write_text(DRIVER)
    commands = [["wia-attack-lookup", {"technique": "T1059.001"}],
                ["wia-validate-event", {"event": json.dumps(sample_events[0])}],
                ["wia-convert-event", {"event": json.dumps(sample_events[0]), "format": "stix"}]]
    run = subprocess.run([sys.executable, "-I", "-S", str(tmp_path / "driver.py"), str(HERE / "stubs"), str(deps),
                          str(tmp_path / "integration.py"), json.dumps(commands)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    # the embedded zip, from an anonymous memory file; run three times in one process (XSOAR's Python
    # loop), the script put it there once
    (core_path,) = out["core_paths"]
    assert out["core_from"] == f"{core_path}/wia_security/__init__.py", out["core_from"]
    assert out["kafka_from"] == f"{core_path}/kafka/__init__.py", out["kafka_from"]      # embedded for Kafka fetch
    (lookup,) = out["wia-attack-lookup"]
    assert next(iter(lookup["EntryContext"].values()))[0]["Name"] == "PowerShell"
    (validation,) = out["wia-validate-event"]
    assert next(iter(validation["EntryContext"].values()))["Valid"] is True
    (conversion,) = out["wia-convert-event"]
    assert next(iter(conversion["EntryContext"].values()))["Document"]["type"] == "bundle"


PLANTING_DRIVER = r"""
import json, os, stat, sys
stubs, deps, script_path, old_zip, victim, memfd = sys.argv[1:7]
sys.path[:0] = [stubs, deps]
if memfd == "no-memfd":
    del os.memfd_create                 # a kernel or seccomp profile without memfd: the private-file fallback
elif memfd == "memfd-unreadable":       # a memfd zipimport cannot read at /proc/self/fd/N (no /proc)
    os.memfd_create = lambda name, flags=0: os.open(os.devnull, os.O_WRONLY)
# the name the integration used to write through before renaming it to old_zip
os.symlink(victim, f"{old_zip}.{os.getpid()}.tmp")
import demistomock as demisto
from CommonServerPython import *
import CommonServerPython
demisto.reset(params={"url": "http://127.0.0.1:9", "source_type": "gateway"}, args={"technique": "T1059.001"},
              command="wia-attack-lookup")
namespace = {k: v for k, v in globals().items() if not k.startswith("__")}
namespace.update(__name__="__main__", __line__=CommonServerPython.__line__)
try:
    exec(compile(open(script_path, encoding="utf-8").read(), "integration-WIASecurity", "exec"), namespace)
except SystemExit:
    pass
import wia_security
core_dir = os.path.dirname(sys.path[0])
print(json.dumps({"results": demisto.results_log, "core_from": wia_security.__file__, "core_path": sys.path[0],
                  "core_dir_mode": stat.S_IMODE(os.stat(core_dir).st_mode), "core_dir_owner": os.stat(core_dir).st_uid,
                  "core_file_mode": stat.S_IMODE(os.stat(sys.path[0]).st_mode)}, default=str))
"""


@pytest.mark.parametrize("memfd", ["memfd", "no-memfd", "memfd-unreadable"])
@pytest.mark.parametrize("planted", ["zip", "symlink"])
def test_unified_integration_never_imports_or_writes_through_what_others_planted_in_the_temp_folder(
        pack_zip, tmp_path, planted, memfd):
    """Another local user can write to the shared temp folder before the integration runs. The core used to go
    there under a name known in advance (wia_security_core_<sha256[:16]>.zip, written through <name>.<pid>.tmp):
    a zip planted under that name was imported as the core, and a symlink at the .tmp name had the core written
    through it into any file the integration's user may write. Neither may work, with or without memfd."""
    import base64
    import hashlib
    import re

    with zipfile.ZipFile(pack_zip) as zf:
        script = yaml.safe_load(zf.read("Integrations/integration-WIASecurity.yml"))["script"]["script"]
    (tmp_path / "integration.py").write_text(script)
    blob = base64.b64decode(re.search(r'WIA_CORE_ZIP_B64 = "([^"]+)"', script).group(1))
    shared_tmp = tmp_path / "shared-tmp"
    shared_tmp.mkdir()
    old_zip = shared_tmp / f"wia_security_core_{hashlib.sha256(blob).hexdigest()[:16]}.zip"
    marker = tmp_path / "planted-code-ran"
    if planted == "zip":
        with zipfile.ZipFile(old_zip, "w") as zf:
            zf.writestr("wia_security/__init__.py", f"open({str(marker)!r}, 'w').write('ran')\n__version__ = 'planted'\n")
    else:
        old_zip.symlink_to(tmp_path / "elsewhere")             # dangling: the old code saw no zip and wrote one
    victim = tmp_path / "victim"
    victim.write_text("the integration's user's file")
    deps = tmp_path / "image-libs"
    import certifi, charset_normalizer, idna, requests, urllib3  # noqa: E401
    for module in (requests, urllib3, idna, certifi, charset_normalizer):
        shutil.copytree(Path(module.__file__).parent, deps / module.__name__, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "driver.py").write_text(PLANTING_DRIVER)
    run = subprocess.run([sys.executable, "-I", "-S", str(tmp_path / "driver.py"), str(HERE / "stubs"), str(deps),
                          str(tmp_path / "integration.py"), str(old_zip), str(victim), memfd],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "TMPDIR": str(shared_tmp)})
    assert not marker.exists()                                             # the planted core never ran
    assert victim.read_bytes() == b"the integration's user's file"          # nothing written through the symlinks
    assert not (tmp_path / "elsewhere").exists()
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["core_from"] == f"{out['core_path']}/wia_security/__init__.py"
    assert str(old_zip) not in out["core_path"]
    (lookup,) = out["results"]
    assert next(iter(lookup["EntryContext"].values()))[0]["Name"] == "PowerShell"   # the real core answered
    if memfd == "memfd":
        assert out["core_path"].startswith("/proc/self/fd/")
    else:
        # a fresh directory of its own in the temp folder, 0700, the zip 0600, both gone once the process ended
        core_dir = Path(out["core_path"]).parent
        assert core_dir.parent == shared_tmp and core_dir.name.startswith("wia-security-core-")
        assert (out["core_dir_mode"], out["core_file_mode"], out["core_dir_owner"]) == (0o700, 0o600, os.getuid())
        assert not core_dir.exists()
    (planted_tmp,) = [p for p in shared_tmp.iterdir() if p.name.endswith(".tmp")]   # left as it was planted
    assert planted_tmp.is_symlink() and old_zip.is_symlink() == (planted == "symlink")
    assert sorted(p.name for p in shared_tmp.iterdir()) == sorted([old_zip.name, planted_tmp.name])


def test_the_core_zip_leaves_no_wheel_folder_behind(build, tmp_path, monkeypatch):
    """The embedded libraries' wheels are downloaded into a temporary folder that goes with the build (one
    wia-xsoar-wheels-* folder was left in /tmp per build, for every test run and `make` of the pack)."""
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with zipfile.ZipFile(io.BytesIO(build.core_zip())) as zf:
        assert "kafka/__init__.py" in zf.namelist() and "wia_security/__init__.py" in zf.namelist()
    assert list(tmp_path.iterdir()) == []
