"""The registered callbacks of mm's hooks, by kind: which code a shrinker or an OOM notifier runs.

Sits above mm and the drivers (the one module that imports both), as the function pointers in
Linux's ``struct shrinker`` and ``struct notifier_block`` do, and binds mm/hooks.py on import.
``probe`` registers, at boot, what each driver's probe function registers in Linux.
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import P_FEATURES
from autoballoon.machine.mm import hooks, slab
from autoballoon.machine.virtio import balloon
from autoballoon.uapi import VIRTIO_BALLOON_F_AUTO_BALLOON, VIRTIO_BALLOON_F_DEFLATE_ON_OOM

# shrinker kinds
SHRINKER_SLAB_CACHE = 0           # mm/slab.py: the guest's reclaimable slab cache
SHRINKER_VIRTIO_BALLOON = 1       # the 2012 RFC's AUTO_BALLOON shrinker
# OOM notifier kinds
OOM_NOTIFIER_VIRTIO_BALLOON = 0   # virtio_balloon_oom_notify (DEFLATE_ON_OOM)


@kernel
def count_objects(m, g, kind):
    if kind == SHRINKER_SLAB_CACHE:
        return slab.slab_count(m, g)
    return balloon.balloon_shrinker_count(m, g)


@kernel
def scan_objects(m, g, kind, nr_to_scan, now):
    if kind == SHRINKER_SLAB_CACHE:
        return slab.slab_scan(m, g, nr_to_scan, now)
    return balloon.balloon_shrinker_scan(m, g, nr_to_scan, now)


@kernel
def shrink(m, g, kind, nr_to_scan, now):
    if kind == SHRINKER_SLAB_CACHE:
        return slab.slab_shrink_old(m, g, nr_to_scan, now)
    return balloon.balloon_shrink_old(m, g, nr_to_scan, now)


@kernel
def oom_notify(m, g, kind, now):
    return balloon.virtballoon_oom_notify(m, g, now)


hooks.bind(count_objects=count_objects, scan_objects=scan_objects, shrink=shrink,
           oom_notify=oom_notify)


def probe(m, g: int) -> None:
    """Register guest g's shrinkers and OOM notifiers, in boot order: the slab cache (mm's own),
    then what virtballoon_probe() registers for the negotiated features."""
    features = int(m.P[g, P_FEATURES])
    hooks.register_shrinker(m, g, SHRINKER_SLAB_CACHE)
    if features >> VIRTIO_BALLOON_F_AUTO_BALLOON & 1:
        hooks.register_shrinker(m, g, SHRINKER_VIRTIO_BALLOON)
    if features >> VIRTIO_BALLOON_F_DEFLATE_ON_OOM & 1:
        hooks.register_oom_notifier(m, g, OOM_NOTIFIER_VIRTIO_BALLOON)
