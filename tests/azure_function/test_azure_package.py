"""The Azure Function zip runs from the zip alone in a fresh venv that holds only what the Functions
Python worker provides (azure-functions): the libraries come from the zip's .python_packages, as the
host loads them. Marked slow: it builds the package and, once, a venv cached in azure_function/build/."""
from __future__ import annotations

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

pytest.importorskip("azure.functions", reason="the azure extra is not installed")

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "azure_function"
DCR = "dcr-00000000000000000000000000000000"


def _worker_venv() -> Path:
    path = FUNCTION_DIR / "build" / f"zip-test-venv-py{sys.version_info.major}.{sys.version_info.minor}"
    python = path / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import azure.functions"],
                                          capture_output=True).returncode == 0:
        return path
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    run = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "azure-functions"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return path


@pytest.mark.slow
def test_zip_runs_alone_with_only_azure_functions(sentinel, tmp_path, samples):
    spec = importlib.util.spec_from_file_location("wia_azure_build", FUNCTION_DIR / "build.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    from wia_security import __version__
    # built for the Python running this test (its binary wheels, e.g. cffi, are per version): the
    # default 3.11 package could not load in the 3.12+/3.13 worker venv below
    zip_path = builder.build(tmp_path / "dist", stage=tmp_path / "stage",
                             python_version=f"{sys.version_info.major}.{sys.version_info.minor}")
    assert zip_path.name == f"wia-security-azure-function-{__version__}.zip"
    assert (tmp_path / "dist" / f"wia-security-azure-sentinel-{__version__}.json").exists()
    root = tmp_path / "wwwroot"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        zf.extractall(root)
    assert {"function_app.py", "host.json", "requirements.txt", "wia_security/_version.py"} <= set(names)
    assert any(n.startswith(".python_packages/lib/site-packages/azure/monitor/ingestion/") for n in names)
    assert not any(n.startswith(".python_packages/lib/site-packages/azure/functions/") for n in names)
    assert f'__version__ = "{__version__}"' in (root / "wia_security" / "_version.py").read_text()

    python = _worker_venv() / "bin" / "python"
    alert = samples["alert-sample"]
    (tmp_path / "alert.json").write_text(json.dumps(alert))
    script = textwrap.dedent(f"""
        import json, sys
        root = {str(root)!r}
        sys.path[:0] = [root + "/.python_packages/lib/site-packages", root]     # as the Functions host does
        import azure.functions as func
        import function_app
        out = type("Out", (), {{"set": lambda self, v: setattr(self, "v", v), "v": None}})()
        ctx = type("Ctx", (), {{"retry_context": None}})()
        fn = function_app.eventhub_to_sentinel.build().get_user_function()
        body = open({str(tmp_path / "alert.json")!r}, "rb").read()
        fn(events=[func.EventHubEvent(body=body), func.EventHubEvent(body=b"{{broken")], deadletter=out, context=ctx)
        import wia_security, azure.monitor.ingestion
        print(json.dumps({{"dead": out.v, "core": wia_security.__file__, "sdk": azure.monitor.ingestion.__file__}}))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"WIA_SENTINEL_ENDPOINT": sentinel.endpoint, "WIA_SENTINEL_DCR_ID": DCR,
                "REQUESTS_CA_BUNDLE": sentinel.ca_file})
    run = subprocess.run([str(python), "-I", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["core"].startswith(str(root)) and result["sdk"].startswith(str(root))
    assert json.loads(result["dead"])["reason"].startswith("unparseable input")
    assert [r["EventId"] for r in sentinel.state.all_rows()] == [alert["id"]]
