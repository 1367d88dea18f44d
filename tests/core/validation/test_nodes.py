"""The schema loader refuses what the validator does not implement, so a schema change is never ignored."""
from __future__ import annotations

import pytest
from jsonschema import FormatChecker

from wia_security.validation.formats import FORMAT_CHECKS
from wia_security.validation.nodes import SchemaCompileError, _Loader


def _load(schema: dict):
    return _Loader()._node(schema, "https://example.test/s.json", "")


@pytest.mark.parametrize("schema", [{"type": "string", "minLength": 1}, {"anyOf": [{"type": "string"}]},
                                    {"items": [{"type": "string"}]}])
def test_an_unsupported_keyword_is_refused(schema):
    with pytest.raises(SchemaCompileError):
        _load(schema)


@pytest.mark.parametrize("fmt", ["ipv4", "date", "hostname", "ipv6", "uri-reference"])
def test_a_format_without_a_check_is_refused_not_ignored(fmt):
    """The reference (FormatChecker()) checks these formats; the interpreter and the generated check
    skipped any format they had no check for, so a schema that started using `ipv4` (the bundled
    protocol schemas do) would have accepted what jsonschema refuses, silently."""
    assert fmt in FormatChecker().checkers and fmt not in FORMAT_CHECKS
    with pytest.raises(SchemaCompileError, match=fmt):
        _load({"type": "string", "format": fmt})


def test_the_formats_with_checks_load():
    for fmt in FORMAT_CHECKS:
        assert _load({"type": "string", "format": fmt}).format == fmt
