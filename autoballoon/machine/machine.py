"""The simulated machine: one host and all its guests, as struct-of-arrays NumPy state.

``Machine`` builds the state from a validated Scenario (boot: watermarks, free lists, slab,
initial balloon targets, workload tables), advances it with the numba kernels, and reads
counters and gauges back with the kernel's names. It is the only object the control loop and
the host policies talk to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoballoon.machine import callbacks, layout
from autoballoon.machine import state as mmstate
from autoballoon.machine.mm import constants as c
from autoballoon.machine.mm.watermark import Watermarks, boot_reserved_pages, watermarks
from autoballoon.scenario.settings import kernel_values
from autoballoon.errors import SpecError
from autoballoon.scenario.spec import Scenario
from autoballoon.trace.ops import OP_FILE, OP_FREE, OP_SYSCALL
from autoballoon.trace.synth import zipf_cdf
from autoballoon.uapi import PAGE_SHIFT, PAGE_SIZE, STATS_TAGS


@dataclass(frozen=True)
class BootMemory:
    reserved: int                  # pages the kernel keeps at boot (not managed)
    managed: int                   # MemTotal in pages
    kernel: int                    # managed pages the kernel uses for itself, never free
    watermarks: Watermarks


def boot_memory(spec, ram: int, wsf: int = 10, old: bool = False) -> BootMemory:
    """How a machine of ``ram`` bytes with ``spec``'s reserved / kernel_memory / thp settings
    comes up; refuses (SpecError naming the key) a machine with too little memory left."""
    n = ram // PAGE_SIZE
    reserved = boot_reserved_pages(ram) if spec.reserved is None else -(-spec.reserved // PAGE_SIZE)
    kernel = -(-spec.kernel_memory // PAGE_SIZE)
    managed = n - reserved
    if managed - kernel - getattr(spec, "slab", 0) // PAGE_SIZE < 1024:
        raise SpecError(f"{spec.where}.memory: expected a size that leaves at least 4 MiB free "
                        f"after the kernel's {reserved * PAGE_SIZE >> 20} MiB reserved at boot "
                        f"and {spec.kernel_memory >> 20} MiB kernel_memory, got {ram}")
    wm = watermarks(ram, managed, wsf, spec.thp != "never", old)
    return BootMemory(reserved, managed, kernel, wm)


def trace_key(wl) -> tuple:
    """A trace workload's stream in the machine: its file and how it is repeated (guests
    replaying the same file the same way share one copy)."""
    return wl.path, wl.repeat, wl.fresh_files and wl.repeat > 1


def _seed(run_seed: int, g: int, spec_seed: int | None) -> int:
    """A non-zero per-guest generator seed (splitmix64 of the run seed and guest index)."""
    x = (spec_seed if spec_seed is not None else run_seed * 1_000_003 + g) & (2**64 - 1)
    x = (x + 0x9E3779B97F4A7C15) & (2**64 - 1)
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 31
    return int(np.int64(np.uint64(x or 1)))


def start_jitter(seed: int, span_ns: int) -> int:
    """A workload's random start delay in [0, span_ns), from its guest's generator seed."""
    if span_ns <= 0:
        return 0
    return int(np.random.default_rng(seed & (2**63 - 1)).integers(0, span_ns))


class Machine:
    """Host + guests. Guests are indexed 0..n-1 in scenario order (``names``)."""

    def __init__(self, scenario: Scenario, debug: bool = False, traces: dict | None = None):
        self.scenario = scenario
        self.debug = debug
        self.names = [g.name for g in scenario.guests]
        self.started_ns = [0] * len(self.names)      # when each workload starts (boot sets it)
        self.now_ns = 0
        self._slice_no = 0
        self._traces = self._load_traces(traces or {})
        self.m = self._boot()

    # --- boot ---------------------------------------------------------------------------------
    def _load_traces(self, given: dict) -> dict:
        """Each trace file once (``given``: streams by path, instead of files), and each way
        a guest repeats one (trace/repeat.py), keyed by ``trace_key``."""
        from autoballoon import trace as tracelib
        from autoballoon.trace.repeat import Repetitions
        files = dict(given)
        out = {}
        for gs in self.scenario.guests:
            wl = gs.workload
            if wl.kind == "trace" and trace_key(wl) not in out:
                if wl.path not in files:
                    files[wl.path] = tracelib.load(wl.path)
                out[trace_key(wl)] = Repetitions(files[wl.path], wl.repeat, wl.fresh_files)
        return out

    def _vpages(self, gs) -> int:
        wl = gs.workload
        if wl.kind == "trace":
            return int(self._traces[trace_key(wl)].footprint)
        return -(-wl.mapping_bytes // PAGE_SIZE)

    def _boot(self) -> mmstate.MachineState:
        sc = self.scenario
        guests = sc.guests
        paths = list(dict.fromkeys(trace_key(g.workload) for g in guests
                                   if g.workload.kind == "trace"))
        phases = [p for g in guests if g.workload.kind == "phases" for p in g.workload.phases]
        cdf_len = sum(p.length // PAGE_SIZE for p in phases if p.pattern == "zipf")
        m = mmstate.allocate(
            [g.memory // PAGE_SIZE for g in guests], [self._vpages(g) for g in guests],
            [g.swap.size // PAGE_SIZE for g in guests],
            trace_len=sum(len(self._traces[p]) for p in paths), nphases=len(phases),
            cdf_len=cdf_len)
        self._fill_traces(m, paths)
        self._fill_phases(m)
        self._boot_host(m)
        for g, gs in enumerate(guests):
            self._boot_guest(m, g, gs, sc.run.seed)
            callbacks.probe(m, g)
        if m.H[layout.H_NR_FREE] < 0:
            raise SpecError(f"host.memory: expected room for the guests' kernels at boot "
                            f"({-int(m.H[layout.H_NR_FREE]) * PAGE_SIZE >> 20} MiB short)")
        return m

    def _fill_traces(self, m, paths):
        self._trace_offset = {}
        off = 0
        for p in paths:
            reps = self._traces[p]
            start = off
            for k in range(reps.n):
                t = reps.trace
                n = len(t)
                m.tr_gap[off:off + n] = t.gap_ns
                m.tr_page[off:off + n] = reps.pages(k)
                m.tr_op[off:off + n] = t.op
                off += n
            self._trace_offset[p] = (start, off)

    def _page_kinds(self, m, g, wl) -> None:
        """The kind of each page of the workload's address space, as its mappings define it
        before any access (readahead must know a neighbour is a page of the same file): a trace
        page's kind is its first event's (the pages a repetition renames are read()/write() file
        pages, trace/repeat.py); a phased workload's read phases are read() file
        pages, the rest anonymous."""
        vb = int(m.P[g, layout.P_VPAGE_BASE])
        if wl.kind == "trace":
            reps = self._traces[trace_key(wl)]
            t = reps.trace
            m.vflags[vb + t.footprint:vb + reps.footprint] = c.V_KIND_SET | c.V_FILE
            access = t.op < OP_FREE
            pages, first = np.unique(t.page[access], return_index=True)
            ops = t.op[access][first]
            kind = np.full(len(pages), c.V_KIND_SET, np.uint8)
            kind[(ops & OP_FILE) != 0] |= c.V_FILE
            kind[((ops & OP_FILE) != 0) & ((ops & OP_SYSCALL) == 0)] |= c.V_MAPPED
            m.vflags[vb + pages] = kind
            return
        for p in wl.phases:
            lo, hi = vb + p.offset // PAGE_SIZE, vb + (p.offset + p.length) // PAGE_SIZE
            file = c.V_FILE if p.pattern == "read" else 0
            m.vflags[lo:hi] = np.where(m.vflags[lo:hi] == 0, c.V_KIND_SET | file, m.vflags[lo:hi])

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
                m.ph_pattern[i] = layout.PATTERN[p.pattern]
                m.ph_duration[i] = p.duration_ns or 0
                m.ph_passes[i] = p.passes or 0
                m.ph_think[i] = p.think_ns
                m.ph_wfrac[i] = p.write_fraction
                if p.pattern == "zipf":
                    m.ph_cdf_start[i] = cdf
                    m.zipf_cdf[cdf:cdf + n] = zipf_cdf(n, p.alpha)
                    cdf += n
                i += 1
            m.wl_end[g] = i

    def _boot_guest(self, m, g, gs, run_seed):
        P, S = m.P[g], m.S[g]
        n = gs.memory // PAGE_SIZE
        base = int(P[layout.P_FRAME_BASE])
        mem = boot_memory(gs, gs.memory, gs.watermark_scale_factor, gs.kernel == "3.7")
        for name, value in kernel_values(gs).items():
            P[layout.PARAM[name]] = value
        wm = mem.watermarks
        P[layout.P_WMARK_MIN], P[layout.P_WMARK_LOW], P[layout.P_WMARK_HIGH] = wm
        P[layout.P_TOTALRESERVE] = wm.totalreserve
        P[layout.P_MANAGED] = mem.managed
        P[layout.P_KERNEL_OLD] = gs.kernel == "3.7"
        # frames, low to high: the slab cache, the free pool (lowest pfn first out), the
        # kernel's own memory, and at the top what the kernel reserved at boot (struct pages)
        nslab = gs.slab // PAGE_SIZE
        kernel_start = n - mem.reserved - mem.kernel
        m.pflags[base:base + nslab] = c.PG_slab
        m.pflags[base + kernel_start:base + n] = c.PG_reserved
        self._back_at_boot(m, base, nslab, kernel_start, n)
        free = np.arange(base + nslab, base + kernel_start, dtype=np.int32)
        m.pflags[free] = c.PG_free
        m.lru_next[free[:-1]] = free[1:]
        blocks = np.bincount((free >> c.PAGEBLOCK_ORDER) - P[layout.P_BLOCK_BASE],
                             minlength=int(P[layout.P_NBLOCKS]))
        b0 = int(P[layout.P_BLOCK_BASE])
        m.blk_nfree[b0:b0 + len(blocks)] = blocks
        S[layout.S_NR_FREE] = len(free)
        S[layout.S_FREE_HEAD] = free[0] if len(free) else -1
        S[layout.S_NR_SLAB] = nslab
        S[layout.S_NR_KERNEL] = mem.kernel
        S[layout.S_KSWAPD_PRIO] = c.DEF_PRIORITY
        S[layout.S_REPORTING_CLOCK] = c.PAGE_REPORTING_DELAY_NS    # the boot's free blocks
        S[layout.S_RA_PREV_OFFSET] = -2
        S[layout.S_VMP_LEVEL] = -1
        S[layout.S_RNG] = _seed(run_seed, g, gs.workload.seed)
        S[layout.S_ALIVE] = layout.ALIVE_RUNNING
        start = gs.workload.start_ns + start_jitter(int(S[layout.S_RNG]),
                                                    gs.workload.start_jitter_ns)
        self.started_ns[g] = start
        S[layout.S_CLOCK] = start
        if gs.target is not None:
            # virtballoon_probe(): a device that starts with a target kicks the balloon work
            S[layout.S_BALLOON_TARGET] = (gs.memory - gs.target) >> PAGE_SHIFT
            S[layout.S_BALLOON_KICK] = 1
        wl = gs.workload
        m.wl_loop[g] = wl.loop
        m.wl_speed[g] = wl.speed
        self._page_kinds(m, g, wl)
        if wl.kind == "trace":
            m.wl_kind[g] = layout.WL_TRACE
            m.wl_start[g], m.wl_end[g] = self._trace_offset[trace_key(wl)]
            S[layout.S_WL_CURSOR] = m.wl_start[g]
        else:
            m.wl_kind[g] = layout.WL_PHASES
            S[layout.S_WL_PHASE] = m.wl_start[g]
            S[layout.S_WL_PHASE_START] = start

    @staticmethod
    def _back_at_boot(m, base, nslab, kernel_start, n):
        """Frames the guest kernel wrote while booting (its memory, the slab cache) are backed
        by host pages from the start."""
        for lo, hi in ((base, base + nslab), (base + kernel_start, base + n)):
            m.fref[lo:hi] |= c.F_PRESENT
            m.H[layout.H_NR_FREE] -= hi - lo

    def _boot_host(self, m):
        """The host's memory for guests: RAM less its boot reservation and its own kernel and
        processes (``kernel_memory``); watermarks as its kernel computes them."""
        hs = self.scenario.host
        H = m.H
        mem = boot_memory(hs, hs.memory)
        H[layout.H_NFRAMES] = len(m.fref)
        H[layout.H_TOTAL] = H[layout.H_NR_FREE] = mem.managed - mem.kernel
        H[layout.H_WMARK_MIN], H[layout.H_WMARK_LOW], H[layout.H_WMARK_HIGH] = mem.watermarks
        H[layout.H_SWAP_TOTAL] = hs.swap.size // PAGE_SIZE
        H[layout.H_DIRECT_PRIO] = c.DEF_PRIORITY
        for name, value in kernel_values(hs).items():
            H[layout.HOST[name]] = value

    # --- time -----------------------------------------------------------------------------
    def advance(self, until_ns: int) -> None:
        """Run every guest, its balloon driver and the host up to ``until_ns`` (numba)."""
        from autoballoon.machine.engine import advance_machine
        if until_ns <= self.now_ns:
            return
        run = self.scenario.run
        self._slice_no = advance_machine(self.m, self.now_ns, int(until_ns), run.slice_ns,
                                         self.scenario.host.stats_poll_ns, self._slice_no)
        self.now_ns = int(until_ns)
        if self.debug:
            from autoballoon.machine.invariants import check_invariants
            check_invariants(self.m)

    # --- guest views ----------------------------------------------------------------------------
    def vmstat(self, g: int) -> dict[str, int]:
        """/proc/vmstat of guest g (plus the driver's and the simulation's own counters)."""
        return dict(zip(layout.VMSTAT_NAMES, (int(v) for v in self.m.V[g])))

    def meminfo(self, g: int) -> dict[str, int]:
        """/proc/meminfo of guest g in bytes, plus balloon and progress figures."""
        from autoballoon.machine.mm.meminfo import si_mem_available
        m, S, P = self.m, self.m.S[g], self.m.P[g]
        lru = m.lru_size[g]
        pages = {
            "MemTotal": P[layout.P_MANAGED], "MemFree": S[layout.S_NR_FREE],
            "MemAvailable": si_mem_available(m, g),
            "Cached": lru[c.LRU_INACTIVE_FILE] + lru[c.LRU_ACTIVE_FILE],
            "AnonPages": lru[c.LRU_INACTIVE_ANON] + lru[c.LRU_ACTIVE_ANON],
            "Active(anon)": lru[c.LRU_ACTIVE_ANON], "Inactive(anon)": lru[c.LRU_INACTIVE_ANON],
            "Active(file)": lru[c.LRU_ACTIVE_FILE], "Inactive(file)": lru[c.LRU_INACTIVE_FILE],
            "SwapTotal": P[layout.P_NSLOTS], "SwapFree": P[layout.P_NSLOTS] - S[layout.S_SWAP_USED],
            "Slab": S[layout.S_NR_SLAB], "KernelMemory": S[layout.S_NR_KERNEL],
            "balloon_actual": S[layout.S_BALLOON_ACTUAL], "balloon_target": S[layout.S_BALLOON_TARGET],
        }
        out = {k: int(v) * PAGE_SIZE for k, v in pages.items()}
        out["alive"] = int(S[layout.S_ALIVE])
        out["pressure"] = int(S[layout.S_VMP_LEVEL])      # last vmpressure level, -1 before any
        return out

    def workload_start_ns(self, g: int) -> int:
        """When guest g's workload starts: its ``start`` plus its random ``start_jitter``."""
        return self.started_ns[g]

    def finished_ns(self, g: int) -> int | None:
        """When guest g's workload ended (its last event and that event's stall: the clock
        run_guest() left it at when next_event() said it had ended), ns; None while it runs, and
        for a workload the guest's or the host's OOM killer ended."""
        if self.m.S[g, layout.S_ALIVE] != layout.ALIVE_FINISHED:
            return None
        return int(self.m.S[g, layout.S_CLOCK])

    def balloon_stats(self, g: int) -> dict[str, int]:
        """The stats virtqueue as the host last polled it."""
        return dict(zip(STATS_TAGS, (int(v) for v in self.m.stats[g])))

    def committed_as(self, g: int) -> int:
        """Committed_AS of guest g in bytes, as the model can know it: the workload's anonymous
        pages that are mapped or in swap (each once; a swap-cached page is not counted twice).

        Linux (mm/util.c ``vm_memory_committed``) counts private writable mappings when they are
        mmap()ed; the model's workloads commit memory as they first touch it, and the guest runs
        no other processes, so a real guest's baseline of daemons and libraries is absent.
        O(virtual pages) in NumPy (~1 ms for 448 MiB): read it on a policy's cadence, not per tick.
        """
        P = self.m.P[g]
        b, n = int(P[layout.P_VPAGE_BASE]), int(P[layout.P_NVPAGES])
        kind = self.m.vflags[b:b + n] & (c.V_FILE | c.V_KIND_SET)
        touched = (self.m.pte[b:b + n] >= 0) | (self.m.swp[b:b + n] >= 0)
        return int(np.count_nonzero(touched & (kind == c.V_KIND_SET))) * PAGE_SIZE

    def zoneinfo(self, g: int) -> dict[str, int]:
        """/proc/zoneinfo of guest g, bytes: its effective watermarks (min, low, high; the zones
        folded into one, mm/watermark.py) and totalreserve_pages (the sum over zones of high +
        the largest lowmem reserve)."""
        P = self.m.P[g]
        return {"min": int(P[layout.P_WMARK_MIN]) * PAGE_SIZE,
                "low": int(P[layout.P_WMARK_LOW]) * PAGE_SIZE,
                "high": int(P[layout.P_WMARK_HIGH]) * PAGE_SIZE,
                "totalreserve": int(P[layout.P_TOTALRESERVE]) * PAGE_SIZE}

    # --- host -------------------------------------------------------------------------------
    def host_usage(self, g: int) -> dict[str, int]:
        """What the host kernel charges to guest g's QEMU process for its RAM, bytes, named as in
        /proc/<pid>/status: ``VmRSS`` = guest frames the host backs, ``VmSwap`` = guest frames in
        host swap (QEMU's own memory is not modelled). One NumPy pass over the guest's frames."""
        P = self.m.P[g]
        b, n = int(P[layout.P_FRAME_BASE]), int(P[layout.P_NFRAMES])
        f = self.m.fref[b:b + n]
        return {"VmRSS": int(np.count_nonzero(f & c.F_PRESENT)) * PAGE_SIZE,
                "VmSwap": int(np.count_nonzero(f & c.F_HSWAPPED)) * PAGE_SIZE}

    def host_zoneinfo(self) -> dict[str, int]:
        """The host's watermarks (min, low, high), bytes."""
        H = self.m.H
        return {"min": int(H[layout.H_WMARK_MIN]) * PAGE_SIZE,
                "low": int(H[layout.H_WMARK_LOW]) * PAGE_SIZE,
                "high": int(H[layout.H_WMARK_HIGH]) * PAGE_SIZE}

    def test_and_clear_young(self, g: int, frames) -> np.ndarray:
        """Test and clear the host's EPT accessed bit (F_HYOUNG) of guest g's ``frames`` (offsets
        0..ram pages-1); returns which were set. As KVM's ``kvm_age_gfn`` does for the host's
        idle page tracking (/sys/kernel/mm/page_idle/bitmap). Host reclaim's CLOCK reads the same
        bit: a cleared frame that was young loses its second chance there, once."""
        pfn = int(self.m.P[g, layout.P_FRAME_BASE]) + np.asarray(frames, np.int64)
        young = (self.m.fref[pfn] & c.F_HYOUNG) != 0
        self.m.fref[pfn] &= np.uint8(0xFF & ~c.F_HYOUNG)
        return young

    def host_vmstat(self) -> dict[str, int]:
        H = self.m.H
        return {k: int(H[layout.HOST[k]]) for k in layout.HOST_COUNTERS}

    def host_meminfo(self) -> dict[str, int]:
        H = self.m.H
        pages = {"MemTotal": H[layout.H_TOTAL], "MemFree": H[layout.H_NR_FREE],
                 "Used": H[layout.H_TOTAL] - H[layout.H_NR_FREE], "SwapTotal": H[layout.H_SWAP_TOTAL],
                 "SwapFree": H[layout.H_SWAP_TOTAL] - H[layout.H_SWAP_USED]}
        return {k: int(v) * PAGE_SIZE for k, v in pages.items()}

    def host_pressure_events(self) -> list[int]:
        n = int(self.m.H[layout.H_NR_EVENTS])
        events = [int(x) for x in self.m.host_events[:n]]
        self.m.H[layout.H_NR_EVENTS] = 0
        return events

    # --- the QEMU balloon device --------------------------------------------------------------
    def ram_size(self, g: int) -> int:
        return int(self.m.P[g, layout.P_NFRAMES]) * PAGE_SIZE

    def set_target(self, g: int, target: int) -> None:
        """QEMU's balloon command: virtio_balloon_to_target() sets num_pages = (ram_size -
        target) >> 12 (the target clamped to ram_size) and notifies a config change, which
        kicks the guest's balloon work even when the target is unchanged."""
        ram = self.ram_size(g)
        target = min(max(int(target), 0), ram)
        self.m.S[g, layout.S_BALLOON_TARGET] = (ram - target) >> PAGE_SHIFT
        self.m.S[g, layout.S_BALLOON_KICK] = 1
