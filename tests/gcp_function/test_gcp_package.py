"""The Cloud Function zip runs from the zip alone in a fresh venv that holds only what the platform
installs (functions-framework): its other libraries come from the zip's vendor/. Marked slow: it
builds the package and, once, a venv cached in gcp_function/build/."""
from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("functions_framework", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "gcp_function"


def _platform_venv() -> Path:
    path = FUNCTION_DIR / "build" / f"zip-test-venv-py{sys.version_info.major}.{sys.version_info.minor}"
    python = path / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import functions_framework"],
                                          capture_output=True).returncode == 0:
        return path
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    run = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "functions-framework"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return path


@pytest.mark.slow
def test_zip_runs_alone_with_only_functions_framework(scc, tmp_path, samples):
    spec = importlib.util.spec_from_file_location("wia_gcp_build", FUNCTION_DIR / "build.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    from wia_security import __version__
    # built for the Python running this test (its binary wheels, e.g. cffi, are per version): the
    # default 3.11 package could not load in the 3.12+/3.13 worker venv below
    zip_path = builder.build(tmp_path / "dist", stage=tmp_path / "stage",
                             python_version=f"{sys.version_info.major}.{sys.version_info.minor}")
    assert zip_path.name == f"wia-security-gcp-function-{__version__}.zip"
    assert (tmp_path / "dist" / f"wia-security-gcp-scc-findings-writer-{__version__}.yaml").exists()   # the IAM role
    root = tmp_path / "source"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        zf.extractall(root)
    assert {"main.py", "requirements.txt", "wia_security/_version.py"} <= set(names)
    assert any(n.startswith("vendor/google/cloud/securitycenter_v2/") for n in names)
    assert not any(n.startswith("vendor/functions_framework/") for n in names)
    assert (root / "requirements.txt").read_text().splitlines()[1:] == ["functions-framework>=3.5"]
    assert f'__version__ = "{__version__}"' in (root / "wia_security" / "_version.py").read_text()

    source = scc.create_source()
    alert = samples["alert-sample"]
    envelope = {"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished",
                "source": "//pubsub.googleapis.com/projects/demo-proj/topics/wia-events", "id": "9009",
                "datacontenttype": "application/json",
                "data": {"message": {"data": base64.b64encode(json.dumps(alert).encode()).decode(),
                                     "messageId": "9009"},
                         "subscription": "projects/demo-proj/subscriptions/wia"}}
    (tmp_path / "event.json").write_text(json.dumps(envelope))
    script = textwrap.dedent(f"""
        import json, sys
        import functions_framework
        app = functions_framework.create_app(target="pubsub_to_scc", source={str(root / "main.py")!r},
                                             signature_type="cloudevent")
        body = open({str(tmp_path / "event.json")!r}).read()
        response = app.test_client().post("/", data=body, headers={{"Content-Type": "application/cloudevents+json"}})
        import wia_security, google.cloud.securitycenter_v2 as scc
        print(json.dumps({{"status": response.status_code, "core": wia_security.__file__, "sdk": scc.__file__}}))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["WIA_CONFIG"] = (f'[destinations.scc]\nurl = "scc://{source}"\nendpoint = "{scc.endpoint}"\n'
                         f'ca_file = "{scc.ca_file}"\nauth = "anonymous"\n')
    python = _platform_venv() / "bin" / "python"
    run = subprocess.run([str(python), "-I", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert result["core"].startswith(str(root)) and result["sdk"].startswith(str(root / "vendor"))
    assert {f.source_properties["wia_event_id"] for f in scc.state.findings.values()} == {alert["id"]}
