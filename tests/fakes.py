"""A FakeMachine with the Machine interface (MachineAPI, control/loop.py) and a crude, deterministic
memory model, so the control loop, the policies and the results can be tested in milliseconds.

Model, per tick of length dt (not Linux; just enough to react to balloons):
- a guest *needs* the length of its current workload phase (plus seeded jitter of a few pages);
  what does not fit in ``ram - balloon`` is swapped in the guest; 1/10 of the swapped pages per
  100 ms are swapped back in (major faults, 100 µs stall each);
- the balloon moves towards its target at ``BALLOON_RATE`` bytes per 100 ms; with the
  auto_balloon feature a guest that swaps deflates its balloon by the shortfall at once;
- touched guest pages stay backed on the host unless the balloon takes them; backing beyond
  host memory is host swap (charged to the guests in proportion to their backing); host events
  from the backed fraction (>75 % LOW, >85 % MEDIUM, >95 % CRITICAL), unless ``host_events``
  scripts them ({tick end ns: [levels]});
- the guest's first ``min(need, ram - balloon)`` frames are accessed every tick (their EPT
  accessed bits set); Committed_AS is the guest's used plus swapped memory; watermarks are
  1 %, 1.25 % and 1.5 % of memory.
"""
from __future__ import annotations

import numpy as np

from autoballoon.control.loop import MachineAPI
from autoballoon.control.view import (
    STATS_TAGS, VMPRESSURE_CRITICAL, VMPRESSURE_LOW, VMPRESSURE_MEDIUM)

PAGE = 4096
MIB = 2**20
BALLOON_RATE = 32 * MIB


class FakeMachine(MachineAPI):
    def __init__(self, scenario, debug=False, *, host_events=None):
        self.scenario = scenario
        self.names = [g.name for g in scenario.guests]
        self.now_ns = 0
        self.host_events_script = host_events
        n = len(self.names)
        self.ram = [g.memory for g in scenario.guests]
        self.balloon = [0] * n                       # bytes in the balloon (actual)
        self.balloon_target = [0] * n
        self.touched = [0] * n                       # bytes ever touched, backed unless ballooned
        self.swapped = [0] * n                       # guest swap used
        self.vm = [dict.fromkeys(("pswpin", "pswpout", "pgmajfault", "pgfault", "allocstall",
                                  "oom_kill", "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd",
                                  "pgsteal_direct", "workingset_refault", "balloon_inflate",
                                  "balloon_deflate"), 0) for _ in range(n)]
        self.drv = [dict.fromkeys(("balloon_shrinker_calls", "balloon_shrinker_busy",
                                   "balloon_reversals", "balloon_out_of_puff"), 0)
                    for _ in range(n)]
        self.stall_ns = [0] * n
        self.progress = [0] * n
        self.pressure = [-1] * n
        self.host = dict.fromkeys(("pswpin", "pswpout", "pgfault", "pgscan", "pgsteal",
                                   "allocstall"), 0)
        self.host_swapped = 0
        self.events: list[int] = []
        self.rng = [np.random.default_rng([scenario.run.seed, g]) for g in range(n)]
        self.young = [np.zeros(ram // PAGE, bool) for ram in self.ram]
        self.set_target_calls: list[tuple[int, int, int]] = []
        self.advance_calls: list[int] = []
        for g, spec in enumerate(scenario.guests):
            if spec.target:
                self.set_target(g, spec.target)

    # --- model ------------------------------------------------------------------------------
    def _need(self, g: int, t: int) -> int:
        w = self.scenario.guests[g].workload
        if w.kind != "phases":
            return self.ram[g] // 2
        elapsed = 0
        for p in w.phases:
            elapsed += p.duration_ns if p.duration_ns is not None else p.passes * 10**9
            if t < elapsed:
                return p.length
        return w.phases[-1].length

    def advance(self, until_ns: int) -> None:
        assert until_ns > self.now_ns, (until_ns, self.now_ns)
        self.advance_calls.append(until_ns)
        dt = until_ns - self.now_ns
        scale = dt / 1e8                                    # in units of 100 ms
        for g in range(len(self.names)):
            spec = self.scenario.guests[g]
            need = self._need(g, self.now_ns) + PAGE * int(self.rng[g].integers(0, 16))
            # the driver moves towards the target
            step = int(BALLOON_RATE * scale) // PAGE * PAGE
            delta = max(-step, min(step, self.balloon_target[g] - self.balloon[g]))
            self._move_balloon(g, delta)
            room = self.ram[g] - self.balloon[g]
            if need > room and "auto_balloon" in spec.features and self.balloon[g]:
                self.drv[g]["balloon_shrinker_calls"] += 1
                self._move_balloon(g, -min(self.balloon[g], need - room))
                room = self.ram[g] - self.balloon[g]
            swapped = max(0, need - room)
            vm = self.vm[g]
            vm["pswpout"] += max(0, swapped - self.swapped[g]) // PAGE
            self.swapped[g] = swapped
            swapins = int(swapped // PAGE * 0.1 * scale)
            vm["pswpin"] += swapins
            vm["pgmajfault"] += swapins
            vm["pgfault"] += min(need, room) // PAGE // 100 + swapins
            stall = min(dt, swapins * 100_000)
            self.stall_ns[g] += stall
            self.progress[g] += (dt - stall) // 1000
            self.pressure[g] = VMPRESSURE_MEDIUM if swapped else -1
            self.touched[g] = max(self.touched[g], min(need, room))
            self.young[g][:min(need, room) // PAGE] = True
        # host: backing of touched, unballooned guest memory
        backed = sum(min(self.touched[g], self.ram[g] - self.balloon[g])
                     for g in range(len(self.names)))
        mem = self.scenario.host.memory
        over = max(0, backed - mem)
        self.host["pswpout"] += max(0, over - self.host_swapped) // PAGE
        self.host_swapped = over
        self.host["pswpin"] += int(over // PAGE * 0.05 * scale)
        self.host_used = min(backed, mem)
        if self.host_events_script is not None:
            self.events.extend(self.host_events_script.get(until_ns, []))
        else:
            frac = backed / mem
            for limit, level in ((0.95, VMPRESSURE_CRITICAL), (0.85, VMPRESSURE_MEDIUM),
                                 (0.75, VMPRESSURE_LOW)):
                if frac > limit:
                    self.events.append(level)
                    break
        self.now_ns = until_ns

    def _move_balloon(self, g: int, delta: int) -> None:
        if delta > 0:
            self.vm[g]["balloon_inflate"] += delta // PAGE
        elif delta < 0:
            self.vm[g]["balloon_deflate"] += -delta // PAGE
        self.balloon[g] += delta

    # --- Machine interface ------------------------------------------------------------------
    def vmstat(self, g):
        return {**self.vm[g], **self.drv[g], "stall_ns": self.stall_ns[g],
                "progress": self.progress[g]}

    def meminfo(self, g):
        room = self.ram[g] - self.balloon[g]
        used = min(self.touched[g], room)
        swap = self.scenario.guests[g].swap.size
        return {"MemTotal": room, "MemFree": room - used, "MemAvailable": room - used,
                "Cached": 0, "AnonPages": used, "Active(anon)": used, "Inactive(anon)": 0,
                "Active(file)": 0, "Inactive(file)": 0, "SwapTotal": swap,
                "SwapFree": swap - self.swapped[g], "Slab": 0,
                "balloon_actual": self.balloon[g], "balloon_target": self.balloon_target[g],
                "alive": 1, "pressure": self.pressure[g]}

    def workload_start_ns(self, g):
        return self.scenario.guests[g].workload.start_ns

    def finished_ns(self, g):
        return None                                  # the fake's workloads never end

    def balloon_stats(self, g):
        mi = self.meminfo(g)
        stats = dict.fromkeys(STATS_TAGS, 0)
        stats.update(swap_in=self.vm[g]["pswpin"] * PAGE, swap_out=self.vm[g]["pswpout"] * PAGE,
                     major_faults=self.vm[g]["pgmajfault"], free_memory=mi["MemFree"],
                     total_memory=mi["MemTotal"], available_memory=mi["MemAvailable"])
        return stats

    def host_vmstat(self):
        return dict(self.host)

    def host_meminfo(self):
        mem = self.scenario.host.memory
        used = getattr(self, "host_used", 0)
        swap = self.scenario.host.swap.size
        return {"MemTotal": mem, "MemFree": mem - used, "Used": used, "SwapTotal": swap,
                "SwapFree": swap - min(swap, self.host_swapped)}

    def committed_as(self, g):
        return min(self.touched[g], self.ram[g] - self.balloon[g]) + self.swapped[g]

    def zoneinfo(self, g):
        marks = _watermarks(self.ram[g])
        return {**marks, "totalreserve": marks["high"]}

    def host_usage(self, g):
        backed = [min(t, r - b) for t, r, b in zip(self.touched, self.ram, self.balloon)]
        swap = self.host_swapped * backed[g] // max(1, sum(backed)) // PAGE * PAGE
        return {"VmRSS": backed[g] - swap, "VmSwap": swap}

    def host_zoneinfo(self):
        return _watermarks(self.scenario.host.memory)

    def test_and_clear_young(self, g, frames):
        frames = np.asarray(frames, np.int64)
        young = self.young[g][frames].copy()
        self.young[g][frames] = False
        return young

    def host_pressure_events(self):
        events, self.events = self.events, []
        return events

    def ram_size(self, g):
        return self.ram[g]

    def set_target(self, g, target):
        assert 0 < target <= self.ram[g], target
        self.set_target_calls.append((self.now_ns, g, target))
        self.balloon_target[g] = (self.ram[g] - target) // PAGE * PAGE


def _watermarks(memory):
    wmin = memory // 100 // PAGE * PAGE
    return {"min": wmin, "low": wmin * 5 // 4, "high": wmin * 3 // 2}


class RecordingPolicy:
    """A user policy outside the registry ("fakes:RecordingPolicy"): keeps every view; can
    return scripted targets {now_ns: {guest: bytes}}."""

    def __init__(self, scenario, script=None):
        self.scenario = scenario
        self.script = script or {}
        self.views = []

    def observe(self, view):
        self.views.append(view)
        return self.script.get(view.now_ns)


class Spy:
    """A machine_factory that keeps the FakeMachine it built (keyword arguments go to it)."""

    def __init__(self, **kw):
        self.kw, self.machine = kw, None

    def __call__(self, scn, debug=False):
        self.machine = FakeMachine(scn, debug=debug, **self.kw)
        return self.machine
