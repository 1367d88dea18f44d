"""Free loopback ports for servers the tests start as child processes, which cannot be handed port 0."""
from __future__ import annotations

import random
import socket
from pathlib import Path

_FIRST = 10000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152                                    # IANA's dynamic range, where BSD and macOS start


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free now, drawn at random below the kernel's ephemeral range. A port bind(0) hands out
    comes from that range, where every outgoing connection of the other test workers also takes its local
    port: one could take it between this pick and the child's bind, and the server would not start."""
    high = _ephemeral_low() - 1
    for _ in range(200):
        port = random.randint(_FIRST, high) if high > _FIRST else 0
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue                                # in use, or in TIME_WAIT: draw again
            return probe.getsockname()[1]
    raise RuntimeError(f"no free loopback port found between {_FIRST} and {high}")
