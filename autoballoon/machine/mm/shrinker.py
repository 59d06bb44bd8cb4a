"""The shrinker list and both semantics of ``shrink_slab``.

Mirrors mm/vmscan.c's ``do_shrink_slab`` (mainline, Linux 6.1) and Linux <= 3.11's
``shrink_slab`` (the one the 2012 auto-ballooning RFC ran on), selected per guest by its kernel
version. The shrinkers are those registered at boot (mm/hooks.py), in registration order: the
guest's reclaimable slab cache (mm/slab.py) and, when AUTO_BALLOON is negotiated, the
virtio_balloon auto-balloon shrinker. Each keeps its ``nr_deferred``. Freed slab pages count as
reclaimed through ``reclaimed_slab`` (shrink_node adds them); balloon pages go back to the free
pool without being counted, as in the kernel.
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import P_KERNEL_OLD, SLABS_SCANNED
from autoballoon.machine.mm import hooks, lru, swap
from autoballoon.machine.mm.constants import (
    DEFAULT_SEEKS, MAX_SHRINKERS, SHRINK_BATCH, SHRINK_EMPTY, SHRINK_STOP, SWAP_CLUSTER_MAX)


@kernel
def do_shrink_slab(m, g, i, priority, now):
    """do_shrink_slab() (6.1) for guest g's i-th shrinker: returns objects freed."""
    kind = m.shrinker_kind[g, i]
    freeable = hooks.count_objects(m, g, kind)
    if freeable == 0 or freeable == SHRINK_EMPTY:
        return 0
    nr = m.shrinker_deferred[g, i]
    m.shrinker_deferred[g, i] = 0
    delta = (freeable >> priority) * 4 // DEFAULT_SEEKS
    total_scan = min((nr >> priority) + delta, 2 * freeable)
    freed = 0
    scanned = 0
    while total_scan >= SHRINK_BATCH or total_scan >= freeable:
        nr_to_scan = min(SHRINK_BATCH, total_scan)
        ret = hooks.scan_objects(m, g, kind, nr_to_scan, now)
        if ret == SHRINK_STOP:
            break
        freed += ret
        m.V[g, SLABS_SCANNED] += nr_to_scan
        total_scan -= nr_to_scan
        scanned += nr_to_scan
    next_deferred = min(max(nr + delta - scanned, 0), 2 * freeable)
    m.shrinker_deferred[g, i] += next_deferred
    return freed


@kernel
def shrink_slab_old(m, g, i, nr_scanned, lru_pages, now):
    """shrink_slab() of Linux <= 3.11 for guest g's i-th shrinker: returns objects freed."""
    kind = m.shrinker_kind[g, i]
    max_pass = hooks.shrink(m, g, kind, 0, now)
    if max_pass <= 0:
        return 0
    nr = m.shrinker_deferred[g, i]
    m.shrinker_deferred[g, i] = 0
    delta = (4 * nr_scanned) // DEFAULT_SEEKS
    delta = delta * max_pass // (lru_pages + 1)
    total_scan = nr + delta
    if total_scan < 0:
        total_scan = max_pass
    if delta < max_pass // 4:
        total_scan = min(total_scan, max_pass // 2)
    if total_scan > max_pass * 2:
        total_scan = max_pass * 2
    freed = 0
    while total_scan >= SHRINK_BATCH:
        nr_before = hooks.shrink(m, g, kind, 0, now)
        ret = hooks.shrink(m, g, kind, SHRINK_BATCH, now)
        if ret == -1:
            break
        if ret < nr_before:
            freed += nr_before - ret
        m.V[g, SLABS_SCANNED] += SHRINK_BATCH
        total_scan -= SHRINK_BATCH
    if total_scan > 0:
        m.shrinker_deferred[g, i] += total_scan
    return freed


@kernel
def zone_reclaimable_pages(m, g):
    """File LRU pages, plus anon LRU pages while swap has room."""
    n = lru.lru_pages(m, g, True)
    if swap.get_nr_swap_pages(m, g) > 0:
        n += lru.lru_pages(m, g, False)
    return n


@kernel
def shrink_slab(m, g, priority, nr_scanned, now):
    """Run every registered shrinker of guest g; returns the objects they freed."""
    old = m.P[g, P_KERNEL_OLD] != 0
    freed = 0
    for i in range(MAX_SHRINKERS):
        if m.shrinker_kind[g, i] < 0:
            break
        if old:
            # 3.x: "if (nr_pages_scanned == 0) nr_pages_scanned = SWAP_CLUSTER_MAX;"
            freed += shrink_slab_old(m, g, i, nr_scanned or SWAP_CLUSTER_MAX,
                                     zone_reclaimable_pages(m, g), now)
        else:
            freed += do_shrink_slab(m, g, i, priority, now)
    return freed
