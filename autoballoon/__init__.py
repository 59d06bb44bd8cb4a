"""autoballoon: page-level simulation of VM memory ballooning.

A numba model of a Linux guest's memory management (mm/), the virtio_balloon driver (virtio/),
the host and its balloon policies (host/), driven by workload traces (trace/) from a per-tick
control loop (sim/).
"""

__version__ = "0.1.0"
