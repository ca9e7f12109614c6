"""Core affinity for the benchmark scripts (imported by them; not a benchmark itself)."""

from __future__ import annotations

import os


def set_threads(n: int) -> int:
    """Restrict this process to ``n`` of its cores (before JAX starts: XLA sizes its pool by the affinity);
    ``n <= 0`` keeps every core it may use. Returns the number of cores it now has."""
    cores = sorted(os.sched_getaffinity(0))
    n = len(cores) if n <= 0 else min(n, len(cores))
    if n < len(cores):
        os.sched_setaffinity(0, cores[:n])
    return n
