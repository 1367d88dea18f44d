"""`tls_verify` and `ca_file` mean the same for every connector that speaks TLS, in a URL and in a config file
(`wia-security forward --config`), as for Splunk HEC and SOAR: verification on by default (a server whose
certificate comes from a private CA is refused), the CA trusted with ca_file, any certificate accepted with
tls_verify=false and a warning saying verification is off. The older spellings (elasticsearch-py's verify /
ca_certs, taxii2-client's verify, MISP's and OTX's verify_tls) still work; both spellings of one option at once
are refused naming both. Each connector runs its real client library (elasticsearch-py, opensearch-py,
taxii2-client, pymisp, requests, vt-py, the ssl module) against a real server over TLS: osmem and medallion
behind a TLS-terminating proxy, rsyslog's own TLS listener, the intel and QRadar contract servers on TLS."""
from __future__ import annotations

import logging
import ssl
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "servers"))  # after site-packages, as the intel tests do

from certificates import issue, make_ca, write_certificate, write_key  # noqa: E402
from servers.fault_proxy import FaultProxy  # noqa: E402
from servers.medallion import PASSWORD, USER, WRITABLE  # noqa: E402
from servers.osmem import EsCompatNode, osmem, osmem_base  # noqa: E402,F401  (fixtures)
from servers.qradar_contract import qradar_api  # noqa: E402,F401  (fixture)
from servers.rsyslog import rsyslog  # noqa: E402,F401  (fixture)

from wia_security.builders import AlertBuilder, ThreatIntelBuilder  # noqa: E402
from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.config import parse_config  # noqa: E402
from wia_security.connectors.delivery import DeliveryPolicy  # noqa: E402
from wia_security.errors import ConfigError, DeliveryError  # noqa: E402

ONCE = DeliveryPolicy(max_wait=0, max_attempts=1, initial_backoff=0.01, max_elapsed=30)
OFF = "TLS certificate verification is OFF"
IGNORED = "tls_verify=false is ignored because ca_file is given"
KEY = "tls-option-names-key-0123456789"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Any]:
    """A server certificate for 127.0.0.1 from a private CA: its files, that CA's PEM, another CA's PEM and
    a file that holds no certificate."""
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca("wia-security private CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(folder / "ca.pem", ca[1])
    write_certificate(folder / "other-ca.pem", make_ca("some other CA")[1])
    write_certificate(folder / "cert.pem", cert)
    write_key(folder / "key.pem", key)
    (folder / "not-a-ca.pem").write_text("this is not a certificate\n")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return {"context": context, "cert": str(folder / "cert.pem"), "key": str(folder / "key.pem"),
            "ca": str(folder / "ca.pem"), "other_ca": str(folder / "other-ca.pem"),
            "not_ca": str(folder / "not-a-ca.pem")}


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def alert() -> dict[str, Any]:
    return AlertBuilder().title("tls option names").indicator("domain", "malware.example.com").build().to_dict()


def intel() -> dict[str, Any]:
    return ThreatIntelBuilder().threat("TLS names", "campaign").indicator("domain", "c2.example.net").build().to_dict()


def delivered(sink: Any, event: dict[str, Any]) -> int:
    """Events delivered by one send through `sink`; a sink that cannot be opened raises."""
    with sink:
        report = sink.send([event])
        report = report.merge(sink.flush())
    return report.delivered


def config_sink(tmp_path: Path, url: str, extra: str = "", **python_options: Any) -> Any:
    """The sink of a TOML config file with one destination (`extra`: its other keys, TOML lines), opened as
    `wia-security forward --config` opens it; `python_options`: options TOML cannot hold (a node class)."""
    import tomllib
    text = f'[delivery]\nmax_wait = 0\nmax_attempts = 1\ninitial_backoff = 0.01\n\n[destinations.d]\nurl = "{url}"\n{extra}'
    (tmp_path / "wia.toml").write_text(text)
    config = parse_config(tomllib.loads(text), source=str(tmp_path / "wia.toml"))
    config.destinations[0].options.update(python_options)
    return config.destinations[0].open()


# --- the connectors: a server on TLS, and how to reach it -------------------------------------------------
@pytest.fixture
def elastic(osmem, pki) -> Iterator[str]:
    """osmem behind a proxy answering on TLS with the private CA's certificate: its https:// URL."""
    with FaultProxy(osmem, certfile=pki["cert"], keyfile=pki["key"]) as proxy:
        yield proxy.url


@pytest.fixture
def taxii(medallion, pki) -> Iterator[str]:
    """medallion's writable collection behind a TLS proxy: its https:// URL."""
    with FaultProxy(medallion.url, certfile=pki["cert"], keyfile=pki["key"]) as proxy:
        yield f"{proxy.url}/api1/collections/{WRITABLE}/"


def elastic_url(base: str, flavor: str, query: str) -> str:
    dialect = "&mapping_dialect=opensearch" if flavor == "elasticsearch" else ""       # osmem's type names
    return f"{flavor}+{base}?index=wia-tls{dialect}&{query}".rstrip("&")


ES_NODE = {"client_options": {"node_class": EsCompatNode}}      # elasticsearch-py against osmem (DESIGN.md)


def elastic_sink_from_url(base: str, flavor: str, query: str) -> Any:
    return open_sink(elastic_url(base, flavor, query), delivery=ONCE, **(ES_NODE if flavor == "elasticsearch" else {}))


# --- Elasticsearch / OpenSearch -----------------------------------------------------------------------------
@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_contract_elastic_url_takes_tls_verify_and_ca_file(elastic, pki, caplog, flavor):
    assert delivered(elastic_sink_from_url(elastic, flavor, ""), alert()) == 0             # private CA: refused
    assert not any(OFF in w for w in warnings(caplog))
    assert delivered(elastic_sink_from_url(elastic, flavor, f"ca_file={pki['ca']}"), alert()) == 1
    caplog.clear()
    assert delivered(elastic_sink_from_url(elastic, flavor, "tls_verify=false"), alert()) == 1
    assert any(OFF in w and "tls_verify=false" in w for w in warnings(caplog))
    caplog.clear()
    sink = elastic_sink_from_url(elastic, flavor, f"tls_verify=false&ca_file={pki['other_ca']}")
    assert delivered(sink, alert()) == 0                                      # verified against the CA file
    assert any(IGNORED in w for w in warnings(caplog)) and not any(OFF in w for w in warnings(caplog))
    # the older spellings still work
    assert delivered(elastic_sink_from_url(elastic, flavor, f"ca_certs={pki['ca']}"), alert()) == 1
    assert delivered(elastic_sink_from_url(elastic, flavor, "verify=false"), alert()) == 1


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_contract_elastic_config_file_takes_tls_verify_and_ca_file(elastic, pki, caplog, tmp_path, flavor):
    node = ES_NODE if flavor == "elasticsearch" else {}
    url = elastic_url(elastic, flavor, "")
    assert delivered(config_sink(tmp_path, url, **node), alert()) == 0
    assert delivered(config_sink(tmp_path, url, f'ca_file = "{pki["ca"]}"\n', **node), alert()) == 1
    caplog.clear()
    assert delivered(config_sink(tmp_path, url, "tls_verify = false\n", **node), alert()) == 1
    assert any(OFF in w for w in warnings(caplog))
    assert delivered(config_sink(tmp_path, url, f'ca_certs = "{pki["ca"]}"\n', **node), alert()) == 1


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_elastic_refuses_both_spellings_and_a_ca_file_without_a_certificate(pki, tmp_path, flavor):
    url = f"{flavor}+https://127.0.0.1:9200"
    with pytest.raises(ConfigError, match="tls_verify and verify are two spellings") as raised:
        open_sink(f"{url}?tls_verify=false&verify=false")
    assert raised.value.key == "verify"
    with pytest.raises(ConfigError, match="ca_file and ca_certs are two spellings") as raised:
        config_sink(tmp_path, f"{url}?ca_certs={pki['ca']}", f'ca_file = "{pki["ca"]}"\n')
    assert raised.value.key == "destinations.d.ca_certs"
    with pytest.raises(ConfigError, match="no CA certificate that can be read") as raised:
        config_sink(tmp_path, url, f'ca_file = "{pki["not_ca"]}"\n')
    assert raised.value.key == "destinations.d.ca_file"


@pytest.mark.parametrize("url", ["elasticsearch+https://127.0.0.1:9200", "qradar+tls://127.0.0.1:6514"])
def test_an_unknown_option_names_the_known_ones_in_a_url_and_a_config_file(tmp_path, url):
    with pytest.raises(ConfigError) as raised:
        open_sink(f"{url}?tls_verfy=false")
    assert raised.value.key == "tls_verfy"
    assert "known:" in str(raised.value) and "tls_verify, ca_file" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        config_sink(tmp_path, url, "tls_verfy = false\n")
    assert raised.value.key == "destinations.d.tls_verfy"
    assert "known:" in str(raised.value) and "tls_verify, ca_file" in str(raised.value)


# --- QRadar: syslog over TLS (rsyslog) and the offenses REST client -------------------------------------------
def syslog_url(rsyslog, query: str = "") -> str:
    return f"qradar+tls://localhost:{rsyslog.tls}" + (f"?{query}" if query else "")


def test_contract_qradar_syslog_url_and_config_take_tls_verify_and_ca_file(rsyslog, pki, caplog, tmp_path):
    assert delivered(open_sink(syslog_url(rsyslog), delivery=ONCE), alert()) == 0            # rsyslog's own CA
    assert delivered(open_sink(syslog_url(rsyslog, f"ca_file={rsyslog.ca}"), delivery=ONCE), alert()) == 1
    caplog.clear()
    assert delivered(open_sink(syslog_url(rsyslog, "tls_verify=false"), delivery=ONCE), alert()) == 1
    assert any(OFF in w for w in warnings(caplog))
    caplog.clear()
    sink = open_sink(syslog_url(rsyslog, f"tls_verify=false&ca_file={pki['other_ca']}"), delivery=ONCE)
    assert delivered(sink, alert()) == 0
    assert any(IGNORED in w for w in warnings(caplog)) and not any(OFF in w for w in warnings(caplog))
    url = syslog_url(rsyslog)
    assert delivered(config_sink(tmp_path, url, f'ca_file = "{rsyslog.ca}"\n'), alert()) == 1
    assert delivered(config_sink(tmp_path, url, "tls_verify = false\n"), alert()) == 1
    assert delivered(config_sink(tmp_path, url, f'ca_certs = "{rsyslog.ca}"\n'), alert()) == 1   # older spelling
    with pytest.raises(ConfigError, match="ca_file and ca_certs are two spellings") as raised:
        config_sink(tmp_path, f"{url}?ca_certs={rsyslog.ca}", f'ca_file = "{rsyslog.ca}"\n')
    assert raised.value.key == "destinations.d.ca_certs"
    with pytest.raises(ConfigError, match="no CA certificate") as raised:
        open_sink(syslog_url(rsyslog, f"ca_file={pki['not_ca']}"))
    assert raised.value.key == "ca_file"
    with pytest.raises(ConfigError, match="known:.*tls_verify, ca_file") as raised:
        open_sink(syslog_url(rsyslog, "ca_flie=x"))


def test_contract_qradar_offenses_client_takes_tls_verify_and_ca_file(qradar_api, pki, caplog):
    from wia_security.connectors.qradar import QRadarClient
    server = qradar_api.server
    server.socket = pki["context"].wrap_socket(server.socket, server_side=True)
    url = qradar_api.url.replace("http://", "https://")

    def first(**tls: Any) -> dict[str, Any]:
        return next(QRadarClient(url, token=qradar_api.token, **tls).offenses(page_size=5))

    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        first()
    assert first(ca_file=pki["ca"])["id"] == 1
    caplog.clear()
    assert first(tls_verify=False)["id"] == 1
    assert any(OFF in w and "tls_verify=false" in w for w in warnings(caplog))
    assert first(verify=pki["ca"])["id"] == 1                                     # the older spelling
    with pytest.raises(ConfigError, match="tls_verify and verify are two spellings"):
        first(tls_verify=False, verify=False)
    with pytest.raises(ConfigError, match="no CA certificate") as raised:
        first(ca_file=pki["not_ca"])
    assert raised.value.key == "ca_file"


# --- TAXII: the sink (Add Objects) and the source (Get Objects), medallion behind TLS ---------------------------
def taxii_sink_url(collection: str, query: str = "") -> str:
    return f"taxii+{collection}?user={USER}&password_env=WIA_TLS_TAXII_PASSWORD" + (f"&{query}" if query else "")


def test_contract_taxii_sink_url_and_config_take_tls_verify_and_ca_file(taxii, pki, caplog, tmp_path, monkeypatch):
    monkeypatch.setenv("WIA_TLS_TAXII_PASSWORD", PASSWORD)
    # set in many containers: requests let it replace the CA file given to taxii2-client's session
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki["other_ca"])
    with pytest.raises(ConfigError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        open_sink(taxii_sink_url(taxii), delivery=ONCE)            # the API root is read when the sink opens
    assert delivered(open_sink(taxii_sink_url(taxii, f"ca_file={pki['ca']}"), delivery=ONCE), intel()) == 1
    caplog.clear()
    assert delivered(open_sink(taxii_sink_url(taxii, "tls_verify=false"), delivery=ONCE), intel()) == 1
    assert any(OFF in w for w in warnings(caplog))
    caplog.clear()
    with pytest.raises(ConfigError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        open_sink(taxii_sink_url(taxii, f"tls_verify=false&ca_file={pki['other_ca']}"), delivery=ONCE)
    assert any(IGNORED in w for w in warnings(caplog)) and not any(OFF in w for w in warnings(caplog))
    assert delivered(open_sink(taxii_sink_url(taxii, f"verify={pki['ca']}"), delivery=ONCE), intel()) == 1
    url = f"taxii+{taxii}"
    auth = f'user = "{USER}"\npassword_env = "WIA_TLS_TAXII_PASSWORD"\n'
    assert delivered(config_sink(tmp_path, url, auth + f'ca_file = "{pki["ca"]}"\n'), intel()) == 1
    assert delivered(config_sink(tmp_path, url, auth + "tls_verify = false\n"), intel()) == 1
    assert delivered(config_sink(tmp_path, url, auth + "verify = false\n"), intel()) == 1
    with pytest.raises(ConfigError, match="tls_verify and verify are two spellings") as raised:
        config_sink(tmp_path, url + "?verify=false", auth + "tls_verify = false\n")
    assert raised.value.key == "destinations.d.verify"
    with pytest.raises(ConfigError, match="no CA certificate") as raised:
        config_sink(tmp_path, url, auth + f'ca_file = "{pki["not_ca"]}"\n')
    assert raised.value.key == "destinations.d.ca_file"


def test_contract_taxii_source_url_takes_tls_verify_and_ca_file(taxii, pki, caplog, monkeypatch):
    from wia_security.connectors.taxii import Checkpoint, TaxiiSource
    monkeypatch.setenv("WIA_TLS_TAXII_PASSWORD", PASSWORD)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki["other_ca"])

    def objects(query: str) -> int:
        """Objects read from the (empty) collection: 0, once the pages were read."""
        return sum(page.objects for page in TaxiiSource.from_url(taxii_sink_url(taxii, query)).poll(Checkpoint()))

    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        objects("")
    assert objects(f"ca_file={pki['ca']}") == 0
    caplog.clear()
    assert objects("tls_verify=false") == 0
    assert any(OFF in w for w in warnings(caplog))
    with pytest.raises(ConfigError, match="tls_verify and verify are two spellings"):
        objects("tls_verify=true&verify=true")


# --- MISP: the sink (URL and config file) and the source -------------------------------------------------------
@pytest.fixture
def misp(pki) -> Iterator[Any]:
    from misp_contract import MispServer
    server = MispServer(key=KEY)
    server.httpd.socket = pki["context"].wrap_socket(server.httpd.socket, server_side=True)
    server.url = server.url.replace("http://", "https://")
    with server:
        yield server


def test_contract_misp_sink_url_and_config_take_tls_verify_and_ca_file(misp, pki, caplog, tmp_path, monkeypatch):
    monkeypatch.setenv("WIA_TLS_MISP_KEY", KEY)
    url = f"misp+{misp.url}"
    with pytest.raises(ConfigError, match="cannot connect to MISP"):
        open_sink(url, key=KEY)
    assert delivered(open_sink(f"{url}?ca_file={pki['ca']}", key=KEY, delivery=ONCE), intel()) == 1
    caplog.clear()
    assert delivered(open_sink(f"{url}?tls_verify=false", key=KEY, delivery=ONCE), intel()) == 1
    assert any(OFF in w and "tls_verify=false" in w for w in warnings(caplog))
    caplog.clear()
    with pytest.raises(ConfigError, match="cannot connect to MISP"):
        open_sink(f"{url}?tls_verify=false&ca_file={pki['other_ca']}", key=KEY)
    assert any(IGNORED in w for w in warnings(caplog)) and not any(OFF in w for w in warnings(caplog))
    key = 'key_env = "WIA_TLS_MISP_KEY"\n'
    assert delivered(config_sink(tmp_path, url, key + f'ca_file = "{pki["ca"]}"\n'), intel()) == 1
    assert delivered(config_sink(tmp_path, url, key + "tls_verify = false\n"), intel()) == 1
    assert delivered(config_sink(tmp_path, url, key + f'verify_tls = "{pki["ca"]}"\n'), intel()) == 1   # older
    assert delivered(config_sink(tmp_path, url + "?verify=false", key), intel()) == 1                   # older
    with pytest.raises(ConfigError, match="tls_verify and verify_tls are two spellings") as raised:
        config_sink(tmp_path, url, key + "tls_verify = false\nverify_tls = false\n")
    assert raised.value.key == "destinations.d.verify_tls"
    with pytest.raises(ConfigError, match="tls_verify and verify are two spellings"):
        config_sink(tmp_path, url + "?verify=false", key + "tls_verify = false\n")
    with pytest.raises(ConfigError, match="no CA certificate") as raised:
        config_sink(tmp_path, url, key + f'ca_file = "{pki["not_ca"]}"\n')
    assert raised.value.key == "destinations.d.ca_file"


def test_contract_misp_source_takes_tls_verify_and_ca_file(misp, pki, caplog):
    from wia_security.connectors.intel.misp import MispSource
    with pytest.raises(ConfigError, match="cannot connect to MISP"):
        MispSource(misp.url, KEY)
    assert list(MispSource(misp.url, KEY, ca_file=pki["ca"]).events()) == []
    caplog.clear()
    assert list(MispSource(misp.url, KEY, tls_verify=False).events()) == []
    assert any(OFF in w for w in warnings(caplog))
    with pytest.raises(ConfigError, match="ca_file and verify_tls are two spellings"):
        MispSource(misp.url, KEY, ca_file=pki["ca"], verify_tls=pki["ca"])


# --- OTX and VirusTotal (Python options) ---------------------------------------------------------------------
def test_contract_otx_takes_tls_verify_and_ca_file(pki, caplog):
    from otx_contract import OtxServer
    from wia_security.connectors.intel.otx import OtxSource
    server = OtxServer(api_key=KEY)
    server.httpd.socket = pki["context"].wrap_socket(server.httpd.socket, server_side=True)
    base = server.url.replace("http://", "https://")
    with server:
        with pytest.raises(DeliveryError, match="TLS certificate verification failed.*ca_file"):
            list(OtxSource(KEY, base_url=base, sleep=lambda s: None).poll())
        assert list(OtxSource(KEY, base_url=base, ca_file=pki["ca"]).poll()) == []
        caplog.clear()
        assert list(OtxSource(KEY, base_url=base, tls_verify=False).poll()) == []
        assert any(OFF in w and "tls_verify=false" in w for w in warnings(caplog))
        with pytest.raises(ConfigError, match="tls_verify and verify_tls are two spellings"):
            OtxSource(KEY, base_url=base, tls_verify=False, verify_tls=False)
        with pytest.raises(ConfigError, match="no CA certificate"):
            OtxSource(KEY, base_url=base, ca_file=pki["not_ca"])


def looked_up(enricher: Any) -> list[str]:
    try:
        event = enricher.enrich(alert())
    finally:
        enricher.close()
    return [i["value"] for i in event["meta"]["custom"]["enrichment"]["virustotal"]["indicators"]]


def test_contract_virustotal_takes_tls_verify_and_ca_file(pki, caplog):
    from vt_contract import VirusTotalServer
    from wia_security.connectors.intel.virustotal import CircuitBreaker, VirusTotalEnricher
    server = VirusTotalServer(api_key=KEY)
    server.httpd.socket = pki["context"].wrap_socket(server.httpd.socket, server_side=True)
    host = server.url.replace("http://", "https://")
    with server:
        server.add("domains", "malware.example.com", reputation=-30, last_analysis_stats={"malicious": 7})

        def enricher(**tls: Any) -> Any:
            return VirusTotalEnricher(KEY, host=host, breaker=CircuitBreaker(threshold=100), **tls)

        assert looked_up(enricher()) == []                                   # refused: nothing looked up
        assert looked_up(enricher(ca_file=pki["ca"])) == ["malware.example.com"]
        assert looked_up(enricher(ca_file=pki["other_ca"])) == []
        caplog.clear()
        assert looked_up(enricher(tls_verify=False)) == ["malware.example.com"]
        assert any(OFF in w and "tls_verify=false" in w for w in warnings(caplog))
        with pytest.raises(ConfigError, match="tls_verify and verify_tls are two spellings"):
            enricher(tls_verify=False, verify_tls=False)


# --- one config file, several destinations, one spelling -------------------------------------------------------
def test_contract_one_config_file_spells_tls_alike_for_every_destination(elastic, rsyslog, misp, pki, tmp_path,
                                                                        monkeypatch):
    """The engineer's case: one file, the same two keys under each destination."""
    from wia_security.connectors.config import load_config
    monkeypatch.setenv("WIA_TLS_MISP_KEY", KEY)
    text = (f'[delivery]\nmax_wait = 0\nmax_attempts = 1\n\n'
            f'[destinations.search]\nurl = "opensearch+{elastic}?index=wia-tls"\nca_file = "{pki["ca"]}"\n\n'
            f'[destinations.siem]\nurl = "qradar+tls://localhost:{rsyslog.tls}"\nca_file = "{rsyslog.ca}"\n\n'
            f'[destinations.intel]\nurl = "misp+{misp.url}"\nkey_env = "WIA_TLS_MISP_KEY"\ntls_verify = true\n'
            f'ca_file = "{pki["ca"]}"\n')
    (tmp_path / "wia.toml").write_text(text)
    fanout = load_config(str(tmp_path / "wia.toml")).open()
    with fanout:
        report = fanout.send([intel()])
        report = report.merge(fanout.flush())
    assert not report.failed and {name: stats.delivered for name, stats in fanout.stats.items()} == {
        "search": 1, "siem": 1, "intel": 1}
