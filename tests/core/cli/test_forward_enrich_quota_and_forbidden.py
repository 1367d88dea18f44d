"""`forward --enrich virustotal` when VirusTotal's public-API daily quota runs out mid-run, and when the key is
refused with 403 ForbiddenError (contract test: vt-py against the VirusTotal contract server, which counts a
daily quota and knows forbidden keys as docs.virustotal.com/reference/errors describes). Every event is
delivered; those whose lookups were not made say why, and standard error counts them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from vt_contract import VirusTotalServer  # noqa: E402
from wia_security.builders import AlertBuilder  # noqa: E402
from wia_security.connectors.sqlite import EventStore  # noqa: E402

HASHES = [f"{n:064x}" for n in range(1, 7)]


def _events(tmp_path: Path) -> Path:
    src = tmp_path / "in.ndjson"
    src.write_text("".join(json.dumps(AlertBuilder().title(h[-1]).indicator("file_hash_sha256", h).build().to_dict())
                           + "\n" for h in HASHES))
    return src


def _verdicts(db: Path) -> list[dict]:
    store = EventStore(str(db))
    try:
        return [row.event["meta"]["custom"]["enrichment"]["virustotal"] for row in store.query(limit=None)]
    finally:
        store.close()


def test_contract_daily_quota_spent_mid_run_delivers_everything(cli, tmp_path, monkeypatch):
    with VirusTotalServer(api_key="k") as vt:
        vt.quota_per_day = 2
        for h in HASHES:
            vt.add_file(h, last_analysis_stats={"malicious": 1, "undetected": 69})
        monkeypatch.setenv("VT_API_KEY", "k")
        monkeypatch.setenv("VT_API_URL", vt.url)
        r = cli("forward", str(_events(tmp_path)), "--to", f"sqlite:///{tmp_path}/s.db", "--enrich", "virustotal")
        requests = len(vt.calls())
    assert r.code == 0, r.err
    verdicts = _verdicts(tmp_path / "s.db")
    assert len(verdicts) == 6
    assert sorted(v["status"] for v in verdicts) == ["complete"] * 2 + ["partial"] * 4
    assert all(v["notes"] == ["VirusTotal quota exceeded; backing off"] for v in verdicts if v["status"] != "complete")
    assert "4 events not fully checked on VirusTotal" in r.err, r.err
    assert requests <= 2 + 3                # the answered two, then at most the policy's three tries


def test_contract_a_forbidden_key_is_one_request_and_named(cli, tmp_path, monkeypatch):
    with VirusTotalServer(api_key="k") as vt:
        vt.forbidden_keys.add("k")
        monkeypatch.setenv("VT_API_KEY", "k")
        monkeypatch.setenv("VT_API_URL", vt.url)
        r = cli("forward", str(_events(tmp_path)), "--to", f"sqlite:///{tmp_path}/s.db", "--enrich", "virustotal")
        requests = len(vt.calls())
    assert r.code == 0, r.err
    verdicts = _verdicts(tmp_path / "s.db")
    assert len(verdicts) == 6 and {v["status"] for v in verdicts} == {"unavailable"}
    assert requests == 1                    # the circuit opened for the whole cooldown
    assert "VirusTotal refused the API key (ForbiddenError)" in r.err, r.err
