"""Shared builder of the cloud function packages (Lambda, Azure Functions, Cloud Functions).

A package = the function's own files + the `wia_security` package (core/ and connectors/, exactly
as the wheel has them, so every artefact carries the same core version) + the third-party libraries
the function needs that its platform does not provide, installed for the platform's Linux and
Python (`pip install --target --platform --only-binary`). The zip is deterministic: sorted entries,
fixed timestamps, no __pycache__.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[2]
#: Every function targets this Python unless told otherwise (the project's minimum; see docs/cloud).
DEFAULT_PYTHON = "3.11"
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
_EPOCH = (2020, 1, 1, 0, 0, 0)
_SKIP = {"__pycache__", ".pytest_cache", ".mypy_cache"}


def help_texts(doc: str) -> tuple[str, str]:
    """A build script's docstring as argparse's `description` (its first paragraph whole: the first line
    alone stopped mid-sentence) and `epilog` (the paragraphs after it but the indented usage lines)."""
    first, *rest = doc.strip().split("\n\n")
    return " ".join(first.split()), " ".join(" ".join(p.split()) for p in rest if not p.startswith(" "))


def core_version() -> str:
    text = (ROOT / "core" / "_version.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)  # type: ignore[union-attr]


def copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=lambda d, names: [n for n in names if n in _SKIP or n.endswith(".pyc")],
                    dirs_exist_ok=True)


def stage_wia_security(dest: Path) -> None:
    """dest/wia_security = core/ + connectors/ (the wheel's layout)."""
    copy_tree(ROOT / "core", dest / "wia_security")
    copy_tree(ROOT / "connectors", dest / "wia_security" / "connectors")


def vendor(requirements: Iterable[str], dest: Path, *, python_version: str = DEFAULT_PYTHON,
           architecture: str = "x86_64", exclude: Iterable[str] = ()) -> None:
    """Install `requirements` (and their dependencies) into `dest` for Linux/`architecture`/CPython
    `python_version`, binary wheels only; then remove the distributions in `exclude` (what the
    platform already provides)."""
    requirements = [r for r in requirements if r.strip() and not r.strip().startswith("#")]
    if not requirements:
        return
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(dest), "--implementation", "cp", "--python-version", python_version,
               "--platform", PLATFORMS[architecture], "--only-binary=:all:", "--upgrade", *requirements]
    env = {**os.environ, "PIP_NO_WARN_SCRIPT_LOCATION": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        errors = "\n".join(line for line in done.stderr.splitlines() if "WARNING: Location" not in line)
        raise SystemExit(f"pip could not install {requirements} for {architecture}/py{python_version}:\n{errors}")
    for name in exclude:
        normalized = re.sub(r"[-_.]+", "_", name).lower()
        for info in dest.glob("*.dist-info"):
            dist = re.sub(r"[-_.]+", "_", info.name[: -len(".dist-info")].rsplit("-", 1)[0]).lower()
            if dist == normalized:
                for line in (info / "RECORD").read_text().splitlines():
                    path = dest / line.split(",", 1)[0]
                    if path.is_file() and dest in path.resolve().parents:
                        path.unlink()
                shutil.rmtree(info, ignore_errors=True)
    shutil.rmtree(dest / "bin", ignore_errors=True)
    for cache in dest.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    for empty in sorted((p for p in dest.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(empty.iterdir()):
            empty.rmdir()


def write_zip(src: Path, zip_path: Path) -> Path:
    """A deterministic zip of everything under `src`."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in src.rglob("*") if p.is_file() and not (set(p.parts) & _SKIP) and p.suffix != ".pyc")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(src).as_posix(), date_time=_EPOCH)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return zip_path


def requirements_of(path: Path) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in path.read_text().splitlines() if line.split("#", 1)[0].strip()]
