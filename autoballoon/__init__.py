"""autoballoon: page-level simulation of VM memory ballooning.

A numba model of a Linux guest's memory management (mm/), the virtio_balloon driver (virtio/),
the host and its balloon policies (host/), driven by workload traces (trace/) from a per-tick
control loop (sim/).

The curated API, importable without compiling any numba kernel::

    from autoballoon import load_scenario, simulate, compare, Results, Policy, register, HostView
"""

__version__ = "0.1.0"

# name -> module that defines it; imported on first use, so `import autoballoon` stays cheap
_API = {
    "load_scenario": "autoballoon.sim.scenario",
    "simulate": "autoballoon.sim.loop",
    "compare": "autoballoon.sim.compare",
    "Results": "autoballoon.sim.results",
    "Policy": "autoballoon.host.policies",
    "register": "autoballoon.host.policies",
    "HostView": "autoballoon.host.policies",
}
__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'autoballoon' has no attribute {name!r}")
