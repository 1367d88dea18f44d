"""Where the tests' reference data lives (tests/reference/, vendored with licenses; see its README)."""
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "reference"
OCSF_SCHEMA = REFERENCE / "ocsf" / "ocsf-schema-1.8.0.compiled.json.gz"
ASFF = REFERENCE / "asff"
SPLUNK_CIM = REFERENCE / "splunk-cim"
ECS = REFERENCE / "ecs" / "v9.4.0"
XSOAR_TOOLS = REFERENCE / "xsoar-tools"
ATTACK = REFERENCE / "attack"
