"""Elasticsearch/OpenSearch sink tests run against osmem-server (tests/servers/osmem.py)."""
from servers.osmem import fault_proxy, osmem, osmem_base  # noqa: F401  (fixtures)
