"""Figures from Results: balloon size, swap and host memory over time, per policy.

Built on ``matplotlib.figure.Figure`` directly (no pyplot state), so it works headless (Agg),
in parameter sweeps without leaking figures, and in notebooks (``display(fig)``).
"""
from __future__ import annotations

from matplotlib.figure import Figure

from autoballoon.results.run import MIB, Results


def _per_time(ts, guests: bool, column: str):
    rows = ts[(ts["guest"] != "host")] if guests else ts[ts["guest"] == "host"]
    return rows.groupby("time_s", sort=True)[column].sum().astype("float64")


def plot_comparison(results: dict[str, Results], title: str | None = None) -> Figure:
    """2×2 panels, one line per policy: total balloon (MiB), guest swap-ins+outs (cumulative
    pages), host swap-ins+outs (cumulative pages), host memory used (MiB)."""
    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    panels = [
        (axes[0, 0], "balloon size, all guests (MiB)",
         lambda ts: _per_time(ts, True, "balloon") / MIB),
        (axes[0, 1], "host memory used (MiB)", lambda ts: _per_time(ts, False, "used") / MIB),
        (axes[1, 0], "guest swap-ins + swap-outs (pages, cumulative)",
         lambda ts: (_per_time(ts, True, "pswpin") + _per_time(ts, True, "pswpout")).cumsum()),
        (axes[1, 1], "host swap-ins + swap-outs (pages, cumulative)",
         lambda ts: (_per_time(ts, False, "pswpin") + _per_time(ts, False, "pswpout")).cumsum()),
    ]
    for ax, label, series in panels:
        for name, r in results.items():
            s = series(r.timeseries)
            ax.plot(s.index, s.to_numpy(), label=name)
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("simulated time (s)")
    axes[0, 0].legend(title="policy")
    fig.suptitle(title or "automatic vs static ballooning")
    return fig


def plot_run(results: Results) -> Figure:
    """One run: per guest, QEMU target and actual (MiB) and cumulative guest swap-ins."""
    ts = results.timeseries
    guests = ts[ts["guest"] != "host"]
    fig = Figure(figsize=(11, 6), layout="constrained")
    ax_mem, ax_swap = fig.subplots(2, 1, sharex=True)
    for name, rows in guests.groupby("guest", sort=False):
        line, = ax_mem.plot(rows["time_s"], rows["actual"].astype("float64") / MIB, label=name)
        ax_mem.plot(rows["time_s"], rows["target"].astype("float64") / MIB, ls="--",
                    color=line.get_color(), alpha=0.6)
        ax_swap.plot(rows["time_s"], rows["pswpin"].astype("float64").cumsum(), label=name)
    ax_mem.set_ylabel("actual (—) / target (--) MiB")
    ax_swap.set_ylabel("guest pswpin (cumulative)")
    ax_swap.set_xlabel("simulated time (s)")
    ax_mem.legend(fontsize=8)
    for ax in (ax_mem, ax_swap):
        ax.grid(alpha=0.3)
    fig.suptitle(f"policy {results.policy}")
    return fig
