"""The OASIS stix2-validator, run as strictly as it can be run on STIX 2.1 bundles, and the only
findings the project tolerates (each for a reason the validator cannot know).

Options: strict=True (every SHOULD is an error), strict_properties=True (no custom properties),
enforce_refs=True (SRO refs must resolve in the bundle). strict_types is replaced by our own check
below: in stix2-validator 3.3 it still compares against the 2.0 list of top-level types and calls
every 2.1 SCO ("ipv4-addr", "file", ...) custom.

Tolerated, and only where the cause is present:
- {302} extref-hashes: "an external reference with a url SHOULD have hashes" -- ATT&CK links and
  the event's reference URLs point at pages no producer can hash (MITRE's own bundles omit them).
- {301} network-traffic-ports: "network-traffic SHOULD have both ports" -- only when the WIA event
  has no port for that side (ICMP, or a source that did not report one).
"""
from __future__ import annotations

import re
from typing import Any

from stix2validator import ValidationOptions, validate_instance
from stix2validator.v21 import enums

OPTIONS = ValidationOptions(version="2.1", strict=True, strict_properties=True, enforce_refs=True)
KNOWN_TYPES = set(enums.TYPES) | set(enums.OBSERVABLE_TYPES) | {"extension-definition", "language-content",
                                                                  "marking-definition", "bundle"}
_CODE = re.compile(r"\{(\d+)\}")


def findings(bundle: dict[str, Any]) -> list[str]:
    """Every error and warning the validator reports (strict), plus custom types, minus the tolerated ones."""
    result = validate_instance(bundle, OPTIONS)
    objects = {o["id"]: o for o in bundle.get("objects", [])}
    out = []
    for issue in [*result.errors, *result.warnings]:
        text = str(issue)
        code = _CODE.search(text)
        obj = objects.get(text.split(":", 1)[0])
        if code and code.group(1) == "302" and obj is not None and any(
                "url" in r for r in obj.get("external_references", ())):
            continue
        if code and code.group(1) == "301" and obj is not None and not ("src_port" in obj and "dst_port" in obj):
            continue
        out.append(text)
    out += [f"{o['id']}: custom type {o['type']}" for o in bundle.get("objects", []) if o["type"] not in KNOWN_TYPES]
    return out
