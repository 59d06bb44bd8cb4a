"""``none``: the host never moves a balloon.

Mirrors QEMU with a virtio-balloon device and nobody issuing ``balloon`` commands: the targets
stay where the scenario started them (``[[guest]] target``, if any; the ``[[schedule]]`` still
applies, as an operator's commands would). In ``autoballoon compare`` it runs with the initial
targets removed, i.e. as "no ballooning at all".
Simplifies: nothing — there is nothing to simplify.
"""
from __future__ import annotations

from autoballoon.control.policies.base import HostView, Policy, register


@register("none")
class NonePolicy(Policy):
    automatic = False

    def observe(self, view: HostView) -> None:
        return None
