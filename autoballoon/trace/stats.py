"""Summary statistics of a trace, as ``autoballoon trace info`` prints them.

The working-set size of a window is the number of distinct pages accessed in it (Denning's
W(t, tau)), measured on the trace's own clock (cumulative think time) over consecutive windows.
"""
from __future__ import annotations

import numpy as np

from autoballoon.trace.format import PAGE_SIZE, AccessTrace, Envelope, TraceError
from autoballoon.trace.ops import OP_FILE, OP_FREE, OP_WRITE

MiB = 2**20
MAX_WINDOWS = 10_000_000        # one int64 count each


def default_window_ns(duration_ns: int) -> int:
    """1 s, or a tenth of a shorter trace (at least 1 ns)."""
    return max(1, min(10**9, duration_ns // 10))


def working_set_sizes(trace: AccessTrace, window_ns: int) -> np.ndarray:
    """Distinct pages accessed in each window ``[k*window_ns, (k+1)*window_ns)`` of trace time;
    events are stamped at the end of their think time, and an event exactly at the end of the
    trace counts in the last window (no one-event tail window)."""
    if isinstance(window_ns, bool) or not isinstance(window_ns, (int, np.integer)) \
            or window_ns < 1:
        raise TraceError(f"working set: window: expected a duration >= 1 ns, got {window_ns!r}")
    access = trace.op < OP_FREE
    times = np.cumsum(trace.gap_ns)[access]
    if times.size == 0:
        return np.zeros(0, np.int64)
    n_windows = max(1, -(-trace.duration_ns // window_ns))
    if n_windows > MAX_WINDOWS:
        raise TraceError(f"working set: window: {window_ns} ns cuts the trace's "
                         f"{trace.duration_ns} ns into {n_windows:.3g} windows, more than "
                         f"{MAX_WINDOWS:.0e}; expected a window of at least "
                         f"{-(-trace.duration_ns // MAX_WINDOWS)} ns")
    win = np.minimum(times // window_ns, n_windows - 1)
    page = trace.page[access]
    if n_windows * trace.footprint < 2**63:            # one int64 key per (window, page)
        keys = np.unique(win * np.int64(trace.footprint) + page)
        win = keys // trace.footprint
    else:                                              # the key would overflow: sort pairs
        order = np.lexsort((page, win))
        win, page = win[order], page[order]
        win = win[np.concatenate([[True], (win[1:] != win[:-1]) | (page[1:] != page[:-1])])]
    return np.bincount(win, minlength=n_windows)       # empty windows too


def _quantiles(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"min": 0, "median": 0, "p95": 0, "max": 0}
    q = np.quantile(values, [0.0, 0.5, 0.95, 1.0], method="lower")
    return dict(zip(("min", "median", "p95", "max"), (int(x) for x in q)))


def access_info(trace: AccessTrace, window_ns: int | None = None) -> dict:
    access = trace.op < OP_FREE
    n_access = int(access.sum())
    writes = int((access & ((trace.op & OP_WRITE) != 0)).sum())
    file_ = int((access & ((trace.op & OP_FILE) != 0)).sum())
    window_ns = window_ns or default_window_ns(trace.duration_ns)
    return {
        "kind": "access", "events": len(trace), "accesses": n_access,
        "frees": int((trace.op == OP_FREE).sum()), "exits": int((trace.op > OP_FREE).sum()),
        "duration_ns": trace.duration_ns, "footprint_pages": trace.footprint,
        "distinct_pages": int(np.unique(trace.page[access]).size),
        "write_fraction": round(writes / n_access, 4) if n_access else 0.0,
        "file_fraction": round(file_ / n_access, 4) if n_access else 0.0,
        "wss_window_ns": window_ns,
        "wss_pages": _quantiles(working_set_sizes(trace, window_ns)),
    }


def envelope_info(env: Envelope) -> dict:
    return {
        "kind": "envelope", "samples": len(env), "duration_ns": env.end_ns - int(env.time_ns[0]),
        "median_step_ns": int(np.median(env.durations_ns)),
        "wss_pages": _quantiles(env.wss_bytes // PAGE_SIZE),
        "provisioned_max_pages": (int(env.provisioned_bytes.max()) // PAGE_SIZE
                                  if env.provisioned_bytes is not None else None),
    }


def info(trace: AccessTrace | Envelope, window_ns: int | None = None) -> dict:
    return envelope_info(trace) if isinstance(trace, Envelope) else access_info(trace, window_ns)


def format_info(d: dict, meta: dict) -> str:
    """Human-readable lines (sizes in pages and MiB)."""
    def pages(n):
        return f"{n} pages ({n * PAGE_SIZE / MiB:.1f} MiB)"
    lines = [f"kind            {d['kind']}", f"source          {meta.get('source', '?')}",
             f"how             {meta.get('how', '?')}",
             f"licence         {meta.get('licence', '?')}",
             f"duration        {d['duration_ns'] / 1e9:.3f} s"]
    if d["kind"] == "access":
        lines += [f"events          {d['events']} ({d['accesses']} accesses, {d['frees']} frees, "
                  f"{d['exits']} exits)",
                  f"footprint       {pages(d['footprint_pages'])}",
                  f"distinct pages  {pages(d['distinct_pages'])}",
                  f"writes          {d['write_fraction']:.1%} of accesses",
                  f"file pages      {d['file_fraction']:.1%} of accesses"]
        label = f"wss per {d['wss_window_ns'] / 1e6:g} ms"
    else:
        lines += [f"samples         {d['samples']} (median step {d['median_step_ns'] / 1e9:g} s)"]
        if d["provisioned_max_pages"] is not None:
            lines.append(f"provisioned max {pages(d['provisioned_max_pages'])}")
        label = "wss per sample"
    w = d["wss_pages"]
    lines.append(f"{label + ' ':<16}min {pages(w['min'])}, median {pages(w['median'])}, "
                 f"p95 {pages(w['p95'])}, max {pages(w['max'])}")
    return "\n".join(lines)
