"""Reader for per-VM memory-usage series in CSV -> demand envelopes.

The public VM-trace datasets (e.g. Bitbrains GWA-T-12: ``Timestamp [ms]; ...; Memory capacity
provisioned [KB]; Memory usage [KB]; ...``) give one row per sample with a timestamp, the
memory the VM was provisioned and the memory it used. Columns are found by name (case-
insensitive): time = the first containing "time"; provisioned = the first containing
"provision", "capacity", "assigned" or "total"; used = the first containing "usage", "used" or
"util" — or given explicitly. The delimiter is the header's ``;`` (Bitbrains' ``;\\t``), ``,`` or tab.

Units: ``time_unit`` (default s — note Bitbrains' "Timestamp [ms]" holds seconds since the
epoch); memory unit from a bracketed suffix in the column name (``[KB]`` = KiB, ``[MB]``,
``[GB]``, ``[B]``) unless ``mem_unit`` is given; ``used_unit="percent"`` reads "used" as a
percentage of provisioned. "Memory used" is taken as the working set (``wss_bytes``): it is
the VM's active memory as its hypervisor reported it, the closest public proxy.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from autoballoon import units
from autoballoon.trace.format import Envelope, TraceError

TIME_UNITS = units.units_subset(units.TIME_UNITS, ("s", "ms", "us", "ns"))   # -> ns
MEM_UNITS = units.units_subset(units.SIZE_UNITS, ("b", "kb", "kib", "mb", "mib", "gb",
                                                  "gib"))                  # binary, -> bytes
ROLES = {"time": ("time",), "provisioned": ("provision", "capacity", "assigned", "total"),
         "used": ("usage", "used", "util")}


def _find(columns: list[str], role: str, given: str | None, where: str) -> str:
    if given is not None:
        if given not in columns:
            raise TraceError(f"{where}: column {given!r} not found; columns are {columns}")
        return given
    for c in columns:
        low = c.lower()
        if any(word in low for word in ROLES[role]) and (role == "time" or "mem" in low
                                                          or len(columns) <= 3):
            return c
    raise TraceError(f"{where}: no {role} column: expected a header naming one with "
                     f"{' / '.join(ROLES[role])}; columns are {columns}")


def _unit_of(name: str, override: str | None, where: str) -> int:
    unit = override
    if unit is None:
        m = re.search(r"\[([A-Za-z]+)\]", name)
        unit = m.group(1) if m else "b"
    if unit.lower() not in MEM_UNITS:
        raise TraceError(f"{where}: memory unit: expected one of {', '.join(MEM_UNITS)}, "
                         f"got {unit!r}")
    return MEM_UNITS[unit.lower()]


def _numbers(df: pd.DataFrame, col: str, where: str) -> np.ndarray:
    raw = df[col].astype(str).str.strip()
    num = pd.to_numeric(raw, errors="coerce")
    bad = num.isna() | (num < 0) | ~np.isfinite(num)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise TraceError(f"{where} line {i + 2}: column {col!r}: expected a number >= 0, "
                         f"got {raw.iloc[i]!r}")
    return num.to_numpy(np.float64)


def _sniff(path) -> str:
    """The delimiter of the header line: ';' (Bitbrains' ';\\t'), else ',', else tab."""
    with open(path, "rb") as f:
        header = f.readline()
    for sep in (b";", b",", b"\t"):
        if sep in header:
            return sep.decode()
    return ","


def read_vm_csv(path, time_col: str | None = None, provisioned_col: str | None = None,
                used_col: str | None = None, time_unit: str = "s", mem_unit: str | None = None,
                used_unit: str | None = None, delimiter: str | None = None) -> Envelope:
    where = str(path)
    if time_unit not in TIME_UNITS:
        raise TraceError(f"{where}: time unit: expected one of {', '.join(TIME_UNITS)}, "
                         f"got {time_unit!r}")
    try:
        df = pd.read_csv(path, sep=delimiter or _sniff(path), dtype=str,
                         keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError,
            TypeError, OSError) as e:
        raise TraceError(f"{where}: not a readable CSV file ({e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise TraceError(f"{where}: expected at least one data row, got none")
    cols = list(df.columns)
    t_name = _find(cols, "time", time_col, where)
    p_name = _find(cols, "provisioned", provisioned_col, where)
    u_name = _find(cols, "used", used_col, where)
    t = _numbers(df, t_name, where)
    # huge numbers overflow to inf (or inf * 0 to nan): refused just below, so numpy need not warn
    with np.errstate(over="ignore", invalid="ignore"):
        prov = _numbers(df, p_name, where) * _unit_of(p_name, mem_unit, where)
        used = _numbers(df, u_name, where)
        if used_unit == "percent" or (used_unit is None and ("%" in u_name
                                                             or "percent" in u_name.lower())):
            used = used / 100.0 * prov
        else:
            used = used * _unit_of(u_name, mem_unit, where)
        t_ns = (t - t[0]) * TIME_UNITS[time_unit]
    for name, values in ((t_name, t_ns), (p_name, prov), (u_name, used)):
        if (big := np.flatnonzero(~(np.abs(values) < 2.0**62))).size:     # nan too
            raise TraceError(f"{where} line {int(big[0]) + 2}: column {name!r}: expected a value "
                             f"that fits int64 nanoseconds/bytes, got {df[name].iloc[big[0]]!r}")
    time_ns = np.rint(t_ns).astype(np.int64)
    back = np.flatnonzero(np.diff(time_ns) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise TraceError(f"{where} line {i + 2}: column {t_name!r}: expected a time after the "
                         f"previous row's ({df[t_name].iloc[i - 1]}), got {df[t_name].iloc[i]!r}")
    step = int(np.median(np.diff(time_ns))) if len(time_ns) > 1 else TIME_UNITS["s"]
    meta = {"how": f"per-VM memory-usage CSV ({t_name!r}, {p_name!r}, {u_name!r}); "
                   f"memory used taken as the working set",
            "source": where}
    return Envelope(time_ns, np.rint(used).astype(np.int64), end_ns=int(time_ns[-1]) + step,
                    provisioned_bytes=np.rint(prov).astype(np.int64), meta=meta, where=where)
