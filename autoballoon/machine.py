"""The simulated machine: one host and all its guests, as struct-of-arrays NumPy state.

``Machine`` builds the state from a validated Scenario (boot: watermarks, free lists, slab,
initial balloon targets, workload tables), advances it with the numba kernels, and reads
counters and gauges back with the kernel's names. It is the only object the control loop and
the host policies talk to.
"""
from __future__ import annotations

import numpy as np

from autoballoon.mm import constants as c
from autoballoon.mm import state as mmstate
from autoballoon.mm.watermark import watermarks
from autoballoon.sim.spec import PAGE_SIZE, PATTERNS, Scenario

# Pressure levels, as in mm/vmpressure.c (enum vmpressure_levels)
VMPRESSURE_LOW, VMPRESSURE_MEDIUM, VMPRESSURE_CRITICAL = 0, 1, 2

# virtio_balloon stats virtqueue tags (include/uapi/linux/virtio_balloon.h), in tag order
STATS_TAGS = ("swap_in", "swap_out", "major_faults", "minor_faults", "free_memory",
              "total_memory", "available_memory", "disk_caches", "hugetlb_allocations",
              "hugetlb_failures", "oom_kills", "alloc_stalls", "async_scans", "direct_scans",
              "async_reclaims", "direct_reclaims")

GUEST_FAULT_NS = 500          # minor fault: exception entry, page zeroing, PTE set
BALLOON_BATCH_NS = 250_000    # one 256-page virtqueue round trip incl. the host's madvise
PATTERN_CODES = {name: i for i, name in enumerate(PATTERNS)}


def _ns_per_page(bandwidth: int) -> int:
    return int(round(PAGE_SIZE * 1e9 / bandwidth))


def _zipf_cdf(n: int, alpha: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64) ** -alpha
    cdf = np.cumsum(w)
    return cdf / cdf[-1]


def _seed(run_seed: int, g: int, spec_seed: int | None) -> int:
    """A non-zero per-guest generator seed (splitmix64 of the run seed and guest index)."""
    x = (spec_seed if spec_seed is not None else run_seed * 1_000_003 + g) & (2**64 - 1)
    x = (x + 0x9E3779B97F4A7C15) & (2**64 - 1)
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 31
    return int(np.int64(np.uint64(x or 1)))


class Machine:
    """Host + guests. Guests are indexed 0..n-1 in scenario order (``names``)."""

    def __init__(self, scenario: Scenario, debug: bool = False, traces: dict | None = None):
        self.scenario = scenario
        self.debug = debug
        self.names = [g.name for g in scenario.guests]
        self.now_ns = 0
        self._slice_no = 0
        self._traces = self._load_traces(traces or {})
        self.m = self._boot()

    # --- boot ---------------------------------------------------------------------------------
    def _load_traces(self, given: dict) -> dict:
        from autoballoon import trace as tracelib
        out = dict(given)
        for gs in self.scenario.guests:
            wl = gs.workload
            if wl.kind == "trace" and wl.path not in out:
                out[wl.path] = tracelib.load(wl.path)
        return out

    def _vpages(self, gs) -> int:
        wl = gs.workload
        if wl.kind == "trace":
            return int(self._traces[wl.path].footprint)
        return -(-wl.mapping_bytes // PAGE_SIZE)

    def _boot(self) -> mmstate.MachineState:
        sc = self.scenario
        guests = sc.guests
        paths = list(dict.fromkeys(g.workload.path for g in guests if g.workload.kind == "trace"))
        phases = [p for g in guests if g.workload.kind == "phases" for p in g.workload.phases]
        cdf_len = sum(p.length // PAGE_SIZE for p in phases if p.pattern == "zipf")
        m = mmstate.allocate(
            [g.memory // PAGE_SIZE for g in guests], [self._vpages(g) for g in guests],
            [g.swap.size // PAGE_SIZE for g in guests],
            trace_len=sum(len(self._traces[p].page) for p in paths), nphases=len(phases),
            cdf_len=cdf_len)
        self._fill_traces(m, paths)
        self._fill_phases(m)
        for g, gs in enumerate(guests):
            self._boot_guest(m, g, gs, sc.run.seed)
        self._boot_host(m)
        return m

    def _fill_traces(self, m, paths):
        self._trace_offset = {}
        off = 0
        for p in paths:
            t = self._traces[p]
            n = len(t.page)
            m.tr_gap[off:off + n] = t.gap_ns
            m.tr_page[off:off + n] = t.page
            m.tr_op[off:off + n] = t.op
            self._trace_offset[p] = (off, off + n)
            off += n

    def _fill_phases(self, m):
        i = cdf = 0
        for g, gs in enumerate(self.scenario.guests):
            wl = gs.workload
            if wl.kind == "trace":
                continue
            m.wl_start[g] = i
            for p in wl.phases:
                n = p.length // PAGE_SIZE
                m.ph_offset[i] = p.offset // PAGE_SIZE
                m.ph_len[i] = n
                m.ph_pattern[i] = PATTERN_CODES[p.pattern]
                m.ph_duration[i] = p.duration_ns or 0
                m.ph_passes[i] = p.passes or 0
                m.ph_think[i] = p.think_ns
                m.ph_wfrac[i] = p.write_fraction
                if p.pattern == "zipf":
                    m.ph_cdf_start[i] = cdf
                    m.zipf_cdf[cdf:cdf + n] = _zipf_cdf(n, p.alpha)
                    cdf += n
                i += 1
            m.wl_end[g] = i

    def _boot_guest(self, m, g, gs, run_seed):
        P, S = m.P[g], m.S[g]
        n = gs.memory // PAGE_SIZE
        base = int(P[c.P_FRAME_BASE])
        wmin, wlow, whigh = watermarks(n, gs.watermark_scale_factor)
        sw = gs.swap
        P[c.P_KERNEL_OLD] = gs.kernel == "3.7"
        P[c.P_SWAPPINESS] = gs.swappiness
        P[c.P_WMARK_MIN], P[c.P_WMARK_LOW], P[c.P_WMARK_HIGH] = wmin, wlow, whigh
        P[c.P_MANAGED] = n
        P[c.P_SWAP_READ_NS], P[c.P_SWAP_WRITE_NS] = sw.read_latency_ns, sw.write_latency_ns
        P[c.P_SWAP_NS_PER_PAGE] = _ns_per_page(sw.bandwidth)
        P[c.P_KSWAPD_SCAN_NS] = gs.kswapd_scan_ns
        P[c.P_FEATURES] = sum(1 << c.FEATURE_BITS[f] for f in gs.features)
        P[c.P_AUTOBALLOON_RFC] = gs.auto_balloon_variant == "rfc"
        P[c.P_BALLOON_BATCH_NS] = BALLOON_BATCH_NS
        P[c.P_FAULT_NS] = GUEST_FAULT_NS
        # slab cache: the first frames; the rest go to the free list, lowest pfn first out
        nslab = gs.slab // PAGE_SIZE
        m.pflags[base:base + nslab] = c.PG_slab
        free = np.arange(base + nslab, base + n, dtype=np.int32)
        m.pflags[free] = c.PG_free
        m.lru_next[free[:-1]] = free[1:]
        blocks = np.bincount((free >> c.PAGEBLOCK_ORDER) - P[c.P_BLOCK_BASE],
                             minlength=int(P[c.P_NBLOCKS]))
        b0 = int(P[c.P_BLOCK_BASE])
        m.blk_nfree[b0:b0 + len(blocks)] = blocks
        m.blk_since[b0:b0 + len(blocks)][blocks == mmstate.BLOCK_PAGES] = 0
        S[c.S_NR_FREE] = len(free)
        S[c.S_FREE_HEAD] = free[0] if len(free) else -1
        S[c.S_NR_SLAB] = nslab
        S[c.S_KSWAPD_PRIO] = c.DEF_PRIORITY
        S[c.S_REPORTING_CLOCK] = c.PAGE_REPORTING_DELAY_NS
        S[c.S_RA_PREV_OFFSET] = -2
        S[c.S_VMP_LEVEL] = -1
        S[c.S_RNG] = _seed(run_seed, g, gs.workload.seed)
        S[c.S_ALIVE] = c.ALIVE_RUNNING
        S[c.S_CLOCK] = gs.workload.start_ns
        if gs.target is not None:
            S[c.S_BALLOON_TARGET] = (gs.memory - gs.target) >> c.PAGE_SHIFT
        wl = gs.workload
        m.wl_loop[g] = wl.loop
        m.wl_speed[g] = wl.speed
        if wl.kind == "trace":
            m.wl_kind[g] = c.WL_TRACE
            m.wl_start[g], m.wl_end[g] = self._trace_offset[wl.path]
            S[c.S_WL_CURSOR] = m.wl_start[g]
        else:
            m.wl_kind[g] = c.WL_PHASES
            S[c.S_WL_PHASE] = m.wl_start[g]
            S[c.S_WL_PHASE_START] = wl.start_ns

    def _boot_host(self, m):
        hs = self.scenario.host
        H = m.H
        total = hs.memory // PAGE_SIZE
        wmin, wlow, whigh = watermarks(total)
        H[c.H_NFRAMES] = len(m.fref)
        H[c.H_TOTAL] = H[c.H_NR_FREE] = total
        H[c.H_WMARK_MIN], H[c.H_WMARK_LOW], H[c.H_WMARK_HIGH] = wmin, wlow, whigh
        H[c.H_SWAP_TOTAL] = hs.swap.size // PAGE_SIZE
        H[c.H_SWAP_READ_NS], H[c.H_SWAP_WRITE_NS] = hs.swap.read_latency_ns, hs.swap.write_latency_ns
        H[c.H_SWAP_NS_PER_PAGE] = _ns_per_page(hs.swap.bandwidth)
        H[c.H_FAULT_NS] = hs.fault_ns
        H[c.H_KSWAPD_SCAN_NS] = hs.kswapd_scan_ns

    # --- time -----------------------------------------------------------------------------
    def advance(self, until_ns: int) -> None:
        """Run every guest, its balloon driver and the host up to ``until_ns`` (numba)."""
        from autoballoon.sim.engine import advance_machine
        if until_ns <= self.now_ns:
            return
        run = self.scenario.run
        self._slice_no = advance_machine(self.m, self.now_ns, int(until_ns), run.slice_ns,
                                         self.scenario.host.stats_poll_ns, self._slice_no)
        self.now_ns = int(until_ns)
        if self.debug:
            from autoballoon.mm.invariants import check_invariants
            check_invariants(self.m)

    # --- guest views ----------------------------------------------------------------------------
    def vmstat(self, g: int) -> dict[str, int]:
        """/proc/vmstat of guest g (plus the driver's and the simulation's own counters)."""
        return dict(zip(c.VMSTAT_NAMES, (int(v) for v in self.m.V[g])))

    def meminfo(self, g: int) -> dict[str, int]:
        """/proc/meminfo of guest g in bytes, plus balloon and progress figures."""
        from autoballoon.mm.meminfo import si_mem_available
        m, S, P = self.m, self.m.S[g], self.m.P[g]
        lru = m.lru_size[g]
        pages = {
            "MemTotal": P[c.P_MANAGED], "MemFree": S[c.S_NR_FREE],
            "MemAvailable": si_mem_available(m, g),
            "Cached": lru[c.LRU_INACTIVE_FILE] + lru[c.LRU_ACTIVE_FILE],
            "AnonPages": lru[c.LRU_INACTIVE_ANON] + lru[c.LRU_ACTIVE_ANON],
            "Active(anon)": lru[c.LRU_ACTIVE_ANON], "Inactive(anon)": lru[c.LRU_INACTIVE_ANON],
            "Active(file)": lru[c.LRU_ACTIVE_FILE], "Inactive(file)": lru[c.LRU_INACTIVE_FILE],
            "SwapTotal": P[c.P_NSLOTS], "SwapFree": P[c.P_NSLOTS] - S[c.S_SWAP_USED],
            "Slab": S[c.S_NR_SLAB],
            "balloon_actual": S[c.S_BALLOON_ACTUAL], "balloon_target": S[c.S_BALLOON_TARGET],
        }
        out = {k: int(v) * PAGE_SIZE for k, v in pages.items()}
        out["stall_ns"] = int(m.V[g, c.STALL_NS])
        out["progress"] = int(m.V[g, c.PROGRESS])
        out["oom_kill"] = int(m.V[g, c.OOM_KILL])
        out["alive"] = int(S[c.S_ALIVE])
        out["pressure"] = int(S[c.S_VMP_LEVEL])      # last vmpressure level, -1 before any
        return out

    def balloon_stats(self, g: int) -> dict[str, int]:
        """The stats virtqueue as the host last polled it."""
        return dict(zip(STATS_TAGS, (int(v) for v in self.m.stats[g])))

    def balloon_counters(self, g: int) -> dict[str, int]:
        v = self.vmstat(g)
        return {"shrinker_calls": v["balloon_shrinker_calls"],
                "shrinker_busy": v["balloon_shrinker_busy"],
                "inflated": v["balloon_inflate"], "deflated": v["balloon_deflate"],
                "reversals": v["balloon_reversals"], "out_of_puff": v["balloon_out_of_puff"]}

    # --- host -------------------------------------------------------------------------------
    def host_vmstat(self) -> dict[str, int]:
        H = self.m.H
        keys = ("pswpin", "pswpout", "pgfault", "pgscan", "pgsteal", "allocstall",
                "kswapd_wake", "oom_kill")
        return {k: int(H[c.HOST_NAMES.index(k)]) for k in keys}

    def host_meminfo(self) -> dict[str, int]:
        H = self.m.H
        pages = {"MemTotal": H[c.H_TOTAL], "MemFree": H[c.H_NR_FREE],
                 "Used": H[c.H_TOTAL] - H[c.H_NR_FREE], "SwapTotal": H[c.H_SWAP_TOTAL],
                 "SwapFree": H[c.H_SWAP_TOTAL] - H[c.H_SWAP_USED]}
        return {k: int(v) * PAGE_SIZE for k, v in pages.items()}

    def host_pressure_events(self) -> list[int]:
        n = int(self.m.H[c.H_NR_EVENTS])
        events = [int(x) for x in self.m.host_events[:n]]
        self.m.H[c.H_NR_EVENTS] = 0
        return events

    # --- the QEMU balloon device --------------------------------------------------------------
    def ram_size(self, g: int) -> int:
        return int(self.m.P[g, c.P_NFRAMES]) * PAGE_SIZE

    def set_target(self, g: int, target: int) -> None:
        """virtio_balloon_to_target(): num_pages = (ram_size - target) >> 12, clamped."""
        ram = self.ram_size(g)
        target = min(max(int(target), 0), ram)
        self.m.S[g, c.S_BALLOON_TARGET] = (ram - target) >> c.PAGE_SHIFT
