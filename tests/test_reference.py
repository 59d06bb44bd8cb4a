"""The numba reclaim kernels against the slow pure-Python reference model (tests/naive.py).

Every comparison starts both from the same state, runs one entry point (shrink_inactive_list,
shrink_active_list, get_scan_count, shrink_lruvec, shrink_slab, try_to_free_pages, kswapd ...)
and demands the same result everywhere: the order of every LRU list and of the free list, every
frame's flags and accessed/dirty bits, PTEs, swap slots and shadow entries, the reclaim scalars
(costs, nonresident age, kswapd, vmpressure, slab) and every vmstat counter.

Starting states come from two places:
- hand-made seeded guests of a few hundred frames (``random_guest``), small enough for the
  ``nojit`` runs (``NUMBA_DISABLE_JIT=1 pytest -m nojit``);
- a booted Machine (16 MiB guest, phased workload, slab cache) advanced until its LRU lists are
  populated by real faults and reclaim, for kernel 6.1 and 3.7, with and without swap, and
  swappiness 0/60/200.

The reference follows Linux. Two differences it found in the kernels (file_is_tiny counting
active anon; the inactive scan re-seeing pages it put back) keep a minimal-case test each.
"""
from __future__ import annotations

import functools
import random
from collections import Counter, deque

import naive
import numpy as np
import pytest
from machines import BARE, MiB
from naive import Guest, Page, ScanControl

from autoballoon import uapi
from autoballoon.machine import invariants
from autoballoon.machine import layout as L
from autoballoon.machine.mm import constants as c
from autoballoon.machine.mm import lru, shrinker, swap, vmpressure, vmscan, watermark

SC = ("nr_to_reclaim", "priority", "nr_scanned", "nr_reclaimed", "is_kswapd", "may_swap",
      "cost_ns")
INACTIVE = (c.LRU_INACTIVE_ANON, c.LRU_INACTIVE_FILE)
ACTIVE = (c.LRU_ACTIVE_ANON, c.LRU_ACTIVE_FILE)


# ---------------------------------------------------------------------------------------------
# starting states
# ---------------------------------------------------------------------------------------------
def random_guest(seed: int, *, kernel_old=False, swappiness=60, nframes=384, nslots=128,
                 nslab=40, sizes=None, nfree=None, high=None, swap_fill=0.3) -> Guest:
    """A consistent guest with every page state the reclaim path distinguishes, seeded."""
    rng = random.Random(seed)
    if sizes is not None and nfree is not None:
        nframes = nslab + sum(sizes) + nfree
    nv = 3 * nframes
    wmin, wlow, whigh = naive.watermarks(nframes)
    params = dict(frame_base=0, nframes=nframes, vpage_base=0, nvpages=nv, swap_base=0,
                  nslots=nslots, kernel_old=int(kernel_old), swappiness=swappiness,
                  wmark_min=wmin, wmark_low=wlow, wmark_high=high if high is not None else whigh,
                  managed=nframes, swap_write_ns=20_000, swap_ns_per_page=7812,
                  kswapd_scan_ns=200, features=1 << uapi.VIRTIO_BALLOON_F_STATS_VQ,
                  block_base=0, nblocks=-(-nframes // naive.BLOCK_PAGES))
    frames = {pfn: Page(pfn, -1, {"slab"}, {"present"}) for pfn in range(nslab)}
    rest = list(range(nslab, nframes))
    rng.shuffle(rest)
    if sizes is None:
        on_lru = len(rest) - (nfree if nfree is not None else rng.randint(5, 40))
        cuts = sorted(rng.randint(0, on_lru) for _ in range(3))
        sizes = [cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], on_lru - cuts[2]]
    vpns = rng.sample(range(nv), nv)
    lists = {l: deque() for l in range(c.NR_LRU_LISTS)}
    pte, swp, swap_map, shadow = {}, {}, [None] * nslots, {}
    free_slots = list(range(nslots))
    rng.shuffle(free_slots)
    for l in range(c.NR_LRU_LISTS):
        anon = l in (c.LRU_INACTIVE_ANON, c.LRU_ACTIVE_ANON)
        for _ in range(sizes[l]):
            pfn, vpn = rest.pop(), vpns.pop()
            flags = {"lru"} | ({"swapbacked"} if anon else set())
            if l in ACTIVE:
                flags.add("active")
            for f, p in (("referenced", .35), ("workingset", .3)):
                if rng.random() < p:
                    flags.add(f)
            if not anon and rng.random() < .05:
                flags.add("reclaim")
            hw = {"present"}
            for f, p in (("young", .4), ("hyoung", .5), ("dirty", .6 if anon else .25)):
                if rng.random() < p:
                    hw.add(f)
            if anon and l == c.LRU_INACTIVE_ANON and rng.random() < .05:
                hw.add("unmapped")
                hw.discard("young")
            if anon and free_slots and rng.random() < .2:      # a swap-cache copy exists
                off = free_slots.pop()
                swp[vpn], swap_map[off] = off, vpn
            page = Page(pfn, vpn, flags, hw)
            frames[pfn] = page
            pte[vpn] = pfn
            lists[l].append(page)
    free = deque(rest)
    for pfn in rest:
        frames[pfn] = Page(pfn, -1, {"free"}, {"present"} if rng.random() < .7 else set())
    for _ in range(int(swap_fill * len(free_slots))):             # swapped-out pages
        vpn, off = vpns.pop(), free_slots.pop()
        swp[vpn], swap_map[off] = off, vpn
    age = rng.randint(0, 5000)
    for _ in range(nv // 10):
        vpn = vpns.pop()
        shadow[vpn] = (rng.randint(0, age) << 1) | rng.randint(0, 1)
    nblk = params["nblocks"]
    blk_nfree = {b: sum(1 for p in free if p // naive.BLOCK_PAGES == b) for b in range(nblk)}
    scalars = dict(nr_slab=nslab, slab_deferred=rng.randint(0, 300), reporting_clock=2**62,
                   swap_cursor=rng.randrange(nslots) if nslots else 0,
                   anon_cost=rng.randint(0, 150), file_cost=rng.randint(0, 150),
                   nonresident_age=age, vmp_scanned=rng.randint(0, 500), vmp_reclaimed=0,
                   vmp_level=0, kswapd_awake=0, kswapd_clock=0, kswapd_prio=c.DEF_PRIORITY,
                   kswapd_failures=0)
    scalars["vmp_reclaimed"] = rng.randint(0, scalars["vmp_scanned"])
    return Guest(params=params, frames=frames, lru=lists, free=free, pte=pte, swp=swp,
                 swap_map=swap_map, shadow=shadow, vmstat=Counter(), scalars=scalars,
                 blk_nfree=blk_nfree)


@functools.lru_cache(maxsize=None)
def machine_state(kernel="6.1", swap_kib=32 * 1024, swappiness=60, t_ms=60):
    """A 16 MiB guest with a 1 MiB slab cache, advanced t_ms by a phased workload."""
    from autoballoon.machine import Machine
    from autoballoon.scenario import spec
    ph = spec.PhaseSpec
    wl = spec.WorkloadSpec(phases=(
        ph(length=4 * MiB, offset=12 * MiB, pattern="read", passes=2, think_ns=200),
        ph(length=12 * MiB, pattern="seq", passes=1, think_ns=200),
        ph(length=12 * MiB, pattern="zipf", duration_ns=20_000_000, write_fraction=.3,
           think_ns=200),
        ph(length=4 * MiB, offset=12 * MiB, pattern="read", passes=1, think_ns=200),
        ph(length=12 * MiB, pattern="rand", duration_ns=50_000_000, write_fraction=.3,
           think_ns=200)), seed=3, loop=True)
    g = spec.GuestSpec(name="g", memory=16 * MiB, workload=wl, kernel=kernel,
                       swappiness=swappiness, slab=MiB, **BARE,
                       swap=spec.SwapSpec(size=swap_kib * 1024, read_latency_ns=5000,
                                          write_latency_ns=2000))
    sc = spec.Scenario(run=spec.RunSpec(duration_ns=10**9),
                       host=spec.HostSpec(memory=1024 * MiB, **BARE), guests=(g,))
    mach = Machine(sc)
    mach.advance(t_ms * 1_000_000)
    m = mach.m
    assert not (m.fref & c.F_HSWAPPED).any()        # no double paging: the model leaves it out
    return m


# ---------------------------------------------------------------------------------------------
# running both sides
# ---------------------------------------------------------------------------------------------
def sc_array(m, row, nr_to_reclaim, priority, is_kswapd, may_swap=1):
    sc = m.scratch[row, :vmscan.NR_SC]
    vmscan.init_scan_control(sc, nr_to_reclaim, priority, is_kswapd)
    sc[vmscan.SC_MAY_SWAP] = may_swap
    return sc


def sc_dict(sc) -> dict:
    if isinstance(sc, ScanControl):
        return {k: int(getattr(sc, k)) for k in SC}
    idx = {k: getattr(vmscan, "SC_" + k.upper()) for k in SC}
    return {k: int(sc[i]) for k, i in idx.items()}


def run(op: tuple, m, guest: Guest):
    """Apply one operation to the kernel state m (guest 0) and to the naive guest.

    Returns (kernel_result, naive_result) for the return values / scan_control.
    """
    kind, *a = op
    if kind == "inactive":                         # ("inactive", lru, n, is_kswapd, may_swap)
        l, n, ksw, may_swap = a
        sc = sc_array(m, ksw, 32, 12, ksw, may_swap)
        r_k = vmscan.shrink_inactive_list(m, 0, n, l, sc, 7)
        nsc = ScanControl(32, 12, bool(ksw), bool(may_swap))
        r_n = guest.shrink_inactive_list(n, l, nsc, 7)
        return (int(r_k), sc_dict(sc)), (r_n, sc_dict(nsc))
    if kind == "active":                           # ("active", lru, n)
        l, n = a
        sc = sc_array(m, 0, 32, 12, 0)
        vmscan.shrink_active_list(m, 0, n, l, sc)
        nsc = ScanControl(32, 12, False)
        guest.shrink_active_list(n, l, nsc)
        return sc_dict(sc), sc_dict(nsc)
    if kind == "scan_count":                       # ("scan_count", prio, may_swap)
        prio, may_swap = a
        sc = sc_array(m, 0, 32, prio, 0, may_swap)
        nr = np.zeros(4, np.int64)
        da, df = vmscan.get_scan_count(m, 0, sc, nr)
        nnr, nda, ndf = guest.get_scan_count(ScanControl(32, prio, False, bool(may_swap)))
        return ([int(x) for x in nr], bool(da), bool(df)), ([nnr[l] for l in range(4)], nda, ndf)
    if kind == "lruvec":                           # ("lruvec", prio, nr_to_reclaim, is_kswapd)
        prio, target, ksw = a
        sc = sc_array(m, ksw, target, prio, ksw)
        vmscan.shrink_lruvec(m, 0, sc, 11)
        nsc = ScanControl(target, prio, bool(ksw))
        guest.shrink_lruvec(nsc, 11)
        return sc_dict(sc), sc_dict(nsc)
    if kind == "node":                             # ("node", prio, nr_to_reclaim)
        prio, target = a
        sc = sc_array(m, 0, target, prio, 0)
        vmscan.shrink_node(m, 0, sc, 13)
        nsc = ScanControl(target, prio, False)
        guest.shrink_node(nsc, 13)
        return sc_dict(sc), sc_dict(nsc)
    if kind == "slab":                             # ("slab", prio, nr_scanned)
        prio, nr_scanned = a
        r_k = shrinker.shrink_slab(m, 0, prio, nr_scanned, 5)
        r_n = guest.shrink_slab(prio, nr_scanned, 5)
        return int(r_k), r_n
    if kind == "direct":                           # ("direct", nr_to_reclaim, may_swap)
        target, may_swap = a
        r_k = vmscan.try_to_free_pages(m, 0, target, may_swap, 17)
        r_n = guest.try_to_free_pages(target, may_swap, 17)
        return tuple(int(x) for x in r_k), r_n
    if kind == "kswapd":                           # ("kswapd", high, run_ns)
        high, run_ns = a
        now = int(m.S[0, L.S_CLOCK])
        m.P[0, L.P_WMARK_HIGH] = guest.params["wmark_high"] = high
        vmscan.wakeup_kswapd(m, 0, now)
        vmscan.kswapd(m, 0, now + run_ns)
        guest.wakeup_kswapd(now)
        guest.kswapd(now + run_ns)
        return None, None
    raise ValueError(kind)


def compare(m0, op):
    """Run op on a copy of m0 with the kernels and on the naive model; assert equal."""
    m = naive.copy_state(m0)
    guest = Guest.from_state(m0, 0)
    assert not guest.diff(m0, 0), "the conversion does not round-trip"
    r_k, r_n = run(op, m, guest)
    assert r_k == r_n, f"{op}: return values differ: kernel {r_k} naive {r_n}"
    problems = guest.diff(m, 0)
    assert not problems, f"{op}: kernel and reference differ:\n  " + "\n  ".join(problems)
    return m, guest


def changed(m0, m, names=("pgscan_kswapd", "pgscan_direct", "pgrefill", "slabs_scanned")):
    """How much an operation did, so that a test cannot pass by doing nothing."""
    return sum(int(m.V[0, L.VMSTAT_NAMES.index(n)] - m0.V[0, L.VMSTAT_NAMES.index(n)])
               for n in names)


def work(m0, m, guest, op) -> int:
    """What op did on m0: slab objects scanned for "slab", the pages get_scan_count asks for
    (it changes no state) for "scan_count", LRU pages and slab objects scanned otherwise."""
    if op[0] == "scan_count":
        nr, _, _ = guest.get_scan_count(ScanControl(32, op[1], False, bool(op[2])))
        return sum(nr[l] for l in range(4))
    if op[0] == "slab":
        return changed(m0, m, ("slabs_scanned",))
    return changed(m0, m)


def compare_each(case, m0, ops, idle_ok=()):
    """compare() every op from m0 and demand that each one did some work, except exactly the
    (case, op) pairs in idle_ok (case "*": every case), so no op passes by doing nothing."""
    idle = []
    for op in ops:
        m, g = compare(m0, op)
        if not work(m0, m, g, op):
            idle.append(op)
    allowed = [op for op in ops if (case, op) in idle_ok or ("*", op) in idle_ok]
    assert idle == allowed, f"{case}: ops that did nothing {idle}, allowed to {allowed}"


# ---------------------------------------------------------------------------------------------
# the model's own conversions
# ---------------------------------------------------------------------------------------------
@pytest.mark.nojit
@pytest.mark.parametrize("seed", range(3))
def test_random_guest_is_consistent_and_round_trips(seed):
    guest = random_guest(seed)
    m = guest.to_state()
    invariants._check_lists(m, 0, "synthetic")
    invariants._check_mappings(m, 0, "synthetic")
    assert guest.diff(m, 0) == []
    back = Guest.from_state(m, 0)
    assert [back.order(l) for l in range(4)] == [guest.order(l) for l in range(4)]


@pytest.mark.nojit
def test_diff_notices_a_swapped_pair_in_a_list():
    guest = random_guest(1)
    m = guest.to_state()
    lst = guest.lru[c.LRU_INACTIVE_ANON]
    lst[0], lst[1] = lst[1], lst[0]
    problems = guest.diff(m, 0)
    assert problems and problems[0].startswith("inactive_anon")


# ---------------------------------------------------------------------------------------------
# single steps on small hand-made guests (also run with NUMBA_DISABLE_JIT=1)
# ---------------------------------------------------------------------------------------------
SMALL = [
    # (seed, kernel_old, swappiness, nslots)
    (11, False, 60, 128), (12, True, 60, 128), (13, False, 0, 128), (14, False, 200, 128),
    (15, False, 60, 0), (16, True, 200, 0), (17, False, 60, 24), (18, True, 0, 24),
]


def small_id(p):
    seed, old, swappiness, nslots = p
    return f"s{seed}-{'3.7' if old else '6.1'}-sw{swappiness}-slots{nslots}"


def small_guest(p):
    """A SMALL case: about 350 LRU pages and a 160-object slab (3.7 scans the slab in batches
    of 128 and never reaches one with fewer than 64 objects: 2 * max_pass is its cap)."""
    seed, old, swappiness, nslots = p
    return random_guest(seed, kernel_old=old, swappiness=swappiness, nslots=nslots, nslab=160,
                        nframes=512)


# (case, op) pairs allowed to do nothing in the SMALL tests (and only these: each other op
# must scan something, see work())
SMALL_IDLE = [
    # at priority 12 every list of a few hundred pages is nr >> 12 = 0 pages to scan: only
    # the anon/file balance flags are compared
    ("*", ("scan_count", 12, 1)),
    # 6.1 scans (160 >> 12) * 4 / 2 + (deferred >> 12) = 0 slab objects at priority 12 (3.7
    # ignores the priority and scans from nr_scanned); the deferred count is compared
    *((small_id(p), ("slab", 12, 100)) for p in SMALL if not p[1]),
]


@pytest.mark.nojit
@pytest.mark.parametrize("p", SMALL, ids=small_id)
def test_small_single_steps(p):
    m0 = small_guest(p).to_state()
    # shrink_lruvec never asks shrink_inactive_list for more than the list holds (see
    # test_linux_isolates_before_scanning for what happens if one does)
    ia, ifl = (int(m0.lru_size[0, l]) for l in INACTIVE)
    compare_each(small_id(p), m0, [
        ("inactive", c.LRU_INACTIVE_ANON, min(32, ia), 0, 1),
        ("inactive", c.LRU_INACTIVE_ANON, min(32, ia), 1, 0),
        ("inactive", c.LRU_INACTIVE_FILE, min(32, ifl), 0, 1),
        ("inactive", c.LRU_INACTIVE_FILE, min(20, ifl), 1, 1),
        ("active", c.LRU_ACTIVE_ANON, 32), ("active", c.LRU_ACTIVE_FILE, 7),
        ("scan_count", 12, 1), ("scan_count", 3, 1), ("scan_count", 0, 1), ("scan_count", 2, 0),
        ("slab", 12, 100), ("slab", 1, 300), ("slab", 0, 300)], SMALL_IDLE)


@pytest.mark.nojit
@pytest.mark.parametrize("p", SMALL, ids=small_id)
def test_small_reclaim(p):
    m0 = small_guest(p).to_state()
    compare_each(small_id(p), m0, [
        ("lruvec", 5, 32, 0), ("lruvec", 2, 32, 1), ("node", 4, 64), ("direct", 32, 1),
        ("direct", 200, 1), ("direct", 64, 0), ("kswapd", 150, 5_000_000)], SMALL_IDLE)


@pytest.mark.nojit
def test_small_swap_fills_up_mid_scan():
    """Swap with fewer free slots than dirty anon pages: add_to_swap() fails part way and the
    rest are activated (SCAN_FILE only starts at the next get_scan_count)."""
    guest = random_guest(21, nslots=40, swap_fill=0.0, sizes=[120, 40, 60, 40], nfree=10)
    m0 = guest.to_state()
    m, g = compare(m0, ("inactive", c.LRU_INACTIVE_ANON, 32, 0, 1))
    m, g = compare(m, ("inactive", c.LRU_INACTIVE_ANON, 32, 0, 1))
    assert g.swap_used == 40 and g.vmstat["pgactivate"] > 0
    compare(m, ("direct", 64, 1))


@pytest.mark.nojit
def test_references_two_look_rule_6_1_and_first_look_3_7():
    """A young anon page on the inactive list: 6.1 keeps it once (PG_referenced set), 3.7
    activates it at once. Checked on a 6-page list, both sides."""
    for old, expect in ((False, "keep"), (True, "activate")):
        guest = random_guest(5, kernel_old=old, nframes=200, nslab=0,
                             sizes=[6, 0, 0, 0], nfree=100)
        tail = guest.lru[c.LRU_INACTIVE_ANON][-1]
        tail.flags.discard("referenced")
        tail.hw.add("young")
        m0 = guest.to_state()
        m, g = compare(m0, ("inactive", c.LRU_INACTIVE_ANON, 1, 0, 1))
        if expect == "keep":
            assert g.order(c.LRU_INACTIVE_ANON)[0] == tail.pfn
            assert "referenced" in g.frames[tail.pfn].flags
            assert "young" not in g.frames[tail.pfn].hw
            # second look: no new access -> PG_referenced alone does not save an anon page
            m, g = compare(m, ("inactive", c.LRU_INACTIVE_ANON, 6, 0, 1))
            assert tail.pfn in g.free
        else:
            assert g.order(c.LRU_ACTIVE_ANON) == [tail.pfn]


# ---------------------------------------------------------------------------------------------
# whole reclaim runs from a booted, loaded Machine (JIT only: the workload replay is long)
# ---------------------------------------------------------------------------------------------
MACHINES = [
    # (kernel, swap KiB, swappiness, t_ms)
    ("6.1", 32768, 60, 20), ("6.1", 32768, 60, 60), ("6.1", 0, 60, 60), ("6.1", 32768, 0, 60),
    ("6.1", 32768, 200, 45), ("6.1", 512, 60, 60), ("3.7", 32768, 60, 15),
    ("3.7", 32768, 60, 60), ("3.7", 0, 60, 60), ("3.7", 32768, 0, 60), ("3.7", 32768, 200, 45),
]
# high 3000: a kswapd high watermark that every MACHINES state is below (at 1500 kswapd finds
# 3.7-swap32768K-sw60-t15ms balanced and does nothing)
OPS = [("direct", 32, 1), ("direct", 1024, 1), ("direct", 256, 0), ("lruvec", 8, 32, 0),
       ("lruvec", 5, 10_000, 1), ("lruvec", 0, 64, 1), ("kswapd", 3000, 40_000_000)]


def machine_id(p):
    kernel, swap_kib, swappiness, t_ms = p
    return f"{kernel}-swap{swap_kib}K-sw{swappiness}-t{t_ms}ms"


@pytest.mark.parametrize("p", MACHINES, ids=machine_id)
def test_machine_reclaim_matches_reference(p):
    compare_each(machine_id(p), machine_state(*p), OPS)       # every op does work


# states with a non-empty slab cache (6.1-swap32768K-sw60-t60ms has shrunk it to 0 objects)
@pytest.mark.parametrize("p", MACHINES[0:1] + MACHINES[2:3] + MACHINES[6:8], ids=machine_id)
def test_machine_slab_shrink_matches_reference(p):
    m0 = machine_state(*p)
    assert int(m0.S[0, L.S_NR_SLAB]) >= c.SHRINK_BATCH
    # 6.1 scans in batches of 128 once (objects >> priority) * 2 reaches 128 (priority <= 2
    # for 128-256 objects); 3.7 once (4 * nr_scanned / 2) * objects / lru pages does
    for op in [("slab", 2, 2000), ("slab", 1, 4000), ("slab", 0, 5000), ("node", 0, 4096)]:
        m, _ = compare(m0, op)
        assert changed(m0, m, ("slabs_scanned",)) > 0, op


# ---------------------------------------------------------------------------------------------
# shrinker semantics
# ---------------------------------------------------------------------------------------------
def slab_guest(old, nslab=1000):
    return random_guest(3, kernel_old=old, nslab=nslab, nslots=64, sizes=[100, 100, 100, 60],
                        nfree=40)


@pytest.mark.nojit
def test_shrinker_semantics_differ_on_the_same_input():
    """Same slab (1000 objects), same reclaim pass (priority 12 after scanning 3000 of 360 LRU
    pages): 6.1 scans (1000 >> 12) * 4 / 2 = 0 objects, 3.7 scans in 128-batches from
    (4 * 3000 / 2) * 1000 / 361, capped at 2 * 1000 → 1920 of them."""
    scanned = {}
    for old in (False, True):
        g = slab_guest(old)
        g.scalars["slab_deferred"] = 0
        m0 = g.to_state()
        m, gg = compare(m0, ("slab", 12, 3000))
        scanned[old] = int(m.V[0, L.SLABS_SCANNED])
        assert scanned[old] == gg.vmstat["slabs_scanned"]
    assert scanned[False] == 0
    assert scanned[True] == 1920
    # at priority 0 mainline scans min(4 * 1000 / 2, 2 * 1000) = 2000 in 128-batches while
    # >= 128 are left: 1920 scanned, all 1000 freed (an empty cache returns 0, not STOP)
    g = slab_guest(False)
    g.scalars["slab_deferred"] = 0
    m, gg = compare(g.to_state(), ("slab", 0, 3000))
    assert int(m.S[0, L.S_NR_SLAB]) == 0 and int(m.V[0, L.SLABS_SCANNED]) == 1920


@pytest.mark.nojit
@pytest.mark.parametrize("old", [False, True], ids=["6.1", "3.7"])
def test_shrinker_deferred_work_carries_over(old):
    """Repeated shrinks at a fixed input: the deferred count evolves identically."""
    g = slab_guest(old)
    g.scalars["slab_deferred"] = 0
    m = g.to_state()
    deferred = []
    for _ in range(6):
        m, g = compare(m, ("slab", 7, 90))
        deferred.append(g.scalars["slab_deferred"])
    assert len(set(deferred)) > 1 and max(deferred) > 0


@pytest.mark.nojit
@pytest.mark.parametrize("nr_deferred,nr_scanned,lru_pages,max_pass", [
    (0, 32, 1000, 500), (0, 5000, 1000, 500), (700, 32, 1000, 500), (10**6, 0, 10, 300),
    (0, 100, 0, 1), (40, 64, 200, 130)])
def test_old_shrink_slab_scan_target(nr_deferred, nr_scanned, lru_pages, max_pass):
    """The 3.7 target formula against the kernel's batches (slabs_scanned, leftover)."""
    g = random_guest(9, kernel_old=True, nframes=max(max_pass + 100, 300), nslab=max_pass,
                     nslots=0, sizes=[0, 0, 0, 0], nfree=60)
    g.scalars["slab_deferred"] = nr_deferred
    m = g.to_state()
    freed = shrinker.shrink_slab_old(m, 0, 0, nr_scanned, lru_pages, 0)
    total = naive.old_slab_scan(nr_deferred, nr_scanned, lru_pages, max_pass)
    batches = total // c.SHRINK_BATCH
    assert int(m.V[0, L.SLABS_SCANNED]) == batches * c.SHRINK_BATCH
    assert int(m.shrinker_deferred[0, 0]) == total - batches * c.SHRINK_BATCH
    assert freed == min(max_pass, batches * c.SHRINK_BATCH)


# ---------------------------------------------------------------------------------------------
# small pure functions
# ---------------------------------------------------------------------------------------------
@pytest.mark.nojit
def test_vmpressure_calc_level_grid():
    levels = Counter()
    for scanned in list(range(1, 130)) + [511, 512, 513, 1000, 4096]:
        for reclaimed in range(0, scanned + 3):
            want = naive.vmpressure_calc_level(scanned, reclaimed)
            assert vmpressure.vmpressure_calc_level(scanned, reclaimed) == want, \
                (scanned, reclaimed)
            levels[want] += 1
    assert set(levels) == {naive.LOW, naive.MEDIUM, naive.CRITICAL}
    # the boundaries: 60 % and 95 % of pages not reclaimed
    assert naive.vmpressure_calc_level(100, 41) == naive.LOW
    assert naive.vmpressure_calc_level(100, 40) == naive.MEDIUM
    assert naive.vmpressure_calc_level(100, 5) == naive.CRITICAL


@pytest.mark.nojit
def test_vmpressure_window_and_prio():
    g = random_guest(2)
    g.scalars.update(vmp_scanned=0, vmp_reclaimed=0)
    m = g.to_state()
    steps = [(100, 90), (300, 10), (200, 0), (0, 0), (511, 511), (1, 0), (40, 40)]
    for scanned, reclaimed in steps:
        vmpressure.vmpressure(m, 0, scanned, reclaimed)
        g.vmpressure(scanned, reclaimed)
    for prio in (5, 4, 3, 0):
        vmpressure.vmpressure_prio(m, 0, prio)
        g.vmpressure_prio(prio)
    assert g.diff(m, 0) == []
    # windows: 600/100 -> 83 % medium; 512/511 -> 0 % low; 552/40 (prio 3) -> 92 % medium;
    # 512/0 (prio 0) -> critical
    assert (g.vmstat["vmpressure_events_low"], g.vmstat["vmpressure_events_medium"],
            g.vmstat["vmpressure_events_critical"]) == (1, 2, 1)
    assert g.scalars["vmp_level"] == naive.CRITICAL


@pytest.mark.nojit
@pytest.mark.parametrize("seed", range(4))
def test_swapin_nr_pages_sequences(seed):
    """Random fault sequences (sequential runs, jumps, readahead hits): same windows."""
    rng = random.Random(seed)
    g = random_guest(4, nslots=256)
    m = g.to_state()
    m.S[0, L.S_RA_PREV_OFFSET] = -2
    ra = naive.SwapReadahead()
    off, windows = 0, []
    for _ in range(300):
        off = off + 1 if rng.random() < .5 else rng.randrange(256)
        hits = rng.choice([0, 0, 0, 1, 2, 3, 7])
        m.S[0, L.S_RA_HITS] = hits
        ra.hits = hits
        w = int(swap.swapin_nr_pages(m, 0, off))
        assert w == ra.swapin_nr_pages(off), (off, hits, windows[-5:])
        assert int(m.S[0, L.S_RA_PREV_WIN]) == ra.last_readahead_pages
        windows.append(w)
    assert {1, 2, 8} <= set(windows)


@pytest.mark.nojit
def test_get_swap_page_next_fit():
    g = random_guest(6, nslots=50, swap_fill=0.5)
    m = g.to_state()
    for k in range(60):
        vpn = 10_000 + k
        got = int(swap.get_swap_page(m, 0, vpn))
        want = g.get_swap_page(vpn)
        assert got == (-1 if want is None else want)
    assert g.swap_used == 50 and int(m.S[0, L.S_SWAP_USED]) == 50
    assert g.diff(m, 0) == []


def test_booted_watermarks_are_the_zone_rule():
    """Boot stores watermark.watermarks() of the guest's RAM and managed pages (its values are
    checked against hand-computed kernel numbers in test_mm.py)."""
    m = machine_state("6.1", 32768, 60, 20)
    want = watermark.watermarks(16 * MiB, int(m.P[0, L.P_MANAGED]), thp=False)
    assert tuple(int(x) for x in m.P[0, L.P_WMARK_MIN:L.P_WMARK_HIGH + 1]) == tuple(want)
    assert int(m.P[0, L.P_TOTALRESERVE]) == want.totalreserve


@pytest.mark.nojit
def test_inactive_is_low():
    # (sizes, 6.1 anon, 6.1 file, 3.7 file); the ratio is int_sqrt(10 * GiB) of the pair
    cases = [([10, 11, 10, 11], True, True, True), ([11, 10, 11, 10], False, False, False),
             ([10, 10, 10, 10], False, False, False), ([0, 1, 0, 1], True, True, True),
             # 1.3 M pages = 4 GiB: ratio 6, 300k * 6 >= 1 M: not low (ratio 1 would be)
             ([300_000, 1_000_000, 300_000, 1_000_000], False, False, True),
             # 2.1 M pages = 8 GiB: ratio 8, 200k * 8 < 1.9 M
             ([200_000, 1_900_000, 200_000, 1_900_000], True, True, True)]
    for old in (False, True):
        for sizes, anon, file61, file37 in cases:
            g = random_guest(1, kernel_old=old, nslab=0, nslots=0, sizes=[0, 0, 0, 0], nfree=10)
            m = g.to_state()
            for l, n in enumerate(sizes):                # only the lengths matter
                g.lru[l] = deque([None] * n)
            m.lru_size[0, :] = sizes
            want = {c.LRU_INACTIVE_ANON: anon, c.LRU_INACTIVE_FILE: file37 if old else file61}
            for il in INACTIVE:
                assert g.inactive_is_low(il) == want[il], (old, sizes, il)
                assert bool(lru.inactive_is_low(m, 0, il)) == want[il], (old, sizes, il)


# ---------------------------------------------------------------------------------------------
# two behaviours once missed by the kernels (found by this reference): minimal cases
# ---------------------------------------------------------------------------------------------
@pytest.mark.nojit
def test_linux_isolates_before_scanning():
    """Two young anon pages on a 2-page inactive list, nr_to_scan = 32 (6.1).
    Linux isolates both, keeps both (PG_referenced set): nothing reclaimed, 2 scanned.
    The kernel used to look at each twice and swap both out (pgscan 4, pgsteal 2); this case
    caught that and now guards against it."""
    guest = random_guest(8, nslab=0, sizes=[2, 0, 0, 0], nfree=50)
    for page in guest.lru[c.LRU_INACTIVE_ANON]:
        page.flags.discard("referenced")
        page.hw.add("young")
    m0 = guest.to_state()
    m, g = compare(m0, ("inactive", c.LRU_INACTIVE_ANON, 32, 0, 1))
    assert g.vmstat["pgscan_direct"] == 2 and g.vmstat["pgsteal_direct"] == 0


@pytest.mark.nojit
def test_linux_file_is_tiny_counts_inactive_anon_only():
    """prio 7, anon 100 inactive + 60 active, file 150 inactive + 10 active, 30 free, high 192:
    anon >> 7 is 0 for Linux (100 >> 7), so not file_is_tiny -> cache_trim_mode -> SCAN_FILE
    scans 1 inactive file page; the kernel sees (160 >> 7) = 1, picks SCAN_ANON and scans 0."""
    guest = random_guest(10, nslab=0, sizes=[100, 60, 150, 10], nfree=30, high=192)
    m0 = guest.to_state()
    nr, da, df = guest.get_scan_count(ScanControl(32, 7, False))
    assert (nr[c.LRU_INACTIVE_FILE], da, df) == (1, False, False)
    compare(m0, ("scan_count", 7, 1))


@pytest.mark.parametrize("p", MACHINES[1:2] + MACHINES[4:6] + MACHINES[7:8] + MACHINES[10:],
                         ids=machine_id)
def test_machine_reclaim_chain(p):
    """Operations one after the other on the evolving state (kswapd's clock, costs, deferred
    slab work, vmpressure windows and the swap cursor carry over)."""
    m = machine_state(*p)
    for op in [("direct", 32, 1), ("kswapd", 800, 5_000_000), ("direct", 512, 1),
               ("node", 2, 4096), ("kswapd", 2500, 60_000_000), ("direct", 2048, 0),
               ("lruvec", 0, 100_000, 0)]:
        m, g = compare(m, op)
    assert g.vmstat["pgscan_direct"] > 0 and g.vmstat["pgscan_kswapd"] > 0
