"""Where mm calls code that others registered, so that mm imports no driver.

Linux keeps mm ignorant of drivers through registration: a driver puts a ``struct shrinker`` on
the shrinker list (``register_shrinker``) and a notifier block on the OOM notifier chain
(``register_oom_notifier``), and mm calls their function pointers. Here each guest has two small
tables, filled at boot in registration order and ended by -1: ``m.shrinker_kind[g, :]`` (with the
shrinkers' ``nr_deferred`` beside it in ``m.shrinker_deferred``) and ``m.oom_notifier_kind[g, :]``;
a *kind* names the registered callbacks. mm calls the four functions below with the kind.

They are bound, before any kernel is compiled, to the dispatchers of machine/callbacks.py, the
one module that sits above mm and the drivers and knows which code each kind runs. numba resolves
the bound functions when it compiles the caller: the call is direct, as fast as a named call.
"""

def _unbound(*args):
    raise RuntimeError("mm's callbacks are not bound: import autoballoon.machine.callbacks")


# (m, g, kind) -> objects the shrinker could free (count_objects / shrink(nr_to_scan=0))
count_objects = _unbound
# (m, g, kind, nr_to_scan, now) -> objects freed, or SHRINK_STOP (the 6.1 API)
scan_objects = _unbound
# (m, g, kind, nr_to_scan, now) -> objects left, or -1 when it cannot now (the <= 3.11 API)
shrink = _unbound
# (m, g, kind, now) -> pages freed (the OOM notifier chain's `freed` count)
oom_notify = _unbound


def bind(**functions) -> None:
    """Point the hooks at their implementations (machine/callbacks.py does this on import)."""
    for name, fn in functions.items():
        if name not in ("count_objects", "scan_objects", "shrink", "oom_notify"):
            raise KeyError(name)
        globals()[name] = fn


def _register(table, g: int, kind: int, what: str) -> int:
    free = [i for i in range(table.shape[1]) if table[g, i] < 0]
    if not free:
        raise RuntimeError(f"guest {g}: more than {table.shape[1]} {what} registered")
    table[g, free[0]] = kind
    return free[0]


def register_shrinker(m, g: int, kind: int) -> int:
    """register_shrinker(): append a shrinker of ``kind`` to guest g's list; returns its slot."""
    return _register(m.shrinker_kind, g, kind, "shrinkers")


def register_oom_notifier(m, g: int, kind: int) -> int:
    """register_oom_notifier(): append ``kind`` to guest g's OOM notifier chain."""
    return _register(m.oom_notifier_kind, g, kind, "OOM notifiers")

