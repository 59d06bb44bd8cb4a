"""A comparison table (results/compare.py ``summary_table``) in words: Markdown sentences whose
every number is read from the table, for notebooks and reports whose prose must not drift from
their outputs. Each sentence states values; none interprets them."""
from __future__ import annotations

import pandas as pd

from autoballoon.uapi import PAGE_SIZE

MIB = 2**20


def _mib(pages) -> float:
    return float(pages) * PAGE_SIZE / MIB


def _list(values: dict, fmt: str) -> str:
    return ", ".join(f"`{k}` {format(v, fmt)}" for k, v in values.items())


def _relative(a: float, b: float) -> str:
    return f"{a / b - 1:+.0%}" if b else "n/a"


def describe(table: pd.DataFrame) -> str:
    """Markdown bullet points: swap traffic, work done, stalls, balloons and OOM kills per
    policy (the table's index), with work done relative to the first policy and, for the
    other policies, to ``static``."""
    t = table
    host = {p: _mib(r.host_pswpin + r.host_pswpout) for p, r in t.iterrows()}
    guest = {p: _mib(r.guest_pswpin + r.guest_pswpout) for p, r in t.iterrows()}
    work = {p: r.progress / 1e6 for p, r in t.iterrows()}
    first = t.index[0]
    lines = [f"Host swap traffic (host swap-ins + swap-outs of guest memory, MiB): "
             f"{_list(host, '.0f')}."]
    if any(guest.values()):
        lines.append(f"Guest swap traffic (swap-ins + swap-outs inside the guests, MiB): "
                     f"{_list(guest, '.0f')}.")
    else:
        lines.append("No guest swapped a page under any policy.")
    rel = {p: f"{w:.2f} ({_relative(w, work[first])} vs `{first}`)" if p != first
           else f"{w:.2f}" for p, w in work.items()}
    text = ("Work done (million page accesses, all guests): "
            + ", ".join(f"`{p}` {v}" for p, v in rel.items()))
    # an automatic policy against the equal-inflate baseline: the comparison the table is for
    others = [p for p in work if p not in (first, "static")]
    if "static" in work and first != "static" and others:
        text += "; against `static`: " + ", ".join(
            f"`{p}` {_relative(work[p], work['static'])}" for p in others)
    lines.append(text + ".")
    causes = [c for c in t.columns if c.startswith("stall_") and c.endswith("_s")
              and c != "stall_s"]
    stall = {p: r.stall_s for p, r in t.iterrows()}
    text = f"Stall time (s, summed over guests): {_list(stall, '.1f')}"
    if causes:
        text += "; by cause: " + "; ".join(
            f"`{p}` " + ", ".join(f"{c[6:-2].replace('_', ' ')} {r[c]:.1f}" for c in causes)
            for p, r in t.iterrows())
    lines.append(text + ".")
    balloon = {p: r.mean_balloon_mib for p, r in t.iterrows() if r.mean_balloon_mib > 0}
    if balloon:
        lines.append(f"Mean balloon size (MiB, all guests): {_list(balloon, '.1f')}; "
                     f"balloon reversals (inflate \u21c4 deflate): "
                     f"{_list(dict(t['balloon_reversals']), 'd')}.")
    for col, what in (("guest_oom_kill", "Guest OOM kills"), ("host_oom_kill", "VMs the host "
                      "OOM-killed")):
        if col in t and t[col].fillna(0).any():
            lines.append(f"{what}: {_list(dict(t[col].fillna(0).astype(int)), 'd')}.")
    return "\n".join(f"- {line}" for line in lines)
