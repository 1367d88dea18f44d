"""TAXII tests: medallion 3.0.0 (tests/servers/medallion.py) and the gateway's own endpoint."""
import pytest

pytest.importorskip("taxii2client", reason="the taxii extra is not installed")
# the medallion fixtures are in tests/conftest.py (one in-process server per session)
