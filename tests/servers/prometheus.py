"""A real Prometheus (Debian's package, scripts/test-setup.d/30-prometheus.sh) scraping targets on loopback.

`start_prometheus` writes a config with one scrape job per target (every second, a bearer token read
from a file through `authorization: {credentials_file: ...}`), checks it with `promtool check config`,
runs `prometheus` on a free 127.0.0.1 port with its TSDB in a temporary directory, and waits for
`/-/ready`. `stop` ends it by PID. The helpers read the HTTP API: `/api/v1/targets` and `/api/v1/query`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from .ports import free_port  # noqa: F401 - re-exported for the tests that import it from here
from .processes import stop_process

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
MISSING = "run scripts/test-setup.d/30-prometheus.sh (installs Debian's prometheus and promtool)"


def require_prometheus() -> None:
    """Fail (never skip: `make test` runs with WIA_NO_SKIPS=1) when the binaries are not installed."""
    for binary in (PROMETHEUS, PROMTOOL):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is not installed: {MISSING}")


@dataclass
class ScrapeJob:
    name: str
    target: str                 # host:port
    token: str
    metrics_path: str = "/metrics"


@dataclass
class Prometheus:
    dir: Path
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return (self.dir / "prometheus.out").read_text("utf-8", "replace")

    def api(self, path: str, **params: str) -> Any:
        r = requests.get(self.url + path, params=params, timeout=5)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (r.status_code, body)
        return body["data"]

    def targets(self) -> dict[str, dict]:
        """The active targets by job name (one target per job here)."""
        return {t["labels"]["job"]: t for t in self.api("/api/v1/targets", state="active")["activeTargets"]}

    def wait_for_target(self, job: str, after: float, timeout: float = 10.0) -> dict:
        """The job's target once a scrape that started after `after` (Unix time) has been reported."""
        deadline = time.monotonic() + timeout
        while True:
            target = self.targets().get(job)
            if target and target["lastScrape"] and _rfc3339(target["lastScrape"]) > after:
                return target
            if time.monotonic() > deadline:
                raise AssertionError(f"no scrape of {job} after {after} within {timeout}s: {target}\n{self.log()}")
            time.sleep(0.05)

    def query(self, promql: str) -> list[dict]:
        """An instant query's result vector: [{"metric": {labels}, "value": [time, "text"]}, ...]."""
        data = self.api("/api/v1/query", query=promql)
        assert data["resultType"] == "vector", data
        return data["result"]

    def samples_after(self, selector: str, after: float, timeout: float = 10.0) -> list[dict]:
        """Every series of `selector` with its newest raw sample, once all of them have a sample scraped after
        `after` (a scrape's timestamp is when it began, so such a sample saw everything done before `after`).

        Returns [{"metric": {labels}, "value": float}]. Waits on sample timestamps rather than on the target's
        lastScrape, which Prometheus reports a moment before the scrape's samples are committed."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.api("/api/v1/query", query=f"{selector}[1m]")
            assert data["resultType"] == "matrix", data
            series = data["result"]
            if series and all(s["values"][-1][0] > after for s in series):
                return [{"metric": s["metric"], "value": float(s["values"][-1][1])} for s in series]
            if time.monotonic() > deadline:
                raise AssertionError(f"no sample of {selector} after {after} within {timeout}s: "
                                     f"{json.dumps(series)[:2000]}\n{self.log()}")
            time.sleep(0.05)


def _rfc3339(text: str) -> float:
    """Prometheus' lastScrape ("2026-12-05T09:40:01.123456789Z", nanoseconds) as Unix time."""
    main, _, fraction = text.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(main + "+00:00").timestamp()
    return whole + (float("0." + fraction) if fraction else 0.0)


def write_config(directory: Path, jobs: list[ScrapeJob]) -> Path:
    """The config (JSON is YAML) with one job per target; each token in its own file, mode 0600."""
    scrape_configs = []
    for job in jobs:
        token_file = directory / f"{job.name}.token"
        token_file.write_text(job.token)
        token_file.chmod(0o600)
        scrape_configs.append({
            "job_name": job.name, "metrics_path": job.metrics_path, "scheme": "http",
            "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
            "static_configs": [{"targets": [job.target]}],
        })
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
              "scrape_configs": scrape_configs}
    path = directory / "prometheus.yml"
    path.write_text(json.dumps(config, indent=1))
    return path


def start_prometheus(directory: Path, jobs: list[ScrapeJob], timeout: float = 15.0) -> Prometheus:
    require_prometheus()
    config = write_config(directory, jobs)
    check = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    log = open(directory / "prometheus.out", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()                                      # the child has its own copy of the descriptor
    server = Prometheus(directory, port, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited with {process.returncode}:\n{server.log()}")
        try:
            if requests.get(server.url + "/-/ready", timeout=1).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            stop(server)
            raise AssertionError(f"prometheus was not ready within {timeout}s:\n{server.log()}")
        time.sleep(0.05)


def stop(server: Prometheus) -> None:
    stop_process(server.process)


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess:
    """`promtool check metrics` on an exposition body (stdin); exit 0 only with neither errors nor lint problems."""
    require_prometheus()
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
