"""Builds the Azure Functions package: dist/wia-security-azure-function-<version>.zip (zip deploy, no
remote build) and dist/wia-security-azure-sentinel-<version>.json (the ARM template), with the same
core as the wheel.

    python azure_function/build.py [--dist DIR] [--python-version 3.11]

The zip holds function_app.py, host.json, requirements.txt, wia_security/ (core + connectors) and,
in .python_packages/lib/site-packages (where the Functions host looks), the libraries of
requirements.txt for Linux x86_64; azure-functions itself comes with the Python worker.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts" / "dist.d"))
import function_zip as fz  # noqa: E402

#: Provided by the Azure Functions Python worker.
WORKER_PROVIDED = ("azure-functions",)
SITE_PACKAGES = Path(".python_packages") / "lib" / "site-packages"


def build(dist: Path, *, python_version: str = fz.DEFAULT_PYTHON, stage: Path = HERE / "build" / "package") -> Path:
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for name in ("function_app.py", "host.json", "requirements.txt"):
        shutil.copy2(HERE / name, stage / name)
    fz.stage_wia_security(stage)
    requirements = [r for r in fz.requirements_of(HERE / "requirements.txt")
                    if not r.lower().startswith(WORKER_PROVIDED)]
    fz.vendor(requirements, stage / SITE_PACKAGES, python_version=python_version, exclude=WORKER_PROVIDED)
    version = fz.core_version()
    dist.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "deploy" / "sentinel.json", dist / f"wia-security-azure-sentinel-{version}.json")
    return fz.write_zip(stage, dist / f"wia-security-azure-function-{version}.zip")


def main() -> None:
    description, epilog = fz.help_texts(__doc__)
    parser = argparse.ArgumentParser(description=description, epilog=epilog)
    parser.add_argument("--dist", type=Path, default=HERE.parent / "dist")
    parser.add_argument("--python-version", default=fz.DEFAULT_PYTHON)
    args = parser.parse_args()
    print(build(args.dist, python_version=args.python_version))


if __name__ == "__main__":
    main()
