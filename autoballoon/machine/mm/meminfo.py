"""/proc/meminfo gauges that the kernel derives: MemTotal and MemAvailable.

Mirrors ``si_meminfo`` (totalram_pages: managed pages, which an inflated balloon without
DEFLATE_ON_OOM lowers through adjust_managed_page_count) and ``si_mem_available``
(mm/page_alloc.c / mm/show_mem.c): free pages minus totalreserve_pages (boot: watermark.py), plus
the page cache and reclaimable slab each less min(half, low watermark).
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import P_MANAGED, P_TOTALRESERVE, P_WMARK_LOW, S_NR_FREE, S_NR_SLAB
from autoballoon.machine.mm import lru


@kernel
def totalram_pages(m, g):
    return m.P[g, P_MANAGED]


@kernel
def si_mem_available(m, g):
    wmark_low = m.P[g, P_WMARK_LOW]
    available = m.S[g, S_NR_FREE] - m.P[g, P_TOTALRESERVE]
    pagecache = lru.lru_pages(m, g, True)
    pagecache -= min(pagecache // 2, wmark_low)
    available += pagecache
    reclaimable = m.S[g, S_NR_SLAB]
    available += reclaimable - min(reclaimable // 2, wmark_low)
    return max(available, 0)
