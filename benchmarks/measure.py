"""What the off-chain benches share (nothing here is a test): random parties, and the CPU time spent by
this process and the workers of a process pool."""
from __future__ import annotations

import os
import time
from collections.abc import Sequence

from medledger import crypto


def random_party() -> tuple[str, bytes]:
    """(address, compressed public key) of a fresh random key."""
    public = crypto.public_key_of(os.urandom(32))
    return crypto.address_of_public_key(public), crypto.compress_public_key(public)


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) of this process and of the processes `pids`."""
    import psutil  # a dependency of eth-brownie

    total = time.process_time()
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total
