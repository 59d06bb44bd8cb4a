"""Validated descriptions of a run: what the scenario parser produces and the machine consumes.

All sizes are bytes and all times simulated nanoseconds (int). Constructing a spec checks it:
an impossible value raises ``SpecError`` naming the field and what was expected, before any
simulation starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

PAGE_SIZE = 4096
KERNELS = ("6.1", "3.7")
PATTERNS = ("seq", "rand", "read", "zipf")
FEATURES = ("must_tell_host", "stats_vq", "deflate_on_oom", "free_page_hint", "page_poison",
            "free_page_reporting", "auto_balloon")
AUTO_BALLOON_VARIANTS = ("rfc", "fixed")


class SpecError(ValueError):
    """A scenario, guest or workload description that cannot be simulated."""


def _need(cond: bool, where: str, expected: str, got) -> None:
    if not cond:
        raise SpecError(f"{where}: expected {expected}, got {got!r}")


@dataclass(frozen=True)
class SwapSpec:
    """A swap device: capacity and a per-page latency + bandwidth cost model."""
    size: int = 0                       # bytes; 0 = no swap
    read_latency_ns: int = 100_000      # per swap-in I/O (SSD-class)
    write_latency_ns: int = 20_000      # per swap-out I/O, paid by the reclaimer
    bandwidth: int = 500 * 2**20        # bytes/s
    where: str = "swap"

    def __post_init__(self):
        _need(self.size >= 0, f"{self.where}.size", "a size >= 0", self.size)
        _need(self.read_latency_ns >= 0, f"{self.where}.read_latency", "a duration >= 0",
              self.read_latency_ns)
        _need(self.write_latency_ns >= 0, f"{self.where}.write_latency", "a duration >= 0",
              self.write_latency_ns)
        _need(self.bandwidth > 0, f"{self.where}.bandwidth", "a rate > 0 bytes/s", self.bandwidth)


@dataclass(frozen=True)
class PhaseSpec:
    """One phase of the synthetic phased workload, inside the workload's anonymous mapping.

    ``pattern``: ``seq`` (sequential anon writes), ``rand`` (uniform anon accesses), ``read``
    (sequential read() of file pages), ``zipf`` (anon, Zipf(``alpha``) over the range).
    Exactly one of ``duration_ns`` / ``passes`` ends the phase.
    """
    length: int
    offset: int = 0
    pattern: str = "seq"
    duration_ns: int | None = None
    passes: int | None = None
    think_ns: int = 1000                # think time per page access on an unloaded machine
    write_fraction: float = 1.0         # for seq/rand/zipf
    alpha: float = 0.9                  # for zipf
    where: str = "phase"

    def __post_init__(self):
        w = self.where
        _need(self.pattern in PATTERNS, f"{w}.pattern", f"one of {', '.join(PATTERNS)}",
              self.pattern)
        _need(self.length >= PAGE_SIZE, f"{w}.length", "a size of at least one page (4KiB)",
              self.length)
        _need(self.offset >= 0, f"{w}.offset", "a size >= 0", self.offset)
        _need((self.duration_ns is None) != (self.passes is None), w,
              "exactly one of 'duration' or 'passes'", (self.duration_ns, self.passes))
        if self.duration_ns is not None:
            _need(self.duration_ns > 0, f"{w}.duration", "a duration > 0", self.duration_ns)
        if self.passes is not None:
            _need(self.passes >= 1, f"{w}.passes", "an integer >= 1", self.passes)
        _need(self.think_ns >= 0, f"{w}.think", "a duration >= 0", self.think_ns)
        _need(0.0 <= self.write_fraction <= 1.0, f"{w}.write_fraction", "a number in [0, 1]",
              self.write_fraction)
        _need(self.alpha > 0, f"{w}.alpha", "a Zipf exponent > 0", self.alpha)


@dataclass(frozen=True)
class WorkloadSpec:
    """What drives a guest: ``phases`` (synthetic, generated in the kernel) or ``trace``."""
    kind: str = "phases"
    phases: tuple[PhaseSpec, ...] = ()
    mapping: int | None = None          # anon mapping size; default: end of the furthest phase
    path: str | None = None             # trace file, for kind == "trace"
    speed: float = 1.0                  # trace: think times are divided by speed
    loop: bool = False                  # trace/phases: start again at the end
    start_ns: int = 0                   # time offset before the first access
    seed: int | None = None             # default: derived from the run seed and guest index
    where: str = "workload"

    def __post_init__(self):
        w = self.where
        _need(self.kind in ("phases", "trace"), f"{w}.kind", "'phases' or 'trace'", self.kind)
        if self.kind == "phases":
            _need(len(self.phases) > 0, f"{w}.phases", "a non-empty list of phases", self.phases)
            if self.mapping is not None:
                _need(self.mapping >= PAGE_SIZE, f"{w}.mapping", "a size of at least 4KiB",
                      self.mapping)
                for p in self.phases:
                    _need(p.offset + p.length <= self.mapping, f"{p.where}.offset",
                          f"offset + length inside the mapping ({self.mapping} bytes)",
                          p.offset + p.length)
        else:
            _need(bool(self.path), f"{w}.path", "a trace file path", self.path)
        _need(self.speed > 0, f"{w}.speed", "a number > 0", self.speed)
        _need(self.start_ns >= 0, f"{w}.start", "a duration >= 0", self.start_ns)

    @property
    def mapping_bytes(self) -> int:
        if self.mapping is not None:
            return self.mapping
        return max(p.offset + p.length for p in self.phases)


@dataclass(frozen=True)
class GuestSpec:
    """One guest (after expanding ``count`` replicas): RAM, swap, kernel, balloon features."""
    name: str
    memory: int
    workload: WorkloadSpec
    swap: SwapSpec = field(default_factory=SwapSpec)
    kernel: str = "6.1"
    features: frozenset[str] = frozenset({"stats_vq"})
    target: int | None = None           # initial balloon target, QEMU's meaning (RAM after)
    swappiness: int = 60
    watermark_scale_factor: int = 10
    slab: int = 0                       # reclaimable slab cache (generic shrinker), bytes
    auto_balloon_variant: str = "rfc"   # "rfc" (as posted in 2012) or "fixed"
    kswapd_scan_ns: int = 200           # kswapd CPU cost per scanned page (its speed)
    group: str | None = None            # the [[guest]] name when expanded from `count` replicas
    where: str = "guest"

    def __post_init__(self):
        w = self.where
        _need(bool(self.name), f"{w}.name", "a non-empty name", self.name)
        _need(self.memory >= 16 * 2**20, f"{w}.memory", "a size of at least 16MiB",
              self.memory)
        _need(self.kernel in KERNELS, f"{w}.kernel", f"one of {', '.join(KERNELS)}", self.kernel)
        bad = set(self.features) - set(FEATURES)
        _need(not bad, f"{w}.features", f"features among {', '.join(FEATURES)}", sorted(bad))
        if self.target is not None:
            _need(0 < self.target <= self.memory, f"{w}.target",
                  f"a size in (0, memory={self.memory}]", self.target)
        _need(0 <= self.swappiness <= 200, f"{w}.swappiness", "an integer in [0, 200]",
              self.swappiness)
        _need(1 <= self.watermark_scale_factor <= 3000, f"{w}.watermark_scale_factor",
              "an integer in [1, 3000]", self.watermark_scale_factor)
        _need(0 <= self.slab < self.memory, f"{w}.slab", "a size in [0, memory)", self.slab)
        _need(self.auto_balloon_variant in AUTO_BALLOON_VARIANTS, f"{w}.auto_balloon_variant",
              "'rfc' or 'fixed'", self.auto_balloon_variant)
        _need(self.kswapd_scan_ns > 0, f"{w}.kswapd_scan", "a duration > 0", self.kswapd_scan_ns)

    @property
    def pages(self) -> int:
        return self.memory // PAGE_SIZE


@dataclass(frozen=True)
class HostSpec:
    """The host: RAM and swap for guest memory, the balloon policy, the QEMU stats poll."""
    memory: int
    swap: SwapSpec = field(default_factory=SwapSpec)
    policy: str = "none"
    policy_params: dict = field(default_factory=dict)
    stats_poll_ns: int = 1_000_000_000  # QEMU guest-stats-polling-interval
    fault_ns: int = 2_000               # EPT violation + host page allocation
    kswapd_scan_ns: int = 200
    where: str = "host"

    def __post_init__(self):
        _need(self.memory >= 16 * 2**20, f"{self.where}.memory", "a size of at least 16MiB",
              self.memory)
        _need(self.stats_poll_ns > 0, f"{self.where}.stats_poll", "a duration > 0",
              self.stats_poll_ns)


@dataclass(frozen=True)
class RunSpec:
    duration_ns: int
    tick_ns: int = 100_000_000
    seed: int = 1
    slice_ns: int = 1_000_000           # guests are interleaved in slices of this length
    where: str = "run"

    def __post_init__(self):
        _need(self.duration_ns > 0, f"{self.where}.duration", "a duration > 0", self.duration_ns)
        _need(self.tick_ns > 0, f"{self.where}.tick", "a duration > 0", self.tick_ns)
        _need(0 < self.slice_ns <= self.tick_ns, f"{self.where}.slice",
              "a duration in (0, tick]", self.slice_ns)


@dataclass(frozen=True)
class ScheduleEntry:
    at_ns: int
    guest: str                          # guest name, or a replica group name for all replicas
    target: int                         # bytes, QEMU's meaning
    where: str = "schedule"

    def __post_init__(self):
        _need(self.at_ns >= 0, f"{self.where}.at", "a duration >= 0", self.at_ns)
        _need(bool(self.guest), f"{self.where}.guest", "a guest or group name", self.guest)
        _need(self.target > 0, f"{self.where}.target", "a size > 0", self.target)


@dataclass(frozen=True)
class Scenario:
    run: RunSpec
    host: HostSpec
    guests: tuple[GuestSpec, ...]
    schedule: tuple[ScheduleEntry, ...] = ()
    source: str | None = None           # the file it came from
    raw: dict = field(default_factory=dict)  # the parsed TOML, for the manifest

    def __post_init__(self):
        _need(len(self.guests) > 0, "guest", "at least one [[guest]]", len(self.guests))
        names = [g.name for g in self.guests]
        _need(len(set(names)) == len(names), "guest.name", "unique guest names", names)
