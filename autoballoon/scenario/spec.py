"""Validated descriptions of a run: what the scenario parser produces and the machine consumes.

All sizes are bytes and all times simulated nanoseconds (int). Every setting is declared once, as
a field made by :func:`~autoballoon.scenario.settings.setting` (TOML key, reader, default, valid
values, meaning, kernel column); constructing a spec checks it: an impossible value raises
``SpecError`` naming the key and what was expected, before any simulation starts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from autoballoon.errors import SpecError
from autoballoon.scenario import settings as st
from autoballoon.scenario.settings import setting
from autoballoon.scenario.values import (
    format_duration, format_rate, format_size, format_size_or_auto, parse_duration, parse_rate,
    parse_size, value_bool, value_choice, value_int, value_list_of, value_number,
    value_size_or_auto, value_str)
from autoballoon.trace.ops import PATTERNS
from autoballoon.uapi import FEATURES, PAGE_SIZE
from autoballoon.units import MAX_DURATION, MAX_SIZE

__all__ = ["SpecError", "PAGE_SIZE", "KERNELS", "PATTERNS", "FEATURES", "AUTO_BALLOON_VARIANTS",
           "SwapSpec", "PhaseSpec", "WorkloadSpec", "GuestSpec", "HostSpec", "RunSpec",
           "ScheduleEntry", "Scenario"]

# Guest kernels: the mm is 6.1's or 3.x's (the RFC's era); "6.12" is 6.1's mm with the six stats
# tags that arrived in 6.12 (OOM kills, allocation stalls, scan/reclaim).
KERNEL_VERSIONS = {"6.1": 601, "6.12": 612, "3.7": 307}
KERNELS = tuple(KERNEL_VERSIONS)
THP_MODES = ("always", "madvise", "never")    # /sys/kernel/mm/transparent_hugepage/enabled
AUTO_BALLOON_VARIANTS = ("rfc", "fixed")
MIB = 2**20
# A per-operation cost (a fault, a swap request, a reclaim scan step, a balloon round trip) is at
# most 1 s: a fault pays a few of them and reclaim some per scanned page, and these int64 sums
# must not overflow.
MAX_COST = 10**9
HOST_ROW = "host"           # the summary's row for the host: no guest may be called so
# a registered policy name ("qemu-auto") or "package.module:ClassName"
POLICY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
                         r"|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _need(cond: bool, where: str, expected: str, got) -> None:
    if not cond:
        raise SpecError(f"{where}: expected {expected}, got {got!r}")


def size(key, default=st.REQUIRED, *, valid, expected, pages=False, **kw):
    """A size setting, below 2^60 bytes; ``pages``: a whole number of 4 KiB pages (what the
    kernels count in), so nothing is truncated silently."""
    if pages:
        expected += ", a whole number of pages (4KiB)"
    return setting(key, parse_size, default, format=format_size, expected=expected,
                   valid=lambda v: v < MAX_SIZE and (not pages or v % PAGE_SIZE == 0)
                   and valid(v), **kw)


def duration(key, default=st.REQUIRED, *, valid, **kw):
    """A duration setting, below 2^60 ns (the kernels add times and costs in int64)."""
    return setting(key, parse_duration, default, format=format_duration,
                   valid=lambda v: v < MAX_DURATION and valid(v), **kw)


def cost(key, default, *, positive=False, **kw):
    """A per-operation cost: a duration in [0, 1s] ((0, 1s] if ``positive``)."""
    low = 0 if positive else -1
    return duration(key, default, valid=lambda v: low < v <= MAX_COST,
                    expected=f"a duration in {'(' if positive else '['}0, 1s]", **kw)


def reserved_setting(what: str):
    return setting(
        "reserved", value_size_or_auto, None, valid=lambda v: v >= 0, expected="a size >= 0",
        format=format_size_or_auto,
        doc=f"{what} RAM the kernel keeps at boot (not in MemTotal: struct pages, kernel image, "
            "first MiB, swiotlb); \"auto\" = Debian's 6.1 amd64 kernel under QEMU, as measured "
            "(a 1 GiB machine has MemTotal 981,476 kB)")


def thp_setting():
    return setting("thp", value_choice(THP_MODES), "always", valid=lambda v: v in THP_MODES,
                   expected=f"one of {', '.join(THP_MODES)}",
                   doc="transparent hugepages (Debian: always); when enabled, khugepaged raises "
                       "min_free_kbytes (only the watermarks are modelled: pages stay 4 KiB)")


# A minimal Debian 6.1 guest (busybox init) uses 28-36 MiB after boot on 256 MiB - 1 GiB of RAM.
GUEST_KERNEL_MEMORY = 32 * MIB


def ns_per_page(bandwidth: int) -> int:
    """A device's transfer time per 4 KiB page, from its bandwidth in bytes/s."""
    return int(round(PAGE_SIZE * 1e9 / bandwidth))


@dataclass(frozen=True, kw_only=True)
class SwapSpec:
    """A swap device: capacity and a per-page latency + bandwidth cost model."""
    size: int = size("size", 0, valid=lambda v: v >= 0, expected="a size >= 0", pages=True,
                     doc="capacity in bytes; 0 = no swap")
    read_latency_ns: int = cost(
        "read_latency", 100_000,
        param="swap_read_ns", doc="per read request (a swap-in), SSD-class by default")
    write_latency_ns: int = cost(
        "write_latency", 20_000,
        param="swap_write_ns",
        doc="per write request: its completion comes this long after its transfer (reclaim "
            "does not wait for it)")
    bandwidth: int = setting(
        "bandwidth", parse_rate, 500 * MIB, valid=lambda v: PAGE_SIZE <= v < MAX_SIZE,
        expected="a rate of at least 4KiB/s (a page in at most 1s)", param="swap_ns_per_page",
        encode=ns_per_page,
        format=format_rate, doc="transfer rate, bytes/s")
    where: str = "swap"

    def __post_init__(self):
        st.check(self)


def parse_swap(value, where: str) -> SwapSpec:
    """``swap = "1GiB"`` or ``swap = { size = "1GiB", read_latency = "100us", ... }``."""
    if not isinstance(value, dict):
        return SwapSpec(size=parse_size(value, where), where=where)
    st.check_keys(value, st.keys(SwapSpec), where)
    return SwapSpec(**st.parse_table(SwapSpec, value, where), where=where)


@dataclass(frozen=True, kw_only=True)
class PhaseSpec:
    """One phase of the synthetic phased workload, inside the workload's anonymous mapping.

    ``pattern``: ``seq`` (sequential anon writes), ``rand`` (uniform anon accesses), ``read``
    (sequential read() of file pages), ``zipf`` (anon, Zipf(``alpha``) over the range).
    Exactly one of ``duration_ns`` / ``passes`` ends the phase.
    """
    length: int = size("length", valid=lambda v: v >= PAGE_SIZE,
                       expected="a size of at least one page (4KiB)", pages=True)
    offset: int = size("offset", 0, valid=lambda v: v >= 0, expected="a size >= 0", pages=True)
    pattern: str = setting("pattern", value_choice(PATTERNS), "seq",
                           valid=lambda v: v in PATTERNS, expected=f"one of {', '.join(PATTERNS)}")
    duration_ns: int | None = duration("duration", None, valid=lambda v: v > 0,
                                       expected="a duration > 0")
    passes: int | None = setting("passes", value_int, None, valid=lambda v: v >= 1,
                                 expected="an integer >= 1")
    think_ns: int = duration("think", 1000, valid=lambda v: v > 0,
                             expected="a duration > 0 (every access must advance time)",
                             doc="think time per page access on an unloaded machine")
    write_fraction: float = setting("write_fraction", value_number, 1.0,
                                    valid=lambda v: 0.0 <= v <= 1.0,
                                    expected="a number in [0, 1]", doc="for seq/rand/zipf")
    alpha: float = setting("alpha", value_number, 0.9, valid=lambda v: v > 0,
                           expected="a Zipf exponent > 0", doc="for zipf")
    where: str = "phase"

    def __post_init__(self):
        _need((self.duration_ns is None) != (self.passes is None), self.where,
              "exactly one of 'duration' or 'passes'", (self.duration_ns, self.passes))
        st.check(self)


@dataclass(frozen=True, kw_only=True)
class WorkloadSpec:
    """What drives a guest: ``phases`` (synthetic, generated in the kernel) or ``trace``."""
    kind: str = setting("kind", value_str, "phases", valid=lambda v: v in ("phases", "trace"),
                        expected="'phases' or 'trace'")
    phases: tuple[PhaseSpec, ...] = ()
    mapping: int | None = size("mapping", None, valid=lambda v: v >= PAGE_SIZE,
                               expected="a size of at least 4KiB", pages=True,
                               doc="anon mapping size; default: end of the furthest phase")
    path: str | None = setting("path", value_str, None, valid=bool,
                               expected="a trace file path", doc="trace file, for kind 'trace'")
    speed: float = setting("speed", value_number, 1.0, valid=lambda v: v > 0,
                           expected="a number > 0", doc="trace: think times are divided by it")
    loop: bool = setting("loop", value_bool, False, doc="start again at the end")
    repeat: int = setting("repeat", value_int, 1, valid=lambda v: v >= 1,
                          expected="an integer >= 1",
                          doc="trace: replayed this many times back to back as one run "
                              "(it ends, or loops, after the last)")
    fresh_files: bool = setting(
        "fresh_files", value_bool, False,
        doc="trace with repeat: every repetition reads and writes new files (its read()/write() "
            "file pages are new pages; programs, libraries and anonymous pages are the same): "
            "the next part of a bigger build")
    start_ns: int = duration("start", 0, valid=lambda v: v >= 0, expected="a duration >= 0",
                             doc="time before the first access")
    start_jitter_ns: int = duration(
        "start_jitter", 0, valid=lambda v: v >= 0, expected="a duration >= 0",
        doc="the workload starts a random time in [0, start_jitter) after `start`, drawn from "
            "the guest's seed (so runs with other seeds start their guests in another order)")
    seed: int | None = setting("seed", value_int, None, valid=lambda v: v >= 0,
                               expected="an integer >= 0",
                               doc="default: derived from the run seed and guest index")
    where: str = "workload"

    def __post_init__(self):
        w = self.where
        st.check(self)
        if self.kind == "phases":
            _need(len(self.phases) > 0, f"{w}.phases", "a non-empty list of phases", self.phases)
            if self.mapping is not None:
                for p in self.phases:
                    _need(p.offset + p.length <= self.mapping, f"{p.where}.offset",
                          f"offset + length inside the mapping ({self.mapping} bytes)",
                          p.offset + p.length)
        else:
            _need(bool(self.path), f"{w}.path", "a trace file path", self.path)

    @property
    def mapping_bytes(self) -> int:
        if self.mapping is not None:
            return self.mapping
        return max(p.offset + p.length for p in self.phases)


@dataclass(frozen=True, kw_only=True)
class GuestSpec:
    """One guest (after expanding ``count`` replicas): RAM, swap, kernel, balloon features."""
    name: str = setting("name", value_str, valid=lambda v: v not in ("", HOST_ROW),
                        expected=f"a non-empty name other than '{HOST_ROW}' (the results' host "
                                 f"row)")
    memory: int = size("memory", valid=lambda v: v >= 16 * MIB,
                       expected="a size of at least 16MiB", pages=True,
                       doc="guest RAM (QEMU -m)")
    workload: WorkloadSpec
    swap: SwapSpec = setting("swap", parse_swap, SwapSpec(), nested=SwapSpec,
                             doc="swap device: a size, or a table")
    kernel: str = setting("kernel", value_choice(KERNELS), "6.1", valid=lambda v: v in KERNELS,
                          expected=f"one of {', '.join(KERNELS)}", param="kernel_version",
                          encode=KERNEL_VERSIONS.get,
                          doc='"6.1", "6.12" (6.1 plus the stats tags added in 6.12), or "3.7" '
                              "(the shrinker and reclaim semantics the 2012 RFC ran on)")
    features: frozenset[str] = setting(
        "features", value_list_of(FEATURES), frozenset({"stats_vq"}),
        valid=lambda v: set(v) <= set(FEATURES),
        expected=f"features among {', '.join(FEATURES)}", param="features",
        encode=lambda v: sum(1 << FEATURES[f] for f in v), format=sorted,
        doc="virtio_balloon feature bits the device offers and the driver accepts")
    target: int | None = size("target", None, valid=lambda v: v > 0, expected="a size > 0",
                              doc="initial balloon target, QEMU's meaning (guest RAM after)")
    swappiness: int = setting("swappiness", value_int, 60, valid=lambda v: 0 <= v <= 200,
                              expected="an integer in [0, 200]", param="swappiness",
                              doc="/proc/sys/vm/swappiness")
    watermark_scale_factor: int = setting(
        "watermark_scale_factor", value_int, 10, valid=lambda v: 1 <= v <= 3000,
        expected="an integer in [1, 3000]", doc="/proc/sys/vm/watermark_scale_factor")
    slab: int = size("slab", 0, valid=lambda v: v >= 0, expected="a size >= 0", pages=True,
                     doc="reclaimable slab cache (a generic shrinker), bytes")
    auto_balloon_variant: str = setting(
        "auto_balloon_variant", value_choice(AUTO_BALLOON_VARIANTS), "rfc",
        valid=lambda v: v in AUTO_BALLOON_VARIANTS, expected="'rfc' or 'fixed'",
        param="autoballoon_rfc", encode=lambda v: v == "rfc",
        doc='the 2012 AUTO_BALLOON shrinker "rfc" (as posted) or "fixed"')
    kswapd_scan_ns: int = cost("kswapd_scan", 200, positive=True, param="kswapd_scan_ns",
                               doc="reclaim CPU cost per scanned page (kswapd's speed)")
    fault_ns: int = cost("fault", 500, param="fault_ns",
                         doc="minor fault: exception entry, page zeroing, PTE set")
    tell_host_ns: int = cost(
        "tell_host", 40_000, param="tell_host_ns",
        doc="a balloon message's round trip: virtqueue kick, QEMU's handler, the interrupt back")
    madvise_dontneed_ns: int = cost(
        "madvise_dontneed", 2_200, param="madvise_dontneed_ns",
        doc="QEMU's MADV_DONTNEED of one inflated page (a TLB shootdown): inflating 256 pages "
            "takes tell_host + 256 x this, ~0.6 ms")
    madvise_willneed_ns: int = cost(
        "madvise_willneed", 80, param="madvise_willneed_ns",
        doc="QEMU's MADV_WILLNEED of one deflated page")
    reserved: int | None = reserved_setting("guest")
    kernel_memory: int = size(
        "kernel_memory", GUEST_KERNEL_MEMORY, valid=lambda v: v >= 0, expected="a size >= 0",
        doc="memory the guest kernel and its init use after boot and never give back (page "
            "tables, unreclaimable slab, stacks, the rootfs): in MemTotal, never free")
    thp: str = thp_setting()
    group: str | None = None            # the [[guest]] name when expanded from `count` replicas
    where: str = "guest"

    def __post_init__(self):
        w = self.where
        st.check(self)
        if self.target is not None:
            _need(self.target <= self.memory, f"{w}.target",
                  f"a size in (0, memory={self.memory}]", self.target)
        _need(self.slab < self.memory, f"{w}.slab", "a size in [0, memory)", self.slab)

    @property
    def pages(self) -> int:
        return self.memory // PAGE_SIZE


@dataclass(frozen=True, kw_only=True)
class HostSpec:
    """The host: RAM and swap for guest memory, the balloon policy, the QEMU stats poll."""
    memory: int = size("memory", valid=lambda v: v >= 16 * MIB,
                       expected="a size of at least 16MiB", pages=True,
                       doc="host RAM for guest memory")
    swap: SwapSpec = setting("swap", parse_swap, SwapSpec(), nested=SwapSpec,
                             doc="host swap device: a size, or a table")
    policy: str = setting("policy", value_str, "none", valid=POLICY_NAME.fullmatch,
                          expected='a registered policy name or "package.module:ClassName"',
                          doc='a registered policy name or "package.module:ClassName"')
    policy_params: dict = field(default_factory=dict)
    stats_poll_ns: int = duration("stats_poll", 1_000_000_000, valid=lambda v: v > 0,
                                  expected="a duration > 0",
                                  doc="QEMU guest-stats-polling-interval")
    fault_ns: int = cost("fault", 2_000, param="fault_ns",
                         doc="EPT violation + host page allocation")
    kswapd_scan_ns: int = cost("kswapd_scan", 200, positive=True, param="kswapd_scan_ns",
                               doc="host reclaim CPU cost per scanned page")
    reserved: int | None = reserved_setting("host")
    kernel_memory: int = size(
        "kernel_memory", 0, valid=lambda v: v >= 0, expected="a size >= 0",
        doc="host memory its kernel, QEMU's own allocations and daemons use (not the guests' "
            "RAM): never free for guests")
    thp: str = thp_setting()
    where: str = "host"

    def __post_init__(self):
        st.check(self)


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    duration_ns: int = duration("duration", valid=lambda v: v > 0, expected="a duration > 0")
    tick_ns: int = duration("tick", 100_000_000, valid=lambda v: v > 0,
                            expected="a duration in (0, run.duration]",
                            doc="control tick (the policy's period); default 100ms, or the "
                                "duration if shorter")
    seed: int = setting("seed", value_int, 1, valid=lambda v: v >= 0, expected="an integer >= 0")
    slice_ns: int = duration("slice", 1_000_000, valid=lambda v: v > 0,
                             expected="a duration in (0, tick]",
                             doc="guests are interleaved in slices of this length")
    where: str = "run"

    def __post_init__(self):
        st.check(self)
        # a longer tick would be cut to the duration: the policy would never see its period
        _need(self.tick_ns <= self.duration_ns, f"{self.where}.tick",
              f"a duration in (0, run.duration = {format_duration(self.duration_ns)}]",
              format_duration(self.tick_ns))
        _need(self.slice_ns <= self.tick_ns, f"{self.where}.slice", "a duration in (0, tick]",
              self.slice_ns)


@dataclass(frozen=True, kw_only=True)
class ScheduleEntry:
    at_ns: int = duration("at", valid=lambda v: v >= 0, expected="a duration >= 0")
    guest: str = setting("guest", value_str, valid=bool, expected="a guest or group name",
                         doc="guest name, or a replica group name for all replicas")
    target: int = size("target", valid=lambda v: v > 0, expected="a size > 0",
                       doc="bytes, QEMU's meaning")
    where: str = "schedule"

    def __post_init__(self):
        st.check(self)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    run: RunSpec
    host: HostSpec
    guests: tuple[GuestSpec, ...]
    schedule: tuple[ScheduleEntry, ...] = ()
    source: str | None = None           # the file it came from
    raw: dict = field(default_factory=dict)  # the parsed TOML, for the manifest
    text: str | None = field(default=None, repr=False, compare=False)  # the TOML, for line numbers

    def __post_init__(self):
        _need(len(self.guests) > 0, "guest", "at least one [[guest]]", len(self.guests))
        names = [g.name for g in self.guests]
        _need(len(set(names)) == len(names), "guest.name", "unique guest names", names)
        # a [[schedule]] entry or a policy parameter names a guest or a replica group: one name
        # must not mean both
        groups = {g.group: g for g in self.guests if g.group is not None}
        for g in self.guests:
            _need(g.name not in groups, f"{g.where}.name", f"a name that is not also the replica "
                  f"group of {groups.get(g.name, g).where} (replicas {g.name}-0, ...)", g.name)
