"""``qemu-auto``: the host half of the 2012 auto-ballooning prototype (Luiz Capitulino's QEMU RFC,
"virtio-balloon: add auto-ballooning support", qemu-devel, Dec 2012; v2 May 2013).

Mirrors ``host_mempressure_cb()`` of the Dec 2012 patch: QEMU listens to the host memory
cgroup's ``memory.pressure_level`` at one level (the cgroup-v1 default mode also wakes a
listener for higher levels) and, on an event, sets the guest's target from the RAM the guest
*actually* has (``guest_get_actual_ram() = ram_size - actual``), less a step:

    target = actual_ram - actual_ram * granularity / 100      # Dec 2012: granularity in %

Because the step is taken from ``actual``, not from the previous target, events that arrive
before the guest has caught up do not add up, and a guest's own auto-deflation (its AUTO_BALLOON
shrinker, which leaves the target alone) is not undone beyond one step by the next event. It never
deflates: the guest's shrinker does. Parameters:
- ``granularity`` (percent of actual RAM, the Dec 2012 patch; its example used 1) or ``inflate``
  (a fixed size per event: "16 or 32 MB on medium pressure", the May 2013 v2 as the KVM wiki
  describes it; the v2 QEMU patch itself was not found, so whether v2 also stepped from
  ``actual`` is an assumption). Default: ``inflate = "16MiB"``.
- ``level`` ("low", "medium" or "critical"; default "medium", as v2) or ``levels`` (a step per
  level, the plan for v2: ``{low = "1MiB", medium = "16MiB", critical = "128MiB"}``).
- ``base``: "actual" (the RFC) or "target" (steps from the previous target; not the RFC, kept
  for comparison).
- ``floor``: the prototype had none (QEMU ignores a target of 0); targets stay >= ``floor``
  (default one page).

Simplifies: notifications are coalesced to one step per control tick, at the highest level seen
(an eventfd is read once per main-loop wake-up).
"""
from __future__ import annotations

from autoballoon.control.policies.base import MIN_TARGET, HostView, Policy, guard, register
from autoballoon.control.view import VMPRESSURE_LEVEL

BASES = ("actual", "target")


@register("qemu-auto")
class QemuAutoPolicy(Policy):
    def __init__(self, scenario, inflate=None, granularity=None, level="medium", levels=None,
                 base="actual", floor=MIN_TARGET):
        super().__init__(scenario)
        guard("host.policy_params", inflate is None or granularity is None,
              "at most one of inflate or granularity", (inflate, granularity))
        guard("host.policy_params.level", level in VMPRESSURE_LEVEL,
              "one of low, medium, critical", level)
        guard("host.policy_params.base", base in BASES, "'actual' or 'target'", base)
        self.base = base
        self.percent = None
        if granularity is not None:
            guard("host.policy_params.granularity",
                  isinstance(granularity, (int, float)) and 0 < granularity < 100,
                  "a percentage in (0, 100)", granularity)
            self.percent = float(granularity)
        step = self.size_param(inflate if inflate is not None else "16MiB", "inflate")
        guard("host.policy_params.inflate", step > 0, "a size > 0", inflate)
        # a listener registered at `level` is woken by that level and the ones above it
        self.steps = {lv: step for name, lv in VMPRESSURE_LEVEL.items()
                      if lv >= VMPRESSURE_LEVEL[level]}
        if levels is not None:
            guard("host.policy_params.levels", isinstance(levels, dict),
                  "a table such as {low=\"1MiB\", medium=\"16MiB\", critical=\"128MiB\"}", levels)
            self.steps = {}
            for key, size in levels.items():
                guard(f"host.policy_params.levels.{key}", key in VMPRESSURE_LEVEL,
                      "one of low, medium, critical", key)
                self.steps[VMPRESSURE_LEVEL[key]] = self.size_param(size, f"levels.{key}")
        self.floor = max(MIN_TARGET, self.size_param(floor, "floor"))
        smallest = min(g.memory for g in scenario.guests)
        guard("host.policy_params.floor", self.floor < smallest,
              f"a size below the smallest guest's memory ({smallest} bytes), or the balloon "
              f"could never inflate", floor)

    def observe(self, view: HostView) -> dict[int, int] | None:
        if not view.host_events:
            return None
        level = max(view.host_events)
        if level not in self.steps:
            return None
        out = {}
        for g in range(len(view.names)):
            ram = view.actual[g] if self.base == "actual" else view.target[g]
            step = int(ram * self.percent / 100) if self.percent else self.steps[level]
            out[g] = max(self.floor, ram - step)
        return out
