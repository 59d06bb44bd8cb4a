"""A reclaimable slab cache: the guest's generic shrinker, so that shrinkers are exercised
without the balloon.

Stands for the kernel's reclaimable caches (dentries, inodes: ``super_cache_count`` /
``super_cache_scan``) at one object per page and DEFAULT_SEEKS. Its pages are the guest's first
``nr_slab`` frames; it frees the highest first and reports the pages it freed in
``S_RECLAIMED_SLAB`` (``current->reclaim_state->reclaimed_slab``), which shrink_node adds to the
reclaim. Simplification: it never grows again.
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import P_FRAME_BASE, S_NR_SLAB, S_RECLAIMED_SLAB
from autoballoon.machine.mm import buddy


@kernel
def slab_free(m, g, nr, now):
    """Free up to nr of the cache's pages; returns the number freed."""
    freed = min(nr, m.S[g, S_NR_SLAB])
    for _ in range(freed):
        m.S[g, S_NR_SLAB] -= 1
        buddy.free_frame(m, g, m.P[g, P_FRAME_BASE] + m.S[g, S_NR_SLAB], now)
    m.S[g, S_RECLAIMED_SLAB] += freed
    return freed


@kernel
def slab_count(m, g):
    """count_objects(): the cache's pages."""
    return m.S[g, S_NR_SLAB]


@kernel
def slab_scan(m, g, nr_to_scan, now):
    """scan_objects(): never SHRINK_STOP."""
    return slab_free(m, g, nr_to_scan, now)


@kernel
def slab_shrink_old(m, g, nr_to_scan, now):
    """The <= 3.11 ``shrink(shrinker, sc)``: free nr_to_scan, return the objects left."""
    if nr_to_scan:
        slab_free(m, g, nr_to_scan, now)
    return m.S[g, S_NR_SLAB]
