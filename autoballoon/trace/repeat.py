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


def repeat(trace: AccessTrace, n: int, fresh_files: bool = False) -> AccessTrace:
    """``trace`` ``n`` times back to back (module docstring). With ``fresh_files``, repetition
    k >= 1 maps read()/write() file page p to ``footprint + (k - 1) * F + rank(p)`` (F such
    pages), so the footprint grows by ``(n - 1) * F``."""
    if n < 1:
        raise TraceError(f"{trace.where}: repeat expected an integer >= 1, got {n}")
    if n == 1:
        return trace
    pages = [trace.page] * n
    if fresh_files:
        files = syscall_file_pages(trace)
        is_file = np.zeros(trace.footprint, bool)
        is_file[files] = True
        rank = np.zeros(trace.footprint, np.int64)
        rank[files] = np.arange(len(files))
        moved = is_file[trace.page]
        for k in range(1, n):
            p = trace.page.copy()
            p[moved] = trace.footprint + (k - 1) * len(files) + rank[trace.page[moved]]
            pages[k] = p
    meta = {**trace.meta, "repeat": n, "fresh_files": bool(fresh_files)}
    return AccessTrace(np.tile(trace.gap_ns, n), np.concatenate(pages), np.tile(trace.op, n),
                       meta=meta, where=f"{trace.where} (repeat {n})")
