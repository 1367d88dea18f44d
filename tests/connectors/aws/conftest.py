"""AWS connector tests run against moto server and the Security Hub contract layer (tests/servers/moto.py)."""
import pytest

pytest.importorskip("boto3", reason="the aws extra is not installed")

from servers.moto import aws, moto_session  # noqa: E402,F401  (fixtures)
