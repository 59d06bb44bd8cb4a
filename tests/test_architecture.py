"""The structure the code promises, checked: imports point down the layers, the numba cache key
covers every file a kernel can depend on, the kernel tables agree with the settings, and the
fake machine offers what the real one does."""
from __future__ import annotations

import ast
import dataclasses
import inspect
import pathlib

import pytest

import autoballoon
from autoballoon.machine import jit

PKG = pathlib.Path(autoballoon.__file__).parent

# Bottom to top: a module may import from its own layer and the ones before it.
LAYERS = [
    {"errors", "enums", "uapi", "units"},
    {"trace"},
    {"scenario"},
    {"machine"},
    {"control"},
    {"results"},
    {"plots", "explorer", "cli", "bench", "perfmap"},
]


def layer_of(module: str) -> int:
    if module == "autoballoon":
        return 0                  # the package itself: __version__ (its API is lazy)
    top = module.split(".")[1]
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"{module}: in no layer of tests/test_architecture.py")


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: pathlib.Path, module_level_only: bool = False) -> set[str]:
    """The autoballoon modules a file imports (``from autoballoon.x import y`` counts x.y if it
    is a module, else x)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "autoballoon":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if _is_module(sub) else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "autoballoon")
    return out


def _is_module(dotted: str) -> bool:
    p = PKG.parent.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _file(dotted: str) -> pathlib.Path:
    p = PKG.parent.joinpath(*dotted.split("."))
    return p.with_suffix(".py") if p.with_suffix(".py").is_file() else p / "__init__.py"


SOURCES = sorted(PKG.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PKG)))
def test_every_import_points_down(path):
    me = module_name(path)
    if me == "autoballoon":
        return                                  # the curated API re-exports lazily
    for other in imports(path):
        assert layer_of(other) <= layer_of(me), f"{me} imports {other}, a layer above it"


def test_mm_imports_no_driver():
    for path in (PKG / "machine" / "mm").glob("*.py"):
        bad = {m for m in imports(path) if m.startswith(("autoballoon.machine.virtio",
                                                         "autoballoon.machine.callbacks"))}
        assert not bad, f"{path.name} imports {bad}: mm reaches drivers only through mm/hooks.py"


def _kernel_modules():
    return [p for p in (PKG / "machine").rglob("*.py") if "@kernel" in p.read_text()]


def test_numba_cache_key_covers_everything_a_kernel_depends_on():
    """A kernel's compiled code bakes in the functions and constants it reaches; jit.py names the
    cache directory after a hash of KERNEL_SOURCES, so each of those files must be in it, or
    an edit to it would leave stale compiled code in use."""
    covered = set()
    for name in jit.KERNEL_SOURCES:
        p = PKG / name
        covered.update(p.rglob("*.py") if p.is_dir() else [p])
    seen, todo = set(), [module_name(p) for p in _kernel_modules()]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        f = _file(mod)
        assert f in covered, f"{mod} is reached from a kernel but not in jit.KERNEL_SOURCES"
        todo.extend(imports(f, module_level_only=True))
    assert len(seen) > 20


def test_kernel_tables_agree_with_the_settings():
    from autoballoon.machine import layout
    from autoballoon.scenario import settings
    from autoballoon.scenario.spec import GuestSpec, HostSpec
    for spec, table in ((GuestSpec, layout.PARAM), (HostSpec, layout.HOST)):
        for column in settings.kernel_params(spec):
            assert column in table, column
    for table in (layout.PARAM, layout.STATE, layout.VMSTAT, layout.HOST):
        assert sorted(table.values()) == list(range(len(table)))       # dense, no duplicates


def test_boot_writes_every_parameter_column():
    """A P column nobody writes would read 0 in the kernels: every column of a booted guest
    whose value cannot be 0 here must be set."""
    from autoballoon.machine import Machine, layout
    from machines import guest, scenario
    m = Machine(scenario(guest(swap=8 * 2**20)))
    zero = {name for name, i in layout.PARAM.items() if m.m.P[0, i] == 0}
    # may be 0 for this guest: the first guest sits at offset 0; kernel 6.1; no AUTO_BALLOON
    assert zero <= {"frame_base", "vpage_base", "swap_base", "block_base", "kernel_old",
                    "autoballoon_rfc"}, zero
    zero_h = {name for name, i in layout.HOST.items() if m.m.H[i] == 0}
    assert not zero_h & set(layout.H_BOOT) - {"swap_total"}, zero_h


def test_fake_machine_offers_the_machine_api():
    from autoballoon.control.loop import MachineAPI
    from autoballoon.machine import Machine
    from fakes import FakeMachine
    methods = [n for n, v in vars(MachineAPI).items() if callable(v) and not n.startswith("_")]
    for cls in (Machine, FakeMachine):
        for name in methods:
            want = list(inspect.signature(getattr(MachineAPI, name)).parameters)
            have = list(inspect.signature(getattr(cls, name)).parameters)
            assert have[:len(want)] == want, (cls.__name__, name, have)


def test_every_setting_has_a_doc_or_obvious_meaning():
    from autoballoon.scenario import settings
    from autoballoon.scenario.spec import GuestSpec, HostSpec, SwapSpec
    for spec in (GuestSpec, HostSpec, SwapSpec):
        for name, s in settings.settings(spec):
            assert s.doc or name in ("name", "memory", "policy"), f"{spec.__name__}.{name}"
            f = next(f for f in dataclasses.fields(spec) if f.name == name)
            if s.valid is not None:
                assert s.expected, f"{spec.__name__}.{name}: a check without a message"
            assert f.name
