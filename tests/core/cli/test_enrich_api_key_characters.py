"""A VirusTotal API key with a character an HTTP header cannot carry (a line break from the file or variable it
came from, a space) is refused with one line that does not quote it (contract test: vt-py against the
VirusTotal contract server). aiohttp refused the header on every request, which the enricher reported as
"VirusTotal sent an unreadable file object": no request was made, the circuit stayed closed, every batch tried
again, and the cause was hidden."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from vt_contract import VirusTotalServer  # noqa: E402
from wia_security.builders import AlertBuilder  # noqa: E402
from wia_security.connectors.intel.virustotal import VirusTotalEnricher  # noqa: E402
from wia_security.errors import ConfigError  # noqa: E402

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


@pytest.mark.parametrize("key", ["secretpart1\nsecretpart2", "secretpart1 secretpart2", "secretpart1\tsecretpart2"])
def test_contract_a_key_no_header_can_carry_is_refused_without_quoting_it(cli, tmp_path, monkeypatch, key):
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()) + "\n")
    with VirusTotalServer(api_key=key) as vt:
        monkeypatch.setenv("VT_API_KEY", key)
        r = cli("enrich", str(src), "--vt-url", vt.url)
        monkeypatch.setenv("VT_API_URL", vt.url)
        r2 = cli("forward", str(src), "--to", f"sqlite:///{tmp_path}/s.db", "--enrich", "virustotal")
        assert vt.calls() == []
    assert r.code == 2 and r.out == "", (r.code, r.out)
    assert "the VirusTotal API key holds a space, a line break" in r.err, r.err
    assert r2.code == 2 and "the VirusTotal API key holds" in r2.err, r2.err
    assert "secretpart" not in r.err + r2.err


def test_a_control_character_in_a_key_given_to_the_library_is_refused():
    with pytest.raises(ConfigError, match="HTTP header cannot carry") as caught:
        VirusTotalEnricher("secretpart1\x00x", host="http://127.0.0.1:9")
    assert "secretpart" not in str(caught.value)
