"""Builds the Splunk app package: copies splunk_app/wia_security, vendors the pure-Python core
(and the connectors the alert action uses) into bin/lib, stamps the core's version, and writes
dist/wia_security-<version>.tgz (a .spl is the same archive).

    python splunk_app/build.py [--out dist] [--keep-tree build/splunk_app]

Only pure-Python code is vendored: the core is standard library only, and third-party libraries
are installed with `pip --only-binary=:all: --platform any`, so a library that needs a compiled
extension fails the build instead of shipping a binary AppInspect would reject.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_SRC = ROOT / "splunk_app" / "wia_security"
APP_ID = "wia_security"
#: Core pieces the app does not need (the CLI runs outside Splunk).
CORE_EXCLUDE = {"cli", "__main__.py", "__pycache__"}
#: Connector modules (and their pure-Python client libraries) the alert action delivers through:
#: Splunk SOAR, XSOAR, and HEC (another Splunk, or a WIA gateway's HEC-compatible endpoint).
CONNECTOR_MODULES = ["__init__.py", "base.py", "config.py", "dead_letter.py", "_eventview.py", "delivery", "soar",
                     "splunk"]
THIRD_PARTY = ["requests>=2.32", "demisto-py>=3.2", "kafka-python>=3.0"]
#: Python the vendored libraries are chosen for (Splunk's python.required = 3.13 runtime).
TARGET_PYTHON = "3.13"


def version() -> str:
    text = (ROOT / "core" / "_version.py").read_text(encoding="utf-8")
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}


def _ignore_app(directory: str, names: list[str]) -> set[str]:
    """What Splunk writes into an installed app (settings made in Splunk Web, permissions) never ships:
    a package's local/ or metadata/local.meta would overwrite the admin's own on upgrade. A source tree
    linked into a development Splunk has them."""
    here = Path(directory).resolve()
    skipped = _ignore(directory, names)
    if here == APP_SRC.resolve():
        skipped |= {n for n in names if n == "local"}
    if here == (APP_SRC / "metadata").resolve():
        skipped |= {n for n in names if n == "local.meta"}
    return skipped


def vendor_core(lib: Path) -> None:
    target = lib / "wia_security"
    target.mkdir(parents=True)
    for item in (ROOT / "core").iterdir():
        if item.name in CORE_EXCLUDE or item.name.endswith((".pyc", ".pyo")):
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name, ignore=_ignore)
        else:
            shutil.copy2(item, target / item.name)
    connectors = target / "connectors"
    connectors.mkdir()
    for name in CONNECTOR_MODULES:
        item = ROOT / "connectors" / name
        if not item.exists():
            continue
        if item.is_dir():
            shutil.copytree(item, connectors / name, ignore=_ignore)
        else:
            shutil.copy2(item, connectors / name)


def vendor_third_party(lib: Path) -> None:
    with tempfile.TemporaryDirectory() as cache:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
                        "--target", str(lib), "--only-binary=:all:", "--platform", "any",
                        "--python-version", TARGET_PYTHON, "--implementation", "py", "--cache-dir", cache,
                        *THIRD_PARTY], check=True)
    # demisto-py imports distutils.version.LooseVersion, and Python 3.12+ has no distutils: ship
    # setuptools' copy of that one module (stdlib imports only) as distutils/version.py. setuptools
    # itself is left out: it would ship Windows .exe launchers and a .pth hook.
    shim = lib / "distutils"
    shim.mkdir(exist_ok=True)
    shutil.copy2(lib / "setuptools" / "_distutils" / "version.py", shim / "version.py")
    (shim / "__init__.py").write_text('"""Only distutils.version (from setuptools, MIT), for demisto-py on Python 3.12+."""\n')
    licenses = sorted(lib.glob("setuptools-*.dist-info/licenses/LICENSE")) + sorted(lib.glob("setuptools-*.dist-info/LICENSE"))
    if licenses:
        shutil.copy2(licenses[0], shim / "LICENSE.setuptools")
    for junk in [*lib.glob("bin"), *lib.glob("setuptools*"), *lib.glob("_distutils_hack"), *lib.glob("pkg_resources"),
                 *lib.rglob("__pycache__")]:
        shutil.rmtree(junk, ignore_errors=True)
    for hook in lib.glob("*.pth"):
        hook.unlink()
    strict_json(lib / "kafka")


#: kafka-python's loader (kafka/protocol/schemas/load_json.py) strips these comment blocks.
_JSON_COMMENTS = re.compile(r"(?m)((?:^\s*//.*\n?)+)")


def strict_json(tree: Path) -> None:
    """kafka-python ships Apache Kafka's message schemas as JSON with // comment blocks, which
    AppInspect rejects as malformed JSON. Rewrite each as strict JSON holding what kafka-python's
    loader makes of it: the first comment block under "license", the second under "doc"."""
    for path in sorted(tree.rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        try:
            json.loads(text)
            continue
        except ValueError:
            pass
        data = json.loads(_JSON_COMMENTS.sub("", text))
        comments = _JSON_COMMENTS.findall(text)
        if comments:
            data["license"] = comments[0]
            if len(comments) > 1:
                data["doc"] = comments[1]
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def build_number(ver: str) -> int:
    """app.conf [install] build for a version: MAJOR * 1,000,000 + MINOR * 1,000 + PATCH. Splunk Web serves
    appserver/static under this number, and Splunk's app.conf spec asks every release to change both
    version and build: a release that kept it would leave browsers on the previous release's cached
    setup-page script. Derived from the version, it changes with every release and only ever rises.
    A pre-release suffix (0.2.0rc1) shares its release's number."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", ver)
    if not match:
        raise ValueError(f"version {ver!r} is not MAJOR.MINOR.PATCH")
    major, minor, patch = (int(part) for part in match.groups())
    if minor >= 1000 or patch >= 1000:
        raise ValueError(f"version {ver!r}: MINOR and PATCH must stay below 1000 for the app's build number")
    number = major * 1_000_000 + minor * 1_000 + patch
    if number < 1:
        raise ValueError(f"version {ver!r} gives no positive build number")
    return number


def stamp(app: Path, ver: str) -> None:
    conf = app / "default" / "app.conf"
    text = re.sub(r"(?m)^version = .*$", f"version = {ver}", conf.read_text(encoding="utf-8"))
    text, stamped = re.subn(r"(?m)^build = .*$", f"build = {build_number(ver)}", text)
    if stamped != 1:
        raise SystemExit(f"{conf}: expected one 'build = ' line in [install] to stamp, found {stamped}")
    conf.write_text(text, encoding="utf-8")
    manifest_path = app / "app.manifest"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["info"]["id"]["version"] = ver
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def build_tree(dest: Path, *, third_party: bool = True) -> Path:
    app = dest / APP_ID
    if app.exists():
        shutil.rmtree(app)
    shutil.copytree(APP_SRC, app, ignore=_ignore_app)
    lib = app / "bin" / "lib"
    vendor_core(lib)
    if third_party:
        vendor_third_party(lib)
    stamp(app, version())
    return app


def package(app: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"{APP_ID}-{version()}.tgz"

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if "__pycache__" in info.name or info.name.endswith((".pyc", ".pyo")):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "splunk"
        executable = info.isdir() or (info.name.startswith(f"{APP_ID}/bin/") and info.name.count("/") == 2
                                      and info.name.endswith(".py"))
        info.mode = 0o755 if executable else 0o644
        return info

    with tarfile.open(archive, "w:gz") as tar:
        tar.add(app, arcname=APP_ID, filter=normalise)
    return archive


def main(argv: list[str] | None = None) -> int:
    # the docstring's first paragraph whole: its first line alone stops mid-sentence
    parser = argparse.ArgumentParser(description=" ".join(__doc__.strip().split("\n\n")[0].split()))
    parser.add_argument("--out", default=str(ROOT / "dist"), help="where the .tgz goes (default dist/)")
    parser.add_argument("--keep-tree", default=None, help="build the app tree here instead of a temp dir")
    args = parser.parse_args(argv)
    if args.keep_tree:
        tree = Path(args.keep_tree)
        tree.mkdir(parents=True, exist_ok=True)
        archive = package(build_tree(tree), Path(args.out))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            archive = package(build_tree(Path(tmp)), Path(args.out))
    print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
