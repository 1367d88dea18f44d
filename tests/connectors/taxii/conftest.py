"""TAXII tests: medallion 3.0.0 (tests/servers/medallion.py) and the gateway's own endpoint."""
import pytest

pytest.importorskip("taxii2client", reason="the taxii extra is not installed")

from servers.medallion import medallion, medallion_server  # noqa: E402,F401  (fixtures)
