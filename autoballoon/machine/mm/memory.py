"""Page faults and page-cache accesses of the workload: the slow path of an access.

Mirrors mm/memory.c (``handle_mm_fault`` → ``do_anonymous_page``, ``do_swap_page`` with
``swapin_readahead`` / ``swap_cluster_readahead``, ``filemap_fault``), mm/filemap.c's read path
(``filemap_read``: a page-cache miss reads from disk, a hit calls ``folio_mark_accessed``) and
mm/swap.c's ``folio_mark_accessed`` / ``lru_cache_add``.

The fast path (an access to a resident, mapped, host-backed page only sets the accessed and dirty
bits) is inlined in mm/replay.py. Counted as the kernel counts: ``pgfault`` for every fault,
``pgmajfault`` when the fault waited for I/O, ``pswpin`` per page read from swap (readahead
included), ``pgpgin`` per page read from swap or disk; read() of an uncached page is I/O but no
fault.

Simplifications: a first anon touch allocates a page even for a read (no shared zero page);
file pages are read from a disk with the guest's swap-device timing, one page per miss (no file
readahead); swap readahead allocations may reclaim once but never OOM (__GFP_NORETRY), and the
reclaim time they cost is not charged to the faulting task; pages brought in by swap readahead
skip refault detection (no workingset_refault, their shadow entries stay until their own fault);
PTE dirty and PG_dirty are one bit.
"""
from autoballoon.machine.host import memory as host
from autoballoon.machine.jit import clear_bits, kernel, kernel_inline
from autoballoon.machine.layout import (
    P_FAULT_NS, P_KERNEL_OLD, P_NSLOTS, P_SWAP_BASE, PGACTIVATE, PGFAULT, PGMAJFAULT, PGPGIN,
    PSWPIN, S_RA_HITS, SWAP_RA, SWAP_RA_HIT)
from autoballoon.machine.mm import lru, page_alloc, swap, workingset
from autoballoon.machine.mm.constants import (
    F_DIRTY, F_HYOUNG, F_PRESENT, F_UNMAPPED, F_YOUNG, V_FILE, V_KIND_SET, V_MAPPED, PG_active,
    PG_referenced, PG_swapbacked, PG_workingset)
from autoballoon.trace.ops import OP_FILE, OP_SYSCALL, OP_WRITE


@kernel
def lru_cache_add(m, g, pfn, vpn, anon, active):
    """lru_cache_add(): a new page joins the inactive list, or the active one if activated."""
    flags = PG_swapbacked if anon else 0
    if active:
        flags |= PG_active | PG_workingset
    m.pflags[pfn] = flags
    m.rmap[pfn] = vpn
    m.pte[vpn] = pfn
    lru.lru_add_head(m, g, lru.folio_lru_list(flags), pfn)


@kernel
def folio_mark_accessed(m, g, pfn):
    """folio_mark_accessed(): second access to an unmapped page activates it."""
    flags = m.pflags[pfn]
    if not (flags & PG_referenced):
        m.pflags[pfn] = flags | PG_referenced
    elif not (flags & PG_active):
        l = lru.folio_lru_list(flags)
        lru.lru_del(m, g, l, pfn)
        m.pflags[pfn] = clear_bits(flags | PG_active, PG_referenced)
        lru.lru_add_head(m, g, l + 1, pfn)
        m.V[g, PGACTIVATE] += 1
        workingset.workingset_age_nonresident(m, g, 1)


@kernel_inline
def swap_readahead(m, g, vpn, now):
    """swap_cluster_readahead(): read the aligned window of slots around vpn's slot.

    Neighbours come in as unmapped swap-cache pages (F_UNMAPPED) on the inactive anon list.
    Returns the number of pages read besides vpn's own.
    """
    base = m.P[g, P_SWAP_BASE]
    offset = m.swp[vpn] - base
    win = swap.swapin_nr_pages(m, g, offset)
    if win <= 1:
        return 0
    start = offset & ~(win - 1)
    end = min(start + win, m.P[g, P_NSLOTS])
    extra = 0
    for off in range(start, end):
        other = m.slot_owner[base + off]
        if other < 0 or other == vpn or m.pte[other] >= 0:
            continue
        pfn, _ = page_alloc.alloc_pages(m, g, page_alloc.__GFP_NORETRY, now)
        if pfn < 0:
            break
        lru_cache_add(m, g, pfn, other, True, False)
        m.fref[pfn] |= F_UNMAPPED
        extra += 1
    m.V[g, SWAP_RA] += extra
    return extra


@kernel
def try_to_free_swap(m, g, vpn, pfn, op):
    """do_swap_page()'s should_try_to_free_swap(): on a write, or with swap more than half
    full, the swap copy is dropped and the page becomes dirty (memory holds the only copy)."""
    if m.swp[vpn] >= 0 and ((op & OP_WRITE) or swap.vm_swap_full(m, g)):
        swap.swap_free(m, g, vpn)
        m.fref[pfn] |= F_DIRTY


@kernel
def set_kind(m, vpn, op):
    """The first access decides a page's kind (anon or file, mapped or read())."""
    vf = m.vflags[vpn]
    if not (vf & V_KIND_SET):
        vf |= V_KIND_SET
        if op & OP_FILE:
            vf |= V_FILE
            if not (op & OP_SYSCALL):
                vf |= V_MAPPED
        m.vflags[vpn] = vf
    return vf


@kernel_inline
def fault_in(m, g, vpn, vf, op, now):
    """Bring a non-resident page in. Returns the stall in ns, or -1 if the workload died."""
    anon = not (vf & V_FILE)
    mapped = (vf & V_MAPPED) != 0 or anon
    pfn, stall = page_alloc.alloc_pages(m, g, page_alloc.GFP_HIGHUSER_MOVABLE, now)
    if pfn < 0:
        return -1
    stall += m.P[g, P_FAULT_NS] if mapped else 0
    if mapped:
        m.V[g, PGFAULT] += 1
    io_pages = 0
    if anon and m.swp[vpn] >= 0:                      # do_swap_page()
        io_pages = 1 + swap_readahead(m, g, vpn, now + stall)
        m.V[g, PSWPIN] += io_pages
    elif not anon:                                    # page cache miss: read from disk
        io_pages = 1
    active = False
    if io_pages:
        m.V[g, PGPGIN] += io_pages
        if mapped:
            m.V[g, PGMAJFAULT] += 1
        stall += swap.swap_read_ns(m, g, io_pages)
        active, _ = workingset.workingset_refault(m, g, vpn, not anon)
    if anon and not io_pages and m.P[g, P_KERNEL_OLD]:
        active = True       # 3.x: page_add_new_anon_rmap; a swap-in stays inactive (3.x too)
    lru_cache_add(m, g, pfn, vpn, anon, active)
    if anon:
        try_to_free_swap(m, g, vpn, pfn, op)
        if m.swp[vpn] < 0:
            m.fref[pfn] |= F_DIRTY                     # no copy in swap: must be written
    return stall


@kernel_inline
def access_slow(m, g, vpn, op, now):
    """Everything but the fast path. Returns the stall in ns, or -1 if the workload died."""
    vf = set_kind(m, vpn, op)
    stall = 0
    pfn = m.pte[vpn]
    if pfn < 0:
        stall = fault_in(m, g, vpn, vf, op, now)
        if stall < 0:
            return -1
        pfn = m.pte[vpn]
    elif m.fref[pfn] & F_UNMAPPED:                    # swap-cache hit after readahead
        m.fref[pfn] = clear_bits(m.fref[pfn], F_UNMAPPED)
        m.V[g, PGFAULT] += 1
        m.V[g, SWAP_RA_HIT] += 1
        m.S[g, S_RA_HITS] += 1
        stall += m.P[g, P_FAULT_NS]
        try_to_free_swap(m, g, vpn, pfn, op)
    if not (m.fref[pfn] & F_PRESENT):
        h = host.host_fault(m, g, pfn, now + stall)
        if h < 0:
            return -1
        stall += h
    if (vf & V_FILE) and not (vf & V_MAPPED):
        folio_mark_accessed(m, g, pfn)
        m.fref[pfn] |= F_HYOUNG
    else:
        m.fref[pfn] |= F_YOUNG | F_HYOUNG
    if op & OP_WRITE:
        m.fref[pfn] |= F_DIRTY
    return stall
