"""Per-second rates from a time series (results/rates.py), on a hand-made one."""
import pandas as pd
import pytest

from autoballoon.results.rates import SPIN_RATES, Rate, per_second, rate_series

MIB = 2**20


def _timeseries():
    """Two guests and the host, ticks of 0.5 s from 0 to 2 s: guest a's counter deltas 1, 2,
    3, 4 at t = 0.5 .. 2; guest b's 10 each; balloons 1 and 3 MiB, then 2 and 4 from 1.5 s."""
    rows = []
    for k in range(5):
        t = k * 500_000_000
        for g, delta, balloon in (("a", k, 1 + (k >= 3)), ("b", 10 * (k > 0), 3 + (k >= 3))):
            rows.append(dict(t_ns=t, time_s=t / 1e9, guest=g, allocstall=delta,
                             balloon_lock_ns=delta * 1_000_000, balloon=balloon * MIB))
        rows.append(dict(t_ns=t, time_s=t / 1e9, guest="host", allocstall=99,
                         balloon_lock_ns=0, balloon=0))
    return pd.DataFrame(rows)


def test_counters_are_summed_over_guests_and_ticks_per_second_gauges_averaged():
    ts = _timeseries()
    f = per_second(ts, ["allocstall", "balloon"])
    assert list(f.index) == [0.0, 1.0]
    # second 0: ticks ending at 0.5 and 1.0 -> a: 1 + 2, b: 10 + 10; second 1: a 3 + 4, b 20
    assert list(f["allocstall"]) == [23.0, 27.0]
    assert list(f["balloon"]) == [4 * MIB, 6 * MIB]       # totals at 0.5, 1 s; at 1.5, 2 s
    half = per_second(ts, ["allocstall"], bin_s=0.5)
    assert list(half["allocstall"]) == [22.0, 24.0, 26.0, 28.0]   # per second, per half
    only_a = per_second(ts, ["allocstall"], guests=["a"])
    assert list(only_a["allocstall"]) == [3.0, 7.0]


def test_rate_series_scales_and_adds_its_columns():
    ts = _timeseries()
    lock = rate_series(ts, Rate("lock", ("balloon_lock_ns",), 1e-6, "ms per s"))
    assert list(lock) == pytest.approx([23.0, 27.0])
    both = rate_series(ts, Rate("x", ("allocstall", "balloon_lock_ns"), 1.0))
    assert list(both) == pytest.approx([23.0 + 23e6, 27.0 + 27e6])
    assert {c for r in SPIN_RATES for c in r.columns} >= {"balloon_shrinker_busy",
                                                          "balloon_lock_ns", "allocstall"}


def test_rate_table_has_each_runs_mean_and_busiest_second():
    from types import SimpleNamespace

    from autoballoon.results.rates import rate_table
    runs = {"x": SimpleNamespace(timeseries=_timeseries())}
    t = rate_table(runs, [Rate("direct reclaim", ("allocstall",))])
    assert t.loc["x", "direct reclaim (per s)"] == 25.0
    assert t.loc["x", "direct reclaim, peak"] == 27.0
