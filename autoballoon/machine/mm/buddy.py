"""The free-page pool of a guest and its 2 MiB-block bookkeeping.

Mirrors the order-0 behaviour of the buddy allocator with per-cpu lists (mm/page_alloc.c
``rmqueue_pcplist`` / ``free_unref_page``): the most recently freed page is handed out first, so
hot (host-backed) frames are reused. Simplification: no higher orders and no merging; instead a
per-pageblock count of free frames tells when a whole 2 MiB block is free, which is all that
free page reporting (mm/page_reporting.c, order >= pageblock_order) needs.
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import PGALLOC, PGFREE, S_FREE_HEAD, S_NR_FREE, S_REPORTING_CLOCK
from autoballoon.machine.mm.constants import (
    BLOCK_PAGES, F_DIRTY, F_HYOUNG, F_UNMAPPED, F_YOUNG, PAGE_REPORTING_DELAY_NS, PAGEBLOCK_ORDER,
    PG_free)

# What a freed frame forgets; host backing (F_PRESENT/F_HSWAPPED) stays: the host cannot tell.
KEEP_ON_FREE = 0xFF & ~(F_YOUNG | F_HYOUNG | F_DIRTY | F_UNMAPPED)


@kernel
def rmqueue(m, g, now):
    """Take a free frame of guest g (the caller has checked the watermarks); -1 if none."""
    pfn = m.S[g, S_FREE_HEAD]
    if pfn < 0:
        return -1
    m.S[g, S_FREE_HEAD] = m.lru_next[pfn]
    m.lru_next[pfn] = -1
    m.S[g, S_NR_FREE] -= 1
    m.pflags[pfn] = 0
    m.rmap[pfn] = -1
    m.V[g, PGALLOC] += 1
    blk = pfn >> PAGEBLOCK_ORDER
    if m.blk_nfree[blk] == BLOCK_PAGES:
        m.blk_reported[blk] = 0                 # __ClearPageReported
    m.blk_nfree[blk] -= 1
    return pfn


@kernel
def free_frame(m, g, pfn, now):
    """free_unref_page(): return a frame (off every list, unmapped) to guest g's pool."""
    m.pflags[pfn] = PG_free
    m.rmap[pfn] = -1
    m.fref[pfn] &= KEEP_ON_FREE
    m.lru_prev[pfn] = -1
    m.lru_next[pfn] = m.S[g, S_FREE_HEAD]
    m.S[g, S_FREE_HEAD] = pfn
    m.S[g, S_NR_FREE] += 1
    m.V[g, PGFREE] += 1
    blk = pfn >> PAGEBLOCK_ORDER
    m.blk_nfree[blk] += 1
    if m.blk_nfree[blk] == BLOCK_PAGES:
        # page_reporting_notify_free(): a pass runs PAGE_REPORTING_DELAY after the first whole
        # block freed while reporting is idle
        due = now + PAGE_REPORTING_DELAY_NS
        if due < m.S[g, S_REPORTING_CLOCK]:
            m.S[g, S_REPORTING_CLOCK] = due
