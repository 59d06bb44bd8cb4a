"""One trace replayed several times back to back, as one trace: a longer build from a recorded part.

A recorded kernel build of one subtree (``traces/kbuild-*.parquet``) is much shorter and reads
far fewer files than a whole kernel build. ``repeat(trace, n, fresh_files=True)`` stands for a
build of ``n`` such parts: every repetition runs the same programs (the compiler's binaries and
libraries are the same mapped file pages, its anonymous memory the same pages, freed at the
trace's ``OP_EXIT``), but reads and writes new files: the pages reached through read()/write()
(sources, headers, objects, ``.cmd`` files) are new page numbers in every repetition, so the
guest's page cache grows as a whole build's does. What it simplifies: a real build's parts share
their headers (1,768 of kbuild-tiny's 7,164 read()/write() pages are ``.h``), which here are read
afresh in each part, and no two parts of a real build are the same size.
"""
from __future__ import annotations

import numpy as np

from autoballoon.trace.format import AccessTrace, TraceError
from autoballoon.trace.ops import OP_FILE, OP_FREE, OP_SYSCALL


def syscall_file_pages(trace: AccessTrace) -> np.ndarray:
    """The pages whose first access is a read() or write() of a file (sorted), the rule the
    machine uses to give a page its kind."""
    access = trace.op < OP_FREE
    pages, first = np.unique(trace.page[access], return_index=True)
    ops = trace.op[access][first]
    return pages[((ops & OP_FILE) != 0) & ((ops & OP_SYSCALL) != 0)]


class Repetitions:
    """How repetition k of ``trace`` numbers its pages (module docstring), one repetition at a
    time: the machine fills its copy of a long build from these without the whole repeated trace
    ever existing as one more array."""

    def __init__(self, trace: AccessTrace, n: int, fresh_files: bool = False):
        if n < 1:
            raise TraceError(f"{trace.where}: repeat expected an integer >= 1, got {n}")
        self.trace, self.n = trace, n
        files = syscall_file_pages(trace) if fresh_files and n > 1 else np.zeros(0, np.int64)
        self.nfiles = len(files)
        self.rank = None            # (built only when pages move: a footprint may be sparse)
        if self.nfiles:
            self.rank = np.full(trace.footprint, -1, np.int64)     # -1: the same page each time
            self.rank[files] = np.arange(len(files))
        self.footprint = trace.footprint + (n - 1) * self.nfiles

    def __len__(self) -> int:
        return self.n * len(self.trace)

    def pages(self, k: int) -> np.ndarray:
        """The page column of repetition k (0-based): read()/write() file page p is
        ``footprint + (k - 1) * F + rank(p)`` from the second repetition on."""
        page = self.trace.page
        if k == 0 or not self.nfiles:
            return page
        rank = self.rank[page]
        moved = rank >= 0
        out = page.copy()
        out[moved] = self.trace.footprint + (k - 1) * self.nfiles + rank[moved]
        return out


def repeat(trace: AccessTrace, n: int, fresh_files: bool = False) -> AccessTrace:
    """``trace`` ``n`` times back to back as one AccessTrace (module docstring); with
    ``fresh_files`` the footprint grows by ``(n - 1) * F`` (F read()/write() file pages)."""
    reps = Repetitions(trace, n, fresh_files)
    if n == 1:
        return trace
    meta = {**trace.meta, "repeat": n, "fresh_files": bool(fresh_files)}
    return AccessTrace(np.tile(trace.gap_ns, n), np.concatenate([reps.pages(k) for k in range(n)]),
                       np.tile(trace.op, n), meta=meta, where=f"{trace.where} (repeat {n})")
