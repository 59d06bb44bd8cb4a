"""``qemu-auto``: the host half of the 2012 auto-ballooning prototype (Luiz Capitulino's QEMU RFC).

Mirrors: QEMU registers for the host's memory cgroup ``memory.pressure_level`` notifications and,
on a MEDIUM event, inflates every guest's balloon by a user amount (``inflate``, default 16 MiB),
i.e. lowers each QEMU target by that amount (``num_pages += inflate >> 12``). It never deflates:
the guest's AUTO_BALLOON shrinker deflates under guest pressure, without changing the target.
Option ``levels = {low = "1MiB", medium = "16MiB", critical = "128MiB"}`` is the variant the RFC
planned (registering for all three levels).

Simplifies: notifications are coalesced to one step per control tick, at the highest level seen
(an eventfd is read once per main-loop wake-up; with cgroup-v1 "default" mode a MEDIUM listener is
also woken by CRITICAL, so without ``levels`` CRITICAL inflates by ``inflate`` as well). The
prototype had no lower bound; we keep each target >= ``floor`` (default one page, as QEMU refuses a
target <= 0).
"""
from __future__ import annotations

from autoballoon.control.policies.base import MIN_TARGET, HostView, Policy, guard, register
from autoballoon.control.view import VMPRESSURE_CRITICAL, VMPRESSURE_LOW, VMPRESSURE_MEDIUM

_LEVEL_NAMES = {"low": VMPRESSURE_LOW, "medium": VMPRESSURE_MEDIUM,
                "critical": VMPRESSURE_CRITICAL}


@register("qemu-auto")
class QemuAutoPolicy(Policy):
    def __init__(self, scenario, inflate="16MiB", levels=None, floor=MIN_TARGET):
        super().__init__(scenario)
        step = self.size_param(inflate, "inflate")
        guard("host.policy_params.inflate", step > 0, "a size > 0", inflate)
        # step per vmpressure level; the default listener (MEDIUM) also fires on CRITICAL
        self.steps = {VMPRESSURE_MEDIUM: step, VMPRESSURE_CRITICAL: step}
        if levels is not None:
            guard("host.policy_params.levels", isinstance(levels, dict),
                  "a table such as {low=\"1MiB\", medium=\"16MiB\", critical=\"128MiB\"}", levels)
            self.steps = {}
            for key, size in levels.items():
                guard(f"host.policy_params.levels.{key}", key in _LEVEL_NAMES,
                      "one of low, medium, critical", key)
                self.steps[_LEVEL_NAMES[key]] = self.size_param(size, f"levels.{key}")
        self.floor = max(MIN_TARGET, self.size_param(floor, "floor"))
        smallest = min(g.memory for g in scenario.guests)
        guard("host.policy_params.floor", self.floor < smallest,
              f"a size below the smallest guest's memory ({smallest} bytes), or the balloon "
              f"could never inflate", floor)

    def observe(self, view: HostView) -> dict[int, int] | None:
        if not view.host_events:
            return None
        step = self.steps.get(max(view.host_events), 0)
        if step == 0:
            return None
        return {g: max(self.floor, view.target[g] - step) for g in range(len(view.names))}
