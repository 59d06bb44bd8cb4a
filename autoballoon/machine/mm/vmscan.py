"""Page reclaim: the inactive/active list scanners, scan balance, kswapd and direct reclaim.

Mirrors mm/vmscan.c of Linux 6.1: ``folio_check_references``, ``shrink_folio_list`` (inside
``shrink_inactive_list``), ``shrink_active_list``, ``get_scan_count`` (SCAN_FILE / SCAN_ANON /
SCAN_FRACT with swappiness and the anon/file reclaim costs), ``shrink_lruvec``, ``shrink_node``
(LRU lists, slab shrinkers, vmpressure, the writeback throttling flags), ``do_try_to_free_pages``
(the priority loop from DEF_PRIORITY = 12 to 0) and kswapd's ``balance_pgdat``.

A page's trip through reclaim, as in 6.1 (mm/writeback.py has the write's side):
- an unreferenced anonymous page gets a swap slot (``add_to_swap``), is unmapped (its PTE now
  points to swap: the next access is a minor fault on the swap cache) and, being dirty, written
  (``pageout``): it goes back to the inactive head with PG_writeback | PG_reclaim, *not freed*;
  the reclaimer pays the submission, not the I/O. When the write completes the page moves to the
  inactive tail, and a later scan finds it clean and frees it (``pgsteal`` then);
- a page met while its write is in flight is activated (kswapd with PGDAT_WRITEBACK counts it
  ``nr_immediate`` and sleeps until a write completes, at most 100 ms);
- a clean page (file, or anon with a valid swap copy) is freed at once;
- a dirty file page is never written by direct reclaim: it gets PG_reclaim and is activated, and
  waits for the flusher; kswapd writes it on its second visit, once a pass met only dirty file
  pages (PGDAT_DIRTY); a referenced-once dirty file page (FOLIOREF_RECLAIM_CLEAN) stays.
So reclaim efficiency (steal/scan) under swap pressure is about 1/3-1/2, not 1, and vmpressure
reads MEDIUM, as on a real guest.

Linux 3.7 (``P_KERNEL_OLD``) differs here in: referenced anon pages on the inactive list are
activated at once; a page under writeback is kept on the inactive list, not activated; a dirty
file page is kept with PG_reclaim unless kswapd scans at priority < DEF_PRIORITY - 2;
``get_scan_count`` balances with ``recent_scanned`` / ``recent_rotated`` (zone_reclaim_stat),
with no file_is_tiny / cache_trim_mode; ``shrink_lruvec`` stops early only below
DEF_PRIORITY; ``inactive_is_low`` uses ``active > inactive`` for file; there are no shadow
entries or refault detection (workingset.c arrived in 3.15); new anon pages start active; and the
old ``shrink_slab`` (mm/shrinker.py).

Simplifications (each a documented choice): one node, one zone pool (mm/watermark.py), root memcg
only; order-0 pages, no compaction or THP; ``shrink_lruvec`` stops once ``nr_to_reclaim`` pages
are reclaimed (6.1 scales the remaining targets instead); ``may_deactivate`` uses
``inactive_is_low`` only; no VM_EXEC protection (no executable mappings are modelled); a mapped
file page stays mapped while it is written (only anonymous pages are unmapped for writeback);
direct reclaimers are throttled only when a pass at priority 1 freed nothing (one jiffy,
VMSCAN_THROTTLE_NOPROGRESS), not on congestion or on too many isolated pages; kswapd is a concurrent thread: it runs whole passes of
``max(high_wmark, SWAP_CLUSTER_MAX)`` pages up to the current time, each taking
``scanned x kswapd_scan_ns`` + submissions.
"""

from autoballoon.machine.host import memory as host
from autoballoon.machine.jit import clear_bits, kernel, kernel_inline, prefetch
from autoballoon.machine.layout import (
    ALLOCSTALL, KSWAPD_WAKE, NR_VMSCAN_IMMEDIATE_RECLAIM, NR_VMSCAN_WRITE, P_KERNEL_OLD,
    P_KSWAPD_SCAN_NS, P_NSLOTS, P_SWAPPINESS, P_WMARK_HIGH, PAGEOUTRUN, PGACTIVATE,
    PGDEACTIVATE, PGREFILL, PGSCAN_DIRECT, PGSCAN_KSWAPD, PGSTEAL_DIRECT, PGSTEAL_KSWAPD,
    PSWPOUT, S_ANON_COST, S_CALLBACK_NS, S_FILE_COST, S_KSWAPD_AWAKE, S_KSWAPD_CLOCK,
    S_KSWAPD_FAILURES, S_KSWAPD_PRIO, S_NR_FREE, S_PGDAT_FLAGS, S_RECENT_ROTATED_ANON,
    S_RECENT_SCANNED_ANON, S_RECLAIMED_SLAB)
from autoballoon.machine.mm import buddy, lru, shrinker, swap, vmpressure, workingset, writeback
from autoballoon.machine.mm.constants import (
    BIO_SUBMIT_NS, DEF_PRIORITY, F_DIRTY, F_UNMAPPED, F_WPROTECT, F_YOUNG, LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE, MAX_RECLAIM_RETRIES, PGDAT_DIRTY,
    PGDAT_WRITEBACK, SWAP_CLUSTER_MAX, WRITEBACK_THROTTLE_NS, NOPROGRESS_THROTTLE_NS, PG_active, PG_reclaim,
    PG_referenced, PG_swapbacked, PG_workingset, PG_writeback)

# enum folio_references
FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, FOLIOREF_KEEP, FOLIOREF_ACTIVATE = 0, 1, 2, 3
# enum scan_balance
SCAN_EQUAL, SCAN_FRACT, SCAN_ANON, SCAN_FILE = 0, 1, 2, 3
# scan_control rows: they never nest
DIRECT, KSWAPD = 0, 1


@kernel
def init_scan_control(m, who, nr_to_reclaim, priority):
    """The scan_control of direct reclaim (DIRECT) or kswapd (KSWAPD), filled afresh."""
    sc = m.scan_control[who]
    sc.nr_to_reclaim = nr_to_reclaim
    sc.priority = priority
    sc.may_swap = 1
    sc.is_kswapd = who == KSWAPD
    sc.nr_scanned = 0
    sc.nr_reclaimed = 0
    sc.cost_ns = 0
    sc.callback_ns = 0
    clear_sc_nr(sc)
    return sc


@kernel
def clear_sc_nr(sc):
    """memset(&sc->nr, 0, sizeof(sc->nr)) at the start of a shrink_node pass."""
    sc.nr_taken = 0
    sc.nr_file_taken = 0
    sc.nr_writeback = 0
    sc.nr_immediate = 0
    sc.nr_unqueued_dirty = 0


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
    """__remove_mapping(): the page leaves the page or swap cache (a shadow entry stays) and
    its frame is freed; an anonymous page's PTE already points to its swap slot."""
    m.pte[vpn] = -1
    workingset.workingset_eviction(m, g, pfn, vpn)
    buddy.free_frame(m, g, pfn, now)


@kernel
def activate_locked(m, g, pfn, lru_idx):
    """shrink_folio_list's activate_locked: the page goes back active (counted as rotated in
    3.x, as aging the nonresident clock in 6.1's move_folios_to_lru); a mapped page's swap slot
    is freed when swap is more than half full (not while it is being written)."""
    vpn = m.rmap[pfn]
    flags = m.pflags[pfn]
    if (flags & PG_swapbacked) and m.swp[vpn] >= 0 and swap.vm_swap_full(m, g) and \
            not (flags & PG_writeback) and not (m.fref[pfn] & F_UNMAPPED):
        swap.swap_free(m, g, vpn)
        m.fref[pfn] |= F_DIRTY
    m.pflags[pfn] = flags | PG_active
    lru.lru_add_head(m, g, lru_idx | 1, pfn)
    m.V[g, PGACTIVATE] += 1
    if m.P[g, P_KERNEL_OLD]:
        m.S[g, S_RECENT_ROTATED_ANON + (lru_idx >> 1)] += 1
    else:
        workingset.workingset_age_nonresident(m, g, 1)


@kernel
def writeback_met(m, g, pfn, sc):
    """A page found under writeback. Returns True if it is activated (6.1), False if it stays
    on the inactive list (3.x keeps it). Case 1 (6.1 kswapd meeting its own PG_reclaim page
    with PGDAT_WRITEBACK set) counts nr_immediate; otherwise (case 2, both kernels) the page is
    marked PG_reclaim, to be rotated when its write ends, and counts nr_writeback."""
    old = m.P[g, P_KERNEL_OLD] != 0
    if not old and sc.is_kswapd and (m.pflags[pfn] & PG_reclaim) and \
            (m.S[g, S_PGDAT_FLAGS] & PGDAT_WRITEBACK):
        sc.nr_immediate += 1
    else:
        m.pflags[pfn] |= PG_reclaim
        sc.nr_writeback += 1
    return not old


# what reclaim does with a dirty file page
WRITE_IT, KEEP_IT, ACTIVATE_IT = 0, 1, 2


@kernel
def dirty_file_action(m, g, pfn, sc, ref):
    """A dirty file page: WRITE_IT (kswapd writes it now), or leave it to the flusher with
    PG_reclaim, so that it is reclaimed as soon as it is written: ACTIVATE_IT (6.1) or KEEP_IT
    (3.x, and a referenced-once page, FOLIOREF_RECLAIM_CLEAN)."""
    flags = m.pflags[pfn]
    if m.P[g, P_KERNEL_OLD]:
        may_write = sc.is_kswapd and sc.priority < DEF_PRIORITY - 2
    else:
        may_write = sc.is_kswapd and (flags & PG_reclaim) and \
            (m.S[g, S_PGDAT_FLAGS] & PGDAT_DIRTY)
    if not may_write:
        m.pflags[pfn] = flags | PG_reclaim
        m.V[g, NR_VMSCAN_IMMEDIATE_RECLAIM] += 1
        return KEEP_IT if m.P[g, P_KERNEL_OLD] else ACTIVATE_IT
    if ref == FOLIOREF_RECLAIM_CLEAN:
        return KEEP_IT
    return WRITE_IT


@kernel
def shrink_inactive_list(m, g, nr_to_scan, lru_idx, sc, now):
    """shrink_inactive_list() + shrink_folio_list(): scan nr_to_scan pages from the tail."""
    file = lru_idx == LRU_INACTIVE_FILE
    old = m.P[g, P_KERNEL_OLD] != 0
    # isolate_lru_folios() takes the batch off the list first: a page put back is not seen again
    nr_taken = min(nr_to_scan, m.lru_size[g, lru_idx])
    reclaimed = 0
    writes = 0
    readback_ns = 0
    unqueued_dirty = 0
    for _ in range(nr_taken):
        pfn = m.lru_tail[g, lru_idx]
        nxt = m.lru_prev[pfn]
        if nxt >= 0:
            # start loading the next page's PTE record and the frame after it: reclaim walks
            # frames in LRU order, which is random in memory
            prefetch(m.pte, m.rmap[nxt])
            prefetch(m.pflags, m.lru_prev[nxt])
        lru.lru_del(m, g, lru_idx, pfn)
        vpn = m.rmap[pfn]
        dirty = (m.fref[pfn] & F_DIRTY) != 0
        if m.pflags[pfn] & PG_writeback:
            if writeback_met(m, g, pfn, sc):
                activate_locked(m, g, pfn, lru_idx)
            else:
                lru.lru_add_head(m, g, lru_idx, pfn)
            continue
        unqueued_dirty += dirty and file
        ref = folio_check_references(m, g, pfn)
        if ref == FOLIOREF_ACTIVATE:
            activate_locked(m, g, pfn, lru_idx)
            continue
        if ref == FOLIOREF_KEEP:
            lru.lru_add_head(m, g, lru_idx, pfn)
            continue
        if not file:
            if m.swp[vpn] < 0:                                  # add_to_swap()
                slot = swap.get_swap_page(m, g, vpn) if sc.may_swap else -1
                if slot < 0:
                    activate_locked(m, g, pfn, lru_idx)
                    continue
                m.swp[vpn] = slot
                dirty = True
            # try_to_unmap(): the PTE now holds the swap entry; the PTE dirty bit moves to the
            # page
            m.fref[pfn] = clear_bits(m.fref[pfn], F_WPROTECT) | F_UNMAPPED
        elif dirty:
            action = dirty_file_action(m, g, pfn, sc, ref)
            if action == ACTIVATE_IT:
                activate_locked(m, g, pfn, lru_idx)
                continue
            if action == KEEP_IT:
                lru.lru_add_head(m, g, lru_idx, pfn)
                continue
        if dirty:                                               # pageout()
            m.fref[pfn] = clear_bits(m.fref[pfn], F_DIRTY)
            m.pflags[pfn] |= PG_reclaim
            readback_ns += host.host_readback(m, g, pfn, now)   # double paging
            writeback.queue_write(m, g, pfn)
            lru.lru_add_head(m, g, lru_idx, pfn)
            writes += 1
            m.V[g, NR_VMSCAN_WRITE] += 1
            if not file:
                m.V[g, PSWPOUT] += 1
            continue
        evict(m, g, pfn, vpn, now)
        reclaimed += 1
    blocked = 0
    if writes:
        done, blocked = writeback.submit_write(m, g, now, writes, readback_ns)
        writeback.commit_writes(m, g, writes, done)
        if not old:
            workingset.lru_note_cost(m, g, file, writes)
    if nr_taken and unqueued_dirty == nr_taken:
        writeback.wakeup_flusher(m, g, now)
    if old:
        m.S[g, S_RECENT_SCANNED_ANON + file] += nr_taken
    sc.nr_taken += nr_taken
    sc.nr_file_taken += nr_taken if file else 0
    sc.nr_unqueued_dirty += unqueued_dirty
    if sc.is_kswapd:
        m.V[g, PGSCAN_KSWAPD] += nr_taken
        m.V[g, PGSTEAL_KSWAPD] += reclaimed
    else:
        m.V[g, PGSCAN_DIRECT] += nr_taken
        m.V[g, PGSTEAL_DIRECT] += reclaimed
    sc.nr_scanned += nr_taken
    sc.nr_reclaimed += reclaimed
    sc.cost_ns += nr_taken * m.P[g, P_KSWAPD_SCAN_NS] + writes * BIO_SUBMIT_NS + blocked
    return reclaimed


@kernel
def shrink_active_list(m, g, nr_to_scan, lru_idx, sc):
    """shrink_active_list(): deactivate nr_to_scan pages from the active tail.

    The accessed bits are tested (and so cleared) but, without VM_EXEC mappings, every page
    moves to the inactive list, marked PG_workingset. 3.x counts the referenced ones as
    rotated (zone_reclaim_stat), although they are deactivated too.
    """
    inactive = lru_idx - 1
    scanned = 0
    referenced = 0
    for _ in range(nr_to_scan):
        pfn = m.lru_tail[g, lru_idx]
        if pfn < 0:
            break
        lru.lru_del(m, g, lru_idx, pfn)
        scanned += 1
        referenced += folio_referenced(m, pfn)
        m.pflags[pfn] = clear_bits(m.pflags[pfn], PG_active) | PG_workingset
        lru.lru_add_head(m, g, inactive, pfn)
    if m.P[g, P_KERNEL_OLD]:
        file = inactive >> 1
        m.S[g, S_RECENT_SCANNED_ANON + file] += scanned
        m.S[g, S_RECENT_ROTATED_ANON + file] += referenced
    m.V[g, PGREFILL] += scanned
    m.V[g, PGDEACTIVATE] += scanned
    sc.cost_ns += scanned * m.P[g, P_KSWAPD_SCAN_NS]


@kernel
def can_reclaim_anon_pages(m, g):
    return swap.get_nr_swap_pages(m, g) > 0


@kernel
def scan_balance(m, g, sc, deactivate_anon, deactivate_file):
    """6.1 get_scan_count()'s choice of balance: SCAN_FILE, SCAN_EQUAL, SCAN_ANON or
    SCAN_FRACT."""
    prio = sc.priority
    file = lru.lru_pages(m, g, True)
    file_is_tiny = (file + m.S[g, S_NR_FREE] <= m.P[g, P_WMARK_HIGH] and not deactivate_anon
                    and (m.lru_size[g, LRU_INACTIVE_ANON] >> prio) > 0)
    cache_trim_mode = (m.lru_size[g, LRU_INACTIVE_FILE] >> prio) > 0 and not deactivate_file
    if not sc.may_swap or not can_reclaim_anon_pages(m, g):
        return SCAN_FILE
    if prio == 0 and m.P[g, P_SWAPPINESS]:
        return SCAN_EQUAL
    if file_is_tiny:
        return SCAN_ANON
    if cache_trim_mode:
        return SCAN_FILE
    return SCAN_FRACT


@kernel
def fraction_61(m, g):
    """6.1: anon/file pressure from swappiness and the reclaim costs (lru_note_cost)."""
    swappiness = m.P[g, P_SWAPPINESS]
    total_cost = m.S[g, S_ANON_COST] + m.S[g, S_FILE_COST]
    anon_cost = total_cost + m.S[g, S_ANON_COST]
    file_cost = total_cost + m.S[g, S_FILE_COST]
    total_cost = anon_cost + file_cost
    ap = swappiness * (total_cost + 1) // (anon_cost + 1)
    fp = (200 - swappiness) * (total_cost + 1) // (file_cost + 1)
    return ap, fp, max(ap + fp, 1)


@kernel
def fraction_37(m, g):
    """3.x: anon/file pressure from swappiness and the fraction of recently scanned pages
    that were rotated (zone_reclaim_stat), halved once scanned exceeds a quarter of a list."""
    swappiness = m.P[g, P_SWAPPINESS]
    for file in range(2):
        size = lru.lru_pages(m, g, file == 1)
        if m.S[g, S_RECENT_SCANNED_ANON + file] > size // 4:
            m.S[g, S_RECENT_SCANNED_ANON + file] //= 2
            m.S[g, S_RECENT_ROTATED_ANON + file] //= 2
    ap = swappiness * (m.S[g, S_RECENT_SCANNED_ANON] + 1)
    ap //= m.S[g, S_RECENT_ROTATED_ANON] + 1
    fp = (200 - swappiness) * (m.S[g, S_RECENT_SCANNED_ANON + 1] + 1)
    fp //= m.S[g, S_RECENT_ROTATED_ANON + 1] + 1
    return ap, fp, ap + fp + 1


@kernel
def scan_balance_37(m, g, sc):
    """3.x get_scan_count()'s balance and fractions: no swap -> file only; else, with little
    page cache (file + free <= high) anon only, otherwise the rotation fractions (computing them
    ages zone_reclaim_stat); at priority 0 with swappiness every list is scanned whole, the
    little-page-cache case included (the ``sc->priority || noswap || !swappiness`` test)."""
    if not sc.may_swap or m.P[g, P_NSLOTS] == 0 or not can_reclaim_anon_pages(m, g):
        return SCAN_FILE, 0, 1, 1
    ap, fp, denominator = 1, 0, 1
    tiny = lru.lru_pages(m, g, True) + m.S[g, S_NR_FREE] <= m.P[g, P_WMARK_HIGH]
    if not tiny:
        ap, fp, denominator = fraction_37(m, g)
    if sc.priority == 0 and m.P[g, P_SWAPPINESS]:
        return SCAN_EQUAL, ap, fp, denominator
    if tiny:
        return SCAN_ANON, ap, fp, denominator
    return SCAN_FRACT, ap, fp, denominator


@kernel
def get_scan_count(m, g, sc):
    """get_scan_count(): how many pages of each list to scan at this priority (sc.nr)."""
    prio = sc.priority
    deactivate_anon = lru.inactive_is_low(m, g, LRU_INACTIVE_ANON)
    deactivate_file = lru.inactive_is_low(m, g, LRU_INACTIVE_FILE)
    if m.P[g, P_KERNEL_OLD]:
        balance, ap, fp, denominator = scan_balance_37(m, g, sc)
    else:
        balance = scan_balance(m, g, sc, deactivate_anon, deactivate_file)
        ap, fp, denominator = fraction_61(m, g)
    for l in range(4):
        is_file = l >= LRU_INACTIVE_FILE
        scan = m.lru_size[g, l] >> prio
        if balance == SCAN_FRACT:
            scan = scan * (fp if is_file else ap) // denominator
        elif balance == SCAN_FILE and not is_file:
            scan = 0
        elif balance == SCAN_ANON and is_file:
            scan = 0
        sc.nr[l] = scan
    return deactivate_anon, deactivate_file


@kernel
def reclaim_clock(sc, start):
    """The reclaimer's time now: it started at ``start`` and has spent what ``sc`` counts."""
    return start + sc.cost_ns + sc.callback_ns


@kernel
def shrink_lruvec(m, g, sc, now):
    """shrink_lruvec(): scan the four lists in SWAP_CLUSTER_MAX chunks towards their targets."""
    nr = sc.nr
    deactivate_anon, deactivate_file = get_scan_count(m, g, sc)
    old = m.P[g, P_KERNEL_OLD] != 0
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
                reclaimed += shrink_inactive_list(m, g, n, l, sc, reclaim_clock(sc, now))
        if reclaimed >= sc.nr_to_reclaim and (not old or sc.priority < DEF_PRIORITY):
            break
    # can_age_anon_pages(): a swap device exists (total_swap_pages), full or not
    if m.P[g, P_NSLOTS] > 0 and lru.inactive_is_low(m, g, LRU_INACTIVE_ANON):
        shrink_active_list(m, g, SWAP_CLUSTER_MAX, LRU_ACTIVE_ANON, sc)


@kernel
def shrink_node(m, g, sc, now):
    """shrink_node() by a reclaimer that started at ``now``: LRU lists, then the slab shrinkers, then a vmpressure report; kswapd
    sets the pgdat flags from what the pass met, and a pass that freed something revives a
    kswapd that had given up (pgdat->kswapd_failures = 0)."""
    scanned0 = sc.nr_scanned
    reclaimed0 = sc.nr_reclaimed
    clear_sc_nr(sc)
    writeback.writeback_end(m, g, reclaim_clock(sc, now))   # the writes completed by now
    shrink_lruvec(m, g, sc, now)
    shrinker.shrink_slab(m, g, sc.priority, sc.nr_scanned - scanned0, reclaim_clock(sc, now))
    sc.nr_reclaimed += m.S[g, S_RECLAIMED_SLAB]          # reclaim_state->reclaimed_slab
    m.S[g, S_RECLAIMED_SLAB] = 0
    sc.callback_ns += m.S[g, S_CALLBACK_NS]              # shrinkers' own waits (balloon)
    m.S[g, S_CALLBACK_NS] = 0
    vmpressure.vmpressure(m, g, sc.nr_scanned - scanned0, sc.nr_reclaimed - reclaimed0)
    if sc.is_kswapd and not m.P[g, P_KERNEL_OLD]:
        if sc.nr_writeback and sc.nr_writeback == sc.nr_taken:
            m.S[g, S_PGDAT_FLAGS] |= PGDAT_WRITEBACK
        if sc.nr_unqueued_dirty == sc.nr_file_taken:
            m.S[g, S_PGDAT_FLAGS] |= PGDAT_DIRTY
        if sc.nr_immediate:                  # reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK)
            sc.cost_ns += throttle_ns(m, g, reclaim_clock(sc, now))
    if sc.nr_reclaimed > reclaimed0:
        m.S[g, S_KSWAPD_FAILURES] = 0


@kernel
def throttle_ns(m, g, now):
    """How long kswapd sleeps in reclaim_throttle(): until a write completes, at most 100 ms."""
    done = writeback.next_completion(m, g)
    if done < 0:
        return WRITEBACK_THROTTLE_NS
    return min(max(done - now, 0), WRITEBACK_THROTTLE_NS)


@kernel
def try_to_free_pages(m, g, nr_to_reclaim, may_swap, now):
    """try_to_free_pages() / do_try_to_free_pages(): direct reclaim by the allocating task.

    Returns (nr_reclaimed, cost_ns, callback_ns): the pages freed, the time the caller spent
    reclaiming, and the part of it that registered callbacks (the balloon) made it wait.
    """
    m.V[g, ALLOCSTALL] += 1
    sc = init_scan_control(m, DIRECT, nr_to_reclaim, DEF_PRIORITY)
    sc.may_swap = may_swap
    for prio in range(DEF_PRIORITY, -1, -1):
        vmpressure.vmpressure_prio(m, g, prio)
        sc.priority = prio
        shrink_node(m, g, sc, now)
        if sc.nr_reclaimed >= nr_to_reclaim:
            break
        if prio == 1 and sc.nr_reclaimed == 0 and not m.P[g, P_KERNEL_OLD]:
            # consider_reclaim_throttle(): no progress at a high priority (everything met was
            # in flight): reclaim_throttle(VMSCAN_THROTTLE_NOPROGRESS), one jiffy
            sc.cost_ns += NOPROGRESS_THROTTLE_NS
    return sc.nr_reclaimed, sc.cost_ns, sc.callback_ns


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
def kswapd_sleep(m, g):
    """prepare_kswapd_sleep(): balanced, kswapd clears the congestion flags and sleeps."""
    m.S[g, S_KSWAPD_AWAKE] = 0
    m.S[g, S_PGDAT_FLAGS] = 0


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
            kswapd_sleep(m, g)
            break
        prio = m.S[g, S_KSWAPD_PRIO]
        sc = init_scan_control(m, KSWAPD, max(m.P[g, P_WMARK_HIGH], SWAP_CLUSTER_MAX), prio)
        shrink_node(m, g, sc, m.S[g, S_KSWAPD_CLOCK])
        m.S[g, S_KSWAPD_CLOCK] += max(sc.cost_ns + sc.callback_ns, m.P[g, P_KSWAPD_SCAN_NS])
        if sc.nr_scanned < sc.nr_to_reclaim or sc.nr_reclaimed == 0:
            if prio > 0:
                m.S[g, S_KSWAPD_PRIO] = prio - 1
            elif sc.nr_reclaimed == 0:
                m.S[g, S_KSWAPD_FAILURES] += 1
                m.S[g, S_KSWAPD_PRIO] = DEF_PRIORITY
                if m.S[g, S_KSWAPD_FAILURES] >= MAX_RECLAIM_RETRIES:
                    kswapd_sleep(m, g)
