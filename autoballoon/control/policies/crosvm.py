"""``crosvm``: ChromeOS concierge's BalanceAvailable policy for crosvm guests.

Mirrors chromiumos platform2 ``vm_tools/concierge/balloon_policy.cc``
``BalanceAvailableBalloonPolicy::ComputeBalloonDelta`` (2021; the version that halves the delta
"to account for the fact that inflating/deflating the balloon will decrease/increase the host
available memory"), run for every VM each second by ``Service::RunBalloonPolicy``, which sets
the balloon to ``max(0, balloon_actual + delta)`` when that differs. Per VM, in bytes:

- guest_available = MEMFREE + CACHES (virtio stats), learned critical level: it starts at
  400 MiB and drops to the previous reading after two readings in a row below it while the
  balloon is under 95 % of its largest size (``max_balloon_actual_`` starts at 3/4 of MEMTOT);
- guest_above = guest_available - critical - bias * balloon_full_percent / 100;
  host_above = host_available - critical_host_available;
- delta = (guest_above - host_above) / 2 (C++ integer division), clamped to
  [-(host_above + 10 MiB), guest_available - critical + 10 MiB];
- it acts only if either side is within 1 MiB of its critical level or the uncapped delta is
  more than 1 % of either margin; the balloon never goes below zero.

Host side, mirrors resourced ``src/memory.rs`` ``calculate_available_memory_kb``: available =
(MemFree - reserved_free) + (file - dirty - min_filelist) + min(anon, SwapFree) / 4
(``DEFAULT_RAM_SWAP_WEIGHT``), saturating; reserved_free = the host's high watermark (one zone,
no protection); the critical margin is ``DEFAULT_CRITICAL_MARGIN_BPS`` = 520 (5.2 % of MemTotal).

Parameters: ``critical_margin_bps``, ``guest_available_bias`` (Termina 0; ARCVM 48 MiB),
``critical_guest_available`` (400 MiB), ``ram_swap_weight``, ``interval`` (the D-Bus
``SetBalloonTimer``, 1 s).

Simplifies: the model's host has no page cache, so the file term is 0 and anon is all host memory
in use (QEMU's guest RAM); concierge asks crosvm for stats synchronously each tick, here the stats
are QEMU's last poll (``host.stats_poll``); Chrome's run-time margins (D-Bus
``SetMemoryMarginsBps``) and game mode are not modelled; ``prev_guest_available_`` is not
initialised in the source — it starts at the critical level here, so the first reading alone
never lowers it; ``std::clamp`` with lo > hi (undefined) is computed as min(max(v, lo), hi).
Its 400 MiB starting critical level is sized for GiB guests: on small guests the learning sets
the level from the first readings.
"""
from __future__ import annotations

from autoballoon.control.policies.base import MIB, MIN_TARGET, Every, HostView, Policy, register

MAX_CRITICAL_DELTA = 10 * MIB


def cdiv(a: int, b: int) -> int:
    """C/C++ integer division (truncates towards zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def resourced_available(host_meminfo, reserved_free: int, ram_swap_weight: int = 4,
                        min_filelist: int = 0) -> int:
    """``calculate_available_memory_kb`` (in bytes) for the model's host: all of its memory in
    use is guest RAM (anonymous memory of the QEMU processes); it has no page cache."""
    anon = host_meminfo["Used"]
    file = dirty = 0
    free = max(0, host_meminfo["MemFree"] - reserved_free)
    cache = max(0, max(0, file - dirty) - min_filelist)
    swap = min(anon, host_meminfo["SwapFree"]) // ram_swap_weight if ram_swap_weight else 0
    return free + cache + swap


class BalanceAvailable:
    """One VM's ``BalanceAvailableBalloonPolicy`` (its learned state)."""

    def __init__(self, critical_host_available: int, bias: int, critical_guest: int):
        self.critical_host = critical_host_available
        self.bias = bias
        self.critical_guest = critical_guest
        self.max_balloon_actual = 0
        self.prev_guest_available = critical_guest     # not initialised in the source
        self.prev_full_percent = 0

    def delta(self, balloon_actual: int, free: int, cached: int, total: int,
              host_available: int) -> int:
        """ComputeBalloonDelta: change of the balloon size in bytes (> 0 inflates)."""
        if self.max_balloon_actual == 0:
            self.max_balloon_actual = cdiv(total * 3, 4)
        self.max_balloon_actual = max(self.max_balloon_actual, balloon_actual)
        guest_available = free + cached
        full = (cdiv(balloon_actual * 100, self.max_balloon_actual)
                if self.max_balloon_actual > 0 else 0)
        if guest_available < self.critical_guest and full < 95:
            if self.prev_guest_available < self.critical_guest and self.prev_full_percent < 95:
                self.critical_guest = self.prev_guest_available
        bias = cdiv(self.bias * full, 100)
        guest_above = guest_available - self.critical_guest - bias
        host_above = host_available - self.critical_host
        delta = cdiv(guest_above - host_above, 2)
        capped = min(max(delta, -(host_above + MAX_CRITICAL_DELTA)),
                     guest_available - self.critical_guest + MAX_CRITICAL_DELTA)
        self.prev_guest_available = guest_available
        self.prev_full_percent = full
        self.guest_above, self.host_above = guest_above, host_above     # for policy_state
        if (guest_above < MIB or host_above < MIB
                or cdiv(abs(delta) * 100, guest_above) > 1
                or cdiv(abs(delta) * 100, host_above) > 1):
            return max(capped, -balloon_actual)
        return 0


@register("crosvm")
class CrosvmPolicy(Policy):
    automatic = True
    guest_features = {"stats_vq": True, "auto_balloon": False}

    def __init__(self, scenario, critical_margin_bps=520, guest_available_bias="0",
                 critical_guest_available="400MiB", ram_swap_weight=4, interval="1s"):
        super().__init__(scenario)
        bps = self.number_param(critical_margin_bps, "critical_margin_bps", 0, 10000,
                                integer=True)
        self.critical_host = scenario.host.memory * bps // 10000
        bias = self.size_param(guest_available_bias, "guest_available_bias")
        critical = self.size_param(critical_guest_available, "critical_guest_available")
        self.vms = [BalanceAvailable(self.critical_host, bias, critical)
                    for _ in scenario.guests]
        self.swap_weight = self.number_param(ram_swap_weight, "ram_swap_weight", 0, 1000,
                                             integer=True)
        period = self.duration_param(interval, "interval")
        self.clock = Every(period, first_ns=period)

    def observe(self, view: HostView) -> dict[int, int] | None:
        if not self.clock.due(view.now_ns):
            return None
        host_available = resourced_available(view.host_meminfo, view.host_zoneinfo["high"],
                                             self.swap_weight)
        self.expose(view.now_ns, "host", host_available=host_available)
        out = {}
        for g, vm in enumerate(self.vms):
            st = view.stats[g]
            if not st["total_memory"]:
                continue                  # QEMU has not polled the stats yet
            balloon = view.ram_size[g] - view.actual[g]
            delta = vm.delta(balloon, st["free_memory"], st["disk_caches"],
                             st["total_memory"], host_available)
            self.expose(view.now_ns, g, critical_guest_available=vm.critical_guest,
                        guest_above=vm.guest_above, host_above=vm.host_above)
            size = max(0, balloon + delta)
            if size != balloon:
                out[g] = max(MIN_TARGET, view.ram_size[g] - size)
        return out or None
