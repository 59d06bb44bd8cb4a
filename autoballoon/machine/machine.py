"""The simulated machine: one host and all its guests, as struct-of-arrays NumPy state.

``Machine`` builds the state from a validated Scenario (boot: watermarks, free lists, slab,
initial balloon targets, workload tables), advances it with the numba kernels, and reads
counters and gauges back with the kernel's names. It is the only object the control loop and
the host policies talk to.

Before anything is allocated, boot proves what numba will not check (it has no bounds checks):
every index a kernel computes from the input is in range, every workload advances simulated
time, one slice's work is bounded (a kernel call cannot be interrupted) and the state fits in
memory. What it refuses is a ``ScenarioError`` naming the key, its line and the estimate.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from autoballoon.errors import SpecError
from autoballoon.machine import callbacks, layout
from autoballoon.machine import state as mmstate
from autoballoon.machine.mm import constants as c
from autoballoon.machine.mm.watermark import Watermarks, boot_reserved_pages, watermarks
from autoballoon.scenario.parse import located
from autoballoon.scenario.settings import kernel_values
from autoballoon.scenario.spec import Scenario
from autoballoon.trace.ops import OP_EXIT, OP_FILE, OP_FREE, OP_SYSCALL
from autoballoon.trace.synth import zipf_cdf
from autoballoon.uapi import PAGE_SHIFT, PAGE_SIZE, STATS_TAGS
from autoballoon.units import MAX_DURATION

# A kernel call runs whole slices and cannot be interrupted (numba does not look at signals), so
# the work one slice can hold is bounded: events replayed, plus the pages an exit walks. At tens
# of millions of events per second this keeps Ctrl-C and the progress bar responsive (about a
# second at most; the bench's 10^7-event slice fits).
MAX_SLICE_WORK = 20_000_000
CHUNK_WALL_S = 0.1          # Machine.advance returns to Python about this often


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
        self._kinds: dict = {}          # trace_key -> (pages, kind), see _trace_kinds
        try:
            self._check()
        except SpecError as e:
            raise located(scenario, e) from None
        self._chunk = 1                 # slices per kernel call, adapted to CHUNK_WALL_S
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

    def _sizes(self) -> dict:
        """The arguments of state.allocate() for this scenario."""
        guests = self.scenario.guests
        paths = list(dict.fromkeys(trace_key(g.workload) for g in guests
                                   if g.workload.kind == "trace"))
        phases = [p for g in guests if g.workload.kind == "phases" for p in g.workload.phases]
        return dict(nframes=[g.memory // PAGE_SIZE for g in guests],
                    nvpages=[self._vpages(g) for g in guests],
                    nslots=[g.swap.size // PAGE_SIZE for g in guests],
                    trace_len=sum(len(self._traces[p]) for p in paths),
                    nphases=len(phases),
                    cdf_len=sum(p.length // PAGE_SIZE for p in phases if p.pattern == "zipf"))

    # --- boot checks: what the kernels rely on and do not check -------------------------------
    def _check(self) -> None:
        """Refuse (SpecError naming the key) a scenario the kernels could not run safely.

        Bounds, proved here once for every index a kernel computes from the input: a trace's
        pages are in [0, footprint) = the guest's virtual pages and its op codes are valid
        (AccessTrace checks both on load); its cursor stays in [start, end), which is not empty
        (an empty trace is refused); phases lie inside the mapping and zipf ranks inside their
        CDF (PhaseSpec/WorkloadSpec); slab and targets are within memory (GuestSpec); every size
        and time is below 2^60 and every cost at most 1 s, so int64 sums do not overflow. Time:
        every access of a phase costs think > 0; a looped trace must advance time; a replayed
        gap (after ``speed``) stays below 2^60 ns. Work: one slice's replay is bounded
        (MAX_SLICE_WORK) and the state fits in the memory available.
        """
        sc = self.scenario
        work, seen = [], {}
        for gs in sc.guests:
            wl = gs.workload
            if wl.kind == "trace":
                # replicas share the answer (and the check's pass over the trace)
                # (a repeated trace: each repetition is the base trace's events again)
                key = (gs.where, trace_key(wl), wl.speed, wl.loop)
                if key not in seen:
                    seen[key] = self._check_trace(gs, self._traces[trace_key(wl)].trace)
                work.append(seen[key])
            else:
                think = min(p.think_ns for p in gs.workload.phases)
                work.append((sc.run.slice_ns // think + 2, "run.slice",
                             f"phases with think {think} ns"))
        total = sum(w for w, _, _ in work)
        if total > MAX_SLICE_WORK:
            g = max(range(len(work)), key=lambda i: work[i][0])
            n, key, why = work[g]
            raise SpecError(f"{key}: one slice ({sc.run.slice_ns} ns) could hold {total:.3g} "
                            f"events ({sc.guests[g].name}: {n:.3g}, {why}), more than the "
                            f"{MAX_SLICE_WORK:.0e} one uninterruptible kernel call may run; "
                            f"use a shorter run.slice or a slower workload")
        self._check_boot_memory()
        self._check_fits()

    def _check_boot_memory(self) -> None:
        """Every guest and the host keep some memory free after boot (``boot_memory``), and the
        host can back the frames the guests' kernels write while booting (``_back_at_boot``)."""
        sc = self.scenario
        host = boot_memory(sc.host, sc.host.memory)
        backed = 0
        for gs in sc.guests:
            mem = boot_memory(gs, gs.memory, gs.watermark_scale_factor, gs.kernel == "3.7")
            backed += gs.slab // PAGE_SIZE + mem.reserved + mem.kernel
        short = backed - (host.managed - host.kernel)
        if short > 0:
            raise SpecError(f"host.memory: expected room for the guests' kernels at boot "
                            f"({short * PAGE_SIZE >> 20} MiB short)")

    def _check_trace(self, gs, trace) -> tuple[int, str, str]:
        """A trace workload's bounds and progress; returns (work per slice, key, why)."""
        wl, w = gs.workload, gs.where + ".workload"
        n = len(trace)
        if n == 0:
            raise SpecError(f"{w}.path: expected a trace with at least one event, got an empty "
                            f"trace ({wl.path})")
        # the gaps as next_event() replays them: int64(gap / speed)
        with np.errstate(over="ignore"):            # a gap / 1e-300 is inf: refused below
            gaps = trace.gap_ns if wl.speed == 1.0 else trace.gap_ns / wl.speed
        big = float(gaps.max())
        if big >= MAX_DURATION:
            key = f"{w}.speed" if wl.speed != 1.0 else f"{w}.path"
            raise SpecError(f"{key}: a gap of {int(trace.gap_ns.max())} ns replayed at speed "
                            f"{wl.speed:g} lasts {big:.3g} ns, expected below 2^60 ns")
        if wl.speed != 1.0:
            gaps = gaps.astype(np.int64)
        # pages an exit walks (process_exit) count as work too
        exits = trace.op == OP_EXIT
        weight = np.where(exits, 1 + trace.footprint, 1) if exits.any() else np.ones(n, np.int8)
        period = float(gaps.sum(dtype=np.float64))
        window = self.scenario.run.slice_ns
        if wl.loop and period == 0:
            raise SpecError(f"{w}.loop: a looped trace must advance simulated time, but the "
                            f"{n} gaps of {wl.path} add up to 0 ns at speed {wl.speed:g}")
        if wl.loop and period < window:
            loops = math.ceil(window / period) + 1
            return (int(weight.sum(dtype=np.int64)) * loops, "run.slice",
                    f"a looped trace that lasts {period:.3g} ns")
        if wl.loop:         # a slice can span the end of one pass and the start of the next
            gaps, weight = np.concatenate([gaps, gaps]), np.concatenate([weight, weight])
        most = _max_window_sum(gaps, weight, window)
        return most, f"{w}.path", f"a trace with bursts of {most:.3g} events"

    def _check_fits(self) -> None:
        """Refuse a state bigger than the memory available, naming the biggest part."""
        sizes = self._sizes()
        need = mmstate.estimate_bytes(**sizes)
        avail = mmstate.available_memory()
        if avail is None or need <= avail:
            return
        parts: dict[str, list] = {}
        for g, gs in enumerate(self.scenario.guests):
            wl = gs.workload
            vkey = "path" if wl.kind == "trace" else "mapping" if wl.mapping else "phases"
            for key, nbytes in (
                    ("memory", mmstate.estimate_bytes([sizes["nframes"][g]], [0], [0])),
                    ("swap", mmstate.estimate_bytes([0], [0], [sizes["nslots"][g]])),
                    (f"workload.{vkey}", mmstate.estimate_bytes([0], [sizes["nvpages"][g]],
                                                                [0]))):
                part = parts.setdefault(f"{gs.where}.{key}", [0, 0])
                part[0] += nbytes
                part[1] += 1
        key, (part, replicas) = max(parts.items(), key=lambda kv: kv[1][0])
        of = f" for {replicas} replicas" if replicas > 1 else ""
        raise SpecError(f"{key}: the machine's state would need {_human(need)} (estimate; "
                        f"{key} {_human(part)}{of}), more than the {_human(avail)} of memory "
                        f"available")

    def _boot(self) -> mmstate.MachineState:
        sc = self.scenario
        guests = sc.guests
        paths = list(dict.fromkeys(trace_key(g.workload) for g in guests
                                   if g.workload.kind == "trace"))
        m = mmstate.allocate(**self._sizes())
        self._fill_traces(m, paths)
        self._fill_phases(m)
        self._boot_host(m)
        for g, gs in enumerate(guests):
            self._boot_guest(m, g, gs, sc.run.seed)
            callbacks.probe(m, g)
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

    def _trace_kinds(self, key) -> tuple[np.ndarray, np.ndarray]:
        """(pages, kind) of one trace: each accessed page's kind from its first event. Once per
        trace, not per guest: the replicas of a group share it (a sort of the whole trace)."""
        if key in self._kinds:
            return self._kinds[key]
        t = self._traces[key].trace
        access = t.op < OP_FREE
        pages, first = np.unique(t.page[access], return_index=True)
        ops = t.op[access][first]
        kind = np.full(len(pages), c.V_KIND_SET, np.uint8)
        kind[(ops & OP_FILE) != 0] |= c.V_FILE
        kind[((ops & OP_FILE) != 0) & ((ops & OP_SYSCALL) == 0)] |= c.V_MAPPED
        self._kinds[key] = pages, kind
        return pages, kind

    def _page_kinds(self, m, g, wl) -> None:
        """The kind of each page of the workload's address space, as its mappings define it
        before any access (readahead must know a neighbour is a page of the same file): a trace
        page's kind is its first event's (the pages a repetition renames are read()/write() file
        pages, trace/repeat.py); a phased workload's read phases are read() file
        pages, the rest anonymous."""
        vb = int(m.P[g, layout.P_VPAGE_BASE])
        if wl.kind == "trace":
            reps = self._traces[trace_key(wl)]
            m.vflags[vb + reps.trace.footprint:vb + reps.footprint] = c.V_KIND_SET | c.V_FILE
            pages, kind = self._trace_kinds(trace_key(wl))
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
        """Run every guest, its balloon driver and the host up to ``until_ns`` (numba).

        The kernel runs whole slices per call, as many as take about CHUNK_WALL_S of wall time,
        so that Python sees Ctrl-C between calls. The calls split the time at slice boundaries
        only, so the result is the same however it is chunked. After an interrupt
        (KeyboardInterrupt) the machine must not be advanced further."""
        from autoballoon.machine.engine import advance_machine
        until_ns = int(until_ns)
        if until_ns <= self.now_ns:
            return
        run = self.scenario.run
        poll = self.scenario.host.stats_poll_ns
        while self.now_ns < until_ns:
            end = min(self.now_ns + self._chunk * run.slice_ns, until_ns)
            t0 = time.perf_counter()
            self._slice_no = advance_machine(self.m, self.now_ns, end, run.slice_ns, poll,
                                             self._slice_no)
            self.now_ns = end
            wall = time.perf_counter() - t0
            if wall < CHUNK_WALL_S / 2:
                self._chunk = min(2 * self._chunk, 2**40)
            elif wall > CHUNK_WALL_S * 2 and self._chunk > 1:
                self._chunk //= 2
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


def _max_window_sum(gaps: np.ndarray, weight: np.ndarray, window: int) -> int:
    """An upper bound of the weight of the events that fall in any ``window`` ns of a stream
    with these gaps: any such window overlaps at most two consecutive buckets of ``window`` ns.
    (In units of the window, in float64: the gaps are capped at 2 windows, so the times stay
    small and their rounding cannot move an event by more than a bucket in a few.)"""
    t = np.cumsum(np.minimum(gaps / window, 2.0))
    bucket = np.floor(t).astype(np.int64)
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    sums = np.add.reduceat(weight, starts, dtype=np.int64)
    ids = bucket[starts]
    pairs = sums[:-1] + np.where(np.diff(ids) == 1, sums[1:], 0)
    return int(max(sums.max(), pairs.max() if len(pairs) else 0))


def _human(nbytes: int) -> str:
    for unit, factor in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if nbytes >= factor:
            return f"{nbytes / factor:.1f} {unit}"
    return f"{nbytes / 1024:.1f} KiB"
