"""Peak memory of a MISP attribute pull: `MispSource.attributes()` over a synthetic feed of N attributes.

The feed is served by the MISP contract server (tests/servers/misp_contract.py) in its own process, with
/attributes/restSearch pages made on the fly (attribute i belongs to event i // 50), so only the client's
allocations are traced (tracemalloc peak, Python objects). The client is the real pymisp. The events are
consumed and dropped, as a sink that delivers them would.

    .venv/bin/python benchmarks/bench_misp_attributes_memory.py [N] [PAGE_SIZE]
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(os.path.dirname(HERE), "tests", "servers")
KEY = "misp-bench-key"
PER_EVENT = 50

SERVER = f"""
import sys, time
sys.path.append({SERVERS!r})
from misp_contract import MispServer

TOTAL = int(sys.argv[1])

class FeedServer(MispServer):
    def _rest_search(self, controller, req):
        if controller != "attributes":
            return super()._rest_search(controller, req)
        q = req.body
        limit, page = int(q["limit"]), int(q["page"])
        out = []
        for i in range((page - 1) * limit, min(page * limit, TOTAL)):
            ev = i // {PER_EVENT}
            out.append({{"id": str(i + 1), "uuid": f"00000000-0000-4000-8000-{{i:012d}}", "event_id": str(ev + 1),
                        "type": "domain", "category": "Network activity", "to_ids": True,
                        "value": f"host{{i}}.example.net", "timestamp": str(1767225600 + i % 86400),
                        "comment": "synthetic", "deleted": False,
                        "Event": {{"id": str(ev + 1), "uuid": f"11111111-0000-4000-8000-{{ev:012d}}",
                                  "info": f"Feed event {{ev}}", "orgc_id": "1", "org_id": "1", "distribution": "1"}},
                        "Tag": [{{"name": "tlp:green"}}]}})
        return 200, {{"response": {{"Attribute": out}}}}, {{}}

server = FeedServer(key={KEY!r}).start()
print(server.url, flush=True)
sys.stdin.read()
"""


def measure(total: int, page_size: int) -> tuple[int, int, float]:
    """(events, peak traced bytes, seconds) of one pull of `total` attributes."""
    from wia_security.connectors.intel.misp import MispSource

    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(total)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        url = proc.stdout.readline().strip()
        source = MispSource(url, KEY, page_size=page_size)
        tracemalloc.start()
        started = time.monotonic()
        events = sum(1 for _ in source.attributes())
        took = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return events, peak, took
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


if __name__ == "__main__":
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    page_size = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    events, peak, took = measure(total, page_size)
    print(f"{total:,} attributes, page size {page_size}: {events:,} events, peak traced memory "
          f"{peak / 2**20:,.1f} MiB, {took:,.0f} s")
