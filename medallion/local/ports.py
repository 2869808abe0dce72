"""Free TCP ports on loopback for the throwaway servers medallion starts (databases, Spark)."""

from __future__ import annotations

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that nothing listens on right now (the OS picks
    them). Every probe socket stays bound until all are, so the OS cannot hand out a port twice,
    as it may to probes opened and closed one after another."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in probes:
            probe.bind((LOOPBACK, 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def free_port() -> int:
    """One free TCP port on 127.0.0.1."""
    return free_ports(1)[0]
