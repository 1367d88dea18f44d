"""`enrich` and `forward --enrich virustotal` with an event whose meta.custom.enrichment is the producer's own
(valid by the schema: meta.custom holds anything). Contract test: vt-py against the VirusTotal contract server.
Before, enrich_all raised TypeError: `enrich` died with a traceback and wrote none of the batch, and forward
delivered the whole batch unenriched with only a log warning."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages, as in tests/connectors/intel

from vt_contract import VirusTotalServer  # noqa: E402
from wia_security.builders import AlertBuilder  # noqa: E402
from wia_security.connectors.sqlite import EventStore  # noqa: E402

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
NOTE = "1 event not enriched: the producer's own value is at /meta/custom/enrichment (left as it was)"


def _events(tmp_path: Path) -> tuple[Path, list[dict]]:
    theirs = AlertBuilder().title("theirs").indicator("file_hash_sha256", SHA256).build().to_dict()
    theirs["meta"] = {"custom": {"enrichment": "by-upstream"}}
    plain = AlertBuilder().title("plain").indicator("file_hash_sha256", SHA256).build().to_dict()
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(theirs) + "\n" + json.dumps(plain) + "\n")
    return src, [theirs, plain]


def _verdict(event: dict) -> object:
    return event["meta"]["custom"]["enrichment"]


def test_contract_enrich_writes_every_event_and_names_the_one_left_alone(cli, tmp_path, monkeypatch):
    src, (theirs, _) = _events(tmp_path)
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        r = cli("enrich", str(src), "--vt-url", vt.url)
    assert r.code == 0, r.err
    first, second = [json.loads(line) for line in r.out.splitlines()]
    assert first == theirs
    assert _verdict(second)["virustotal"]["status"] == "complete"
    assert f"wia-security: {NOTE}" in r.err, r.err


def test_contract_forward_enriches_the_rest_of_the_batch(cli, tmp_path, monkeypatch):
    src, (theirs, _) = _events(tmp_path)
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 3, "undetected": 57})
        monkeypatch.setenv("VT_API_KEY", "k")
        monkeypatch.setenv("VT_API_URL", vt.url)
        r = cli("forward", str(src), "--to", f"sqlite:///{tmp_path}/s.db", "--enrich", "virustotal")
    assert r.code == 0, r.err
    store = EventStore(str(tmp_path / "s.db"))
    stored = {row.event["data"]["title"]: row.event for row in store.query(limit=None)}
    store.close()
    assert _verdict(stored["theirs"]) == "by-upstream"
    assert _verdict(stored["plain"])["virustotal"]["status"] == "complete"
    assert f"wia-security: {NOTE}" in r.err, r.err
