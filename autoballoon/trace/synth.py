"""Synthetic page-access traces: the textbook patterns, seeded, as files.

The same patterns as the in-kernel phases (``trace.ops.PATTERNS``): ``seq`` (sequential anon
writes, ``passes`` times over ``pages``), ``rand`` (uniform anon accesses), ``read`` (sequential
``read()`` of file pages) and ``zipf`` (anon, Zipf(alpha) ranks mapped to shuffled pages).
Each event is preceded by ``think_ns`` of think time.
"""
from __future__ import annotations

import math

import numpy as np

from autoballoon.trace.format import MAX_EVENTS, MAX_GAP_NS, AccessTrace, TraceError
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
    n = pages if accesses is None else accesses
    for name, value, ok, expected in (
            ("pages", pages, _int(pages) and pages >= 1, "an integer >= 1"),
            ("accesses", n, _int(n) and n >= 1, "an integer >= 1"),
            ("passes", passes, _int(passes) and passes >= 1, "an integer >= 1"),
            ("seed", seed, _int(seed) and seed >= 0, "an integer >= 0"),
            ("think_ns", think_ns, _int(think_ns) and 0 <= think_ns < MAX_GAP_NS,
             "a duration in [0, 2^60) ns"),
            ("write_fraction", write_fraction, _real(write_fraction) and 0 <= write_fraction <= 1,
             "a number in [0, 1]"),
            ("alpha", alpha, _real(alpha) and alpha > 0, "a finite number > 0")):
        if not ok:
            raise TraceError(f"synth: {name}: expected {expected}, got {value!r}")
    key, events = ("pages x passes", pages * passes) if pattern in ("seq", "read") else \
        ("accesses", n)
    if events > MAX_EVENTS:
        raise TraceError(f"synth: {key}: {events:,} events (~{17 * events / 2**30:.1f} GiB), "
                         f"expected at most {MAX_EVENTS:,}")
    if pattern == "zipf" and pages > MAX_EVENTS:     # its CDF and page permutation: 16 B/page
        raise TraceError(f"synth: pages: a Zipf law over {pages:,} pages (~"
                         f"{16 * pages / 2**30:.1f} GiB), expected at most {MAX_EVENTS:,}")
    rng = np.random.default_rng(seed)
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


def _int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and math.isfinite(v)
