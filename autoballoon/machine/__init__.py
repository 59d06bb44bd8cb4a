"""The simulated machine: numba kernels of the guest (mm/, virtio/), the host's memory (host/)
and the workloads (workload/), over struct-of-arrays state (state.py), with ``Machine`` (boot
and read-back in Python) on top. Importing this package compiles nothing."""
from autoballoon.machine.machine import Machine  # noqa: E402

__all__ = ["Machine"]
