"""QRadar tests: a real rsyslog (tests/servers/rsyslog.py) and the REST contract server (tests/servers/qradar_contract.py)."""
from servers.qradar_contract import qradar_api  # noqa: F401  (fixture)
from servers.rsyslog import rsyslog  # noqa: F401  (fixture)
