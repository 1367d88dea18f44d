"""Credentials written into a TAXII URL's user info (`taxii+https://user:password@host/...`).

They were never sent (the client's own auth wins over a URL's user info, so the server answered 401), yet
the URL was shown as given: in the dead-letter records' `where`, in log lines naming the collection, and in
the HTTP errors requests raises ("... for url: http://user:password@host/..."). Refused up front now, as the
Kafka, Splunk and gateway URLs refuse them, without quoting the password.
"""
from __future__ import annotations

import pytest
from servers.medallion import PASSWORD, USER

from wia_security.cli import main
from wia_security.connectors.taxii import TaxiiClient, TaxiiSink, TaxiiSource
from wia_security.errors import ConfigError

SECRET = "s3cret-in-the-url"


def with_user_info(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{USER}:{SECRET}@{rest}"


@pytest.mark.parametrize("opener", [
    lambda url: TaxiiSource.from_url("taxii+" + url),
    lambda url: TaxiiSink.from_url("taxii+" + url),
    lambda url: TaxiiSource(url),
    lambda url: TaxiiClient(url),
])
def test_credentials_in_the_url_are_refused_without_quoting_them(medallion, opener):
    url = with_user_info(medallion.collection_url())
    with pytest.raises(ConfigError, match="not in the URL") as caught:
        opener(url)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.__dict__)


def test_pull_with_credentials_in_the_url_exits_2_and_never_prints_them(medallion, tmp_path, capsys):
    url = "taxii+" + with_user_info(medallion.collection_url()) + "?settle=0"
    code = main(["pull", url, "--to", f"sqlite:///{tmp_path}/s.db", "--checkpoint", str(tmp_path / "cp.json"),
                 "--dead-letter", str(tmp_path / "dl.ndjson")])
    out, err = capsys.readouterr()
    assert code == 2 and "not in the URL" in err
    assert SECRET not in out + err
    assert not (tmp_path / "cp.json").exists()


def test_the_options_still_carry_credentials(medallion):
    source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD)
    try:
        assert source.client.collections(medallion.api_root_url)
    finally:
        source.close()
