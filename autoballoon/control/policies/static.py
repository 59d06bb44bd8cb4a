"""``static``: fixed balloon targets set once, when the host starts the guests.

Mirrors an operator (or libvirt's ``<currentMemory>``) sizing each balloon at boot with QEMU's
``balloon <target>``. Targets are the scenario's ``[[guest]] target`` values, overridden by the
``targets`` parameter: one size for every guest, or ``{guest-or-group = size}``. The equal-inflate
baseline of ``compare`` (autoballoon/results/compare.py) uses ``targets`` with one size per guest. The scenario's
``[[schedule]]`` is applied on top by the control loop, under every policy.
Simplifies: nothing — a static host has no logic; the guest driver does the work.
"""
from __future__ import annotations

from autoballoon.control.policies.base import HostView, Policy, guard, register


@register("static")
class StaticPolicy(Policy):
    automatic = False

    def __init__(self, scenario, targets=None):
        super().__init__(scenario)
        given = self.per_guest(targets, "targets", self.size_param,
                               lambda i: scenario.guests[i].target)
        self.targets = {i: size for i, size in enumerate(given) if size is not None}
        for i, size in self.targets.items():
            g = scenario.guests[i]
            guard(f"host.policy_params.targets ({g.name})", 0 < size <= g.memory,
                  f"a size in (0, memory={g.memory}]", size)
        self._sent = False

    def observe(self, view: HostView) -> dict[int, int] | None:
        if self._sent:
            return None
        self._sent = True            # set once; the driver keeps moving towards them
        return dict(self.targets)
