"""Builds the Lambda package: lambda/build/package/ (the SAM template's CodeUri) and
dist/wia-security-lambda-<version>.zip (+ .template.yaml pointing at it), with the same core as the wheel.

    python lambda/build.py [--dist DIR] [--python-version 3.11] [--architecture x86_64|arm64] [--with kafka,elastic]

The zip holds wia_lambda/ (the handler), wia_security/ (core + connectors) and the libraries in
requirements.txt installed for Amazon Linux; what the runtime already has (boto3 and its
dependencies) is left out.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts" / "dist.d"))
import function_zip as fz  # noqa: E402

#: Distributions the Lambda Python runtime provides (never vendored: the runtime's copies win).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
#: Optional destinations whose client libraries are not vendored by default.
OPTIONAL = {"kafka": ["confluent-kafka>=2.3"], "elastic": ["opensearch-py>=2", "elasticsearch>=8"]}


def build(dist: Path, *, python_version: str = fz.DEFAULT_PYTHON, architecture: str = "x86_64",
          extras: tuple[str, ...] = (), stage: Path = HERE / "build" / "package") -> Path:
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    fz.copy_tree(HERE / "wia_lambda", stage / "wia_lambda")
    fz.stage_wia_security(stage)
    requirements = fz.requirements_of(HERE / "requirements.txt")
    for extra in extras:
        requirements += OPTIONAL[extra]
    fz.vendor(requirements, stage, python_version=python_version, architecture=architecture,
              exclude=RUNTIME_PROVIDED)
    suffix = "" if architecture == "x86_64" else f"-{architecture}"
    zip_path = fz.write_zip(stage, dist / f"wia-security-lambda-{fz.core_version()}{suffix}.zip")
    # a copy of the SAM template beside the zip, pointing at it: `sam deploy -t dist/<name>.template.yaml`
    text = (HERE / "template.yaml").read_text()
    assert "CodeUri: build/package/" in text
    text = text.replace("CodeUri: build/package/", f"CodeUri: {zip_path.name}")
    if architecture != "x86_64":
        text = text.replace("    Default: x86_64\n", f"    Default: {architecture}\n", 1)
    zip_path.with_suffix(".template.yaml").write_text(text)
    return zip_path


def main() -> None:
    description, epilog = fz.help_texts(__doc__)
    parser = argparse.ArgumentParser(description=description, epilog=epilog)
    parser.add_argument("--dist", type=Path, default=HERE.parent / "dist")
    parser.add_argument("--python-version", default=fz.DEFAULT_PYTHON)
    parser.add_argument("--architecture", choices=sorted(fz.PLATFORMS), default="x86_64")
    parser.add_argument("--with", dest="extras", default="", help=f"comma list of {', '.join(OPTIONAL)}")
    args = parser.parse_args()
    extras = tuple(e for e in args.extras.split(",") if e)
    unknown = set(extras) - set(OPTIONAL)
    if unknown:
        parser.error(f"unknown --with value(s): {', '.join(sorted(unknown))}")
    print(build(args.dist, python_version=args.python_version, architecture=args.architecture, extras=extras))


if __name__ == "__main__":
    main()
