"""Page reclaim: the inactive/active list scanners, scan balance, kswapd and direct reclaim.

Mirrors mm/vmscan.c of Linux 6.1: ``folio_check_references``, ``shrink_folio_list`` (inside
``shrink_inactive_list``), ``shrink_active_list``, ``get_scan_count`` (SCAN_FILE / SCAN_ANON /
SCAN_FRACT with swappiness and the anon/file reclaim costs), ``shrink_lruvec``, ``shrink_node``
(LRU, then slab shrinkers, then vmpressure), ``do_try_to_free_pages`` (the priority loop from
DEF_PRIORITY = 12 to 0) and kswapd's ``balance_pgdat``.

Simplifications (each a documented choice):
- one node, one zone, root memcg only; order-0 allocations, no compaction or THP;
- a reclaimed page is isolated, written and freed in one step: swap-out and file writeback are
  synchronous I/O whose time (device latency + pages x transfer time) the reclaimer pays;
  a dirty file page is written back, marked PG_reclaim and rotated, then reclaimed on a later
  pass, as the flusher would let it be;
- ``shrink_lruvec`` stops once ``nr_to_reclaim`` pages are reclaimed (the kernel scales the
  remaining scan targets instead); ``may_deactivate`` uses ``inactive_is_low`` only (no refault
  generation check); no VM_EXEC protection (no executable mappings are modelled);
- kswapd is a concurrent thread: it runs whole passes of ``max(high_wmark, SWAP_CLUSTER_MAX)``
  pages up to the current time, each pass taking ``scanned x kswapd_scan_ns`` + I/O time;
- Linux 3.7 (``P_KERNEL_OLD``) differs here in: anon pages referenced on the inactive list are
  activated at once (``PageSwapBacked`` test in page_check_references), the file-list
  ``inactive_is_low`` rule, new anon pages starting active, and the old ``shrink_slab``
  semantics (mm/shrinker.py). Everything else is 6.1's in both modes, including what 3.7 did
  not have yet: refault activation (workingset.c, 3.15), anon/file reclaim costs
  (``lru_note_cost``, 5.9) and ``file_is_tiny`` / ``cache_trim_mode`` in get_scan_count.
"""

from autoballoon.machine.host import memory as host
from autoballoon.machine.jit import clear_bits, kernel, kernel_inline, prefetch
from autoballoon.machine.layout import (
    ALLOCSTALL, KSWAPD_WAKE, P_KERNEL_OLD, P_KSWAPD_SCAN_NS, P_SWAPPINESS, P_WMARK_HIGH, PAGEOUTRUN,
    PGACTIVATE, PGDEACTIVATE, PGPGOUT, PGREFILL, PGROTATED, PGSCAN_DIRECT, PGSCAN_KSWAPD,
    PGSTEAL_DIRECT, PGSTEAL_KSWAPD, PSWPOUT, S_ANON_COST, S_FILE_COST, S_KSWAPD_AWAKE,
    S_KSWAPD_CLOCK, S_KSWAPD_FAILURES, S_KSWAPD_PRIO, S_NR_FREE, S_CALLBACK_NS, S_RECLAIMED_SLAB)
from autoballoon.machine.mm import buddy, lru, shrinker, swap, vmpressure, workingset
from autoballoon.machine.mm.constants import (
    DEF_PRIORITY, F_DIRTY, F_YOUNG, LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE, MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX, PG_active, PG_reclaim, PG_referenced,
    PG_swapbacked, PG_workingset)

# struct scan_control, as an int64 array
SC_NR_TO_RECLAIM, SC_PRIORITY, SC_NR_SCANNED, SC_NR_RECLAIMED, SC_IS_KSWAPD, SC_MAY_SWAP, \
    SC_COST_NS = range(7)
NR_SC = 7

# enum folio_references
FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, FOLIOREF_KEEP, FOLIOREF_ACTIVATE = 0, 1, 2, 3
# enum scan_balance
SCAN_EQUAL, SCAN_FRACT, SCAN_ANON, SCAN_FILE = 0, 1, 2, 3


@kernel
def init_scan_control(sc, nr_to_reclaim, priority, is_kswapd):
    """Fill a scan_control. Callers take it from the machine's scratch rows (row 0 direct
    reclaim, row 1 kswapd; they never nest), so that the kernels allocate nothing."""
    sc[:] = 0
    sc[SC_NR_TO_RECLAIM] = nr_to_reclaim
    sc[SC_PRIORITY] = priority
    sc[SC_IS_KSWAPD] = is_kswapd
    sc[SC_MAY_SWAP] = 1


@kernel
def folio_referenced(m, pfn):
    """folio_referenced(): test and clear the PTE accessed bit (one mapping per page)."""
    f = m.fref[pfn]
    if f & F_YOUNG:
        m.fref[pfn] = clear_bits(f, F_YOUNG)
        return 1
    return 0


@kernel
def folio_check_references(m, g, pfn):
    """folio_check_references(): what reclaim does with an inactive page it isolated."""
    referenced_ptes = folio_referenced(m, pfn)
    flags = m.pflags[pfn]
    referenced_folio = (flags & PG_referenced) != 0
    m.pflags[pfn] = clear_bits(flags, PG_referenced)
    anon = (flags & PG_swapbacked) != 0
    if referenced_ptes:
        if anon and m.P[g, P_KERNEL_OLD]:
            return FOLIOREF_ACTIVATE
        m.pflags[pfn] |= PG_referenced
        if referenced_folio:
            return FOLIOREF_ACTIVATE
        return FOLIOREF_KEEP
    if referenced_folio and not anon:
        return FOLIOREF_RECLAIM_CLEAN
    return FOLIOREF_RECLAIM


@kernel
def evict(m, g, pfn, vpn, now):
    """__remove_mapping(): unmap, leave a shadow entry, free the frame."""
    m.pte[vpn] = -1
    workingset.workingset_eviction(m, g, pfn, vpn)
    buddy.free_frame(m, g, pfn, now)


@kernel
def shrink_inactive_list(m, g, nr_to_scan, lru_idx, sc, now):
    """shrink_inactive_list() + shrink_folio_list(): scan nr_to_scan pages from the tail."""
    file = lru_idx == LRU_INACTIVE_FILE
    # isolate_lru_folios() takes the batch off the list first: a page put back is not seen again
    nr_to_scan = min(nr_to_scan, m.lru_size[g, lru_idx])
    scanned = 0
    reclaimed = 0
    writes = 0
    cost = 0
    for _ in range(nr_to_scan):
        pfn = m.lru_tail[g, lru_idx]
        if pfn < 0:
            break
        nxt = m.lru_prev[pfn]
        if nxt >= 0:
            # start loading the next page's PTE record and the frame after it: reclaim walks
            # frames in LRU order, which is random in memory
            prefetch(m.pte, m.rmap[nxt])
            prefetch(m.pflags, m.lru_prev[nxt])
        lru.lru_del(m, g, lru_idx, pfn)
        scanned += 1
        ref = folio_check_references(m, g, pfn)
        if ref == FOLIOREF_ACTIVATE:
            m.pflags[pfn] |= PG_active | PG_workingset
            lru.lru_add_head(m, g, lru_idx + 1, pfn)
            m.V[g, PGACTIVATE] += 1
            continue
        if ref == FOLIOREF_KEEP:
            lru.lru_add_head(m, g, lru_idx, pfn)
            continue
        vpn = m.rmap[pfn]
        dirty = (m.fref[pfn] & F_DIRTY) != 0
        if not file:
            if m.swp[vpn] < 0:
                slot = -1
                if sc[SC_MAY_SWAP]:
                    slot = swap.get_swap_page(m, g, vpn)
                if slot < 0:   # add_to_swap() failed: activate_locked
                    m.pflags[pfn] |= PG_active
                    lru.lru_add_head(m, g, LRU_ACTIVE_ANON, pfn)
                    m.V[g, PGACTIVATE] += 1
                    continue
                m.swp[vpn] = slot
                dirty = True
            if dirty:
                cost += host.host_readback(m, g, pfn, now)
                writes += 1
                m.V[g, PSWPOUT] += 1
                m.V[g, PGPGOUT] += 1
        elif dirty:
            # pageout() of a file page: start writeback, rotate, reclaim when written
            cost += host.host_readback(m, g, pfn, now)
            writes += 1
            m.V[g, PGPGOUT] += 1
            m.fref[pfn] = clear_bits(m.fref[pfn], F_DIRTY)
            m.pflags[pfn] |= PG_reclaim
            lru.lru_add_head(m, g, lru_idx, pfn)
            m.V[g, PGROTATED] += 1
            continue
        evict(m, g, pfn, vpn, now)
        reclaimed += 1
    if writes:
        cost += swap.swap_write_ns(m, g, writes)
        workingset.lru_note_cost(m, g, file, writes)
    cost += scanned * m.P[g, P_KSWAPD_SCAN_NS]
    if sc[SC_IS_KSWAPD]:
        m.V[g, PGSCAN_KSWAPD] += scanned
        m.V[g, PGSTEAL_KSWAPD] += reclaimed
    else:
        m.V[g, PGSCAN_DIRECT] += scanned
        m.V[g, PGSTEAL_DIRECT] += reclaimed
    sc[SC_NR_SCANNED] += scanned
    sc[SC_NR_RECLAIMED] += reclaimed
    sc[SC_COST_NS] += cost
    return reclaimed


@kernel
def shrink_active_list(m, g, nr_to_scan, lru_idx, sc):
    """shrink_active_list(): deactivate nr_to_scan pages from the active tail.

    The accessed bits are tested (and so cleared) but, without VM_EXEC mappings, every page
    moves to the inactive list, marked PG_workingset.
    """
    inactive = lru_idx - 1
    scanned = 0
    for _ in range(nr_to_scan):
        pfn = m.lru_tail[g, lru_idx]
        if pfn < 0:
            break
        lru.lru_del(m, g, lru_idx, pfn)
        scanned += 1
        folio_referenced(m, pfn)
        m.pflags[pfn] = clear_bits(m.pflags[pfn], PG_active) | PG_workingset
        lru.lru_add_head(m, g, inactive, pfn)
    m.V[g, PGREFILL] += scanned
    m.V[g, PGDEACTIVATE] += scanned
    sc[SC_COST_NS] += scanned * m.P[g, P_KSWAPD_SCAN_NS]


@kernel
def can_reclaim_anon_pages(m, g):
    return swap.get_nr_swap_pages(m, g) > 0


@kernel
def get_scan_count(m, g, sc, nr):
    """get_scan_count(): how many pages of each list to scan at this priority."""
    prio = sc[SC_PRIORITY]
    swappiness = m.P[g, P_SWAPPINESS]
    free = m.S[g, S_NR_FREE]
    file = lru.lru_pages(m, g, True)
    deactivate_anon = lru.inactive_is_low(m, g, LRU_INACTIVE_ANON)
    deactivate_file = lru.inactive_is_low(m, g, LRU_INACTIVE_FILE)
    file_is_tiny = (file + free <= m.P[g, P_WMARK_HIGH] and not deactivate_anon
                    and (m.lru_size[g, LRU_INACTIVE_ANON] >> prio) > 0)
    cache_trim_mode = (m.lru_size[g, LRU_INACTIVE_FILE] >> prio) > 0 and not deactivate_file
    if not sc[SC_MAY_SWAP] or not can_reclaim_anon_pages(m, g):
        balance = SCAN_FILE
    elif prio == 0 and swappiness:
        balance = SCAN_EQUAL
    elif file_is_tiny:
        balance = SCAN_ANON
    elif cache_trim_mode:
        balance = SCAN_FILE
    else:
        balance = SCAN_FRACT
    total_cost = m.S[g, S_ANON_COST] + m.S[g, S_FILE_COST]
    anon_cost = total_cost + m.S[g, S_ANON_COST]
    file_cost = total_cost + m.S[g, S_FILE_COST]
    total_cost = anon_cost + file_cost
    ap = swappiness * (total_cost + 1) // (anon_cost + 1)
    fp = (200 - swappiness) * (total_cost + 1) // (file_cost + 1)
    denominator = ap + fp
    for l in range(4):
        is_file = l >= LRU_INACTIVE_FILE
        scan = m.lru_size[g, l] >> prio
        if balance == SCAN_FRACT:
            scan = scan * (fp if is_file else ap) // max(denominator, 1)
        elif balance == SCAN_FILE and not is_file:
            scan = 0
        elif balance == SCAN_ANON and is_file:
            scan = 0
        nr[l] = scan
    return deactivate_anon, deactivate_file


@kernel
def shrink_lruvec(m, g, sc, now):
    """shrink_lruvec(): scan the four lists in SWAP_CLUSTER_MAX chunks towards their targets."""
    nr = m.scratch[sc[SC_IS_KSWAPD], NR_SC:NR_SC + 4]
    deactivate_anon, deactivate_file = get_scan_count(m, g, sc, nr)
    reclaimed = 0
    while nr[LRU_INACTIVE_ANON] or nr[LRU_ACTIVE_FILE] or nr[LRU_INACTIVE_FILE]:
        for l in range(4):
            if nr[l] == 0:
                continue
            n = min(nr[l], SWAP_CLUSTER_MAX)
            nr[l] -= n
            if l == LRU_ACTIVE_ANON or l == LRU_ACTIVE_FILE:
                if (deactivate_file if l == LRU_ACTIVE_FILE else deactivate_anon):
                    shrink_active_list(m, g, n, l, sc)
            else:
                reclaimed += shrink_inactive_list(m, g, n, l, sc, now)
        if reclaimed >= sc[SC_NR_TO_RECLAIM]:
            break
    if can_reclaim_anon_pages(m, g) and lru.inactive_is_low(m, g, LRU_INACTIVE_ANON):
        shrink_active_list(m, g, SWAP_CLUSTER_MAX, LRU_ACTIVE_ANON, sc)


@kernel
def shrink_node(m, g, sc, now):
    """shrink_node(): LRU lists, then the slab shrinkers, then a vmpressure report."""
    scanned0 = sc[SC_NR_SCANNED]
    reclaimed0 = sc[SC_NR_RECLAIMED]
    shrink_lruvec(m, g, sc, now)
    nr_scanned = sc[SC_NR_SCANNED] - scanned0
    shrinker.shrink_slab(m, g, sc[SC_PRIORITY], nr_scanned, now)
    sc[SC_NR_RECLAIMED] += m.S[g, S_RECLAIMED_SLAB]      # reclaim_state->reclaimed_slab
    m.S[g, S_RECLAIMED_SLAB] = 0
    sc[SC_COST_NS] += m.S[g, S_CALLBACK_NS]              # shrinkers' own waits (balloon)
    m.S[g, S_CALLBACK_NS] = 0
    vmpressure.vmpressure(m, g, sc[SC_NR_SCANNED] - scanned0,
                          sc[SC_NR_RECLAIMED] - reclaimed0)


@kernel
def try_to_free_pages(m, g, nr_to_reclaim, may_swap, now):
    """try_to_free_pages() / do_try_to_free_pages(): direct reclaim by the allocating task.

    Returns (nr_reclaimed, cost_ns): the pages freed and the time the caller stalled.
    """
    m.V[g, ALLOCSTALL] += 1
    sc = m.scratch[0, :NR_SC]
    init_scan_control(sc, nr_to_reclaim, DEF_PRIORITY, 0)
    sc[SC_MAY_SWAP] = may_swap
    for prio in range(DEF_PRIORITY, -1, -1):
        vmpressure.vmpressure_prio(m, g, prio)
        sc[SC_PRIORITY] = prio
        shrink_node(m, g, sc, now)
        if sc[SC_NR_RECLAIMED] >= nr_to_reclaim:
            break
    if sc[SC_NR_RECLAIMED] > 0:
        m.S[g, S_KSWAPD_FAILURES] = 0
    return sc[SC_NR_RECLAIMED], sc[SC_COST_NS]


@kernel
def pgdat_balanced(m, g):
    return m.S[g, S_NR_FREE] >= m.P[g, P_WMARK_HIGH]


@kernel
def wakeup_kswapd(m, g, now):
    """wakeup_kswapd(): called when an allocation finds free memory below the low watermark."""
    if m.S[g, S_KSWAPD_AWAKE] or m.S[g, S_KSWAPD_FAILURES] >= MAX_RECLAIM_RETRIES:
        return
    m.S[g, S_KSWAPD_AWAKE] = 1
    m.S[g, S_KSWAPD_PRIO] = DEF_PRIORITY
    m.V[g, KSWAPD_WAKE] += 1
    m.V[g, PAGEOUTRUN] += 1
    if m.S[g, S_KSWAPD_CLOCK] < now:
        m.S[g, S_KSWAPD_CLOCK] = now


@kernel_inline
def kswapd_behind(m, g, now):
    """kswapd is awake and its clock has not reached ``now``: it has passes to run."""
    return m.S[g, S_KSWAPD_AWAKE] and m.S[g, S_KSWAPD_CLOCK] < now


@kernel
def kswapd(m, g, now):
    """kswapd's balance_pgdat(), run concurrently up to ``now``.

    Each pass reclaims max(high_wmark, SWAP_CLUSTER_MAX) pages at the current priority; the
    priority drops when a pass scanned less than its target or reclaimed nothing; kswapd
    sleeps once free >= high, or after MAX_RECLAIM_RETRIES passes at priority 0 that freed
    nothing (pgdat->kswapd_failures, reset by any later successful reclaim).
    """
    while kswapd_behind(m, g, now):
        if pgdat_balanced(m, g):
            m.S[g, S_KSWAPD_AWAKE] = 0
            break
        prio = m.S[g, S_KSWAPD_PRIO]
        sc = m.scratch[1, :NR_SC]
        init_scan_control(sc, max(m.P[g, P_WMARK_HIGH], SWAP_CLUSTER_MAX), prio, 1)
        shrink_node(m, g, sc, m.S[g, S_KSWAPD_CLOCK])
        m.S[g, S_KSWAPD_CLOCK] += max(sc[SC_COST_NS], m.P[g, P_KSWAPD_SCAN_NS])
        if sc[SC_NR_RECLAIMED] > 0:
            m.S[g, S_KSWAPD_FAILURES] = 0
        if sc[SC_NR_SCANNED] < sc[SC_NR_TO_RECLAIM] or sc[SC_NR_RECLAIMED] == 0:
            if prio > 0:
                m.S[g, S_KSWAPD_PRIO] = prio - 1
            elif sc[SC_NR_RECLAIMED] == 0:
                m.S[g, S_KSWAPD_FAILURES] += 1
                m.S[g, S_KSWAPD_PRIO] = DEF_PRIORITY
                if m.S[g, S_KSWAPD_FAILURES] >= MAX_RECLAIM_RETRIES:
                    m.S[g, S_KSWAPD_AWAKE] = 0
