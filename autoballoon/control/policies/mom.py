"""``mom``: oVirt's Memory Overcommitment Manager with its balloon rules.

Mirrors oVirt/mom ``doc/balloon.rules`` (HEAD, last changed in e0f3d3b "Reorder limit checks in
grow quest"): ``shrink_guest``, ``grow_guest``, ``change_big_enough`` and the main script, with
MOM's defaults from ``mom/__init__.py`` (``MOM._load_config``): host and guest monitors every
5 s, the policy engine every 10 s (``PolicyEngine.run`` sleeps, then ``do_controls``), 10-sample
histories (``Monitor.collect``) averaged by ``Entity.StatAvg``. Every 10 s:

- host_free_percent = avg(host MemFree + Buffers + Cached) / MemTotal
  (``Collectors/HostMemory.py``: ``mem_free`` / ``mem_available``);
- below ``pressure_threshold`` (0.20) every guest shrinks: its floor is
  ``max(balloon_min, avg(balloon_cur) - avg(mem_unused) + guest_free_percent * balloon_cur)``
  with guest_free_percent = 0.20 * host_free_percent / 0.20, or host_free_percent - 0.05 at or
  below ``pressure_critical`` (0.05: "force guest to swap"); the new size is
  ``max(0.95 * balloon_cur, floor)``, applied only if it is not above balloon_cur;
- otherwise every ballooned guest grows to ``min(balloon_max, max(1.05 * balloon_cur, floor))``
  with the floor at ``min_guest_free_percent`` (0.20) of balloon_cur;
- a change of at most 0.25 % of balloon_cur is skipped; the target goes to libvirt
  ``virDomainSetMemory`` in KiB (``Controllers/Balloon.py`` truncates it to an int).

Inputs (libvirt interface, ``HypervisorInterfaces/libvirtInterface.py``): ``balloon_cur`` =
current memory (QEMU ``actual``), ``mem_unused`` = virtio MEMFREE (``stats.free_memory``:
page cache counts as used), ``balloon_max`` = ``ram_size``, ``balloon_min`` = the domain's
``<min_guarantee>`` (parameter, default 0), all in KiB as MOM computes.
Parameters: the five constants of the rule file, ``policy_interval``, ``monitor_interval`` and
``history`` (oVirt's vdsm ships 15 s / 15 s / 10).

Simplifies: monitors and the policy engine share the control tick (MOM runs them in unsynchronised
threads; here a monitor sample is taken first when both fall due); MOM asks libvirt to poll guest
stats every 5 s, here QEMU polls every ``host.stats_poll``; oVirt/vdsm's variant of the rules
(``02-balloon.policy``: ``balloonEnabled``, host-pressure-scaled grow floor, the QoS rule) is not
modelled.
"""
from __future__ import annotations

from collections import deque

from autoballoon.control.policies.base import (
    KIB, Every, HostView, Policy, host_free_with_cache, register)


def _avg(values) -> float:
    return sum(values) / len(values)


@register("mom")
class MomPolicy(Policy):
    automatic = True
    guest_features = {"stats_vq": True, "auto_balloon": False}

    def __init__(self, scenario, pressure_threshold=0.20, pressure_critical=0.05,
                 min_guest_free_percent=0.20, max_balloon_change_percent=0.05,
                 min_balloon_change_percent=0.0025, balloon_min=None,
                 policy_interval="10s", monitor_interval="5s", history=10):
        super().__init__(scenario)
        fraction = lambda v, k: self.number_param(v, k, 0, 1)          # noqa: E731
        self.pressure_threshold = fraction(pressure_threshold, "pressure_threshold")
        self.pressure_critical = fraction(pressure_critical, "pressure_critical")
        self.min_guest_free = fraction(min_guest_free_percent, "min_guest_free_percent")
        self.max_change = fraction(max_balloon_change_percent, "max_balloon_change_percent")
        self.min_change = fraction(min_balloon_change_percent, "min_balloon_change_percent")
        self.balloon_min = [b // KIB for b in self.per_guest(
            balloon_min, "balloon_min", self.size_param, lambda i: 0)]
        n = self.number_param(history, "history", 1, 10_000, integer=True)
        self.host_free = deque(maxlen=n)                               # KiB samples
        self.guest_hist = [deque(maxlen=n) for _ in scenario.guests]   # (balloon_cur, unused)
        self.monitor = Every(self.duration_param(monitor_interval, "monitor_interval"))
        period = self.duration_param(policy_interval, "policy_interval")
        self.engine = Every(period, first_ns=period)

    def observe(self, view: HostView) -> dict[int, int] | None:
        if self.monitor.due(view.now_ns):
            self.host_free.append(host_free_with_cache(view.host_meminfo) // KIB)
            for g, hist in enumerate(self.guest_hist):
                hist.append((view.actual[g] // KIB, view.stats[g]["free_memory"] // KIB))
        if not self.engine.due(view.now_ns) or not self.host_free:
            return None
        host_free_percent = _avg(self.host_free) / (view.host_meminfo["MemTotal"] // KIB)
        shrink = host_free_percent < self.pressure_threshold
        self.expose(view.now_ns, "host", host_free_percent=host_free_percent,
                    shrinking=int(shrink))
        out = {}
        for g, hist in enumerate(self.guest_hist):
            cur = hist[-1][0]                                          # guest.balloon_cur
            used = _avg([c for c, _ in hist]) - _avg([u for _, u in hist])
            rule = self._shrink if shrink else self._grow
            size = rule(cur, used, self.balloon_min[g], view.ram_size[g] // KIB,
                        host_free_percent)
            if size is not None:
                out[g] = int(size) * KIB
        return out or None

    def _big_enough(self, cur: float, new: float) -> bool:
        """change_big_enough"""
        return abs(new - cur) > self.min_change * cur

    def _shrink(self, cur, used, balloon_min, balloon_max, host_free_percent):
        """shrink_guest: a KiB size, or None for no change."""
        if host_free_percent <= self.pressure_critical:
            guest_free_percent = -0.05 + host_free_percent
        else:
            guest_free_percent = (self.min_guest_free * host_free_percent
                                  / self.pressure_threshold)
        floor = max(balloon_min, used + guest_free_percent * cur)
        size = max(cur * (1 - self.max_change), floor)
        return size if size <= cur and self._big_enough(cur, size) else None

    def _grow(self, cur, used, balloon_min, balloon_max, host_free_percent):
        """grow_guest: a KiB size, or None for no change."""
        if cur >= balloon_max:
            return None
        floor = max(balloon_min, used + self.min_guest_free * cur)
        size = min(max(cur * (1 + self.max_change), floor), balloon_max)
        return size if self._big_enough(cur, size) else None
