"""A bare `pip install wia-security` meets a destination whose client library it lacks: one line naming
the extra to install, exit 2, no traceback (each run in a fresh interpreter with the packages blocked)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wia_security.connectors import EXTRAS

SAMPLE = Path(__file__).resolve().parents[3] / "samples"
#: every third-party client library a connector imports (None in sys.modules makes `import` fail)
BLOCKED = ["requests", "urllib3", "confluent_kafka", "boto3", "botocore", "azure", "google", "grpc", "pymisp",
           "opensearchpy", "elasticsearch", "elastic_transport", "taxii2client", "stix2", "splunklib",
           "demisto_client", "vt", "starlette", "uvicorn", "websockets"]
#: one destination URL per scheme, with what its from_url wants before it connects anywhere
URLS = {
    "phantom": "phantom+https://soar.example?token_env=T", "splunksoar": "splunksoar+https://soar.example?token_env=T",
    "xsoar": "xsoar+https://xsoar.example?token_env=T", "sentinel": "sentinel+https://dce.example/?dcr=dcr-1&stream=Custom-WIA",
    "sentinel-incidents": "sentinel-incidents://sub/rg/ws", "scc": "scc://organizations/1/sources/2",
    "misp": "misp+https://misp.example", "securityhub": "securityhub://us-east-1",
    "kafka": "kafka://localhost:9092/wia", "taxii": "taxii+https://taxii.example/api/collections/c1/",
    "splunk": "splunk+https://hec.example:8088?token_env=T", "elasticsearch": "elasticsearch+https://es.example:9200",
    "opensearch": "opensearch+https://os.example:9200",
}


def run_cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = ("import sys\n"
            f"for name in {BLOCKED!r}: sys.modules[name] = None\n"
            "from wia_security.cli import main\n"
            f"sys.exit(main({args!r}))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "T": "secret-token-value-123", "MISP_KEY": "secret-token-value-123",
                               "OTX_API_KEY": "secret-token-value-123"})


def test_every_scheme_that_needs_an_extra_has_a_test_url():
    assert set(URLS) == set(EXTRAS)


@pytest.mark.parametrize("scheme", sorted(EXTRAS))
def test_forward_names_the_extra_a_destination_needs(scheme, tmp_path):
    result = run_cli(["forward", "--to", URLS[scheme], str(SAMPLE / "alert-sample.json")], tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"pip install 'wia-security[{EXTRAS[scheme]}]'" in result.stderr
    assert f"{scheme} destinations: the Python package" in result.stderr
    assert "Traceback" not in result.stderr and "secret-token-value-123" not in result.stderr


def test_a_config_file_destination_names_the_extra_and_the_destination(tmp_path):
    (tmp_path / "wia.toml").write_text('[destinations.siem]\nurl = "kafka://localhost:9092/wia"\n')
    result = run_cli(["forward", "--config", "wia.toml", str(SAMPLE / "alert-sample.json")], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "destinations.siem.url" in result.stderr and "wia-security[kafka]" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("source, extra", [("kafka://localhost:9092/wia?group=g", "kafka"),
                                           ("taxii+https://taxii.example/api/collections/c1/", "taxii"),
                                           ("splunk+https://splunk.example:8089?token_env=T", "splunk")])
def test_pull_names_the_extra_a_source_needs(source, extra, tmp_path):
    result = run_cli(["pull", source, "--to", "sqlite:///events.db"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"pip install 'wia-security[{extra}]'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, extra", [(["serve"], "server"), (["intel", "pull", "misp", "--url", "https://misp.example"], "misp"),
                                         (["intel", "pull", "otx"], "intel")])
def test_other_commands_name_their_extra(args, extra, tmp_path):
    result = run_cli(args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"pip install 'wia-security[{extra}]'" in result.stderr and "Traceback" not in result.stderr
