"""Unmapping a page of the workload: what exit, munmap() and the OOM killer do to its memory.

Mirrors ``zap_pte_range`` (mm/memory.c) for one anonymous page: the frame leaves its LRU list
and returns to the free pool, its swap slot is freed (``free_swap_and_cache``), and its shadow
entry goes. Page-cache pages are not unmapped here: they stay cached, as in the kernel.
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.mm import buddy, lru, swap


@kernel
def zap_anon_page(m, g, vpn, now):
    pfn = m.pte[vpn]
    if pfn >= 0:
        lru.lru_del(m, g, lru.folio_lru_list(m.pflags[pfn]), pfn)
        m.pte[vpn] = -1
        buddy.free_frame(m, g, pfn, now)
    swap.swap_free(m, g, vpn)
    m.shadow[vpn] = -1
