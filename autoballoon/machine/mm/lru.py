"""The lruvec: four doubly linked LRU lists per guest, threaded through per-frame arrays.

Mirrors include/linux/mm_inline.h (``lruvec_add_folio``, ``lruvec_del_folio``,
``folio_lru_list``) and the ``inactive_is_low`` test of mm/vmscan.c. The head of a list is its
most recently added end; reclaim takes from the tail, as ``lru_to_folio`` does.
"""
from autoballoon.machine.jit import clear_bits, kernel
from autoballoon.machine.layout import P_KERNEL_OLD, P_NSLOTS
from autoballoon.machine.mm.constants import (
    LRU_INACTIVE_ANON, LRU_INACTIVE_FILE, PG_active, PG_lru, PG_swapbacked, PG_workingset)
from autoballoon.machine.mm.watermark import int_sqrt


@kernel
def folio_lru_list(flags):
    """folio_lru_list(): which list a frame with these flags belongs on."""
    lru = LRU_INACTIVE_FILE
    if flags & PG_swapbacked:
        lru = LRU_INACTIVE_ANON
    if flags & PG_active:
        lru += 1
    return lru


@kernel
def lru_pages(m, g, file):
    """Pages on the file (or anon) inactive + active lists."""
    l = LRU_INACTIVE_FILE if file else LRU_INACTIVE_ANON
    return m.lru_size[g, l] + m.lru_size[g, l + 1]


@kernel
def lru_add_head(m, g, lru, pfn):
    """lruvec_add_folio(): put pfn at the head (most recent end) of list ``lru``."""
    head = m.lru_head[g, lru]
    m.lru_prev[pfn] = -1
    m.lru_next[pfn] = head
    if head >= 0:
        m.lru_prev[head] = pfn
    else:
        m.lru_tail[g, lru] = pfn
    m.lru_head[g, lru] = pfn
    m.lru_size[g, lru] += 1
    m.pflags[pfn] |= PG_lru


@kernel
def lru_cache_add(m, g, pfn, vpn, anon, active, workingset):
    """folio_add_lru() of a new page for vpn: the inactive list, or the active one when refault
    detection (or 3.x for new anon pages) activated it; PG_workingset from its shadow entry."""
    flags = PG_swapbacked if anon else 0
    if active:
        flags |= PG_active
    if workingset:
        flags |= PG_workingset
    m.pflags[pfn] = flags
    m.rmap[pfn] = vpn
    m.pte[vpn] = pfn
    lru_add_head(m, g, folio_lru_list(flags), pfn)


@kernel
def lru_add_tail(m, g, lru, pfn):
    """lruvec_add_folio_tail(): put pfn at the tail (the next to be reclaimed) of ``lru``."""
    tail = m.lru_tail[g, lru]
    m.lru_next[pfn] = -1
    m.lru_prev[pfn] = tail
    if tail >= 0:
        m.lru_next[tail] = pfn
    else:
        m.lru_head[g, lru] = pfn
    m.lru_tail[g, lru] = pfn
    m.lru_size[g, lru] += 1
    m.pflags[pfn] |= PG_lru


@kernel
def lru_del(m, g, lru, pfn):
    """lruvec_del_folio(): unlink pfn from list ``lru``."""
    prv = m.lru_prev[pfn]
    nxt = m.lru_next[pfn]
    if prv >= 0:
        m.lru_next[prv] = nxt
    else:
        m.lru_head[g, lru] = nxt
    if nxt >= 0:
        m.lru_prev[nxt] = prv
    else:
        m.lru_tail[g, lru] = prv
    m.lru_next[pfn] = -1
    m.lru_prev[pfn] = -1
    m.lru_size[g, lru] -= 1
    m.pflags[pfn] = clear_bits(m.pflags[pfn], PG_lru)


@kernel
def inactive_is_low(m, g, inactive_lru):
    """inactive_is_low(): inactive * inactive_ratio < active, ratio = int_sqrt(10 * GiB) or 1.

    Linux <= 3.11 (``P_KERNEL_OLD``) used ``active > inactive`` for the file lists
    (inactive_file_is_low), and for anon the ratio only when there is a swap device
    (inactive_anon_is_low: ``if (!total_swap_pages) return 0``); 6.1 uses the ratio for both.
    """
    inactive = m.lru_size[g, inactive_lru]
    active = m.lru_size[g, inactive_lru + 1]
    if m.P[g, P_KERNEL_OLD]:
        if inactive_lru == LRU_INACTIVE_FILE:
            return active > inactive
        if m.P[g, P_NSLOTS] == 0:
            return False
    gb = (inactive + active) >> 18
    ratio = int_sqrt(10 * gb) if gb else 1
    return inactive * ratio < active
