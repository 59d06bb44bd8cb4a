"""The host policy protocol: what a balloon policy sees each control tick and what it returns.

A policy is a plain Python object called once per control tick (default 100 ms simulated), like
QEMU's main loop or a MOM/pvestatd daemon. It reads a :class:`HostView` and returns new balloon
targets **in QEMU's meaning** (bytes of guest memory *after* ballooning, as in the QEMU monitor's
``balloon`` command), by guest index, or ``None`` to leave every target alone::

    from autoballoon.control.policies import Policy, register

    @register("halve-on-pressure")
    class HalveOnPressure(Policy):
        '''Every host vmpressure event halves the balloon-free memory of the biggest guest.'''
        def observe(self, view):
            if not view.host_events:
                return None
            g = max(range(len(view.names)), key=lambda i: view.actual[i])
            return {g: view.actual[g] // 2}

Parameters come from ``[host] policy_params`` as keyword arguments of ``__init__`` (after the
scenario); unknown ones are refused before the run starts. A class outside the package is named
in a scenario as ``policy = "package.module:ClassName"``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from autoballoon.control.view import HostView
from autoballoon.errors import SpecError
from autoballoon.scenario.spec import Scenario
from autoballoon.uapi import PAGE_SIZE
from autoballoon.units import parse_duration, parse_size


class Policy:
    """Base class: never changes a target. Subclasses override :meth:`observe`.

    ``guest_features``: the virtio_balloon features the guests of the policy's real deployment
    have on (True) or off (False). A scenario whose guests lack a feature the policy needs
    (True) is refused, naming ``host.policy``; ``compare`` runs the policy on a copy of the
    scenario with every listed feature set as listed (see :func:`fit_guest_features`).

    ``policy_state``: the latest internal figures a policy chose to show (per guest index, or
    ``"host"``), set with :meth:`expose`; :meth:`state_frame` gives their history for plots.
    """

    name = "base"
    guest_features: Mapping[str, bool] = {}
    # False for a baseline (a host that does not react: none, static). compare() gives every
    # automatic policy an equal-inflate static baseline; a user's policy is automatic unless it
    # says otherwise.
    automatic = True

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.policy_state: dict = {}
        self._state_log: list[dict] = []

    def observe(self, view: HostView) -> dict[int, int] | None:
        return None

    # --- what a policy shows of itself ------------------------------------------------------
    def expose(self, now_ns: int, key, **values) -> None:
        """Record internal figures (numbers) of guest ``key`` (an index) or ``"host"``."""
        self.policy_state[key] = values
        self._state_log.append({"t_ns": now_ns, "key": key, **values})

    def state_frame(self):
        """Every :meth:`expose` call as a DataFrame: ``t_ns``, ``time_s``, ``guest`` (a name or
        ``"host"``), then the exposed figures."""
        import pandas as pd
        names = [g.name for g in self.scenario.guests]
        rows = [{"t_ns": r["t_ns"], "time_s": r["t_ns"] / 1e9,
                 "guest": names[r["key"]] if isinstance(r["key"], int) else r["key"],
                 **{k: v for k, v in r.items() if k not in ("t_ns", "key")}}
                for r in self._state_log]
        return pd.DataFrame(rows, columns=None if rows else ["t_ns", "time_s", "guest"])

    # --- helpers for subclasses ------------------------------------------------------------
    @staticmethod
    def size_param(value, key: str) -> int:
        """A size parameter from ``policy_params`` (``"16MiB"`` or bytes)."""
        return parse_size(value, f"host.policy_params.{key}")

    @staticmethod
    def duration_param(value, key: str) -> int:
        """A duration parameter (``"10s"``), in ns, > 0."""
        ns = parse_duration(value, f"host.policy_params.{key}")
        guard(f"host.policy_params.{key}", ns > 0, "a duration > 0", value)
        return ns

    @staticmethod
    def number_param(value, key: str, lo: float, hi: float, integer: bool = False):
        """A number parameter in [lo, hi] (an int if ``integer``)."""
        kinds = (int,) if integer else (int, float)
        ok = isinstance(value, kinds) and not isinstance(value, bool) and lo <= value <= hi
        guard(f"host.policy_params.{key}", ok,
              f"{'an integer' if integer else 'a number'} in [{lo}, {hi}]", value)
        return value

    def per_guest(self, value, key: str, read, default) -> list:
        """A parameter given as one value for every guest or as a table {guest-or-group: value};
        ``read(value, key)`` checks one value; guests not named get ``default(i)``."""
        n = len(self.scenario.guests)
        if value is not None and not isinstance(value, dict):
            return [read(value, key)] * n
        out = [default(i) for i in range(n)]
        for name, v in (value or {}).items():
            idx = self.guest_indices(name)
            guard(f"host.policy_params.{key}.{name}", bool(idx),
                  "the name of a guest or guest group", name)
            for i in idx:
                out[i] = read(v, f"{key}.{name}")
        return out

    def guest_indices(self, name: str) -> list[int]:
        """Indices of the guest called ``name``, or of every replica of the group ``name``."""
        return [i for i, g in enumerate(self.scenario.guests) if name in (g.name, g.group)]


class Every:
    """A daemon's timer: due at ``first_ns``, then every ``period_ns`` (ticks that fall between
    two due times are not due; a late tick is due once and the timer keeps its phase)."""

    def __init__(self, period_ns: int, first_ns: int = 0):
        self.period, self.next = int(period_ns), int(first_ns)

    def due(self, now_ns: int) -> bool:
        if now_ns < self.next:
            return False
        self.next += self.period * (1 + (now_ns - self.next) // self.period)
        return True


POLICIES: dict[str, type[Policy]] = {}


def policy_name(policy) -> str:
    """A policy object's name: its registered name, else its class name."""
    return getattr(policy, "name", None) or type(policy).__name__


def register(name: str):
    """Class decorator: make a policy available by ``name`` in scenarios and on the command line."""
    def deco(cls: type[Policy]) -> type[Policy]:
        cls.name = name
        POLICIES[name] = cls
        return cls
    return deco


MIN_TARGET = PAGE_SIZE  # QEMU's `balloon` command refuses a target <= 0
KIB, MIB = 1 << 10, 1 << 20


def check_params(cls: type, params: dict, where: str = "host.policy_params") -> None:
    """Refuse parameters that ``cls.__init__`` does not take, naming the expected ones."""
    import inspect
    sig = inspect.signature(cls.__init__)
    names = [p for p in list(sig.parameters)[2:]]      # skip self, scenario
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    for key in params:
        if key not in names:
            raise SpecError(f"{where}.{key}: unknown parameter for policy "
                            f"'{getattr(cls, 'name', cls.__name__)}' (expected one of: "
                            f"{', '.join(names) or 'no parameters'})")


def host_free_with_cache(host_meminfo: Mapping[str, int]) -> int:
    """The host's MemFree + Buffers + Cached, bytes: what MOM calls ``mem_free`` and, with no
    host page cache in the model, also its MemAvailable (what Proxmox and VirtualBox read)."""
    return (host_meminfo["MemFree"] + host_meminfo.get("Buffers", 0)
            + host_meminfo.get("Cached", 0))


def check_guest_features(cls: type, scenario: Scenario, where: str = "host.policy") -> None:
    """Refuse a scenario whose guests lack a feature that ``cls`` needs (``guest_features``)."""
    needs = sorted(f for f, on in getattr(cls, "guest_features", {}).items() if on)
    for g in scenario.guests:
        missing = [f for f in needs if f not in g.features]
        if missing:
            raise SpecError(
                f"{where}: policy '{getattr(cls, 'name', cls.__name__)}' needs the guest "
                f"feature(s) {', '.join(missing)}; guest '{g.name}' has "
                f"{', '.join(sorted(g.features)) or 'none'} (add them to its features)")


def fit_guest_features(scenario: Scenario, cls: type) -> tuple[Scenario, str]:
    """``scenario`` with every guest's features set as ``cls.guest_features`` lists them, and a
    note saying what changed ("" if nothing did)."""
    want = getattr(cls, "guest_features", {})
    on = {f for f, v in want.items() if v}
    off = {f for f, v in want.items() if not v}
    guests = tuple(dataclasses.replace(g, features=(g.features | on) - off)
                   for g in scenario.guests)
    changed = sorted({f for g, new in zip(scenario.guests, guests)
                      for f in g.features ^ new.features})
    if not changed:
        return scenario, ""
    note = ", ".join(f"{f} {'on' if want[f] else 'off'}" for f in changed)
    return dataclasses.replace(scenario, guests=guests), f"guest features as deployed: {note}"


def guard(where: str, cond: bool, expected: str, got) -> None:
    if not cond:
        raise SpecError(f"{where}: expected {expected}, got {got!r}")
