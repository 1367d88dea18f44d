"""Reads Splunk .conf files as Splunk does: [stanza] headers, `key = value`, `#` comment lines,
a trailing backslash continuing a value on the next line; keys before any stanza go to "default"."""
from __future__ import annotations

from pathlib import Path


def read_conf(path: Path | str) -> dict[str, dict[str, str]]:
    stanzas: dict[str, dict[str, str]] = {"default": {}}
    current = stanzas["default"]
    pending_key: str | None = None
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        if pending_key is not None:
            current[pending_key] += "\n" + raw.rstrip("\\")
            if not raw.endswith("\\"):
                pending_key = None
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = stanzas.setdefault(line[1:-1], {})
            continue
        if "=" not in line:
            raise ValueError(f"{path}: not a key = value line: {raw!r}")
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if key in current:
            # Splunk keeps the last one silently; a repeated key is always a mistake in a shipped conf.
            raise ValueError(f"{path}: {key} appears twice in the same stanza")
        if value.endswith("\\"):
            pending_key, value = key, value[:-1]
        current[key] = value
    if not stanzas["default"]:
        del stanzas["default"]
    return stanzas


def read_spec(path: Path | str) -> dict[str, set[str]]:
    """Stanza patterns ("[wia_events://<name>]") and the keys each documents."""
    specs: dict[str, set[str]] = {"default": set()}
    current = specs["default"]
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "*")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = specs.setdefault(line[1:-1], set())
        elif "=" in line:
            current.add(line.split("=", 1)[0].strip())
    return specs
