"""What the deploy builds write to dist/ and say in --help: the GCP build ships the custom IAM role the deploy
docs apply (it was only in a source checkout), and each build's --help description is a whole sentence."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"wia_{name}_build", ROOT / name / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gcp_build_writes_the_iam_role_beside_the_zip(tmp_path, monkeypatch):
    builder = _load("gcp_function")
    from wia_security import __version__
    # the libraries are not what is checked here (pip; tests/gcp_function/test_gcp_package.py runs the zip)
    monkeypatch.setattr(builder.fz, "vendor", lambda requirements, dest, **kw: dest.mkdir(parents=True))
    zip_path = builder.build(tmp_path / "dist", stage=tmp_path / "stage")
    role = tmp_path / "dist" / f"wia-security-gcp-scc-findings-writer-{__version__}.yaml"
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == sorted([zip_path.name, role.name])
    assert role.read_bytes() == (ROOT / "gcp_function" / "deploy" / "scc-findings-writer.yaml").read_bytes()


def test_the_deploy_docs_apply_the_role_from_dist():
    text = (ROOT / "docs" / "cloud" / "gcp.md").read_text()
    files = re.findall(r"gcloud iam roles (?:create|update) \S+ --organization=\S+\s*(?:\\\n\s*)?--file=(\S+?)`?$",
                       text, re.M)
    assert files and set(files) == {"dist/wia-security-gcp-scc-findings-writer-<version>.yaml"}, files


def test_every_build_help_describes_the_build_in_whole_sentences():
    """`--help` took the docstring's first line: 'Builds the Lambda package: ... (the SAM template's CodeUri) and'."""
    for name, says in (("lambda", "with the same core as the wheel."),
                       ("gcp_function", "the custom IAM role the function's service account needs"),
                       ("azure_function", "(the ARM template), with the same core as the wheel.")):
        run = subprocess.run([sys.executable, str(ROOT / name / "build.py"), "--help"], capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        description = " ".join(run.stdout.split("\n\n")[1].split())
        assert description.startswith("Builds the ") and description.endswith("."), description
        assert says in " ".join(run.stdout.split()).replace("- ", "-"), run.stdout
        assert "The zip holds" in run.stdout                     # the docstring's last paragraph, as the epilog
