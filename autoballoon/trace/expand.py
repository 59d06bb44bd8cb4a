"""Expansion of a demand envelope into page accesses: the locality model "hot set + Zipf" (v1).

The workload's anonymous pages are numbered by hotness (page 0 hottest). In envelope sample
``i`` (a window of ``d_i`` ns) the working set is pages ``[0, W_i)`` with
``W_i = round(wss_bytes_i * scale / 4096)``; so the hot set is the part every window shares,
and a growing envelope adds colder pages on top.

- Every page of the working set is accessed once in the window, so the distinct pages touched
  in window ``i`` are exactly ``W_i``: the expansion's working set matches its envelope to
  within one page (the rounding) per window.
- ``reuse * W_i`` further accesses are drawn from a truncated Zipf(``alpha``) law over the
  working set's ranks, so a few hot pages take most re-references (alpha 0.9 ~ 30 % of
  re-references land on the hottest 1 % of a 64k-page set).
- The window's accesses come in a seeded random order, evenly spaced over the window.
- An access writes with probability ``write_fraction``.
- When the envelope shrinks and ``free_on_shrink`` is true, pages ``[W_i, W_{i-1})`` are freed
  (``OP_FREE``) at the start of window ``i`` — a VM's "memory used" fell; otherwise they stay
  allocated but cold, for reclaim to find.
Only ``wss_bytes`` drives the model; ``rss_bytes``/``cache_bytes`` are carried in the metadata.
"""
from __future__ import annotations

import math

import numpy as np

from autoballoon.trace.format import MAX_EVENTS, PAGE_SIZE, AccessTrace, Envelope, TraceError
from autoballoon.trace.ops import OP_FREE, OP_WRITE
from autoballoon.trace.synth import zipf_ranks

MODEL = "hot-set+zipf v1"
DEFAULTS = {"scale": 1.0, "reuse": 1.0, "alpha": 0.9, "write_fraction": 0.5,
            "free_on_shrink": True, "max_events": 20_000_000}


def window_pages(envelope: Envelope, scale: float) -> np.ndarray:
    """Working-set size of each sample in pages, as the expansion uses it."""
    return np.rint(envelope.wss_bytes * float(scale) / PAGE_SIZE).astype(np.int64)


def expand(envelope: Envelope, seed: int, **params) -> AccessTrace:
    """Turn ``envelope`` into a page-access trace (model in the module docstring). Parameters:
    ``scale`` (multiplies sizes; e.g. 1/16 to shrink a VM), ``reuse``, ``alpha``,
    ``write_fraction``, ``free_on_shrink``, ``max_events`` (refuse to build bigger traces)."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TraceError(f"expand: unknown parameter(s) {', '.join(sorted(unknown))}; "
                         f"expected some of {', '.join(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    number = (int, float, np.integer, np.floating)
    for name, ok, expected in (
            ("scale", lambda v: v > 0, "a number > 0"),
            ("reuse", lambda v: v >= 0, "a number >= 0"),
            ("alpha", lambda v: v > 0, "a number > 0"),
            ("write_fraction", lambda v: 0 <= v <= 1, "a number in [0, 1]")):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, number) or not math.isfinite(v) or not ok(v):
            raise TraceError(f"expand: {name}: expected {expected}, got {v!r}")
    for name, low in (("seed", 0), ("max_events", 1)):
        v = seed if name == "seed" else p[name]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise TraceError(f"expand: {name}: expected an integer >= {low}, got {v!r}")
    if p["max_events"] > MAX_EVENTS:
        raise TraceError(f"expand: max_events: expected at most {MAX_EVENTS:,} (~4.5 GiB of "
                         f"arrays), got {p['max_events']:,}")
    # in float first: a huge scale must not wrap the int64 page counts
    most = float(envelope.wss_bytes.max()) * p["scale"] * (1 + p["reuse"]) / PAGE_SIZE
    if most > p["max_events"]:
        raise TraceError(f"expand: one sample would make {most:,.0f} events (> max_events="
                         f"{p['max_events']:,}); pass a smaller scale or reuse")
    wss = window_pages(envelope, p["scale"])
    n_events = int((wss + np.rint(p["reuse"] * wss)).sum())
    if n_events > p["max_events"]:
        raise TraceError(f"expand: would make {n_events:,} events (> max_events="
                         f"{p['max_events']:,}); pass a smaller scale, e.g. scale="
                         f"{p['max_events'] / n_events:.3g}, or raise max_events")
    rng = np.random.default_rng(seed)
    parts, prev = [], 0
    for start, dur, w in zip(envelope.time_ns, envelope.durations_ns, wss):
        if p["free_on_shrink"] and w < prev:
            freed = np.arange(w, prev, dtype=np.int64)
            parts.append((np.full(len(freed), start, np.int64), freed,
                          np.full(len(freed), OP_FREE, np.uint8)))
        pages = np.concatenate([np.arange(w, dtype=np.int64),
                                zipf_ranks(rng, w, int(round(p["reuse"] * w)), p["alpha"])
                                if w else np.zeros(0, np.int64)])
        pages = rng.permutation(pages)
        times = start + (np.arange(len(pages), dtype=np.int64) * dur) // max(len(pages), 1)
        ops = np.where(rng.random(len(pages)) < p["write_fraction"], OP_WRITE, 0)
        parts.append((times, pages, ops.astype(np.uint8)))
        prev = w
    times, pages, ops = (np.concatenate(c) for c in zip(*parts))
    gap = np.diff(times, prepend=0)
    meta = {"source": envelope.meta.get("source", "envelope"),
            "licence": envelope.meta.get("licence", "see the envelope"),
            "how": f"expanded from a demand envelope by autoballoon.trace.expand ({MODEL})",
            "expansion": {"model": MODEL, "seed": seed, **p},
            "envelope_meta": envelope.meta}
    return AccessTrace(gap, pages, ops, meta=meta, where="expand")
