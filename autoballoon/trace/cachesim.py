"""Readers for libCacheSim's trace formats: its csv convention and ``oracleGeneral`` binary.

A request names an object (or a block) and a size. Two ways to turn it into 4 KiB pages:

- ``ids="blocks"``: ids are addresses in units of ``block_size`` bytes (a block-I/O trace such
  as CloudPhysics: LBNs of 512-byte sectors); the request covers the pages of bytes
  ``[id*block_size, id*block_size + size)``.
- ``ids="objects"``: ids are opaque keys (a key-value cache trace); each distinct object gets
  ``ceil(size/4096)`` consecutive pages of its own, sized at its first request.

Page numbers are then renumbered densely, keeping their order (so sequential runs stay
sequential for readahead). All pages are file pages reached through syscalls (page-cache
semantics); a request's first page carries the time since the previous request and its
other pages follow with no gap. Writes come from an op column when there is one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from autoballoon import units
from autoballoon.trace.format import MAX_EVENTS, PAGE_SIZE, AccessTrace, TraceError, fail_at
from autoballoon.trace.ops import OP_FILE, OP_SYSCALL, OP_WRITE

TIME_UNITS = units.units_subset(units.TIME_UNITS, ("s", "ms", "us", "ns"))   # -> ns
ORACLE_GENERAL = np.dtype([("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"),
                           ("next_access_vtime", "<i8")])
# SCSI opcodes (WRITE(6/10/12/16)) and the words other csv traces use
WRITE_OPS = {"0a", "2a", "aa", "8a", "w", "write", "set", "put", "update", "insert"}
MAX_PAGES = MAX_EVENTS           # 268 M page events: ~4.5 GB of arrays


def _check_col(df: pd.DataFrame, col: int, name: str, where: str) -> None:
    """``col`` must be a 1-based column number of ``df``."""
    if col < 1 or col > df.shape[1]:
        raise TraceError(f"{where}: {name}-col={col}: expected a column number in "
                         f"1..{df.shape[1]}")


def _column(df: pd.DataFrame, col: int, name: str, where: str, line0: int) -> np.ndarray:
    """1-based column ``col`` as int64, or an error naming the first bad line."""
    _check_col(df, col, name, where)
    raw = df.iloc[:, col - 1]
    num = pd.to_numeric(raw, errors="coerce")
    bad = num.isna() | (num < 0) | (num != np.floor(num)) | (num >= 2**62)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise TraceError(f"{where} line {line0 + i}: column {col} ({name}): expected an "
                         f"integer >= 0, got {raw.iloc[i]!r}")
    return num.to_numpy().astype(np.int64)


def read_csv(path, time_col: int = 2, obj_id_col: int = 5, obj_size_col: int | None = 4,
             op_col: int | None = 3, delimiter: str = ",", has_header: bool = True,
             time_unit: str = "s", ids: str = "blocks", block_size: int = 512) -> AccessTrace:
    """A libCacheSim csv trace (column numbers are 1-based, as in libCacheSim's
    ``-t "time-col=2, obj-id-col=5, obj-size-col=4"``). Defaults fit its cloudPhysicsIO.csv."""
    where = str(path)
    try:
        df = pd.read_csv(path, sep=delimiter, header=None, skiprows=1 if has_header else 0,
                         dtype=str, keep_default_na=False, skip_blank_lines=True)
    except OSError as e:
        raise TraceError(f"{where}: cannot read ({e})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise TraceError(f"{where}: not a {delimiter!r}-separated csv trace ({e})") from None
    line0 = 2 if has_header else 1
    time = _column(df, time_col, "time", where, line0)
    obj = _column(df, obj_id_col, "obj-id", where, line0)
    size = (_column(df, obj_size_col, "obj-size", where, line0) if obj_size_col
            else np.full(len(df), block_size if ids == "blocks" else PAGE_SIZE, np.int64))
    write = np.zeros(len(df), bool)
    if op_col:                                      # None or 0: no op column
        _check_col(df, op_col, "op", where)
        write = df.iloc[:, op_col - 1].str.strip().str.lower().isin(WRITE_OPS).to_numpy()
    return requests_to_trace(time, obj, size, write, where, time_unit, ids, block_size,
                             first_row=line0, row_word="line",
                             how=f"libCacheSim csv (time-col={time_col}, obj-id-col="
                                 f"{obj_id_col}, obj-size-col={obj_size_col}, op-col={op_col})")


def read_oracle_general(path, ids: str = "blocks", block_size: int = 512,
                        time_unit: str = "s") -> AccessTrace:
    """A libCacheSim ``oracleGeneral`` file: records of ``u32 time, u64 obj_id, u32 obj_size,
    i64 next_access_vtime`` (24 bytes, little-endian); times are seconds."""
    where = str(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise TraceError(f"{where}: cannot read ({e})") from None
    if raw.size % ORACLE_GENERAL.itemsize:
        n = raw.size // ORACLE_GENERAL.itemsize
        raise TraceError(f"{where}: truncated oracleGeneral file: {raw.size} bytes is not a "
                         f"multiple of the 24-byte record (record {n} is incomplete)")
    rec = raw.view(ORACLE_GENERAL)
    if (bad := np.flatnonzero(rec["obj_id"] >= 2**62)).size:
        raise fail_at(where, int(bad[0]), "obj_id", "an id < 2^62", int(rec["obj_id"][bad[0]]))
    return requests_to_trace(rec["time"].astype(np.int64), rec["obj_id"].astype(np.int64),
                             rec["obj_size"].astype(np.int64), np.zeros(len(rec), bool), where,
                             time_unit, ids, block_size, first_row=0, row_word="record",
                             how="libCacheSim oracleGeneral binary")


def requests_to_trace(time, obj, size, write, where, time_unit, ids, block_size,
                      first_row=0, row_word="row", how="") -> AccessTrace:
    """Requests (time, id, size, write) -> page accesses (see the module docstring)."""
    if time_unit not in TIME_UNITS:
        raise TraceError(f"{where}: time unit: expected one of {', '.join(TIME_UNITS)}, "
                         f"got {time_unit!r}")
    if ids not in ("blocks", "objects"):
        raise TraceError(f"{where}: ids: expected 'blocks' or 'objects', got {ids!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or not 1 <= block_size <= 2**30:
        raise TraceError(f"{where}: block_size: expected an integer in [1, 2^30] (bytes per "
                         f"block id), got {block_size!r}")
    if len(time) == 0:
        raise TraceError(f"{where}: expected at least one request, got none")
    back = np.flatnonzero(np.diff(time) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise TraceError(f"{where} {row_word} {first_row + i}: time: expected a time >= the "
                         f"previous request's ({int(time[i - 1])}), got {int(time[i])}")
    unit = TIME_UNITS[time_unit]
    if int(time.max()) > 2**62 // unit:
        raise TraceError(f"{where}: times up to {int(time.max())} {time_unit} overflow int64 ns")
    if ids == "blocks" and int(obj.max()) > 2**50 // block_size:
        raise TraceError(f"{where}: block ids up to {int(obj.max())} x {block_size} bytes exceed "
                         f"2^50 bytes; are these object ids (ids='objects')?")
    size = np.maximum(size, 1)                    # a zero-byte request still touches its page
    # the byte and page sums below are int64
    if float(np.sum(size, dtype=np.float64)) + 2.0 * PAGE_SIZE * len(size) > 2**61:
        raise TraceError(f"{where}: requests cover more than {MAX_PAGES} pages")
    if ids == "blocks":
        start = obj * block_size
    else:
        uniq, first = np.unique(obj, return_index=True)
        npages = -(-size[first] // PAGE_SIZE)
        base = np.concatenate([[0], np.cumsum(npages)[:-1]]) * PAGE_SIZE
        k = np.searchsorted(uniq, obj)            # each request's object, once
        start = base[k]
        size = np.minimum(size, npages[k] * PAGE_SIZE)
    first_page = start // PAGE_SIZE
    count = (start + size - 1) // PAGE_SIZE - first_page + 1
    if count.sum() > MAX_PAGES:
        raise TraceError(f"{where}: requests cover more than {MAX_PAGES} pages")
    req = np.repeat(np.arange(len(time)), count)
    offset = np.arange(len(req)) - np.repeat(np.cumsum(count) - count, count)
    pages = first_page[req] + offset
    _, dense = np.unique(pages, return_inverse=True)
    gap = np.zeros(len(req), np.int64)
    is_first = offset == 0
    gap[is_first] = np.diff(time, prepend=time[0]) * unit
    op = np.where(write[req], OP_FILE | OP_SYSCALL | OP_WRITE, OP_FILE | OP_SYSCALL)
    meta = {"how": f"converted from {how}; {ids} ids, block_size={block_size}, "
                   f"time unit {time_unit}; pages renumbered densely in address order; "
                   f"all pages file pages read()/written through syscalls",
            "requests": int(len(time))}
    return AccessTrace(gap, dense.astype(np.int64), op.astype(np.uint8), meta=meta, where=where)
