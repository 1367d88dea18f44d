"""A VirusTotal quota that stays exhausted (a daily quota spent: docs.virustotal.com/reference/errors says
QuotaExceededError covers minute, daily and monthly quotas): each backoff that ends still over quota doubles,
up to QUOTA_MAX_BLOCK, instead of every batch sleeping in the budget and asking again. vt-py against the
VirusTotal contract server (quota 0 per minute: every lookup is refused); the enricher's clock and sleep are
simulated, so an hour of one event a second runs in seconds."""
from __future__ import annotations

from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.connectors.intel.virustotal import QUOTA_MAX_BLOCK, VirusTotalEnricher

KEY = "vt-test-key"


def _event(n: int) -> dict:
    return AlertBuilder().title("x").indicator("ip", f"8.8.{n // 250 % 250}.{n % 250 + 1}").build().to_dict()


def test_an_hour_of_spent_quota_costs_few_requests_and_little_sleep():
    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with VirusTotalServer(api_key=KEY, quota_per_minute=0) as server:
        enricher = VirusTotalEnricher(KEY, host=server.url, clock=lambda: now[0], sleep=sleep)
        try:
            n, statuses = 0, set()
            while now[0] < 3600:                      # one event a second for an hour
                [out] = enricher.enrich_all([_event(n)])
                statuses.add(out["meta"]["custom"]["enrichment"]["virustotal"]["status"])
                n += 1
                now[0] += 1.0
        finally:
            enricher.close()
        asked = len(server.calls())
    # measured before: 1,179 requests and 1,468 s of the hour asleep inside enrich_all (delivery waiting)
    assert asked <= 12 and sum(slept) <= 10
    assert statuses == {"partial"} and enricher.quota_blocks >= 5
    assert enricher.quota_blocked_until - now[0] <= QUOTA_MAX_BLOCK


def test_a_lookup_that_succeeds_again_ends_the_escalation():
    now = [0.0]
    with VirusTotalServer(api_key=KEY, quota_per_minute=0) as server:
        server.add("ip_addresses", "8.8.0.1", last_analysis_stats={"malicious": 0, "harmless": 88})
        enricher = VirusTotalEnricher(KEY, host=server.url, clock=lambda: now[0], sleep=lambda s: None)
        try:
            for _ in range(3):                      # three blocks in a row
                enricher.enrich_all([_event(1)])
                now[0] = enricher.quota_blocked_until
            assert enricher.quota_blocks == 3
            server.quota_per_minute = None          # the quota is back (a new day)
            [out] = enricher.enrich_all([_event(0)])
        finally:
            enricher.close()
    assert out["meta"]["custom"]["enrichment"]["virustotal"]["status"] == "complete"
    assert enricher.quota_blocks == 0
