"""Fit the guest's CPU costs to the harness guest: a grid over ``fault`` (the minor-fault
cost, paid by every fault) and ``kswapd_scan`` (reclaim's CPU cost per scanned page).

    python -m validation.calibrate [--fault 0.5us,2us,...] [--kswapd-scan 200ns,1us,...]

The harness runs its guest under TCG (KVM is not available on the machine that recorded
the results), where the guest kernel runs 10-50x slower than on hardware: a fault and a
reclaim scan cost microseconds, not hundreds of nanoseconds. Scenarios that stop after a
number of passes hardly notice (the same pages are touched in the same order); scenarios that
stop after a duration touch as many pages as the CPU allows, and the split of reclaim between
kswapd and direct reclaim depends on how fast kswapd scans. The fitted values are written into
validation/scenarios/*.toml by hand, with the error this script prints.

The error of one point is the mean over scenarios and counters (pswpin, pswpout,
pgscan_kswapd, pgscan_direct, allocstall) of |log((model + 1) / (real + 1))|: a factor of
2 either way costs 0.69.
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys

import pandas as pd

from validation.compare import compare_all

FITTED = ("pswpin", "pswpout", "pgscan_kswapd", "pgscan_direct", "allocstall")


def log_error(df: pd.DataFrame, fitted=FITTED) -> float:
    """Mean |log((model + 1) / (real + 1))| over the ``fitted`` metrics with real results."""
    d = df[df["metric"].isin(fitted) & df["real"].notna()]
    return float(((d["model"] + 1) / (d["real"] + 1)).map(math.log).abs().mean())


def grid(faults, scans, names=None) -> pd.DataFrame:
    """One row per (fault, kswapd_scan): the error overall and per fitted metric."""
    rows = []
    for fault, scan in itertools.product(faults, scans):
        df = compare_all(names, overrides={"guest.vm.fault": fault,
                                           "guest.vm.kswapd_scan": scan})
        row = {"fault": fault, "kswapd_scan": scan, "error": log_error(df)}
        row.update({m: log_error(df, (m,)) for m in FITTED})
        rows.append(row)
        print(f"fault={fault:>6} kswapd_scan={scan:>6} error={row['error']:.3f}",
              file=sys.stderr, flush=True)
    return pd.DataFrame(rows).sort_values("error")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.calibrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fault", default="500ns,2us,5us,10us,20us,50us")
    ap.add_argument("--kswapd-scan", default="200ns,1us,3us,10us")
    ap.add_argument("--only", help="comma-separated scenario names")
    a = ap.parse_args(argv)
    names = [n.strip() for n in a.only.split(",")] if a.only else None
    out = grid(a.fault.split(","), a.kswapd_scan.split(","), names)
    print(out.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
