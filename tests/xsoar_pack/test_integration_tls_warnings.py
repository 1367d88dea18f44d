"""urllib3's InsecureRequestWarning is silenced only when the user turned certificate verification off
("Trust any certificate", the `insecure` parameter). The integration used to call urllib3.disable_warnings()
when it was loaded, whatever the instance said, which hid every urllib3 warning in the process."""
from __future__ import annotations

import importlib.util
import warnings

import urllib3

from .conftest import INTEGRATION, run_command

# requests adds warning filters of its own when first imported (in the image, before the integration runs)
importlib.import_module("requests")


def _fresh_integration():
    """The integration loaded anew, as XSOAR runs it for a command (what it does when loaded counts)."""
    spec = importlib.util.spec_from_file_location("WIASecurity_fresh", INTEGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lookup(module, demisto, insecure):
    return run_command(module, demisto, "wia-attack-lookup", {"technique": "T1059.001"},
                       params={"url": "https://127.0.0.1:9", "source_type": "gateway", "insecure": insecure})


def test_with_verification_on_the_warning_filters_are_untouched(demisto):
    with warnings.catch_warnings():
        before = list(warnings.filters)
        module = _fresh_integration()
        (entry,) = _lookup(module, demisto, insecure=False)
        assert entry["Type"] == 1, entry                                # the command ran
        assert warnings.filters == before
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn("unverified HTTPS request", urllib3.exceptions.InsecureRequestWarning)
        assert [w.category for w in caught] == [urllib3.exceptions.InsecureRequestWarning]


def test_with_verification_off_only_the_insecure_request_warning_is_silenced(demisto):
    with warnings.catch_warnings():
        before = list(warnings.filters)
        module = _fresh_integration()
        assert warnings.filters == before
        (entry,) = _lookup(module, demisto, insecure=True)
        assert entry["Type"] == 1, entry
        added = [f for f in warnings.filters if f not in before]
        assert [(action, category) for action, _, category, _, _ in added] == [("ignore", urllib3.exceptions.InsecureRequestWarning)]
