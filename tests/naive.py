"""A slow, plain-Python reference model of one guest's LRU / reclaim path.

Written from the Linux sources' semantics (mm/vmscan.c, mm/swapfile.c, mm/swap_state.c,
mm/workingset.c, mm/vmpressure.c, mm/page_alloc.c of 6.1, and shrink_slab()/page_check_references()
of 3.7) plus the simplifications that autoballoon/mm/vmscan.py documents, with Python containers
instead of arrays: an LRU list is a ``deque`` of ``Page`` objects (left = head = most recently
added, right = tail = where reclaim takes from), a page's flags are a ``set`` of names, the free
list is a ``deque`` of pfns, the swap map a ``list`` of owners. It never calls a numba kernel.

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
    "workingset": c.PG_workingset,
}
HW_BITS = {
    "young": c.F_YOUNG, "hyoung": c.F_HYOUNG, "dirty": c.F_DIRTY, "present": c.F_PRESENT,
    "hswapped": c.F_HSWAPPED, "unmapped": c.F_UNMAPPED,
}
LRU_NAMES = {c.LRU_INACTIVE_ANON: "inactive_anon", c.LRU_ACTIVE_ANON: "active_anon",
             c.LRU_INACTIVE_FILE: "inactive_file", c.LRU_ACTIVE_FILE: "active_file"}
EVICTION_MASK = (1 << 30) - 1
BLOCK_PAGES = 1 << c.PAGEBLOCK_ORDER

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
class ScanControl:
    nr_to_reclaim: int
    priority: int
    is_kswapd: bool
    may_swap: bool = True
    nr_scanned: int = 0
    nr_reclaimed: int = 0
    cost_ns: int = 0


SCALARS = ("nr_slab", "slab_deferred", "reporting_clock", "swap_cursor", "anon_cost",
           "file_cost", "nonresident_age", "vmp_scanned", "vmp_reclaimed", "vmp_level",
           "kswapd_awake", "kswapd_clock", "kswapd_prio", "kswapd_failures")
# slab_deferred is the slab cache shrinker's nr_deferred (m.shrinker_deferred[g, 0])
S_IDS = {"nr_slab": L.S_NR_SLAB, "reporting_clock": L.S_REPORTING_CLOCK,
         "swap_cursor": L.S_SWAP_CURSOR,
         "anon_cost": L.S_ANON_COST, "file_cost": L.S_FILE_COST,
         "nonresident_age": L.S_NONRESIDENT_AGE, "vmp_scanned": L.S_VMP_SCANNED,
         "vmp_reclaimed": L.S_VMP_RECLAIMED, "vmp_level": L.S_VMP_LEVEL,
         "kswapd_awake": L.S_KSWAPD_AWAKE, "kswapd_clock": L.S_KSWAPD_CLOCK,
         "kswapd_prio": L.S_KSWAPD_PRIO, "kswapd_failures": L.S_KSWAPD_FAILURES}
PARAMS = ("frame_base", "nframes", "vpage_base", "nvpages", "swap_base", "nslots",
          "kernel_old", "swappiness", "wmark_min", "wmark_low", "wmark_high", "managed",
          "swap_write_ns", "swap_ns_per_page", "kswapd_scan_ns", "features", "block_base",
          "nblocks")


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

    # --- derived ----------------------------------------------------------------------------
    @property
    def nr_free(self) -> int:
        return len(self.free)

    @property
    def swap_used(self) -> int:
        return sum(1 for o in self.swap_map if o is not None)

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
        return cls(params=params, frames=frames, lru=lru, free=deque(free), pte=pte, swp=swp,
                   swap_map=swap_map, shadow=shadow,
                   vmstat=Counter({k: int(v) for k, v in zip(L.VMSTAT_NAMES, m.V[g]) if v}),
                   scalars={**{k: int(S[i]) for k, i in S_IDS.items()},
                            "slab_deferred": int(m.shrinker_deferred[g, 0])},
                   blk_nfree={b: int(m.blk_nfree[b]) for b in range(b0, b0 + nb)})

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

    def can_reclaim_anon(self) -> bool:
        return self.swap_used < self.params["nslots"]

    # --- workingset / cost -------------------------------------------------------------------
    def evict(self, page: Page, now: int) -> None:
        """__remove_mapping(): unmap, leave a shadow entry (age, workingset), free the frame."""
        vpn = page.vpn
        del self.pte[vpn]
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

    def shrink_inactive_list(self, nr_to_scan: int, lru_id: int, sc: ScanControl,
                             now: int) -> int:
        file = lru_id == c.LRU_INACTIVE_FILE
        scanned = reclaimed = writes = 0
        back = []                                   # pages to put back, in the order handled

        def put(page):                              # kept pages go back after the batch
            back.append(page)

        for page in self.isolate(lru_id, nr_to_scan):
            page.flags.discard("lru")
            scanned += 1
            ref = self.folio_check_references(page)
            if ref == ACTIVATE:
                page.flags |= {"active", "workingset"}      # model choice: also workingset
                self.vmstat["pgactivate"] += 1
                put(page)
                continue
            if ref == KEEP:
                put(page)
                continue
            # RECLAIM or RECLAIM_CLEAN (the model writes dirty file pages either way)
            dirty = "dirty" in page.hw
            if not file:
                if page.vpn not in self.swp:
                    slot = self.get_swap_page(page.vpn) if sc.may_swap else None
                    if slot is None:                      # add_to_swap() failed
                        page.flags.add("active")
                        self.vmstat["pgactivate"] += 1
                        put(page)
                        continue
                    self.swp[page.vpn] = slot
                    dirty = True                          # a new swap copy must be written
                if dirty:
                    self.write_page(page)
                    writes += 1
                    self.vmstat["pswpout"] += 1
            elif dirty:                                   # pageout(), then rotate
                self.write_page(page)
                writes += 1
                page.hw.discard("dirty")
                page.flags.add("reclaim")
                self.vmstat["pgrotated"] += 1
                put(page)
                continue
            self.evict(page, now)
            reclaimed += 1
        for page in back:
            self.putback(page)
        cost = scanned * self.params["kswapd_scan_ns"]
        if writes:
            cost += self.params["swap_write_ns"] + writes * self.params["swap_ns_per_page"]
            self.lru_note_cost(file, writes)
        who = "kswapd" if sc.is_kswapd else "direct"
        self.vmstat["pgscan_" + who] += scanned
        self.vmstat["pgsteal_" + who] += reclaimed
        sc.nr_scanned += scanned
        sc.nr_reclaimed += reclaimed
        sc.cost_ns += cost
        return reclaimed

    def write_page(self, page: Page) -> None:
        if "hswapped" in page.hw:
            raise NotImplementedError("double paging (host swap read-back) is not modelled here")
        self.vmstat["pgpgout"] += 1

    def shrink_active_list(self, nr_to_scan: int, lru_id: int, sc: ScanControl) -> None:
        pages = self.isolate(lru_id, nr_to_scan)
        for page in pages:
            self.folio_referenced(page)           # cleared; no VM_EXEC, so it makes no odds
            page.flags.discard("active")
            page.flags.add("workingset")
        for page in pages:
            self.putback(page)
        self.vmstat["pgrefill"] += len(pages)
        self.vmstat["pgdeactivate"] += len(pages)
        sc.cost_ns += len(pages) * self.params["kswapd_scan_ns"]

    def get_scan_count(self, sc: ScanControl):
        """prepare_scan_count() + get_scan_count(): ({lru: pages}, deactivate_anon, _file)."""
        prio, swappiness = sc.priority, self.params["swappiness"]
        deactivate_anon = self.inactive_is_low(c.LRU_INACTIVE_ANON)
        deactivate_file = self.inactive_is_low(c.LRU_INACTIVE_FILE)
        file = self.size(c.LRU_INACTIVE_FILE) + self.size(c.LRU_ACTIVE_FILE)
        anon = self.size(c.LRU_INACTIVE_ANON)
        file_is_tiny = (file + self.nr_free <= self.params["wmark_high"]
                        and not deactivate_anon and (anon >> prio) > 0)
        cache_trim_mode = (self.size(c.LRU_INACTIVE_FILE) >> prio) > 0 and not deactivate_file
        if not sc.may_swap or not self.can_reclaim_anon():
            balance = SCAN_FILE
        elif prio == 0 and swappiness:
            balance = SCAN_EQUAL
        elif file_is_tiny:
            balance = SCAN_ANON
        elif cache_trim_mode:
            balance = SCAN_FILE
        else:
            balance = SCAN_FRACT
        a, f = self.scalars["anon_cost"], self.scalars["file_cost"]
        anon_cost, file_cost = 2 * a + f, a + 2 * f
        total = anon_cost + file_cost
        fraction = {False: swappiness * (total + 1) // (anon_cost + 1),
                    True: (200 - swappiness) * (total + 1) // (file_cost + 1)}
        denominator = fraction[False] + fraction[True]
        nr = {}
        for l in range(c.NR_LRU_LISTS):
            is_file = l in (c.LRU_INACTIVE_FILE, c.LRU_ACTIVE_FILE)
            scan = self.size(l) >> prio
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
                    reclaimed += self.shrink_inactive_list(n, l, sc, now)
            if reclaimed >= sc.nr_to_reclaim:          # documented simplification
                break
        if self.can_reclaim_anon() and self.inactive_is_low(c.LRU_INACTIVE_ANON):
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
        total_scan = old_slab_scan(nr, nr_scanned, lru_pages, max_pass)
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
        scanned0, reclaimed0 = sc.nr_scanned, sc.nr_reclaimed
        self.shrink_lruvec(sc, now)
        sc.nr_reclaimed += self.shrink_slab(sc.priority, sc.nr_scanned - scanned0, now)
        self.vmpressure(sc.nr_scanned - scanned0, sc.nr_reclaimed - reclaimed0)

    def try_to_free_pages(self, nr_to_reclaim: int, may_swap: bool, now: int):
        """do_try_to_free_pages(): (reclaimed, cost_ns)."""
        self.vmstat["allocstall"] += 1
        sc = ScanControl(nr_to_reclaim, c.DEF_PRIORITY, False, bool(may_swap))
        for prio in range(c.DEF_PRIORITY, -1, -1):
            self.vmpressure_prio(prio)
            sc.priority = prio
            self.shrink_node(sc, now)
            if sc.nr_reclaimed >= nr_to_reclaim:
                break
        if sc.nr_reclaimed > 0:
            self.scalars["kswapd_failures"] = 0
        return sc.nr_reclaimed, sc.cost_ns

    def wakeup_kswapd(self, now: int) -> None:
        s = self.scalars
        if s["kswapd_awake"] or s["kswapd_failures"] >= c.MAX_RECLAIM_RETRIES:
            return
        s["kswapd_awake"], s["kswapd_prio"] = 1, c.DEF_PRIORITY
        self.vmstat["kswapd_wake"] += 1
        self.vmstat["pageoutrun"] += 1
        s["kswapd_clock"] = max(s["kswapd_clock"], now)

    def kswapd(self, now: int) -> None:
        """balance_pgdat() passes of max(high, SWAP_CLUSTER_MAX) pages up to ``now``."""
        s = self.scalars
        while s["kswapd_awake"] and s["kswapd_clock"] < now:
            if self.nr_free >= self.params["wmark_high"]:
                s["kswapd_awake"] = 0
                return
            prio = s["kswapd_prio"]
            sc = ScanControl(max(self.params["wmark_high"], c.SWAP_CLUSTER_MAX), prio, True)
            self.shrink_node(sc, s["kswapd_clock"])
            s["kswapd_clock"] += max(sc.cost_ns, self.params["kswapd_scan_ns"])
            if sc.nr_reclaimed:
                s["kswapd_failures"] = 0
            if sc.nr_scanned < sc.nr_to_reclaim or not sc.nr_reclaimed:
                if prio > 0:
                    s["kswapd_prio"] = prio - 1
                elif not sc.nr_reclaimed:
                    s["kswapd_failures"] += 1
                    s["kswapd_prio"] = c.DEF_PRIORITY
                    if s["kswapd_failures"] >= c.MAX_RECLAIM_RETRIES:
                        s["kswapd_awake"] = 0


def copy_state(m):
    """A deep copy of a MachineState (every array copied)."""
    return type(m)(*(np.array(a, copy=True) for a in m))
