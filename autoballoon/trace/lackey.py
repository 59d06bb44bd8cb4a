"""Reader for valgrind lackey traces (``valgrind --tool=lackey --trace-mem=yes``).

Lackey prints one line per memory access of the guest program: ``I  ADDR,SIZE`` (instruction
fetch), `` L ADDR,SIZE`` (load), `` S ADDR,SIZE`` (store), `` M ADDR,SIZE`` (modify: load and
store); ``==PID==`` lines are valgrind's own messages and are skipped. ``.gz`` files are read
through gzip.

Mapping to page events (what is exact and what is modelled):
- exact: the order of accesses and their pages (address // 4096; an access that straddles a page
  boundary touches both pages), reads vs writes (S and M write);
- modelled: time. Lackey has no clock, so each traced access counts ``ns_per_access``
  (default 1 ns, about one instruction); an event's gap is the time since the previous event;
- merged: consecutive accesses to the same page become one event (a page-level model cannot
  tell them apart; the write bit is OR-ed);
- kinds: pages ever fetched as instructions are file pages (program text), others anon;
- pages are renumbered densely in address order; the stream ends with ``OP_EXIT``.
"""
from __future__ import annotations

import gzip
import re
import zlib

import numpy as np

from autoballoon.trace.format import PAGE_SIZE, AccessTrace, TraceError
from autoballoon.trace.ops import OP_EXIT, OP_FILE, OP_WRITE

LINE = re.compile(r"^(?:I |  ?[LSM]) ?([0-9a-fA-F]{1,16}),(\d{1,6})$")
KINDS = {"I": 0, "L": 1, "S": 2, "M": 3}   # index into the per-kind code below
EXPECTED = "'I  ADDR,SIZE' or ' L|S|M ADDR,SIZE' (lackey --trace-mem=yes)"


def _open(path):
    return gzip.open(path, "rt", errors="replace") if str(path).endswith(".gz") else \
        open(path, "rt", errors="replace")


def parse(lines, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines -> (address, size, kind code 0=I 1=L 2=S 3=M) arrays; errors name the line."""
    addr, size, kind = [], [], []
    for lineno, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line or line.startswith("=="):
            continue
        m = LINE.match(line)
        if m is None:
            raise TraceError(f"{where} line {lineno}: expected {EXPECTED}, got {line[:80]!r}")
        addr.append(int(m.group(1), 16))
        size.append(int(m.group(2)))
        kind.append(KINDS[line.lstrip()[0]])
    if not addr:
        raise TraceError(f"{where}: no lackey accesses found; expected lines {EXPECTED}")
    if max(addr) >= 2**62:
        raise TraceError(f"{where}: address {max(addr):#x} beyond 2^62")
    return (np.array(addr, np.int64), np.maximum(np.array(size, np.int64), 1),
            np.array(kind, np.int8))


def read_lackey(path, ns_per_access: int = 1) -> AccessTrace:
    where = str(path)
    try:
        with _open(path) as f:
            addr, size, kind = parse(f, where)
    except (OSError, EOFError, zlib.error) as e:      # gzip.BadGzipFile is an OSError
        raise TraceError(f"{where}: cannot read ({e})") from None
    return to_trace(addr, size, kind, where, ns_per_access)


def to_trace(addr, size, kind, where: str, ns_per_access: int = 1) -> AccessTrace:
    if isinstance(ns_per_access, bool) or not isinstance(ns_per_access, (int, np.integer)) \
            or not 0 <= ns_per_access <= 2**62 // (2 * len(addr) + 1):
        raise TraceError(f"{where}: ns_per_access: expected an integer in [0, "
                         f"{2**62 // (2 * len(addr) + 1)}] (the trace's clock is an int64), got "
                         f"{ns_per_access!r}")
    # an access straddling a page boundary touches the next page too
    first = addr // PAGE_SIZE
    last = (addr + size - 1) // PAGE_SIZE
    two = last != first
    idx = np.repeat(np.arange(len(addr)), 1 + two)
    page = first[idx] + (np.arange(len(idx)) - np.searchsorted(idx, idx))
    k = kind[idx]
    write = (k >= 2)
    # merge runs of the same page: keep the run's first access, OR the write bits
    new_run = np.ones(len(page), bool)
    new_run[1:] = page[1:] != page[:-1]
    run_id = np.cumsum(new_run) - 1
    run_write = np.zeros(run_id[-1] + 1, bool)
    np.logical_or.at(run_write, run_id, write)
    starts = np.flatnonzero(new_run)
    code_pages = np.unique(page[k == 0])
    run_page = page[starts]
    uniq, dense = np.unique(run_page, return_inverse=True)
    is_file = np.isin(uniq, code_pages)[dense]
    op = np.where(is_file, OP_FILE, 0) | np.where(run_write, OP_WRITE, 0)
    t = idx[starts] * np.int64(ns_per_access)        # the access's ordinal is its clock
    gap = np.diff(t, prepend=0)
    # the traced program ran to its end: close the stream with its exit (page field unused)
    gap, dense = np.append(gap, ns_per_access), np.append(dense, 0)
    op = np.append(op, OP_EXIT)
    meta = {"how": f"valgrind lackey --trace-mem=yes, converted by autoballoon.trace.lackey: "
                   f"exact page order and read/write; time modelled as {ns_per_access} ns per "
                   f"traced access; consecutive same-page accesses merged; instruction pages "
                   f"are file pages",
            "lackey_accesses": int(len(addr))}
    return AccessTrace(gap, dense.astype(np.int64), op.astype(np.uint8), meta=meta, where=where)
