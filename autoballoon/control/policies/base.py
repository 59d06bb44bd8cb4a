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

from autoballoon.control.view import HostView
from autoballoon.errors import SpecError
from autoballoon.scenario.spec import Scenario
from autoballoon.uapi import PAGE_SIZE
from autoballoon.units import parse_size


class Policy:
    """Base class: never changes a target. Subclasses override :meth:`observe`."""

    name = "base"
    # False for a baseline (a host that does not react: none, static). compare() gives every
    # automatic policy an equal-inflate static baseline; a user's policy is automatic unless it
    # says otherwise.
    automatic = True

    def __init__(self, scenario: Scenario):
        self.scenario = scenario

    def observe(self, view: HostView) -> dict[int, int] | None:
        return None

    # --- helpers for subclasses ------------------------------------------------------------
    @staticmethod
    def size_param(value, key: str) -> int:
        """A size parameter from ``policy_params`` (``"16MiB"`` or bytes)."""
        return parse_size(value, f"host.policy_params.{key}")

    def guest_indices(self, name: str) -> list[int]:
        """Indices of the guest called ``name``, or of every replica of the group ``name``."""
        return [i for i, g in enumerate(self.scenario.guests) if name in (g.name, g.group)]


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


def guard(where: str, cond: bool, expected: str, got) -> None:
    if not cond:
        raise SpecError(f"{where}: expected {expected}, got {got!r}")
