"""Configurations users run without a balloon daemon: a fixed balloon and a guest mechanism.

Each is ``static`` (fixed targets: the scenario's ``[[guest]] target`` or the ``targets``
parameter) on guests with the virtio_balloon features the configuration turns on; a scenario
whose guests lack them is refused (``host.policy``), and ``compare`` turns them on (and the 2012
RFC's ``auto_balloon``, which no shipped guest has, off):

- ``libvirt-autodeflate``: libvirt ``<memballoon model='virtio' autodeflate='on'/>`` →
  QEMU ``deflate-on-oom=on``: the guest's OOM notifier ``virtio_balloon_oom_notify``
  (drivers/virtio/virtio_balloon.c) gives back 256 pages per OOM instead of killing;
- ``firecracker``: Firecracker's balloon device (docs/ballooning.md) as usually configured:
  ``deflate_on_oom`` and statistics; its ``amount_mib`` is a balloon size, so ``amount`` (one
  size or per guest) may be given instead of ``targets`` (target = memory - amount);
- ``free-page-reporting``: QEMU ``free-page-reporting=on`` (Proxmox's default since machine
  version 6.2): the guest reports free 2 MiB blocks (mm/page_reporting.c) and QEMU discards their
  backing (``virtio_balloon_handle_report``); no balloon unless targets are given.

Mirrors: the configuration only — the guest side (OOM notifier, page reporting) is in the
machine's virtio_balloon driver. Simplifies: nothing beyond ``static``; a real Firecracker
guest's driver inflates at its own pace ("no control over the speed"), as the model's does.
"""
from __future__ import annotations

from autoballoon.control.policies.base import guard, register
from autoballoon.control.policies.static import StaticPolicy


@register("libvirt-autodeflate")
class LibvirtAutodeflatePolicy(StaticPolicy):
    automatic = False
    guest_features = {"deflate_on_oom": True, "auto_balloon": False}


@register("firecracker")
class FirecrackerPolicy(StaticPolicy):
    automatic = False
    guest_features = {"deflate_on_oom": True, "stats_vq": True, "auto_balloon": False}

    def __init__(self, scenario, targets=None, amount=None):
        self.scenario = scenario                    # per_guest reads it
        if amount is not None:
            guard("host.policy_params.amount", targets is None,
                  "either targets or amount, not both", amount)
            sizes = self.per_guest(amount, "amount", self.size_param, lambda i: None)
            targets = {}
            for g, size in zip(scenario.guests, sizes):
                if size is not None:
                    guard(f"host.policy_params.amount ({g.name})", size < g.memory,
                          f"a balloon smaller than memory={g.memory}", size)
                    targets[g.name] = g.memory - size
        super().__init__(scenario, targets)


@register("free-page-reporting")
class FreePageReportingPolicy(StaticPolicy):
    automatic = False
    guest_features = {"free_page_reporting": True, "auto_balloon": False}
