"""Paper figures from Results: what each policy did over time, per guest group, and where the
guests' time went.

Every function returns a :class:`PaperFigure`, a ``matplotlib.figure.Figure`` built without
pyplot (no global state: safe headless, in sweeps, in threads) that

* shows itself in Jupyter: it hands the kernel a PNG (``_repr_mimebundle_``), so JupyterLab,
  VS Code, nbconvert and papermill all store and show the image without ``%matplotlib``;
* is drawn and saved in the paper style, ``paper.mplstyle`` beside this file (8 pt text, sizes
  for one- and two-column papers, colour-blind-safe colours, TrueType fonts in PDF):
  ``fig.savefig("x.pdf")`` (or .svg, .png) as usual.

Conventions: each policy has one colour, line style and marker everywhere (:func:`policy_style`);
identical replicas (a ``[[guest]]`` table with ``count``) are drawn as their mean with a band
from their minimum to their maximum; a panel whose series are all zero is left out and named in
a note under the figure; sizes are MiB, times simulated seconds.
"""
from __future__ import annotations

import base64
import io
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import style
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from autoballoon.results.run import MIB, Results
from autoballoon.results.stalls import stall_by_cause
from autoballoon.uapi import PAGE_SIZE

STYLE = Path(__file__).with_name("paper.mplstyle")
ONE_COLUMN = 3.35       # inches: one column of a two-column paper (ACM, IEEE, USENIX)
TWO_COLUMN = 7.0        # inches: the full text width
ROW_HEIGHT = 1.45       # inches per row of time-series panels

# Okabe & Ito's colour-blind-safe palette (https://jfly.uni-koeln.de/color/)
BLACK, ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE = (
    "#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
POLICY_STYLES = {
    "none": dict(color=BLACK, ls=":", marker="x"),
    "static": dict(color=BLUE, ls="--", marker="s"),
    "qemu-auto": dict(color=VERMILLION, ls="-", marker="o"),
}
# for other policies, and for guest groups within one policy
CYCLE = [dict(color=c, ls=ls, marker=m) for c, ls, m in (
    (GREEN, "-.", "^"), (PURPLE, (0, (5, 1, 1, 1, 1, 1)), "D"), (ORANGE, (0, (1, 1)), "v"),
    (SKY, (0, (4, 1, 1, 1)), "P"), (BLUE, "-", "s"), (VERMILLION, "--", "o"), (BLACK, ":", "x"))]
MARKS_PER_LINE = 6      # markers per line: enough to tell lines apart, few enough to read them


class PaperFigure(Figure):
    """A Figure that displays itself in Jupyter and draws in the paper style."""

    display_dpi = 110   # on screen: a two-column figure is 770 px wide
    png_dpi = 200       # the PNG handed to Jupyter (sharp on high-density screens)

    def _repr_mimebundle_(self, include=None, exclude=None):
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=self.png_dpi)
        w, h = self.get_size_inches()
        data = {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                "text/plain": f"<{type(self).__name__} {w:g}x{h:g} in, "
                              f"{len(self.axes)} axes>"}
        meta = {"image/png": {"width": round(w * self.display_dpi),
                              "height": round(h * self.display_dpi)}}
        return data, meta

    def savefig(self, fname, **kwargs):
        # rcParams used at draw time (tick labels, PDF font type) must be the paper style too
        with style.context(STYLE):
            return super().savefig(fname, **kwargs)


def new_figure(width: float, height: float) -> PaperFigure:
    with style.context(STYLE):
        return PaperFigure(figsize=(width, height))


def policy_style(name: str, index: int = 0) -> dict:
    """Colour, line style and marker of a policy (others: from CYCLE by their index)."""
    return POLICY_STYLES.get(name) or CYCLE[index % len(CYCLE)]


# --- reading results ----------------------------------------------------------------------

def _guest_rows(ts: pd.DataFrame) -> pd.DataFrame:
    return ts[ts["guest"] != "host"]


def _host_rows(ts: pd.DataFrame) -> pd.DataFrame:
    return ts[ts["guest"] == "host"]


def _by_time(rows: pd.DataFrame, column: str) -> pd.Series:
    return rows.groupby("time_s", sort=True)[column].sum().astype("float64")


def host_capacity_mib(r: Results) -> float:
    """The host RAM for guest memory (MiB): used + free on the host rows."""
    h = _host_rows(r.timeseries)
    return float((h["used"] + h["free"]).max()) / MIB


def guest_groups(r: Results) -> dict[str, list[str]]:
    """{group: guest names}: the replicas of a ``[[guest]]`` table with ``count`` form one group
    (named after the table), any other guest is a group of its own."""
    groups: dict[str, list[str]] = {}
    names = set(r.guests)
    for table in r.manifest["scenario"].get("guest", []):
        name = table.get("name", "")
        members = ([f"{name}-{k}" for k in range(table["count"])] if "count" in table
                   else [name])
        groups[name] = [m for m in members if m in names]
    listed = {m for ms in groups.values() for m in ms}
    groups.update({n: [n] for n in r.guests if n not in listed})
    return {g: ms for g, ms in groups.items() if ms}


def _group_series(ts: pd.DataFrame, members: list[str], column: str, scale: float,
                  cumulative: bool) -> pd.DataFrame:
    """Per time: mean, min and max over ``members`` of ``column`` × ``scale`` (cumulated)."""
    rows = ts[ts["guest"].isin(members)]
    wide = rows.pivot(index="time_s", columns="guest", values=column).astype("float64") * scale
    if cumulative:
        wide = wide.cumsum()
    return pd.DataFrame({"mean": wide.mean(axis=1), "min": wide.min(axis=1),
                         "max": wide.max(axis=1)})


# --- drawing helpers ----------------------------------------------------------------------

def _line(ax, x, y, st: dict, index: int, n_lines: int, **kw):
    """A line in style ``st`` with a few markers, offset per line so that lines which overlap
    still show every line's markers."""
    n = len(x)
    step = max(1, n // MARKS_PER_LINE)
    start = (index * step // max(1, n_lines)) % step
    return ax.plot(x, y, color=st["color"], ls=st["ls"], marker=st["marker"],
                   markevery=(start, step), **kw)[0]


def _handle(st: dict, label: str) -> Line2D:
    return Line2D([], [], color=st["color"], ls=st["ls"], marker=st["marker"], label=label)


def _note(fig, text: str) -> None:
    """A note under the figure (the layout engine makes room for it), wrapped to its width
    (about 17 characters of 6.5 pt italic per inch)."""
    if text:
        wrapped = textwrap.fill(text, int(fig.get_size_inches()[0] * 17), break_on_hyphens=False)
        fig.supxlabel(wrapped, x=0.0, ha="left", fontsize=6.5, style="italic")


def _all_zero(series) -> bool:
    return all(np.allclose(np.nan_to_num(np.asarray(s, dtype=float)), 0.0) for s in series)


def _dropped_note(dropped: list[str]) -> str:
    return ("Not drawn, zero under every policy: " + "; ".join(dropped) + ".") if dropped else ""


# --- figures ------------------------------------------------------------------------------

# (title with unit, series of one run's time series, draw host RAM line)
TIMELINE_PANELS = (
    ("balloons, all guests (MiB)", lambda ts: _by_time(_guest_rows(ts), "balloon") / MIB),
    ("host memory used (MiB)", lambda ts: _by_time(_host_rows(ts), "used") / MIB),
    ("guest swap-ins + swap-outs (MiB, cumulative)",
     lambda ts: ((_by_time(_guest_rows(ts), "pswpin") + _by_time(_guest_rows(ts), "pswpout"))
                 * PAGE_SIZE / MIB).cumsum()),
    ("host swap-ins + swap-outs (MiB, cumulative)",
     lambda ts: ((_by_time(_host_rows(ts), "pswpin") + _by_time(_host_rows(ts), "pswpout"))
                 * PAGE_SIZE / MIB).cumsum()),
    ("work done (million page accesses, cumulative)",
     lambda ts: _by_time(_guest_rows(ts), "progress").cumsum() / 1e6),
    ("balloon reversals, inflate \u21c4 deflate (cumulative)",
     lambda ts: _by_time(_guest_rows(ts), "balloon_reversals").cumsum()),
)
HOST_PANEL = 1


def plot_comparison(results: dict[str, Results], title: str | None = None,
                    width: float = TWO_COLUMN) -> PaperFigure:
    """Policies side by side over time: total balloon, host memory used (with the host's RAM),
    guest and host swap traffic, work done and balloon reversals (churn); one line per policy.
    Panels that are zero under every policy are left out (and named in a note)."""
    series = [[fn(r.timeseries) for r in results.values()] for _, fn in TIMELINE_PANELS]
    keep = [i for i, s in enumerate(series) if not _all_zero(s)]
    dropped = [TIMELINE_PANELS[i][0] for i in range(len(series)) if i not in keep]
    ncols = 2 if width >= TWO_COLUMN * 0.8 and len(keep) > 1 else 1
    nrows = -(-len(keep) // ncols)
    fig = new_figure(width, ROW_HEIGHT * nrows + 0.55 + (0.15 if dropped else 0))
    with style.context(STYLE):
        axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel())
        for ax, i in zip(axes, keep):
            for k, (name, s) in enumerate(zip(results, series[i])):
                _line(ax, s.index, s.to_numpy(), policy_style(name, k), k, len(results))
            ax.set_title(TIMELINE_PANELS[i][0])
            if i == HOST_PANEL:
                cap = host_capacity_mib(next(iter(results.values())))
                ax.axhline(cap, color="0.45", lw=0.8, ls=(0, (2, 2)))
                ax.annotate(f"host RAM {cap:.0f} MiB", (0.01, cap), xycoords=("axes fraction",
                            "data"), va="bottom", fontsize=6.5, color="0.3",
                            xytext=(0, 1), textcoords="offset points")
                ax.set_ylim(0, cap * 1.18)
            ax.set_ylim(bottom=0)
        for ax in axes[len(keep):]:
            ax.remove()
        for ax in axes[:len(keep)][-ncols:]:
            ax.set_xlabel("simulated time (s)")
            ax.xaxis.set_tick_params(labelbottom=True)
        # the title heads the legend (a suptitle and an outside legend would overlap)
        fig.legend(handles=[_handle(policy_style(n, k), n) for k, n in enumerate(results)],
                   loc="outside upper center", ncols=len(results), title=title,
                   title_fontproperties={"size": 8, "weight": "bold"})
        _note(fig, _dropped_note(dropped))
    return fig


def plot_balloons(results: dict[str, Results], width: float = TWO_COLUMN) -> PaperFigure:
    """Per policy (columns) and guest group (lines): guest memory after ballooning (QEMU's
    ``actual``: thick, translucent) and the host's target (thin, dashed, on top), guest swap-ins
    and balloon reversals over time. Replicas are summarised by their mean and a min–max band."""
    first = next(iter(results.values()))
    groups = guest_groups(first)
    rows = [
        ("memory after\nballooning (MiB)", "actual", 1 / MIB, False),
        ("guest swap-ins\n(MiB, cumulative)", "pswpin", PAGE_SIZE / MIB, True),
        ("balloon reversals\n(per guest, cumulative)", "balloon_reversals", 1.0, True),
    ]
    data = {(i, p, g): _group_series(r.timeseries, ms, col, scale, cum)
            for i, (_, col, scale, cum) in enumerate(rows)
            for p, r in results.items() for g, ms in groups.items()}
    keep = [i for i in range(len(rows))
            if i == 0 or not _all_zero(d["max"] for (j, _, _), d in data.items() if j == i)]
    dropped = [rows[i][0].replace("\n", " ") for i in range(len(rows)) if i not in keep]
    fig = new_figure(width, ROW_HEIGHT * len(keep) + 0.7 + (0.15 if dropped else 0))
    with style.context(STYLE):
        axes = fig.subplots(len(keep), len(results), sharex=True, sharey="row", squeeze=False)
        for c, (policy, r) in enumerate(results.items()):
            for rr, i in enumerate(keep):
                ax = axes[rr, c]
                for k, (g, ms) in enumerate(groups.items()):
                    st = CYCLE[k % len(CYCLE)]
                    d = data[(i, policy, g)]
                    if len(ms) > 1:
                        ax.fill_between(d.index, d["min"], d["max"], color=st["color"],
                                        alpha=0.18, lw=0)
                    if i == 0:
                        ax.plot(d.index, d["mean"], color=st["color"], lw=2.4, alpha=0.45)
                        t = _group_series(r.timeseries, ms, "target", 1 / MIB, False)
                        _line(ax, t.index, t["mean"], dict(st, ls=(0, (3, 1.5))), k,
                              len(groups), lw=0.9, zorder=3)
                    else:
                        _line(ax, d.index, d["mean"], st, k, len(groups))
                if c == 0:
                    ax.set_ylabel(rows[i][0], fontsize=7)
            axes[0, c].set_title(f"policy {policy}")
            axes[-1, c].set_xlabel("simulated time (s)")
        for ax in axes[1:, 0]:              # counts start at 0 (memory is zoomed to its range)
            ax.set_ylim(bottom=0)
        handles = [_handle(CYCLE[k % len(CYCLE)], f"{g} ({len(ms)} guests: mean, band = range)"
                           if len(ms) > 1 else g) for k, (g, ms) in enumerate(groups.items())]
        handles += [Line2D([], [], color="0.3", lw=2.4, alpha=0.45, label="actual"),
                    Line2D([], [], color="0.3", lw=0.9, ls=(0, (3, 1.5)), label="target")]
        fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 4))
        _note(fig, _dropped_note(dropped))
    return fig


def plot_run(results: Results, width: float = TWO_COLUMN) -> PaperFigure:
    """One run: :func:`plot_balloons` with one column."""
    return plot_balloons({results.policy: results}, width=width)


def _label(cause: str) -> str:
    return cause.replace("_", " ")


def plot_stalls(results: dict[str, Results], width: float = ONE_COLUMN) -> PaperFigure:
    """Where the guests' time went, per policy: stall time by cause and the time not stalled
    (stacked, summed over guests, out of guests × duration), and the work done."""
    causes: dict[str, dict[str, float]] = {}
    guest_seconds, progress = {}, {}
    for name, r in results.items():
        g = r.guest_summary()
        causes[name] = stall_by_cause(g)
        guest_seconds[name] = len(g) * r.manifest["duration_ns"] / 1e9
        progress[name] = float(g["progress"].sum()) / 1e6
    order = list(dict.fromkeys(c for cs in causes.values() for c in cs))
    colours = [VERMILLION, BLUE, ORANGE, PURPLE, GREEN, SKY, BLACK]
    hatches = ["", "////", "....", "xxxx", "\\\\\\\\", "++", "oo"]
    names = list(results)
    fig = new_figure(width, 0.9 + 0.32 * len(names) * 2)
    with style.context(STYLE):
        ax_t, ax_p = fig.subplots(2, 1, height_ratios=[1.25, 1])
        y = np.arange(len(names))[::-1]
        left = np.zeros(len(names))
        for k, cause in enumerate(order):
            v = np.array([causes[n].get(cause, 0.0) for n in names])
            ax_t.barh(y, v, left=left, color=colours[k % 7], hatch=hatches[k % 7],
                      edgecolor="white", lw=0.3, label=f"stall: {_label(cause)}")
            left += v
        rest = np.array([guest_seconds[n] for n in names]) - left
        ax_t.barh(y, rest, left=left, color="0.88", edgecolor="0.6", lw=0.3,
                  label="not stalled (running or idle)")
        for yy, n, s in zip(y, names, left):
            ax_t.annotate(f"{s:.1f} s stalled", (guest_seconds[n], yy), xytext=(2, 0),
                          textcoords="offset points", va="center", fontsize=6.5)
        ax_t.set_yticks(y, names)
        ax_t.set_xlim(0, max(guest_seconds.values()) * 1.3)
        ax_t.set_xlabel("guest time (s, summed over guests)")
        ax_t.grid(axis="y", visible=False)
        ax_t.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncols=2, fontsize=6.5)
        base = progress[names[0]]
        for k, (yy, n) in enumerate(zip(y, names)):
            ax_p.barh(yy, progress[n], color=policy_style(n, k)["color"], alpha=0.85)
            rel = f" ({progress[n] / base - 1:+.0%} vs {names[0]})" if k and base else ""
            ax_p.annotate(f"{progress[n]:.2f}{rel}", (progress[n], yy), xytext=(2, 0),
                          textcoords="offset points", va="center", fontsize=6.5)
        ax_p.set_yticks(y, names)
        ax_p.set_xlim(0, max(progress.values()) * 1.45 or 1)
        ax_p.set_xlabel("work done (million page accesses)")
        ax_p.grid(axis="y", visible=False)
    return fig


# --- the policy zoo -----------------------------------------------------------------------

ZOO_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
ZOO_COLOURS = (VERMILLION, BLUE, GREEN, PURPLE, ORANGE, SKY, BLACK, YELLOW)
AXIS_LABELS = {"balloon_mib": "memory reclaimed by the balloons\n(MiB, time-averaged)",
               "work_lost_pct": "work lost vs no balloon (%)",
               "stall_s": "guest stall (s, summed over guests)",
               "host_pswpin": "host swap-ins (pages)"}


def zoo_styles(policies) -> dict[str, dict]:
    """A colour and marker per policy, no two alike (baselines take their policy's)."""
    out = {}
    for k, p in enumerate(policies):
        st = POLICY_STYLES.get(p)
        out[p] = (dict(color=st["color"], marker=st["marker"]) if st else
                  dict(color=ZOO_COLOURS[k % len(ZOO_COLOURS)],
                       marker=ZOO_MARKERS[k % len(ZOO_MARKERS)]))
    return out


def plot_pareto(points: pd.DataFrame, width: float = TWO_COLUMN) -> PaperFigure:
    """Memory reclaimed (x) against harm (y), one panel per scenario, one point per policy with
    its confidence intervals as error bars (results/zoo.pareto_points). Each automatic policy's
    equal-inflate static baseline is the hollow marker of the same colour, joined to it by a
    thin line: same memory on average, so the vertical gap is what moving the balloon cost or
    saved. The grey steps join the points no other point beats on both axes (the Pareto front:
    more reclaimed, less harm)."""
    scenarios = list(dict.fromkeys(points["scenario"]))
    policies = list(dict.fromkeys(points.loc[points["kind"] != "baseline", "policy"]))
    styles = zoo_styles(policies)
    ncols = 2 if len(scenarios) > 1 else 1
    nrows = -(-len(scenarios) // ncols)
    fig = new_figure(width, 2.3 * nrows + 0.9)
    with style.context(STYLE):
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, name in zip(axes, scenarios):
            pts = points[points["scenario"] == name].set_index("policy")
            for p, r in pts.iterrows():
                own = r["baseline_of"] if r["kind"] == "baseline" else p
                st = styles[own]
                hollow = r["kind"] == "baseline"
                ax.errorbar(r["x"], r["y"], xerr=_err(r, "x"), yerr=_err(r, "y"),
                            color=st["color"], marker=st["marker"], ms=5, lw=0.7, capsize=1.5,
                            mfc="white" if hollow else st["color"], zorder=3)
                if hollow and own in pts.index:
                    a = pts.loc[own]
                    ax.plot([a["x"], r["x"]], [a["y"], r["y"]], color=st["color"], lw=0.6,
                            alpha=0.6, zorder=2)
            front = _front(pts)
            ax.step(front["x"], front["y"], where="pre", color="0.6", lw=0.8, zorder=1)
            ax.set_title(name)
            ax.set_xlabel(AXIS_LABELS.get(points.attrs.get("reclaimed"), "memory reclaimed"))
            ax.set_ylabel(AXIS_LABELS.get(points.attrs.get("harm"), "harm"))
            ax.ticklabel_format(useOffset=False, style="plain")
        for ax in axes[len(scenarios):]:
            ax.remove()
        handles = [Line2D([], [], ls="", color=st["color"], marker=st["marker"], label=p)
                   for p, st in styles.items()]
        handles.append(Line2D([], [], ls="", color="0.3", marker="o", mfc="white",
                              label="equal-inflate static of that policy"))
        fig.legend(handles=handles, loc="outside upper center", ncols=5, fontsize=6.5)
    return fig


def _err(r, axis: str):
    if pd.isna(r[f"{axis}_low"]):
        return None
    return [[max(0.0, r[axis] - r[f"{axis}_low"])], [max(0.0, r[f"{axis}_high"] - r[axis])]]


def _front(pts: pd.DataFrame) -> pd.DataFrame:
    """The points no other beats on both axes (more x, less y), by x."""
    xy = pts[["x", "y"]].dropna().sort_values(["x", "y"], ascending=[False, True])
    keep, best = [], np.inf
    for p, r in xy.iterrows():
        if r["y"] < best:
            keep.append(p)
            best = r["y"]
    return xy.loc[keep].sort_values("x")


# --- per-second rates (results/rates.py) ------------------------------------------------------

def plot_rates(results: dict[str, Results], rates, bin_s: float = 1.0, title: str | None = None,
               width: float = TWO_COLUMN) -> PaperFigure:
    """One panel per rate (results/rates.Rate: its label and unit), one line per run in
    ``results`` (e.g. a driver variant), second by second, summed over guests. Panels that are
    zero in every run are left out (and named in a note)."""
    from autoballoon.results.rates import rate_series
    series = [[rate_series(r.timeseries, rate, bin_s) for r in results.values()]
              for rate in rates]
    keep = [i for i, s in enumerate(series) if not _all_zero(s)]
    dropped = [f"{rates[i].label} ({rates[i].unit})" for i in range(len(rates)) if i not in keep]
    ncols = 2 if len(keep) > 1 else 1
    nrows = -(-len(keep) // ncols)
    fig = new_figure(width, ROW_HEIGHT * nrows + 0.55 + (0.15 if dropped else 0))
    with style.context(STYLE):
        axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
        for ax, i in zip(axes, keep):
            for k, (name, s) in enumerate(zip(results, series[i])):
                _line(ax, s.index, s.to_numpy(), CYCLE[k % len(CYCLE)], k, len(results),
                      drawstyle="steps-post")
            ax.set_title(f"{rates[i].label} ({rates[i].unit})")
            ax.set_ylim(bottom=0)
            ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        for ax in axes[len(keep):]:
            ax.remove()
        for ax in axes[:len(keep)][-ncols:]:
            ax.set_xlabel(f"simulated time (s; {bin_s:g} s bins)")
            ax.xaxis.set_tick_params(labelbottom=True)
        fig.legend(handles=[_handle(CYCLE[k % len(CYCLE)], n) for k, n in enumerate(results)],
                   loc="outside upper center", ncols=len(results), title=title,
                   title_fontproperties={"size": 8, "weight": "bold"})
        _note(fig, _dropped_note(dropped).replace("every policy", "every run"))
    return fig


# (title with unit, series of one run's time series)
HOST_SWAP_PANELS = (
    ("host swap-outs (thousand pages, cumulative)",
     lambda ts: _by_time(_host_rows(ts), "pswpout").cumsum() / 1e3),
    ("host swap-ins (thousand pages, cumulative)",
     lambda ts: _by_time(_host_rows(ts), "pswpin").cumsum() / 1e3),
    ("host swap used (MiB)", lambda ts: _by_time(_host_rows(ts), "swap_used") / MIB),
    ("guest memory after ballooning, all guests (GiB)",
     lambda ts: _by_time(_guest_rows(ts), "actual") / 2**30),
)


def plot_host_swap(results: dict[str, Results], title: str | None = None,
                   width: float = TWO_COLUMN) -> PaperFigure:
    """The host's swapping of guest memory over time, one line per policy: swap-outs and
    swap-ins (cumulative, pages, as the RFC counted them), host swap in use, and the guests'
    memory after ballooning (QEMU's ``actual``, summed). The panels are always all drawn (a flat
    zero line is a result here)."""
    fig = new_figure(width, ROW_HEIGHT * 2 + 0.6)
    with style.context(STYLE):
        axes = fig.subplots(2, 2, sharex=True).ravel()
        for ax, (label, fn) in zip(axes, HOST_SWAP_PANELS):
            for k, (name, r) in enumerate(results.items()):
                s = fn(r.timeseries)
                _line(ax, s.index, s.to_numpy(), policy_style(name, k), k, len(results))
            ax.set_title(label)
            ax.set_ylim(bottom=0)
        for ax in axes[2:]:
            ax.set_xlabel("simulated time (s)")
        fig.legend(handles=[_handle(policy_style(n, k), n) for k, n in enumerate(results)],
                   loc="outside upper center", ncols=min(len(results), 6), title=title,
                   title_fontproperties={"size": 8, "weight": "bold"})
    return fig
