"""Synthetic page-access traces: the textbook patterns, seeded, as files.

The same patterns as the in-kernel phases (``trace.ops.PATTERNS``): ``seq`` (sequential anon
writes, ``passes`` times over ``pages``), ``rand`` (uniform anon accesses), ``read`` (sequential
``read()`` of file pages) and ``zipf`` (anon, Zipf(alpha) ranks mapped to shuffled pages).
Each event is preceded by ``think_ns`` of think time.
"""
from __future__ import annotations

import numpy as np

from autoballoon.trace.format import AccessTrace, TraceError
from autoballoon.trace.ops import OP_FILE, OP_SYSCALL, OP_WRITE, PATTERNS



def zipf_cdf(n_items: int, alpha: float) -> np.ndarray:
    """The cumulative distribution of a truncated Zipf(alpha) over ranks ``0..n_items-1``
    (P(rank k) proportional to 1/(k+1)^alpha, any alpha > 0, unlike numpy's), ending at 1.
    The phased workload's in-kernel sampler and the generators here both draw from it."""
    cdf = np.cumsum(np.arange(1, n_items + 1, dtype=np.float64) ** -alpha)
    return cdf / cdf[-1]


def zipf_ranks(rng: np.random.Generator, n_items: int, n: int, alpha: float) -> np.ndarray:
    """``n`` draws of a rank in ``[0, n_items)`` from :func:`zipf_cdf`."""
    cdf = zipf_cdf(n_items, alpha)
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), n_items - 1)


def _writes(rng, n: int, write_fraction: float) -> np.ndarray:
    if write_fraction >= 1.0:
        return np.full(n, OP_WRITE, np.uint8)
    return np.where(rng.random(n) < write_fraction, OP_WRITE, 0).astype(np.uint8)


def synth(pattern: str, pages: int, seed: int = 0, accesses: int | None = None,
          passes: int = 1, think_ns: int = 1000, write_fraction: float = 1.0,
          alpha: float = 0.9) -> AccessTrace:
    """A synthetic trace over ``pages`` pages; ``seq``/``read`` make ``passes`` sweeps,
    ``rand``/``zipf`` make ``accesses`` draws (default: ``pages``)."""
    if pattern not in PATTERNS:
        raise TraceError(f"synth: pattern: expected one of {', '.join(PATTERNS)}, got {pattern!r}")
    if pages < 1 or passes < 1 or think_ns < 0 or not 0 <= write_fraction <= 1 or alpha <= 0:
        raise TraceError("synth: expected pages >= 1, passes >= 1, think_ns >= 0, "
                         "0 <= write_fraction <= 1 and alpha > 0")
    rng = np.random.default_rng(seed)
    n = pages if accesses is None else accesses
    if pattern in ("seq", "read"):
        page = np.tile(np.arange(pages, dtype=np.int64), passes)
    elif pattern == "rand":
        page = rng.integers(0, pages, n, dtype=np.int64)
    else:
        # ranks are shuffled onto pages so hot pages are not all adjacent (readahead-neutral)
        page = rng.permutation(pages)[zipf_ranks(rng, pages, n, alpha)].astype(np.int64)
    if pattern == "read":
        op = np.full(len(page), OP_FILE | OP_SYSCALL, np.uint8)
    else:
        op = _writes(rng, len(page), write_fraction)
    gap = np.full(len(page), think_ns, np.int64)
    meta = {"source": "synthetic", "how": f"autoballoon.trace.synth pattern={pattern}",
            "params": {"pattern": pattern, "pages": pages, "seed": seed, "accesses": accesses,
                       "passes": passes, "think_ns": think_ns,
                       "write_fraction": write_fraction, "alpha": alpha},
            "licence": "generated; no restrictions"}
    return AccessTrace(gap, page, op, meta=meta, where=f"synth {pattern}")
