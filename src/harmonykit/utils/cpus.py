"""How many processes a ``--workers N`` option should really start."""

from __future__ import annotations

import logging
import os

__all__ = ["available_cpus", "cap_workers"]

log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def cap_workers(requested: int, option: str = "--workers") -> int:
    """``requested`` worker processes, capped at :func:`available_cpus` with a logged note
    (more processes than cores only add start-up time and memory). ``0`` and negative
    values are returned as they are (the caller validates them).

    >>> cap_workers(1)
    1
    """
    n = available_cpus()
    if requested > n:
        log.warning("note: %s %d is more than the %d CPU core(s) available; using %d", option, requested, n, n)
        return n
    return requested
