"""A MISP or OTX base URL with a user name and password is refused before any request. The password showed in
the source's repr, in its errors (pymisp's "Unable to connect to MISP (URL)") and in every dead-letter
record's `where`; and requests sent it as Basic auth, replacing the MISP key's Authorization header, so the
pull failed with a message quoting it. Contract servers driven by the real clients (pymisp, requests)."""
from __future__ import annotations

import pytest

from misp_contract import MispServer
from otx_contract import OtxServer
from wia_security.connectors.intel.misp import MispSource
from wia_security.connectors.intel.otx import OtxSource
from wia_security.errors import ConfigError

KEY = "intel-test-key-0123456789"
PASSWORD = "proxy-pa55word-9876"


def test_contract_a_misp_url_with_a_password_is_refused_without_quoting_it():
    with MispServer(key=KEY) as misp:
        url = misp.url.replace("http://", f"http://proxyuser:{PASSWORD}@")
        with pytest.raises(ConfigError, match="carries no user name or password") as err:
            MispSource(url, KEY)
        assert misp.calls() == []
    assert PASSWORD not in str(err.value) and err.value.key == "url"


def test_contract_an_otx_url_with_a_password_is_refused_without_quoting_it():
    with OtxServer(api_key=KEY) as otx:
        url = otx.url.replace("http://", f"http://proxyuser:{PASSWORD}@")
        with pytest.raises(ConfigError, match="carries no user name or password") as err:
            OtxSource(KEY, base_url=url)
        assert otx.calls() == []
    assert PASSWORD not in str(err.value) and err.value.key == "url"
