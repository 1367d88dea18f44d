"""Builds core/formats/ocsf/ocsf-1.8.0-tables.json, the compact OCSF tables the converter needs, from
the pinned compiled schema (tests/reference/ocsf/ocsf-schema-1.8.0.compiled.json.gz, vendored from
../shared/reference/ocsf/schema with its license).

The converter decides which enum *id* a WIA value maps to (that is the mapping); every caption it
writes (class, category, activity, type, severity, status and the other `*_id` siblings) and every
value pattern it checks (ip_t, mac_t, email_t) comes from this file, so a caption can never drift
from the schema. Run from the repository root: python scripts/build_ocsf_tables.py [SCHEMA_GZ]
"""
from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "ocsf"
if not (REFERENCE / "ocsf-schema-1.8.0.compiled.json.gz").exists():
    REFERENCE = ROOT.parent / "shared" / "reference" / "ocsf" / "schema"
DEFAULT_SCHEMA = REFERENCE / "ocsf-schema-1.8.0.compiled.json.gz"
OUT = ROOT / "core" / "formats" / "ocsf"

#: The classes the converter writes or reads.
CLASSES = (1001, 1002, 1005, 1007, 2002, 2004, 2005, 3001, 3002, 4001, 4002, 4003, 4005, 4007, 4008, 5001, 5021,
           201001, 201002, 201004)
#: table key -> (where: "class" uid or "object" name, attribute); the enums whose captions the converter writes.
ENUMS = {
    "severity_id": ("class", 2004, "severity_id"),
    "action_id": ("class", 4001, "action_id"),
    "disposition_id": ("class", 4001, "disposition_id"),
    "confidence_id": ("class", 4001, "confidence_id"),
    "risk_level_id": ("class", 4001, "risk_level_id"),
    "priority_id": ("class", 2004, "priority_id"),
    "verdict_id": ("class", 2004, "verdict_id"),
    "impact_id": ("class", 2005, "impact_id"),
    "logon_type_id": ("class", 3002, "logon_type_id"),
    "auth_protocol_id": ("class", 3002, "auth_protocol_id"),
    "rcode_id": ("class", 4003, "rcode_id"),
    "observable.type_id": ("object", "observable", "type_id"),
    "connection_info.direction_id": ("object", "network_connection_info", "direction_id"),
    "connection_info.protocol_ver_id": ("object", "network_connection_info", "protocol_ver_id"),
    "process.integrity_id": ("object", "process", "integrity_id"),
    "os.type_id": ("object", "os", "type_id"),
    "fingerprint.algorithm_id": ("object", "fingerprint", "algorithm_id"),
    "auth_factor.factor_type_id": ("object", "auth_factor", "factor_type_id"),
    "reg_value.type_id": ("object", "win/reg_value", "type_id"),
    "kill_chain_phase.phase_id": ("object", "kill_chain_phase", "phase_id"),
    "osint.type_id": ("object", "osint", "type_id"),
    "malware.classification_ids": ("object", "malware", "classification_ids"),
    "device.type_id": ("object", "device", "type_id"),
    "network_endpoint.type_id": ("object", "network_endpoint", "type_id"),
    "file.type_id": ("object", "file", "type_id"),
    "analytic.type_id": ("object", "analytic", "type_id"),
    "digital_signature.state_id": ("object", "digital_signature", "state_id"),
    "module.load_type_id": ("object", "module", "load_type_id"),
}
#: Value types whose patterns the converter checks before it writes a value (else the value stays in `unmapped`).
TYPES = ("ip_t", "mac_t", "email_t", "datetime_t")


def build(schema_path: Path = DEFAULT_SCHEMA) -> dict:
    """The tables, as the converter loads them, from one compiled schema file."""
    schema = json.loads(gzip.decompress(schema_path.read_bytes()))
    by_uid = {c["uid"]: c for c in schema["classes"].values()}
    categories = {c["name"]: c for c in schema["categories"].values()}

    def captions(attr: dict) -> dict[str, str]:
        return {k: v["caption"] for k, v in sorted((attr.get("enum") or {}).items(), key=lambda kv: int(kv[0]))}

    classes = {}
    for uid in CLASSES:
        cls = by_uid[uid]
        category = categories[cls["category"].split("/")[-1]]
        attrs = cls["attributes"]
        classes[str(uid)] = {
            "name": cls["caption"], "category_uid": category["uid"], "category_name": category["caption"],
            "activities": captions(attrs["activity_id"]), "status": captions(attrs.get("status_id", {})),
            "profiles": sorted(cls.get("profiles") or []),
        }
    enums = {}
    for key, (where, name, attr) in ENUMS.items():
        owner = by_uid[name] if where == "class" else schema["objects"][name]
        enums[key] = captions(owner["attributes"][attr])
    types = {name: {k: schema["types"][name].get(k) for k in ("regex", "max_len", "range")} for name in TYPES}
    return {"ocsf_version": schema["version"], "source": f"{schema_path.name} (compiled OCSF schema)",
            "license": "Apache-2.0 (LICENSE.ocsf-schema.txt)", "classes": classes, "enums": enums, "types": types}


def main(schema_path: Path = DEFAULT_SCHEMA) -> None:
    tables = build(schema_path)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"ocsf-{tables['ocsf_version']}-tables.json").write_text(json.dumps(tables, indent=1, ensure_ascii=False) + "\n")
    shutil.copyfile(schema_path.with_name("LICENSE.ocsf-schema.txt"), OUT / "LICENSE.ocsf-schema.txt")
    print(f"wrote {len(tables['classes'])} classes, {len(tables['enums'])} enums, {len(tables['types'])} types")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SCHEMA)
