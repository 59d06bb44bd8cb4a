"""A slow, plain-Python reference model of one guest's LRU / reclaim path.

Written from the Linux sources' semantics (mm/vmscan.c, mm/swap.c, mm/swapfile.c,
mm/swap_state.c, mm/workingset.c, mm/vmpressure.c, mm/page_alloc.c of 6.1, and
shrink_page_list()/get_scan_count()/shrink_slab()/page_check_references() of 3.7) plus the
simplifications that autoballoon/mm/vmscan.py and mm/writeback.py document, with Python
containers instead of arrays: an LRU list is a ``deque`` of ``Page`` objects (left = head = most
recently added, right = tail = where reclaim takes from), a page's flags are a ``set`` of names,
the free list is a ``deque`` of pfns, the swap map a ``list`` of owners, the writes in flight a
``deque`` of ``Write`` records in submission order. It never calls a numba kernel.

Writeback is asynchronous, as in 6.1: pageout() marks a page PG_writeback | PG_reclaim and puts
it back; the write completes at a time the disk queue decides (requests transfer one after
another at the disk's bandwidth, each completing its latency later; a submitter waits when 256
pages' transfers are ahead of it); a reclaim pass first ends the writes completed by its clock
(folio_end_writeback -> folio_rotate_reclaimable: to the inactive tail), so a later scan frees
the page.

``Guest.from_state(m, g)`` reads guest g out of a MachineState, ``Guest.to_state()`` builds a
one-guest MachineState from a Guest (for hand-made starting states), ``Guest.diff(m, g)`` lists
every difference between the model and a MachineState (LRU order, free list order, page flags,
PTEs, swap map, shadows, scalars, vmstat counters).
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from autoballoon import uapi
from autoballoon.machine import callbacks
from autoballoon.machine import layout as L
from autoballoon.machine.mm import constants as c

# ---------------------------------------------------------------------------------------------
# names <-> bits
# ---------------------------------------------------------------------------------------------
PAGE_FLAG_BITS = {
    "lru": c.PG_lru, "active": c.PG_active, "referenced": c.PG_referenced,
    "swapbacked": c.PG_swapbacked, "pg_dirty": c.PG_dirty, "balloon": c.PG_balloon,
    "free": c.PG_free, "slab": c.PG_slab, "reclaim": c.PG_reclaim,
    "workingset": c.PG_workingset, "writeback": c.PG_writeback, "readahead": c.PG_readahead,
    "locked": c.PG_locked, "reserved": c.PG_reserved,
}
HW_BITS = {
    "young": c.F_YOUNG, "hyoung": c.F_HYOUNG, "dirty": c.F_DIRTY, "present": c.F_PRESENT,
    "hswapped": c.F_HSWAPPED, "unmapped": c.F_UNMAPPED, "wprotect": c.F_WPROTECT,
}
PGDAT_BITS = {"writeback": c.PGDAT_WRITEBACK, "dirty": c.PGDAT_DIRTY}
LRU_NAMES = {c.LRU_INACTIVE_ANON: "inactive_anon", c.LRU_ACTIVE_ANON: "active_anon",
             c.LRU_INACTIVE_FILE: "inactive_file", c.LRU_ACTIVE_FILE: "active_file"}
EVICTION_MASK = (1 << 30) - 1
BLOCK_PAGES = 1 << c.PAGEBLOCK_ORDER
QUEUE_DEPTH = 256                # a virtio-blk queue's nr_requests

# enum folio_references / scan_balance (names only: the model never shares the kernels' ints)
RECLAIM, RECLAIM_CLEAN, KEEP, ACTIVATE = "reclaim", "reclaim_clean", "keep", "activate"
SCAN_EQUAL, SCAN_FRACT, SCAN_ANON, SCAN_FILE = "equal", "fract", "anon", "file"
LOW, MEDIUM, CRITICAL = 0, 1, 2


def bits_to_names(value: int, table: dict[str, int], what: str) -> set[str]:
    names = {n for n, b in table.items() if value & b}
    rest = int(value) & ~sum(table.values())
    if rest:
        raise ValueError(f"unknown {what} bits {rest:#x}")
    return names


def names_to_bits(names: set[str], table: dict[str, int]) -> int:
    return sum(table[n] for n in names)


# ---------------------------------------------------------------------------------------------
# pure functions
# ---------------------------------------------------------------------------------------------
def int_sqrt(x: int) -> int:
    return math.isqrt(int(x))


def min_free_kbytes(managed_pages: int) -> int:
    """init_per_zone_wmark_min(): int_sqrt(lowmem_kbytes * 16), clamped to [128, 262144]."""
    kb = managed_pages * 4
    return max(128, min(262144, int_sqrt(16 * kb)))


def watermarks(managed_pages: int, watermark_scale_factor: int = 10) -> tuple[int, int, int]:
    """__setup_per_zone_wmarks() for one zone: (min, low, high) in pages."""
    wmin = min_free_kbytes(managed_pages) // 4            # kB -> 4 KiB pages
    delta = max(wmin // 4, managed_pages * watermark_scale_factor // 10000)
    return wmin, wmin + delta, wmin + delta + delta


def vmpressure_calc_level(scanned: int, reclaimed: int) -> int:
    """mm/vmpressure.c: pressure = (scale - reclaimed*scale/scanned) * 100 / scale."""
    pressure = 0
    if reclaimed < scanned:
        scale = scanned + reclaimed
        pressure = (scale - (reclaimed * scale) // scanned) * 100 // scale
    if pressure >= c.VMPRESSURE_LEVEL_CRITICAL:
        return CRITICAL
    if pressure >= c.VMPRESSURE_LEVEL_MED:
        return MEDIUM
    return LOW


@dataclass
class SwapReadahead:
    """mm/swap_state.c swapin_nr_pages(): the globals prev_offset, last_readahead_pages and
    swapin_readahead_hits, as Linux 6.1 keeps them (prev_offset moves only without hits)."""
    prev_offset: int = -2
    last_readahead_pages: int = 0
    hits: int = 0
    page_cluster: int = c.PAGE_CLUSTER

    def swapin_nr_pages(self, offset: int) -> int:
        max_pages = 1 << self.page_cluster
        if max_pages <= 1:
            return 1
        hits, self.hits = self.hits, 0
        pages = hits + 2
        if pages == 2:
            if abs(offset - self.prev_offset) != 1:
                pages = 1
        else:
            pages = 1 << (pages - 1).bit_length()       # round up to a power of two ...
            pages = max(pages, 4)                        # ... starting at 4
        pages = min(pages, max_pages)
        pages = max(pages, self.last_readahead_pages // 2)   # don't shrink too fast
        if not hits:
            self.prev_offset = offset
        self.last_readahead_pages = pages
        return pages


def old_slab_scan(nr_deferred, nr_scanned, lru_pages, max_pass, seeks=c.DEFAULT_SEEKS):
    """Linux <= 3.11 shrink_slab(): the scan target for one shrinker (before the batches)."""
    delta = (4 * nr_scanned) // seeks
    delta = delta * max_pass // (lru_pages + 1)
    total = nr_deferred + delta
    if total < 0:
        total = max_pass
    if delta < max_pass // 4:
        total = min(total, max_pass // 2)
    return min(total, 2 * max_pass)


def new_slab_scan(nr_deferred, freeable, priority, seeks=c.DEFAULT_SEEKS):
    """6.1 do_shrink_slab(): (total_scan, delta)."""
    delta = (freeable >> priority) * 4 // seeks
    return min((nr_deferred >> priority) + delta, 2 * freeable), delta


# ---------------------------------------------------------------------------------------------
# the guest
# ---------------------------------------------------------------------------------------------
@dataclass
class Page:
    pfn: int
    vpn: int                 # reverse map (-1: none)
    flags: set[str]          # struct page flags
    hw: set[str]             # PTE / host bits of the frame


@dataclass
class Write:
    """One page's write in flight: its frame, the page it was written for, when it completes.
    (The page may be gone by then: freed, or the frame reused; the entry is then stale.)"""
    pfn: int
    vpn: int
    done: int


@dataclass
class ScanControl:
    nr_to_reclaim: int
    priority: int
    is_kswapd: bool
    may_swap: bool = True
    nr_scanned: int = 0
    nr_reclaimed: int = 0
    cost_ns: int = 0
    callback_ns: int = 0
    # sc->nr: what shrink_folio_list met in this shrink_node pass
    nr_taken: int = 0
    nr_file_taken: int = 0
    nr_writeback: int = 0
    nr_immediate: int = 0
    nr_unqueued_dirty: int = 0

    def clock(self, start: int) -> int:
        """The reclaimer's time: it started at ``start`` and has spent what it counts."""
        return start + self.cost_ns + self.callback_ns


SCALARS = ("nr_slab", "slab_deferred", "reporting_clock", "swap_cursor", "anon_cost",
           "file_cost", "nonresident_age", "vmp_scanned", "vmp_reclaimed", "vmp_level",
           "kswapd_awake", "kswapd_clock", "kswapd_prio", "kswapd_failures", "dev_busy_until",
           "flush_clock", "recent_scanned_anon", "recent_scanned_file", "recent_rotated_anon",
           "recent_rotated_file", "ra_prev_offset", "ra_prev_win", "ra_hits")
# slab_deferred is the slab cache shrinker's nr_deferred (m.shrinker_deferred[g, 0])
S_IDS = {"nr_slab": L.S_NR_SLAB, "reporting_clock": L.S_REPORTING_CLOCK,
         "swap_cursor": L.S_SWAP_CURSOR,
         "anon_cost": L.S_ANON_COST, "file_cost": L.S_FILE_COST,
         "nonresident_age": L.S_NONRESIDENT_AGE, "vmp_scanned": L.S_VMP_SCANNED,
         "vmp_reclaimed": L.S_VMP_RECLAIMED, "vmp_level": L.S_VMP_LEVEL,
         "kswapd_awake": L.S_KSWAPD_AWAKE, "kswapd_clock": L.S_KSWAPD_CLOCK,
         "kswapd_prio": L.S_KSWAPD_PRIO, "kswapd_failures": L.S_KSWAPD_FAILURES,
         "dev_busy_until": L.S_DEV_BUSY_UNTIL, "flush_clock": L.S_FLUSH_CLOCK,
         "recent_scanned_anon": L.S_RECENT_SCANNED_ANON,
         "recent_scanned_file": L.S_RECENT_SCANNED_FILE,
         "recent_rotated_anon": L.S_RECENT_ROTATED_ANON,
         "recent_rotated_file": L.S_RECENT_ROTATED_FILE,
         "ra_prev_offset": L.S_RA_PREV_OFFSET, "ra_prev_win": L.S_RA_PREV_WIN,
         "ra_hits": L.S_RA_HITS}
PARAMS = ("frame_base", "nframes", "vpage_base", "nvpages", "swap_base", "nslots",
          "kernel_old", "swappiness", "wmark_min", "wmark_low", "wmark_high", "managed",
          "swap_write_ns", "swap_ns_per_page", "kswapd_scan_ns", "features", "block_base",
          "nblocks", "swap_read_ns", "fault_ns")


@dataclass
class Guest:
    """One guest's memory as the reference model sees it."""
    params: dict[str, int]
    frames: dict[int, Page]                      # every frame of the guest, by pfn
    lru: dict[int, deque]                        # lru id -> deque of Page, head on the left
    free: deque                                  # pfns, head (next to be allocated) on the left
    pte: dict[int, int]                          # resident vpn -> pfn
    swp: dict[int, int]                          # vpn -> swap slot offset (0..nslots-1)
    swap_map: list                               # slot offset -> owner vpn or None
    shadow: dict[int, int]                       # vpn -> shadow entry
    vmstat: Counter
    scalars: dict[str, int]
    blk_nfree: dict[int, int]                    # global block number -> free frames
    wbq: deque                                   # Write records, oldest submission first
    pgdat: set[str]                              # pgdat->flags: PGDAT_WRITEBACK, PGDAT_DIRTY

    # --- derived ----------------------------------------------------------------------------
    @property
    def nr_free(self) -> int:
        return len(self.free)

    @property
    def swap_used(self) -> int:
        return sum(1 for o in self.swap_map if o is not None)

    @property
    def nr_writeback(self) -> int:
        return sum(1 for p in self.frames.values() if "writeback" in p.flags)

    def size(self, lru_id: int) -> int:
        return len(self.lru[lru_id])

    def order(self, lru_id: int) -> list[int]:
        """pfns of a list from head to tail."""
        return [p.pfn for p in self.lru[lru_id]]

    @property
    def old(self) -> bool:
        return bool(self.params["kernel_old"])

    # --- conversion from / to the kernels' arrays -----------------------------------------------
    @classmethod
    def from_state(cls, m, g: int) -> "Guest":
        P, S = m.P[g], m.S[g]
        ids = {n: L.PARAM[n] for n in PARAMS}
        params = {n: int(P[i]) for n, i in ids.items()}
        base, n = params["frame_base"], params["nframes"]
        frames = {}
        for pfn in range(base, base + n):
            frames[pfn] = Page(pfn, int(m.rmap[pfn]),
                               bits_to_names(int(m.pflags[pfn]), PAGE_FLAG_BITS, "pflags"),
                               bits_to_names(int(m.fref[pfn]), HW_BITS, "fref"))
        lru = {}
        for l in range(c.NR_LRU_LISTS):
            pages = []
            pfn, prev = int(m.lru_head[g, l]), -1
            while pfn >= 0:
                if not base <= pfn < base + n or len(pages) > n:
                    raise AssertionError(f"{LRU_NAMES[l]}: broken link to {pfn}")
                if int(m.lru_prev[pfn]) != prev:
                    raise AssertionError(f"{LRU_NAMES[l]}: lru_prev[{pfn}] != {prev}")
                pages.append(frames[pfn])
                prev, pfn = pfn, int(m.lru_next[pfn])
            if prev != int(m.lru_tail[g, l]):
                raise AssertionError(f"{LRU_NAMES[l]}: tail {int(m.lru_tail[g, l])} != {prev}")
            if len(pages) != int(m.lru_size[g, l]):
                raise AssertionError(f"{LRU_NAMES[l]}: size {int(m.lru_size[g, l])} != "
                                     f"{len(pages)} linked")
            lru[l] = deque(pages)
        free = []
        pfn = int(S[L.S_FREE_HEAD])
        while pfn >= 0:
            if len(free) > n:
                raise AssertionError("free list does not terminate")
            free.append(pfn)
            pfn = int(m.lru_next[pfn])
        if len(free) != int(S[L.S_NR_FREE]):
            raise AssertionError(f"nr_free {int(S[L.S_NR_FREE])} != {len(free)} linked")
        vbase, nv = params["vpage_base"], params["nvpages"]
        sbase, ns = params["swap_base"], params["nslots"]
        pte = {v: int(m.pte[v]) for v in range(vbase, vbase + nv) if m.pte[v] >= 0}
        swp = {v: int(m.swp[v]) - sbase for v in range(vbase, vbase + nv) if m.swp[v] >= 0}
        shadow = {v: int(m.shadow[v]) for v in range(vbase, vbase + nv) if m.shadow[v] >= 0}
        swap_map = [int(o) if o >= 0 else None for o in m.slot_owner[sbase:sbase + ns]]
        b0, nb = params["block_base"], params["nblocks"]
        head, cap = int(S[L.S_WBQ_HEAD]), n
        ring = [base + (head + i) % cap for i in range(int(S[L.S_WBQ_LEN]))]
        wbq = deque(Write(int(m.wbq_pfn[i]), int(m.wbq_vpn[i]), int(m.wbq_done[i])) for i in ring)
        return cls(params=params, frames=frames, lru=lru, free=deque(free), pte=pte, swp=swp,
                   swap_map=swap_map, shadow=shadow,
                   vmstat=Counter({k: int(v) for k, v in zip(L.VMSTAT_NAMES, m.V[g]) if v}),
                   scalars={**{k: int(S[i]) for k, i in S_IDS.items()},
                            "slab_deferred": int(m.shrinker_deferred[g, 0])},
                   blk_nfree={b: int(m.blk_nfree[b]) for b in range(b0, b0 + nb)},
                   wbq=wbq, pgdat=bits_to_names(int(S[L.S_PGDAT_FLAGS]), PGDAT_BITS, "pgdat"))

    def to_state(self):
        """A fresh one-guest MachineState holding this guest (frame_base etc. must be 0)."""
        from autoballoon.machine import state as mmstate
        p = self.params
        assert p["frame_base"] == p["vpage_base"] == p["swap_base"] == 0
        m = mmstate.allocate([p["nframes"]], [p["nvpages"]], [p["nslots"]])
        for name in PARAMS:
            m.P[0, L.PARAM[name]] = p[name]
        for pfn, page in self.frames.items():
            m.pflags[pfn] = names_to_bits(page.flags, PAGE_FLAG_BITS)
            m.fref[pfn] = names_to_bits(page.hw, HW_BITS)
            m.rmap[pfn] = page.vpn
        for l, pages in self.lru.items():
            pfns = [pg.pfn for pg in pages]
            for i, pfn in enumerate(pfns):
                m.lru_prev[pfn] = pfns[i - 1] if i else -1
                m.lru_next[pfn] = pfns[i + 1] if i + 1 < len(pfns) else -1
            m.lru_head[0, l] = pfns[0] if pfns else -1
            m.lru_tail[0, l] = pfns[-1] if pfns else -1
            m.lru_size[0, l] = len(pfns)
        free = list(self.free)
        for i, pfn in enumerate(free):
            m.lru_next[pfn] = free[i + 1] if i + 1 < len(free) else -1
        m.S[0, L.S_FREE_HEAD] = free[0] if free else -1
        m.S[0, L.S_NR_FREE] = len(free)
        m.S[0, L.S_SWAP_USED] = self.swap_used
        m.S[0, L.S_ALIVE] = 1
        for k, i in S_IDS.items():
            m.S[0, i] = self.scalars[k]
        callbacks.probe(m, 0)                          # the slab cache is shrinker 0
        m.shrinker_deferred[0, 0] = self.scalars["slab_deferred"]
        for v, pfn in self.pte.items():
            m.pte[v] = pfn
        for v, off in self.swp.items():
            m.swp[v] = off
        for off, owner in enumerate(self.swap_map):
            m.slot_owner[off] = -1 if owner is None else owner
        for v, s in self.shadow.items():
            m.shadow[v] = s
        for k, v in self.vmstat.items():
            m.V[0, L.VMSTAT_NAMES.index(k)] = v
        for b, nf in self.blk_nfree.items():
            m.blk_nfree[b] = nf
        for i, w in enumerate(self.wbq):                # the ring starts at slot 0
            m.wbq_pfn[i], m.wbq_vpn[i], m.wbq_done[i] = w.pfn, w.vpn, w.done
        m.S[0, L.S_WBQ_HEAD] = 0
        m.S[0, L.S_WBQ_LEN] = len(self.wbq)
        m.S[0, L.S_NR_WRITEBACK] = self.nr_writeback
        m.S[0, L.S_PGDAT_FLAGS] = names_to_bits(self.pgdat, PGDAT_BITS)
        return m

    def diff(self, m, g: int, limit: int = 20) -> list[str]:
        """Every difference between this model and guest g of MachineState m (first ``limit``)."""
        try:
            other = Guest.from_state(m, g)
        except AssertionError as e:
            return [f"kernel state is inconsistent: {e}"]
        out = []
        for l in range(c.NR_LRU_LISTS):
            a, b = self.order(l), other.order(l)
            if a != b:
                i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                out.append(f"{LRU_NAMES[l]}: naive {len(a)} pages, kernel {len(b)}; first "
                           f"difference at position {i}: naive {a[i:i + 5]} kernel {b[i:i + 5]}")
        if list(self.free) != list(other.free):
            out.append(f"free list: naive {len(self.free)} {list(self.free)[:8]}..., kernel "
                       f"{len(other.free)} {list(other.free)[:8]}...")
        for pfn, page in self.frames.items():
            o = other.frames[pfn]
            if (page.flags, page.hw, page.vpn) != (o.flags, o.hw, o.vpn):
                out.append(f"frame {pfn}: naive {sorted(page.flags)} {sorted(page.hw)} "
                           f"vpn {page.vpn}, kernel {sorted(o.flags)} {sorted(o.hw)} vpn {o.vpn}")
        for name in ("pte", "swp", "shadow"):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                out.append(f"{name}: {len(keys)} vpns differ, e.g. " + ", ".join(
                    f"{k}: naive {a.get(k)} kernel {b.get(k)}" for k in keys[:4]))
        if self.swap_map != other.swap_map:
            out.append("swap map differs")
        if self.swap_used != int(m.S[g, L.S_SWAP_USED]):
            out.append(f"swap_used: naive {self.swap_used} kernel {int(m.S[g, L.S_SWAP_USED])}")
        if self.nr_writeback != int(m.S[g, L.S_NR_WRITEBACK]):
            out.append(f"nr_writeback: naive {self.nr_writeback} kernel "
                       f"{int(m.S[g, L.S_NR_WRITEBACK])}")
        if list(self.wbq) != list(other.wbq):
            i = next((k for k, (x, y) in enumerate(zip(self.wbq, other.wbq)) if x != y),
                     min(len(self.wbq), len(other.wbq)))
            out.append(f"writes in flight: naive {len(self.wbq)}, kernel {len(other.wbq)}; "
                       f"first difference at {i}: naive {list(self.wbq)[i:i + 2]} kernel "
                       f"{list(other.wbq)[i:i + 2]}")
        if self.pgdat != other.pgdat:
            out.append(f"pgdat flags: naive {sorted(self.pgdat)} kernel {sorted(other.pgdat)}")
        for k in SCALARS:
            if self.scalars[k] != other.scalars[k]:
                out.append(f"{k}: naive {self.scalars[k]} kernel {other.scalars[k]}")
        for k in sorted(set(self.vmstat) | set(other.vmstat)):
            if self.vmstat[k] != other.vmstat[k]:
                out.append(f"vmstat {k}: naive {self.vmstat[k]} kernel {other.vmstat[k]}")
        if self.blk_nfree != other.blk_nfree:
            out.append(f"pageblocks: naive {self.blk_nfree}, kernel {other.blk_nfree}")
        return out[:limit]

    # --- free pages and swap slots ----------------------------------------------------------
    def free_frame(self, page: Page, now: int) -> None:
        """free_unref_page(): forget everything but the host backing; head of the free list."""
        page.flags = {"free"}
        page.vpn = -1
        page.hw &= {"present", "hswapped"}
        self.free.appendleft(page.pfn)
        self.vmstat["pgfree"] += 1
        blk = page.pfn // BLOCK_PAGES
        self.blk_nfree[blk] += 1
        if self.blk_nfree[blk] == BLOCK_PAGES:        # page_reporting_notify_free()
            due = now + c.PAGE_REPORTING_DELAY_NS
            self.scalars["reporting_clock"] = min(self.scalars["reporting_clock"], due)

    def get_swap_page(self, vpn: int):
        """Next fit: the first free slot at or after the cursor, wrapping; None when full."""
        n = len(self.swap_map)
        if self.swap_used >= n:
            return None
        start = self.scalars["swap_cursor"]
        for k in range(n):
            off = (start + k) % n
            if self.swap_map[off] is None:
                self.swap_map[off] = vpn
                self.scalars["swap_cursor"] = (off + 1) % n
                return off
        raise AssertionError("swap_used says there is room but every slot is taken")

    def free_swap(self, vpn: int) -> None:
        self.swap_map[self.swp.pop(vpn)] = None

    def can_reclaim_anon(self) -> bool:
        return self.swap_used < self.params["nslots"]

    def vm_swap_full(self) -> bool:
        return 2 * self.swap_used > self.params["nslots"]

    # --- workingset / cost -------------------------------------------------------------------
    def evict(self, page: Page, now: int) -> None:
        """__remove_mapping(): unmap, leave a shadow entry (age, workingset), free the frame.
        3.7 has no shadow entries (workingset.c came in 3.15)."""
        vpn = page.vpn
        del self.pte[vpn]
        if not self.old:
            self.scalars["nonresident_age"] += 1
            age = self.scalars["nonresident_age"] & EVICTION_MASK
            self.shadow[vpn] = age * 2 + (1 if "workingset" in page.flags else 0)
        self.free_frame(page, now)

    def lru_note_cost(self, file: bool, nr_pages: int) -> None:
        self.scalars["file_cost" if file else "anon_cost"] += nr_pages
        lrusize = sum(len(q) for q in self.lru.values())
        if self.scalars["file_cost"] + self.scalars["anon_cost"] > lrusize // 4:
            self.scalars["file_cost"] //= 2
            self.scalars["anon_cost"] //= 2

    # --- LRU ------------------------------------------------------------------------------------
    @staticmethod
    def lru_of(page: Page) -> int:
        base = c.LRU_INACTIVE_ANON if "swapbacked" in page.flags else c.LRU_INACTIVE_FILE
        return base + (1 if "active" in page.flags else 0)

    def inactive_is_low(self, inactive_lru: int) -> bool:
        inactive, active = self.size(inactive_lru), self.size(inactive_lru + 1)
        if self.old and inactive_lru == c.LRU_INACTIVE_FILE:
            return active > inactive                          # 3.7 inactive_file_is_low()
        if self.old and not self.params["nslots"]:
            return False                                      # 3.7: !total_swap_pages
        gb = (inactive + active) * 4096 // 2**30
        ratio = int_sqrt(10 * gb) if gb else 1
        return inactive * ratio < active

    def isolate(self, lru_id: int, nr: int):
        """isolate_lru_folios(): take up to nr pages off the tail, oldest first."""
        lst = self.lru[lru_id]
        return [lst.pop() for _ in range(min(nr, len(lst)))]

    def putback(self, page: Page) -> None:
        """move_folios_to_lru() of one page: head of the list its flags say."""
        page.flags.add("lru")
        self.lru[self.lru_of(page)].appendleft(page)

    # --- writeback ------------------------------------------------------------------------------
    def submit_write(self, pages: list, now: int) -> int:
        """pageout() of a batch, one request: each page is PG_writeback until its write ends.
        The disk transfers at swap_ns_per_page a page, one request after another; a request
        completes swap_write_ns after its transfer, never before those submitted earlier. With
        more than QUEUE_DEPTH pages' transfers ahead, the submitter sleeps for a request.
        Returns how long the submitter was blocked."""
        per_page = self.params["swap_ns_per_page"]
        busy = self.scalars["dev_busy_until"]
        blocked = max(0, busy - now - QUEUE_DEPTH * per_page)
        end = max(now + blocked, busy) + len(pages) * per_page
        self.scalars["dev_busy_until"] = end
        done = end + self.params["swap_write_ns"]
        if self.wbq:
            done = max(done, self.wbq[-1].done)
        for page in pages:
            page.flags.add("writeback")
            self.wbq.append(Write(page.pfn, page.vpn, done))
            self.vmstat["pgpgout"] += 4                    # KiB
        return blocked

    def writeback_end(self, now: int) -> None:
        """folio_end_writeback() of every write completed by ``now``, in submission order: a page
        reclaim wants gone (PG_reclaim) is rotated to the inactive tail (folio_rotate_reclaimable,
        unless it was dirtied again or is off the LRU). A stale entry (the page was freed) is
        dropped."""
        while self.wbq and self.wbq[0].done <= now:
            w = self.wbq.popleft()
            page = self.frames[w.pfn]
            if "writeback" not in page.flags or page.vpn != w.vpn:
                continue
            page.flags.discard("writeback")
            self.vmstat["nr_written"] += 1
            if "reclaim" not in page.flags:
                continue
            page.flags.discard("reclaim")
            if "lru" in page.flags and "dirty" not in page.hw:     # lru_move_tail_fn()
                self.lru[self.lru_of(page)].remove(page)
                page.flags.discard("active")
                self.lru[self.lru_of(page)].append(page)
                self.vmstat["pgrotated"] += 1

    def throttle_writeback_ns(self, now: int) -> int:
        """reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK): until the oldest write in flight ends,
        at most HZ / 10."""
        if not self.wbq:
            return c.WRITEBACK_THROTTLE_NS
        return min(max(self.wbq[0].done - now, 0), c.WRITEBACK_THROTTLE_NS)

    # --- faults on anonymous pages (mm/memory.c, mm/swap_state.c) -----------------------------
    def alloc_page(self) -> Page:
        """rmqueue() above the low watermark (the only case modelled here): the free head."""
        if self.nr_free <= self.params["wmark_low"]:
            raise NotImplementedError("allocation below the low watermark is not modelled here")
        page = self.frames[self.free.popleft()]
        page.flags, page.vpn = set(), -1
        self.vmstat["pgalloc"] += 1
        self.blk_nfree[page.pfn // BLOCK_PAGES] -= 1
        return page

    def add_to_lru(self, page: Page, vpn: int, active: bool, workingset: bool) -> None:
        """folio_add_lru() of a new anonymous page for vpn."""
        page.flags = {"swapbacked"} | ({"active"} if active else set()) | \
            ({"workingset"} if workingset else set())
        page.vpn = vpn
        self.pte[vpn] = page.pfn
        self.putback(page)

    def workingset_refault(self, vpn: int, file: bool):
        """workingset_refault(): (activate, was in the workingset) from vpn's shadow entry."""
        shadow = self.shadow.pop(vpn, None)
        if shadow is None:
            return False, False
        self.vmstat["workingset_refault"] += 1
        distance = (self.scalars["nonresident_age"] - (shadow >> 1)) & EVICTION_MASK
        size = self.size(c.LRU_ACTIVE_FILE) + (0 if file else self.size(c.LRU_INACTIVE_FILE))
        if self.can_reclaim_anon():
            size += self.size(c.LRU_ACTIVE_ANON) + (self.size(c.LRU_INACTIVE_ANON) if file else 0)
        if distance > size:
            return False, False
        self.scalars["nonresident_age"] += 1
        self.vmstat["workingset_activate"] += 1
        if shadow & 1:
            self.lru_note_cost(file, 1)
            self.vmstat["workingset_restore"] += 1
        return True, bool(shadow & 1)

    def swapin_window(self, offset: int) -> int:
        """6.1 swapin_nr_pages(); 3.7 reads the whole aligned page cluster."""
        if self.old:
            return 1 << c.PAGE_CLUSTER
        s = self.scalars
        ra = SwapReadahead(s["ra_prev_offset"], s["ra_prev_win"], s["ra_hits"])
        win = ra.swapin_nr_pages(offset)
        s["ra_prev_offset"], s["ra_prev_win"], s["ra_hits"] = \
            ra.prev_offset, ra.last_readahead_pages, ra.hits
        return win

    def map_swapped_in(self, page: Page, write: bool) -> None:
        """do_swap_page()'s end: a write fault (or swap more than half full) frees the slot
        unless the page is being written (folio_free_swap fails): memory holds the only copy,
        dirty. A read fault keeps the slot and maps the page read-only."""
        if page.vpn not in self.swp:
            return
        if (write or self.vm_swap_full()) and "writeback" not in page.flags:
            self.free_swap(page.vpn)
            page.hw.add("dirty")
        elif not write:
            page.hw.add("wprotect")

    def do_swap_page(self, vpn: int, write: bool) -> int:
        """A major fault on a swapped-out page: its frame, then swap_cluster_readahead()'s
        aligned window (each neighbour out of memory comes in unmapped, PG_readahead, through
        workingset_refault), one read for all. Returns the stall."""
        page = self.alloc_page()
        self.vmstat["pgfault"] += 1
        self.vmstat["stall_fault_ns"] += self.params["fault_ns"]
        active, ws = self.workingset_refault(vpn, False)
        self.add_to_lru(page, vpn, active, ws)
        offset, extra, thrash = self.swp[vpn], 0, False
        win = self.swapin_window(offset)
        if win > 1:
            start = offset & ~(win - 1)
            for off in range(start, min(start + win, self.params["nslots"])):
                other = self.swap_map[off]
                if other is None or other == vpn or other in self.pte:
                    continue
                ra_page = self.alloc_page()
                active, ra_ws = self.workingset_refault(other, False)
                thrash |= ra_ws
                self.add_to_lru(ra_page, other, active, ra_ws)
                ra_page.flags.add("readahead")
                ra_page.hw.add("unmapped")
                extra += 1
            self.vmstat["swap_ra"] += extra
        io = self.params["swap_read_ns"] + (1 + extra) * self.params["swap_ns_per_page"]
        self.vmstat["pswpin"] += 1 + extra
        self.vmstat["pgpgin"] += 4 * (1 + extra)
        self.vmstat["pgmajfault"] += 1
        self.vmstat["stall_swapin_ns"] += io
        if ws or thrash:
            self.vmstat["thrash_ns"] += io
        self.map_swapped_in(page, write)
        return self.params["fault_ns"] + io

    def minor_fault(self) -> int:
        self.vmstat["pgfault"] += 1
        self.vmstat["stall_fault_ns"] += self.params["fault_ns"]
        return self.params["fault_ns"]

    def access_anon(self, vpn: int, write: bool) -> int:
        """A task's access to an anonymous page that is swapped out, in the swap cache
        (unmapped: readahead brought it, or reclaim is writing it), or mapped read-only after a
        read swap-in (its first write: do_wp_page, 6.1 keeps the slot, 3.7's reuse_swap_page
        frees it). Returns the stall."""
        if vpn not in self.pte:
            stall = self.do_swap_page(vpn, write)
            page = self.frames[self.pte[vpn]]
        else:
            page, stall = self.frames[self.pte[vpn]], 0
            if "unmapped" in page.hw:                     # swap cache hit: a minor fault
                page.hw.discard("unmapped")
                stall += self.minor_fault()
                if "readahead" in page.flags:
                    page.flags.discard("readahead")
                    self.vmstat["swap_ra_hit"] += 1
                    self.scalars["ra_hits"] += 1
                self.map_swapped_in(page, write)
        if write and "wprotect" in page.hw:              # do_wp_page()
            page.hw.discard("wprotect")
            stall += self.minor_fault()
            if self.old and page.vpn in self.swp and "writeback" not in page.flags:
                self.free_swap(page.vpn)
        if "present" not in page.hw:
            raise NotImplementedError("host faults are not modelled here")
        page.hw |= {"young", "hyoung"} | ({"dirty"} if write else set())
        return stall


    # --- reclaim --------------------------------------------------------------------------------
    def folio_referenced(self, page: Page) -> int:
        """rmap walk of the one mapping: test and clear the accessed bit."""
        if "young" in page.hw:
            page.hw.discard("young")
            return 1
        return 0

    def folio_check_references(self, page: Page) -> str:
        referenced_ptes = self.folio_referenced(page)
        referenced_folio = "referenced" in page.flags
        page.flags.discard("referenced")
        anon = "swapbacked" in page.flags
        if referenced_ptes:
            if self.old and anon:          # 3.7: PageSwapBacked -> activate on the first look
                return ACTIVATE
            page.flags.add("referenced")   # 6.1: a second look decides
            return ACTIVATE if referenced_folio else KEEP
        if referenced_folio and not anon:
            return RECLAIM_CLEAN
        return RECLAIM

    def activate(self, page: Page, file: bool) -> None:
        """shrink_folio_list's activate_locked: swap space is given up when swap is more than
        half full and the slot can go (no write in flight, no PTE holding the swap entry);
        3.7 counts the page rotated (putback_inactive_pages), 6.1 ages the nonresident clock
        (move_folios_to_lru)."""
        if ("swapbacked" in page.flags and page.vpn in self.swp and self.vm_swap_full()
                and "writeback" not in page.flags and "unmapped" not in page.hw):
            self.free_swap(page.vpn)                  # folio_free_swap(): now dirty
            page.hw.add("dirty")
        page.flags.add("active")
        self.vmstat["pgactivate"] += 1
        if self.old:
            self.scalars["recent_rotated_" + ("file" if file else "anon")] += 1
        else:
            self.scalars["nonresident_age"] += 1

    def may_write_file(self, page: Page, sc: ScanControl) -> bool:
        """Whether reclaim writes a dirty file page itself (else the flusher must): only kswapd;
        3.7 once its priority is below DEF_PRIORITY - 2, 6.1 on the page's second visit
        (PG_reclaim) after a pass that met only dirty file pages (PGDAT_DIRTY)."""
        if not sc.is_kswapd:
            return False
        if self.old:
            return sc.priority < c.DEF_PRIORITY - 2
        return "reclaim" in page.flags and "dirty" in self.pgdat

    def shrink_folio(self, page: Page, file: bool, sc: ScanControl, now: int) -> str:
        """shrink_folio_list() for one isolated page: "freed", "write" (pageout), or "keep"
        (back on its list; "active" among its flags if it was activated)."""
        if "writeback" in page.flags:
            if not self.old and sc.is_kswapd and "reclaim" in page.flags \
                    and "writeback" in self.pgdat:
                sc.nr_immediate += 1                      # case 1: kswapd will throttle
            else:
                page.flags.add("reclaim")                 # case 2: reclaim it when written
                sc.nr_writeback += 1
            if not self.old:                              # 3.7 keeps it on the inactive list
                self.activate(page, file)
            return "keep"
        dirty = "dirty" in page.hw
        if file and dirty:
            sc.nr_unqueued_dirty += 1
        ref = self.folio_check_references(page)
        if ref == ACTIVATE:
            self.activate(page, file)
            return "keep"
        if ref == KEEP:
            return "keep"
        if not file:
            if page.vpn not in self.swp:
                slot = self.get_swap_page(page.vpn) if sc.may_swap else None
                if slot is None:                          # add_to_swap() failed
                    self.activate(page, file)
                    return "keep"
                self.swp[page.vpn] = slot
                dirty = True                              # a new swap copy must be written
            page.hw.discard("wprotect")                   # try_to_unmap(): PTE -> swap entry
            page.hw.add("unmapped")
        elif dirty:
            if not self.may_write_file(page, sc):
                page.flags.add("reclaim")                 # reclaim it once the flusher wrote it
                self.vmstat["nr_vmscan_immediate_reclaim"] += 1
                if not self.old:
                    self.activate(page, file)
                return "keep"
            if ref == RECLAIM_CLEAN:
                return "keep"
        if dirty:                                         # pageout()
            page.hw.discard("dirty")
            page.flags.add("reclaim")
            self.vmstat["nr_vmscan_write"] += 1
            if not file:
                self.vmstat["pswpout"] += 1
            return "write"
        self.evict(page, now)
        return "freed"

    def shrink_inactive_list(self, nr_to_scan: int, lru_id: int, sc: ScanControl,
                             now: int) -> int:
        file = lru_id == c.LRU_INACTIVE_FILE
        taken = self.isolate(lru_id, nr_to_scan)
        back, writes, reclaimed = [], [], 0
        nr_unqueued_dirty = sc.nr_unqueued_dirty
        for page in taken:
            page.flags.discard("lru")
            if "hswapped" in page.hw:
                raise NotImplementedError("double paging (host read-back) is not modelled here")
            what = self.shrink_folio(page, file, sc, now)
            if what == "freed":
                reclaimed += 1
                continue
            back.append(page)
            if what == "write":
                writes.append(page)
        for page in back:
            self.putback(page)
        blocked = 0
        if writes:
            blocked = self.submit_write(writes, now)
            if not self.old:
                self.lru_note_cost(file, len(writes))
        if taken and sc.nr_unqueued_dirty - nr_unqueued_dirty == len(taken):
            self.scalars["flush_clock"] = min(self.scalars["flush_clock"], now)  # wake it
        if self.old:
            self.scalars["recent_scanned_" + ("file" if file else "anon")] += len(taken)
        sc.nr_taken += len(taken)
        if file:
            sc.nr_file_taken += len(taken)
        who = "kswapd" if sc.is_kswapd else "direct"
        self.vmstat["pgscan_" + who] += len(taken)
        self.vmstat["pgsteal_" + who] += reclaimed
        sc.nr_scanned += len(taken)
        sc.nr_reclaimed += reclaimed
        sc.cost_ns += (len(taken) * self.params["kswapd_scan_ns"]
                       + len(writes) * c.BIO_SUBMIT_NS + blocked)
        return reclaimed

    def shrink_active_list(self, nr_to_scan: int, lru_id: int, sc: ScanControl) -> None:
        pages = self.isolate(lru_id, nr_to_scan)
        referenced = 0
        for page in pages:
            referenced += self.folio_referenced(page)   # no VM_EXEC: every page moves on
            page.flags.discard("active")
            page.flags.add("workingset")
        for page in pages:
            self.putback(page)
        if self.old:                                    # zone_reclaim_stat
            kind = "file" if lru_id == c.LRU_ACTIVE_FILE else "anon"
            self.scalars["recent_scanned_" + kind] += len(pages)
            self.scalars["recent_rotated_" + kind] += referenced
        self.vmstat["pgrefill"] += len(pages)
        self.vmstat["pgdeactivate"] += len(pages)
        sc.cost_ns += len(pages) * self.params["kswapd_scan_ns"]

    def fraction_61(self):
        """6.1: swappiness against the anon and file reclaim costs."""
        swappiness = self.params["swappiness"]
        a, f = self.scalars["anon_cost"], self.scalars["file_cost"]
        anon_cost, file_cost = 2 * a + f, a + 2 * f
        total = anon_cost + file_cost
        fraction = {False: swappiness * (total + 1) // (anon_cost + 1),
                    True: (200 - swappiness) * (total + 1) // (file_cost + 1)}
        return fraction, fraction[False] + fraction[True]

    def fraction_37(self):
        """3.7: swappiness against the rotated share of recently scanned pages; the counts
        halve once they exceed a quarter of their lists."""
        swappiness, s = self.params["swappiness"], self.scalars
        prio = {"anon": swappiness, "file": 200 - swappiness}
        fraction = {}
        for kind, lists in (("anon", (0, 1)), ("file", (2, 3))):
            if s["recent_scanned_" + kind] > sum(self.size(l) for l in lists) // 4:
                s["recent_scanned_" + kind] //= 2
                s["recent_rotated_" + kind] //= 2
            fraction[kind == "file"] = (prio[kind] * (s["recent_scanned_" + kind] + 1)
                                        // (s["recent_rotated_" + kind] + 1))
        return fraction, fraction[False] + fraction[True] + 1

    def scan_balance_37(self, sc: ScanControl):
        """3.7 get_scan_count(): (balance, fraction, denominator). Without swap: file only
        (goto out). With few file pages (file + free <= high): fraction 1:0 (goto out), else the
        rotation fractions. Then at out: priority 0 with swappiness scans whole lists, the
        fractions unused."""
        if not sc.may_swap or not self.can_reclaim_anon():
            return SCAN_FILE, None, None
        file = self.size(c.LRU_INACTIVE_FILE) + self.size(c.LRU_ACTIVE_FILE)
        tiny = file + self.nr_free <= self.params["wmark_high"]
        if not tiny:
            fraction, denominator = self.fraction_37()
        if sc.priority == 0 and self.params["swappiness"]:
            return SCAN_EQUAL, None, None
        if tiny:
            return SCAN_ANON, None, None
        return SCAN_FRACT, fraction, denominator

    def scan_balance_61(self, sc: ScanControl, deactivate_anon, deactivate_file):
        prio, swappiness = sc.priority, self.params["swappiness"]
        file = self.size(c.LRU_INACTIVE_FILE) + self.size(c.LRU_ACTIVE_FILE)
        anon = self.size(c.LRU_INACTIVE_ANON)
        file_is_tiny = (file + self.nr_free <= self.params["wmark_high"]
                        and not deactivate_anon and (anon >> prio) > 0)
        cache_trim_mode = (self.size(c.LRU_INACTIVE_FILE) >> prio) > 0 and not deactivate_file
        if not sc.may_swap or not self.can_reclaim_anon():
            return SCAN_FILE, None, None
        if prio == 0 and swappiness:
            return SCAN_EQUAL, None, None
        if file_is_tiny:
            return SCAN_ANON, None, None
        if cache_trim_mode:
            return SCAN_FILE, None, None
        fraction, denominator = self.fraction_61()
        return SCAN_FRACT, fraction, denominator

    def get_scan_count(self, sc: ScanControl):
        """prepare_scan_count() + get_scan_count(): ({lru: pages}, deactivate_anon, _file)."""
        deactivate_anon = self.inactive_is_low(c.LRU_INACTIVE_ANON)
        deactivate_file = self.inactive_is_low(c.LRU_INACTIVE_FILE)
        if self.old:
            balance, fraction, denominator = self.scan_balance_37(sc)
        else:
            balance, fraction, denominator = self.scan_balance_61(sc, deactivate_anon,
                                                                  deactivate_file)
        nr = {}
        for l in range(c.NR_LRU_LISTS):
            is_file = l in (c.LRU_INACTIVE_FILE, c.LRU_ACTIVE_FILE)
            scan = self.size(l) >> sc.priority
            if balance == SCAN_FRACT:
                scan = scan * fraction[is_file] // denominator
            elif (balance == SCAN_FILE and not is_file) or (balance == SCAN_ANON and is_file):
                scan = 0
            nr[l] = scan
        return nr, deactivate_anon, deactivate_file

    def shrink_lruvec(self, sc: ScanControl, now: int) -> None:
        nr, deactivate_anon, deactivate_file = self.get_scan_count(sc)
        reclaimed = 0
        while nr[c.LRU_INACTIVE_ANON] or nr[c.LRU_ACTIVE_FILE] or nr[c.LRU_INACTIVE_FILE]:
            for l in (c.LRU_INACTIVE_ANON, c.LRU_ACTIVE_ANON, c.LRU_INACTIVE_FILE,
                      c.LRU_ACTIVE_FILE):
                if not nr[l]:
                    continue
                n = min(nr[l], c.SWAP_CLUSTER_MAX)
                nr[l] -= n
                if l == c.LRU_ACTIVE_ANON:
                    if deactivate_anon:
                        self.shrink_active_list(n, l, sc)
                elif l == c.LRU_ACTIVE_FILE:
                    if deactivate_file:
                        self.shrink_active_list(n, l, sc)
                else:
                    reclaimed += self.shrink_inactive_list(n, l, sc, sc.clock(now))
            # documented simplification (6.1 scales the targets); 3.7 stops early only below
            # DEF_PRIORITY
            if reclaimed >= sc.nr_to_reclaim and not (self.old and sc.priority == c.DEF_PRIORITY):
                break
        # can_age_anon_pages() (6.1) / inactive_anon_is_low() (3.7): total_swap_pages > 0
        if self.params["nslots"] and self.inactive_is_low(c.LRU_INACTIVE_ANON):
            self.shrink_active_list(c.SWAP_CLUSTER_MAX, c.LRU_ACTIVE_ANON, sc)

    # --- slab -------------------------------------------------------------------------------
    def slab_free(self, nr: int, now: int) -> int:
        """The slab cache frees its highest pages first."""
        freed = min(nr, self.scalars["nr_slab"])
        for _ in range(freed):
            self.scalars["nr_slab"] -= 1
            self.free_frame(self.frames[self.params["frame_base"] + self.scalars["nr_slab"]], now)
        return freed

    def do_shrink_slab(self, priority: int, now: int) -> int:
        """6.1 do_shrink_slab() for the slab cache: objects freed."""
        freeable = self.scalars["nr_slab"]                    # count_objects()
        if freeable == 0:
            return 0
        nr, self.scalars["slab_deferred"] = self.scalars["slab_deferred"], 0
        total_scan, delta = new_slab_scan(nr, freeable, priority)
        freed = scanned = 0
        while total_scan >= c.SHRINK_BATCH or total_scan >= freeable:
            batch = min(c.SHRINK_BATCH, total_scan)
            freed += self.slab_free(batch, now)               # scan_objects() never stops
            self.vmstat["slabs_scanned"] += batch
            total_scan -= batch
            scanned += batch
        self.scalars["slab_deferred"] += min(max(nr + delta - scanned, 0), 2 * freeable)
        return freed

    def shrink_slab_old(self, nr_scanned: int, lru_pages: int, now: int) -> int:
        """Linux <= 3.11 shrink_slab() for the slab cache: objects freed."""
        max_pass = self.scalars["nr_slab"]                    # shrink(nr_to_scan = 0)
        if max_pass <= 0:
            return 0
        nr, self.scalars["slab_deferred"] = self.scalars["slab_deferred"], 0
        total_scan = old_slab_scan(nr, nr_scanned or c.SWAP_CLUSTER_MAX, lru_pages, max_pass)
        freed = 0
        while total_scan >= c.SHRINK_BATCH:
            before = self.scalars["nr_slab"]
            self.slab_free(c.SHRINK_BATCH, now)
            freed += before - self.scalars["nr_slab"]
            self.vmstat["slabs_scanned"] += c.SHRINK_BATCH
            total_scan -= c.SHRINK_BATCH
        if total_scan > 0:
            self.scalars["slab_deferred"] += total_scan
        return freed

    def shrink_slab(self, priority: int, nr_scanned: int, now: int) -> int:
        if (self.params["features"] >> uapi.VIRTIO_BALLOON_F_AUTO_BALLOON) & 1:
            raise NotImplementedError("the balloon shrinker is not in the reference model")
        if self.old:
            lru_pages = self.size(c.LRU_INACTIVE_FILE) + self.size(c.LRU_ACTIVE_FILE)
            if self.can_reclaim_anon():
                lru_pages += self.size(c.LRU_INACTIVE_ANON) + self.size(c.LRU_ACTIVE_ANON)
            return self.shrink_slab_old(nr_scanned, lru_pages, now)
        return self.do_shrink_slab(priority, now)

    # --- vmpressure -------------------------------------------------------------------------
    def vmpressure(self, scanned: int, reclaimed: int) -> None:
        if not scanned:
            return
        self.scalars["vmp_scanned"] += scanned
        self.scalars["vmp_reclaimed"] += reclaimed
        if self.scalars["vmp_scanned"] < c.VMPRESSURE_WIN:
            return
        level = vmpressure_calc_level(self.scalars["vmp_scanned"], self.scalars["vmp_reclaimed"])
        self.scalars["vmp_scanned"] = self.scalars["vmp_reclaimed"] = 0
        self.scalars["vmp_level"] = level
        self.vmstat[("vmpressure_events_low", "vmpressure_events_medium", "vmpressure_events_critical")[level]] += 1

    def vmpressure_prio(self, prio: int) -> None:
        if prio <= c.VMPRESSURE_LEVEL_CRITICAL_PRIO:
            self.vmpressure(c.VMPRESSURE_WIN, 0)

    # --- the reclaimers ---------------------------------------------------------------------
    def shrink_node(self, sc: ScanControl, now: int) -> None:
        """shrink_node() by a reclaimer that started at ``now``: the writes completed by its
        clock end first; kswapd (6.1) then sets the pgdat flags from what the pass met and
        sleeps for a write if it met pages it had marked for immediate reclaim."""
        scanned0, reclaimed0 = sc.nr_scanned, sc.nr_reclaimed
        sc.nr_taken = sc.nr_file_taken = sc.nr_writeback = sc.nr_immediate = 0
        sc.nr_unqueued_dirty = 0
        self.writeback_end(sc.clock(now))
        self.shrink_lruvec(sc, now)
        sc.nr_reclaimed += self.shrink_slab(sc.priority, sc.nr_scanned - scanned0, sc.clock(now))
        self.vmpressure(sc.nr_scanned - scanned0, sc.nr_reclaimed - reclaimed0)
        if sc.is_kswapd and not self.old:
            if sc.nr_writeback and sc.nr_writeback == sc.nr_taken:
                self.pgdat.add("writeback")
            if sc.nr_unqueued_dirty == sc.nr_file_taken:
                self.pgdat.add("dirty")
            if sc.nr_immediate:
                sc.cost_ns += self.throttle_writeback_ns(sc.clock(now))
        if sc.nr_reclaimed > reclaimed0:
            self.scalars["kswapd_failures"] = 0

    def try_to_free_pages(self, nr_to_reclaim: int, may_swap: bool, now: int):
        """do_try_to_free_pages(): (reclaimed, cost_ns, callback_ns)."""
        self.vmstat["allocstall"] += 1
        sc = ScanControl(nr_to_reclaim, c.DEF_PRIORITY, False, bool(may_swap))
        for prio in range(c.DEF_PRIORITY, -1, -1):
            self.vmpressure_prio(prio)
            sc.priority = prio
            self.shrink_node(sc, now)
            if sc.nr_reclaimed >= nr_to_reclaim:
                break
            if prio == 1 and not sc.nr_reclaimed and not self.old:
                sc.cost_ns += c.NOPROGRESS_THROTTLE_NS    # consider_reclaim_throttle()
        return sc.nr_reclaimed, sc.cost_ns, sc.callback_ns

    def wakeup_kswapd(self, now: int) -> None:
        s = self.scalars
        if s["kswapd_awake"] or s["kswapd_failures"] >= c.MAX_RECLAIM_RETRIES:
            return
        s["kswapd_awake"], s["kswapd_prio"] = 1, c.DEF_PRIORITY
        self.vmstat["kswapd_wake"] += 1
        self.vmstat["pageoutrun"] += 1
        s["kswapd_clock"] = max(s["kswapd_clock"], now)

    def kswapd_sleep(self) -> None:
        """prepare_kswapd_sleep() -> clear_pgdat_congested()."""
        self.scalars["kswapd_awake"] = 0
        self.pgdat.clear()

    def kswapd(self, now: int) -> None:
        """balance_pgdat() passes of max(high, SWAP_CLUSTER_MAX) pages up to ``now``."""
        s = self.scalars
        while s["kswapd_awake"] and s["kswapd_clock"] < now:
            if self.nr_free >= self.params["wmark_high"]:
                self.kswapd_sleep()
                return
            prio = s["kswapd_prio"]
            sc = ScanControl(max(self.params["wmark_high"], c.SWAP_CLUSTER_MAX), prio, True)
            self.shrink_node(sc, s["kswapd_clock"])
            s["kswapd_clock"] += max(sc.cost_ns + sc.callback_ns, self.params["kswapd_scan_ns"])
            if sc.nr_scanned < sc.nr_to_reclaim or not sc.nr_reclaimed:
                if prio > 0:
                    s["kswapd_prio"] = prio - 1
                elif not sc.nr_reclaimed:
                    s["kswapd_failures"] += 1
                    s["kswapd_prio"] = c.DEF_PRIORITY
                    if s["kswapd_failures"] >= c.MAX_RECLAIM_RETRIES:
                        self.kswapd_sleep()


def copy_state(m):
    """A deep copy of a MachineState (every array copied, record arrays stay record arrays)."""
    return type(m)(*(a.copy() for a in m))
