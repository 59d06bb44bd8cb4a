"""Slab shrinkers: the registry and both semantics of ``shrink_slab``.

Mirrors mm/vmscan.c's ``do_shrink_slab`` (mainline, Linux 6.1) and Linux <= 3.11's
``shrink_slab`` (the one the 2012 auto-ballooning RFC ran on), selected per guest by its kernel
version. Each guest has at most two shrinkers, in registration order:
  0. a reclaimable slab cache (a generic shrinker: one object per page, DEFAULT_SEEKS), so that
     shrinkers are exercised without the balloon; its pages are the first ``nr_slab`` frames
     of the guest and it frees the highest first; it does not grow again (simplification);
  1. the virtio_balloon auto-balloon shrinker, registered only when AUTO_BALLOON is negotiated.
Only slab pages count as reclaimed (``reclaim_state->reclaimed_slab``); balloon pages go back to
the free pool without being counted, as in the kernel.
"""
from autoballoon._jit import kernel
from autoballoon.mm import buddy, lru, swap
from autoballoon.mm.constants import (
    DEFAULT_SEEKS, P_FRAME_BASE, P_KERNEL_OLD, S_BALLOON_DEFERRED, S_NR_SLAB, S_SLAB_DEFERRED,
    SHRINK_BATCH, SHRINK_EMPTY, SHRINK_STOP, SLABS_SCANNED, VIRTIO_BALLOON_F_AUTO_BALLOON)
from autoballoon.virtio import balloon

SLAB_SHRINKER, BALLOON_SHRINKER = 0, 1


@kernel
def shrinker_registered(m, g, sid):
    return sid == SLAB_SHRINKER or balloon.has_feature(m, g, VIRTIO_BALLOON_F_AUTO_BALLOON)


@kernel
def deferred_slot(sid):
    return S_SLAB_DEFERRED if sid == SLAB_SHRINKER else S_BALLOON_DEFERRED


@kernel
def slab_free(m, g, nr, now):
    """The slab cache's scan: free up to nr of its pages; returns the number freed."""
    freed = min(nr, m.S[g, S_NR_SLAB])
    for _ in range(freed):
        m.S[g, S_NR_SLAB] -= 1
        buddy.free_frame(m, g, m.P[g, P_FRAME_BASE] + m.S[g, S_NR_SLAB], now)
    return freed


@kernel
def count_objects(m, g, sid):
    if sid == SLAB_SHRINKER:
        return m.S[g, S_NR_SLAB]
    return balloon.balloon_shrinker_count(m, g)


@kernel
def scan_objects(m, g, sid, nr_to_scan, now):
    """Mainline callback: objects freed, or SHRINK_STOP."""
    if sid == SLAB_SHRINKER:
        return slab_free(m, g, nr_to_scan, now)
    return balloon.balloon_shrinker_scan(m, g, nr_to_scan, now)


@kernel
def old_shrink(m, g, sid, nr_to_scan, now):
    """Linux <= 3.11 callback ``shrink(shrinker, sc)``: objects left, or -1 (cannot now)."""
    if sid == SLAB_SHRINKER:
        if nr_to_scan:
            slab_free(m, g, nr_to_scan, now)
        return m.S[g, S_NR_SLAB]
    return balloon.balloon_shrink_old(m, g, nr_to_scan, now)


@kernel
def do_shrink_slab(m, g, sid, priority, now):
    """do_shrink_slab() (6.1): returns objects freed."""
    freeable = count_objects(m, g, sid)
    if freeable == 0 or freeable == SHRINK_EMPTY:
        return 0
    slot = deferred_slot(sid)
    nr = m.S[g, slot]
    m.S[g, slot] = 0
    delta = (freeable >> priority) * 4 // DEFAULT_SEEKS
    total_scan = min((nr >> priority) + delta, 2 * freeable)
    freed = 0
    scanned = 0
    while total_scan >= SHRINK_BATCH or total_scan >= freeable:
        nr_to_scan = min(SHRINK_BATCH, total_scan)
        ret = scan_objects(m, g, sid, nr_to_scan, now)
        if ret == SHRINK_STOP:
            break
        freed += ret
        m.V[g, SLABS_SCANNED] += nr_to_scan
        total_scan -= nr_to_scan
        scanned += nr_to_scan
    next_deferred = min(max(nr + delta - scanned, 0), 2 * freeable)
    m.S[g, slot] += next_deferred
    return freed


@kernel
def shrink_slab_old(m, g, sid, nr_scanned, lru_pages, now):
    """shrink_slab() of Linux <= 3.11 for one shrinker: returns objects freed."""
    max_pass = old_shrink(m, g, sid, 0, now)
    if max_pass <= 0:
        return 0
    slot = deferred_slot(sid)
    nr = m.S[g, slot]
    m.S[g, slot] = 0
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
        nr_before = old_shrink(m, g, sid, 0, now)
        ret = old_shrink(m, g, sid, SHRINK_BATCH, now)
        if ret == -1:
            break
        if ret < nr_before:
            freed += nr_before - ret
        m.V[g, SLABS_SCANNED] += SHRINK_BATCH
        total_scan -= SHRINK_BATCH
    if total_scan > 0:
        m.S[g, slot] += total_scan
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
    """Run every registered shrinker of guest g; returns slab pages freed (reclaimed_slab)."""
    old = m.P[g, P_KERNEL_OLD] != 0
    slab_pages = 0
    for sid in range(2):
        if not shrinker_registered(m, g, sid):
            continue
        if old:
            freed = shrink_slab_old(m, g, sid, nr_scanned, zone_reclaimable_pages(m, g), now)
        else:
            freed = do_shrink_slab(m, g, sid, priority, now)
        if sid == SLAB_SHRINKER:
            slab_pages += freed
    return slab_pages
