"""autoballoon: page-level simulation of VM memory ballooning.

The data flow, and the packages in the order they import each other (every import points down):
scenario/ (what to run: settings, TOML) → machine/ (the numba kernels: guest mm, virtio_balloon,
host memory, workloads; ``Machine``) → control/ (the per-tick loop, host policies, the recorder)
→ results/ (``simulate``, Results and their files, comparisons, sweeps on Dask and their
statistics). trace/ reads and writes
workload traces for all of them.

The curated API, importable without compiling any numba kernel::

    from autoballoon import (load_scenario, simulate, compare, sweep, summarize, Results,
                             Policy, register, HostView)
"""

__version__ = "0.1.0"

# name -> module that defines it; imported on first use, so `import autoballoon` stays cheap
_API = {
    "load_scenario": "autoballoon.control.loop",
    "simulate": "autoballoon.results.run",
    "compare": "autoballoon.results.compare",
    "sweep": "autoballoon.results.sweep",
    "summarize": "autoballoon.results.stats",
    "Results": "autoballoon.results.run",
    "Policy": "autoballoon.control.policies",
    "register": "autoballoon.control.policies",
    "HostView": "autoballoon.control.view",
}
__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'autoballoon' has no attribute {name!r}")
