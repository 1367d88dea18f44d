"""`convert` and `parse` take only the options a format declares: a misspelt one is an error, not ignored."""
from __future__ import annotations

import pytest

from wia_security.formats import FORMATS, convert, get_format, parse


def test_a_misspelt_option_is_a_type_error_naming_the_known_ones(samples):
    alert = samples["alert-sample"]
    with pytest.raises(TypeError, match=r"convert: 'unmaped' is not an option of the ocsf format \(it takes unmapped\)"):
        convert(alert, to="ocsf", unmaped=False)          # was silently ignored: unmapped stayed True
    with pytest.raises(TypeError, match=r"'index' is not an option of the ecs format \(it takes none\)"):
        convert(alert, to="ecs", index="x")
    with pytest.raises(TypeError, match=r"parse: 'strict' is not an option of the stix format \(it takes lenient\)"):
        parse(convert(alert, to="stix"), from_="stix", strict=True)


def test_declared_options_still_work(samples):
    alert = samples["alert-sample"]
    assert "unmapped" not in convert(alert, to="ocsf", unmapped=False)
    assert convert(alert, to="leef", delimiter="^").split("|")[5].startswith("^")
    assert all(get_format(name).options <= frozenset({"account_id", "region", "partition", "product_arn",
                                                      "generator_id", "vendor", "product", "delimiter", "unmapped",
                                                      "wia_extension"}) for name in FORMATS)
