"""CPU thread policy: never more busy compute threads than the cores this process may use."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


@functools.cache
def available_cpus() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota when one is set.

    Read once per process, so encode calls do no file I/O for it.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(count, quota)) if quota else max(1, count)


def _cgroup_quota() -> int | None:
    cpu_max = Path("/sys/fs/cgroup/cpu.max")
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, int(int(quota) // int(period)))


def limit_cpu_threads() -> int:
    """Cap torch's intra-op threads at the available cores (a user's lower setting is kept)."""
    cores = available_cpus()
    if torch.get_num_threads() > cores:
        logger.info("Lowering torch intra-op threads from %d to the %d available cores", torch.get_num_threads(), cores)
        torch.set_num_threads(cores)
    return torch.get_num_threads()
