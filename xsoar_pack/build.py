"""Builds the XSOAR content pack: embeds the wia_security core in the integration, checks the pack
version is the core's, validates with demisto-sdk and zips the pack for upload.

    python xsoar_pack/build.py [--out dist]             # -> dist/WIASecurity-<version>.zip
    python xsoar_pack/build.py --validate-only           # demisto-sdk validate on the source pack

demisto-sdk runs from its own venv (.venv-demisto, scripts/test-setup.d/51-demisto-sdk.sh) in a
temporary copy of xsoar_pack/ initialised as a git repository (validate needs Packs/ in the working
directory, the Config/approved_*.json lists and a resolvable HEAD), with the offline validation
config (tests/reference/xsoar-tools/, a copy of the project's shared tools; or
$WIA_XSOAR_VALIDATION_CONFIG).

The core goes in as a base64 zip in WIA_CORE_ZIP_B64 (the integration puts it on sys.path and
imports it with zipimport), so the unified integration runs in a plain demisto/python3 image.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACK_SRC = ROOT / "xsoar_pack"
PACK = "WIASecurity"
INTEGRATION = Path("Packs") / PACK / "Integrations" / "WIASecurity" / "WIASecurity.py"
SDK_BIN = ROOT / ".venv-demisto" / "bin"
#: Pure-Python libraries embedded beside the core (Kafka fetch); the image has requests already.
EMBEDDED_LIBRARIES = ["kafka-python>=3.0"]
#: Python of the demisto/python3 image the pack names.
TARGET_PYTHON = "3.12"
#: Core pieces the integration does not need (the CLI, the HTML report).
CORE_EXCLUDE = {"cli", "__main__.py", "dashboard", "__pycache__"}
EMBED_MARKER = 'WIA_CORE_ZIP_B64 = ""'


def version() -> str:
    text = (ROOT / "core" / "_version.py").read_text(encoding="utf-8")
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)


def validation_config() -> Path:
    configured = os.environ.get("WIA_XSOAR_VALIDATION_CONFIG")
    if configured:
        return Path(configured)
    for path in (ROOT / "tests" / "reference" / "xsoar-tools" / "offline_validation_config.toml",
                 ROOT.parent / "shared" / "tools" / "xsoar" / "offline_validation_config.toml"):
        if path.exists():
            return path
    raise SystemExit("offline_validation_config.toml not found: set WIA_XSOAR_VALIDATION_CONFIG")


def core_zip() -> bytes:
    """The wia_security package (core/ as wia_security/) as a zip, for zipimport."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((ROOT / "core").rglob("*")):
            rel = path.relative_to(ROOT / "core")
            if path.is_dir() or rel.parts[0] in CORE_EXCLUDE or "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
                continue
            info = zipfile.ZipInfo(str(Path("wia_security") / rel), date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
        # the wheels' folder goes when the zip is made (one left in /tmp per build before)
        with tempfile.TemporaryDirectory(prefix="wia-xsoar-wheels-") as wheels:
            for wheel in library_wheels(Path(wheels)):
                with zipfile.ZipFile(wheel) as whl:
                    for name in whl.namelist():
                        if name.endswith("/") or "__pycache__" in name or name.endswith((".pyc", ".pyo")):
                            continue
                        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                        info.compress_type = zipfile.ZIP_DEFLATED
                        zf.writestr(info, whl.read(name))      # the package and its dist-info (license)
    return buffer.getvalue()


def library_wheels(target: Path) -> list[Path]:
    """Pure-Python wheels of EMBEDDED_LIBRARIES (a library that needs compiled code fails here), downloaded
    into target."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
                    "--only-binary=:all:", "--platform", "any", "--python-version", TARGET_PYTHON, "--implementation", "py",
                    "-d", str(target), *EMBEDDED_LIBRARIES], check=True)
    return sorted(target.glob("*.whl"))


def _version_key(ver: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ver.split("."))


def check_version(tree: Path) -> None:
    """currentVersion is the core's, and the release notes follow demisto-sdk's rule (PA101): the newest
    ReleaseNotes/X_Y_Z.md is the current version's (only a pack's first version, 1.0.0, may have none).
    XSOAR offers a pack version as an upgrade with its release notes; a bump without them fails validate."""
    metadata = json.loads((tree / "Packs" / PACK / "pack_metadata.json").read_text(encoding="utf-8"))
    current = metadata["currentVersion"]
    if current != version():
        raise SystemExit(f"pack_metadata.json currentVersion {current} is not the core version "
                         f"{version()}: bump it and add Packs/{PACK}/ReleaseNotes/{version().replace('.', '_')}.md")
    notes = tree / "Packs" / PACK / "ReleaseNotes"
    files = sorted(notes.glob("*.md")) if notes.exists() else []
    misnamed = [p.name for p in files if not re.fullmatch(r"\d+_\d+_\d+", p.stem)]
    if misnamed:
        raise SystemExit(f"Packs/{PACK}/ReleaseNotes/{misnamed[0]}: release notes are named for their version, "
                         "X_Y_Z.md (demisto-sdk reads every .md there as one)")
    versions = sorted((p.stem.replace("_", ".") for p in files), key=_version_key)
    if (versions and versions[-1] != current) or (not versions and current != "1.0.0"):
        raise SystemExit(f"Packs/{PACK}/ReleaseNotes: the newest release notes are for {versions[-1] if versions else 'no version'}, "
                         f"the pack is {current}: add ReleaseNotes/{current.replace('.', '_')}.md (and remove notes of "
                         "versions not yet released)")


def repo_copy(dest: Path, *, embed: bool) -> Path:
    """xsoar_pack/ copied to `dest` as its own git repository (optionally with the core embedded)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(PACK_SRC, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build.py"))
    check_version(dest)
    if embed:
        script = dest / INTEGRATION
        text = script.read_text(encoding="utf-8")
        if text.count(EMBED_MARKER) != 1:
            raise SystemExit(f"{INTEGRATION}: the line {EMBED_MARKER!r} must appear exactly once")
        payload = base64.b64encode(core_zip()).decode("ascii")
        script.write_text(text.replace(EMBED_MARKER, f'WIA_CORE_ZIP_B64 = "{payload}"'), encoding="utf-8")
    git = ["git", "-c", "user.name=wia-build", "-c", "user.email=build@wia-security.invalid", "-c", "init.defaultBranch=master"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "WIA Security pack"], cwd=dest, check=True)
    return dest


def sdk(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = SDK_BIN / "demisto-sdk"
    if not exe.exists():
        raise SystemExit("demisto-sdk missing: run scripts/test-setup.d/51-demisto-sdk.sh")
    env = {**os.environ, "PATH": f"{SDK_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "DEMISTO_SDK_IGNORE_CONTENT_WARNING": "1", "DEMISTO_SDK_SKIP_VERSION_CHECK": "1"}
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def validate(tree: Path) -> subprocess.CompletedProcess[str]:
    return sdk(["validate", "-i", f"Packs/{PACK}", "--config-path", str(validation_config())], tree)


def zip_pack(tree: Path, out_dir: Path) -> Path:
    staging = tree / "_zips"
    run = sdk(["zip-packs", "-i", f"Packs/{PACK}", "-o", str(staging)], tree)
    zips = sorted(staging.rglob(f"{PACK}*.zip")) if staging.exists() else []
    if run.returncode != 0 or not zips:
        raise SystemExit(f"demisto-sdk zip-packs failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    inner = next((z for z in zips if z.name == f"{PACK}.zip"), zips[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACK}-{version()}.zip"
    shutil.copy2(inner, target)
    return target


def main(argv: list[str] | None = None) -> int:
    # the docstring's first paragraph whole: its first line alone stops mid-sentence
    parser = argparse.ArgumentParser(description=" ".join(__doc__.strip().split("\n\n")[0].split()))
    parser.add_argument("--out", default=str(ROOT / "dist"))
    parser.add_argument("--validate-only", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        source = repo_copy(Path(tmp) / "source", embed=False)
        run = validate(source)
        if run.returncode != 0:
            print(run.stdout[-5000:], run.stderr[-5000:], file=sys.stderr)
            return 1
        if args.validate_only:
            print("demisto-sdk validate: all validations passed")
            return 0
        built = repo_copy(Path(tmp) / "built", embed=True)
        print(zip_pack(built, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
