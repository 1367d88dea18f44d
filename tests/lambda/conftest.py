"""Lambda forwarder tests: the handler is imported from lambda/ and driven with real event shapes
against moto server, the Security Hub contract layer and the Splunk HEC contract server."""
import sys
from pathlib import Path

import pytest

pytest.importorskip("boto3", reason="the aws extra is not installed")

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"
if str(LAMBDA_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDA_DIR))

from servers.moto import aws, moto_session  # noqa: E402,F401  (fixtures)
