"""Refault detection and reclaim cost balancing.

Mirrors mm/workingset.c (``workingset_eviction`` stores the lruvec's ``nonresident_age`` in the
evicted page's shadow entry; ``workingset_refault`` activates a refaulting page whose refault
distance fits in the workingset) and ``lru_note_cost`` of mm/swap.c (6.1 form: cost = pages;
costs halve when they exceed a quarter of the LRU). Shadow entries live in a per-virtual-page
array; like the kernel's they keep a masked age (EVICTION_MASK) and the PG_workingset bit. The
3.x kernels had none of this (workingset.c arrived in 3.15): in 3.7 mode no shadow is left and
nothing is activated on refault; their scan balance has its own bookkeeping (mm/vmscan.py).
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import (
    P_KERNEL_OLD,
    S_ANON_COST, S_FILE_COST, S_NONRESIDENT_AGE, WORKINGSET_ACTIVATE, WORKINGSET_REFAULT,
    WORKINGSET_RESTORE)
from autoballoon.machine.mm import lru, swap
from autoballoon.machine.mm.constants import (
    LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE, PG_workingset)

EVICTION_MASK = (1 << 30) - 1


@kernel
def workingset_age_nonresident(m, g, nr):
    m.S[g, S_NONRESIDENT_AGE] += nr


@kernel
def workingset_eviction(m, g, pfn, vpn):
    """Leave a shadow entry for vpn: the eviction clock and whether the page was active
    (Linux >= 3.15; 3.x leaves none)."""
    if m.P[g, P_KERNEL_OLD]:
        return
    workingset_age_nonresident(m, g, 1)
    ws = 1 if m.pflags[pfn] & PG_workingset else 0
    m.shadow[vpn] = ((m.S[g, S_NONRESIDENT_AGE] & EVICTION_MASK) << 1) | ws


@kernel
def lru_note_cost(m, g, file, nr_pages):
    """lru_note_cost(): charge reclaim cost (I/O, rotations, refaults) to anon or file."""
    if file:
        m.S[g, S_FILE_COST] += nr_pages
    else:
        m.S[g, S_ANON_COST] += nr_pages
    lrusize = lru.lru_pages(m, g, False) + lru.lru_pages(m, g, True)
    if m.S[g, S_FILE_COST] + m.S[g, S_ANON_COST] > lrusize // 4:
        m.S[g, S_FILE_COST] //= 2
        m.S[g, S_ANON_COST] //= 2


@kernel
def workingset_refault(m, g, vpn, file):
    """workingset_refault(): count the refault; return (activate, was_workingset).

    The page is activated when its refault distance fits in the pages it competes with:
    active file (+ inactive file for anon), and active anon (+ inactive anon for file) when
    swap is available.
    """
    shadow = m.shadow[vpn]
    if shadow < 0:
        return False, False
    m.shadow[vpn] = -1
    m.V[g, WORKINGSET_REFAULT] += 1
    eviction = shadow >> 1
    ws = (shadow & 1) == 1
    refault_distance = (m.S[g, S_NONRESIDENT_AGE] - eviction) & EVICTION_MASK
    size = m.lru_size[g, LRU_ACTIVE_FILE]
    if not file:
        size += m.lru_size[g, LRU_INACTIVE_FILE]
    if swap.get_nr_swap_pages(m, g) > 0:
        size += m.lru_size[g, LRU_ACTIVE_ANON]
        if file:
            size += m.lru_size[g, LRU_INACTIVE_ANON]
    if refault_distance > size:
        return False, False
    workingset_age_nonresident(m, g, 1)
    m.V[g, WORKINGSET_ACTIVATE] += 1
    if ws:
        lru_note_cost(m, g, file, 1)
        m.V[g, WORKINGSET_RESTORE] += 1
    return True, ws
