"""Host balloon policies: a small protocol (:mod:`.base`), a registry by name, one file each.

``make_policy(scenario)`` builds the scenario's ``[host] policy`` with its ``policy_params``; a
name of the form ``"package.module:ClassName"`` imports a user's class.
"""
from __future__ import annotations

import importlib

from autoballoon.control.policies import (  # noqa: F401  (registration)
    crosvm, esx, hyperv, mom, none, presets, proxmox, qemu_auto, static, virtualbox,
    xen_selfballoon)
from autoballoon.control.policies.base import (
    MIN_TARGET, POLICIES, HostView, Policy, check_guest_features, check_params,
    fit_guest_features, policy_name, register)
from autoballoon.errors import SpecError
from autoballoon.scenario.spec import Scenario

__all__ = ["HostView", "Policy", "register", "POLICIES", "policy_class", "make_policy",
           "available", "MIN_TARGET", "policy_name", "fit_guest_features"]


def available() -> list[str]:
    return sorted(POLICIES)


def policy_class(name: str, where: str = "host.policy") -> type[Policy]:
    """The class registered as ``name``, or the class ``"package.module:ClassName"``."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except Exception as e:      # a bad name (":", "..x:Y") or a module that fails to import
            raise SpecError(f"{where}: cannot load policy class {name!r} "
                            f"({type(e).__name__}: {e})") from None
        if not (isinstance(cls, type) and callable(getattr(cls, "observe", None))):
            raise SpecError(f"{where}: {name!r} is not a class with an observe(view) method")
        return cls
    try:
        return POLICIES[name]
    except KeyError:
        raise SpecError(f"{where}: expected one of {', '.join(available())} or "
                        f"'package.module:ClassName', got {name!r}") from None


def make_policy(scenario: Scenario, name: str | None = None,
                params: dict | None = None) -> Policy:
    """Build a policy for ``scenario``: by default the scenario's own policy and parameters."""
    if name is None:
        name = scenario.host.policy
        params = scenario.host.policy_params if params is None else params
    params = dict(params or {})
    cls = policy_class(name)
    check_params(cls, params)
    check_guest_features(cls, scenario)
    policy = cls(scenario, **params)
    policy.params = params                   # for the manifest
    if not getattr(policy, "name", None) or policy.name == "base":
        policy.name = name
    return policy


def check_policy(scenario: Scenario) -> None:
    """Build the scenario's policy once, so that a bad name or parameter fails before a run,
    naming ``host.policy`` or ``host.policy_params.KEY``."""
    make_policy(scenario)
