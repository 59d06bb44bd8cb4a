"""Host balloon policies of the validation harness, written against autoballoon's Policy API.

The same class runs in the simulator (``policy = "validation.policies:FreeMemoryPolicy"`` in a
scenario TOML; the repository root must be importable, as it is for ``python -m validation...``)
and against a real QEMU guest (validation/run.py builds it with
``autoballoon.host.policies.make_policy`` and feeds it HostViews filled from QMP by
validation/adapter.py).
"""
from __future__ import annotations

from autoballoon import Policy
from autoballoon.units import parse_duration


class FreeMemoryPolicy(Policy):
    """A simple host daemon: inflate while the guest has free memory to spare, deflate when it
    swaps or runs short.

    Every ``period`` it reads the guest's virtio balloon stats (only what a 6.1 guest sends:
    ``free_memory``, ``swap_in``, ``swap_out``, all in bytes) and, per guest:

    - if the guest swapped (``swap_in + swap_out`` grew since the last stats it acted on) or
      ``free_memory < low``: raise the target by ``deflate`` (give memory back), up to RAM size;
    - else if ``free_memory > high``: lower the target by ``inflate``, not below ``min_target``;
    - else leave it.

    It acts only on stats it has not seen before (the stats are as fresh as QEMU's poll), so
    ``period`` should be at least ``[host] stats_poll``. Targets are QEMU's meaning (guest memory
    after ballooning), stepped from the current target.
    """

    def __init__(self, scenario, high="96MiB", low="32MiB", inflate="16MiB", deflate="32MiB",
                 min_target="96MiB", period="1s"):
        super().__init__(scenario)
        self.high = self.size_param(high, "high")
        self.low = self.size_param(low, "low")
        self.inflate = self.size_param(inflate, "inflate")
        self.deflate = self.size_param(deflate, "deflate")
        self.min_target = self.size_param(min_target, "min_target")
        self.period_ns = parse_duration(period, "host.policy_params.period")
        self.next_ns = 0
        self.last: dict[int, tuple] = {}        # guest -> the stats it last acted on

    def observe(self, view):
        if view.now_ns < self.next_ns:
            return None
        self.next_ns = view.now_ns + self.period_ns
        out = {}
        for g in range(len(view.names)):
            st = view.stats[g]
            if "free_memory" not in st:
                continue                        # no stats yet
            key = tuple(sorted(st.items()))
            prev = self.last.get(g)
            if prev == key:
                continue                        # nothing new since the last decision
            self.last[g] = key
            swapped = st.get("swap_in", 0) + st.get("swap_out", 0)
            prev_swapped = (dict(prev).get("swap_in", 0) + dict(prev).get("swap_out", 0)
                            if prev else swapped)
            cur = view.target[g]
            if swapped > prev_swapped or st["free_memory"] < self.low:
                new = min(view.ram_size[g], cur + self.deflate)
            elif st["free_memory"] > self.high:
                new = max(self.min_target, cur - self.inflate)
            else:
                continue
            if new != cur:
                out[g] = new
        return out or None
