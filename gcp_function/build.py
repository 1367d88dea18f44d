"""Builds the Cloud Functions package: dist/wia-security-gcp-function-<version>.zip, with the same core as
the wheel, and beside it dist/wia-security-gcp-scc-findings-writer-<version>.yaml, the custom IAM role
the function's service account needs (gcp_function/deploy/scc-findings-writer.yaml).

    python gcp_function/build.py [--dist DIR] [--python-version 3.11]

The zip holds main.py, wia_security/ (core + connectors), vendor/ (google-cloud-securitycenter and its
dependencies for Linux x86_64, which main.py puts on sys.path) and a requirements.txt naming only
functions-framework, the one package the platform installs (deploy notes: docs/cloud/gcp.md).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts" / "dist.d"))
import function_zip as fz  # noqa: E402

#: Installed by the platform from the zip's requirements.txt (and so never vendored).
PLATFORM_PROVIDED = ("functions-framework",)
#: The custom IAM role the deploy docs have `gcloud iam roles create|update --file` read (docs/cloud/gcp.md).
ROLE = HERE / "deploy" / "scc-findings-writer.yaml"


def write_role(dist: Path) -> Path:
    """The IAM role into `dist`, named with the version, as the Azure build ships its ARM template:
    a dist/ without a source checkout still has what the deploy steps apply."""
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / f"wia-security-gcp-scc-findings-writer-{fz.core_version()}.yaml"
    shutil.copy2(ROLE, target)
    return target


def build(dist: Path, *, python_version: str = fz.DEFAULT_PYTHON, stage: Path = HERE / "build" / "package") -> Path:
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    shutil.copy2(HERE / "main.py", stage / "main.py")
    fz.stage_wia_security(stage)
    requirements = fz.requirements_of(HERE / "requirements.txt")
    platform = [r for r in requirements if r.lower().startswith(PLATFORM_PROVIDED)]
    vendored = [r for r in requirements if r not in platform]
    fz.vendor(vendored, stage / "vendor", python_version=python_version, exclude=PLATFORM_PROVIDED)
    (stage / "requirements.txt").write_text(
        "# Everything else is vendored in vendor/ (gcp_function/build.py).\n" + "\n".join(platform) + "\n")
    write_role(dist)
    return fz.write_zip(stage, dist / f"wia-security-gcp-function-{fz.core_version()}.zip")


def main() -> None:
    description, epilog = fz.help_texts(__doc__)
    parser = argparse.ArgumentParser(description=description, epilog=epilog)
    parser.add_argument("--dist", type=Path, default=HERE.parent / "dist")
    parser.add_argument("--python-version", default=fz.DEFAULT_PYTHON)
    args = parser.parse_args()
    print(build(args.dist, python_version=args.python_version))


if __name__ == "__main__":
    main()
