"""The scenarios shipped with the package (``autoballoon/scenario/library/*.toml``), by name.

``autoballoon scenarios`` lists them; notebooks and scripts load one by name:
``load_scenario(bundled_path("staggered"))``. Each file's top-level ``description`` says in
one line what its guests do; its comments say why the scenario exists.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from autoballoon.errors import SpecError


@dataclass(frozen=True)
class Bundled:
    name: str               # the file name without .toml
    description: str        # the file's `description`
    path: Path


def library_dir() -> Path:
    return Path(str(resources.files("autoballoon.scenario") / "library"))


def bundled_scenarios() -> list[Bundled]:
    """Every bundled scenario, ``default`` first, the others by name."""
    paths = sorted(library_dir().glob("*.toml"), key=lambda p: (p.stem != "default", p.stem))
    return [Bundled(p.stem, tomllib.loads(p.read_text()).get("description", ""), p)
            for p in paths]


# Full-scale reproductions: minutes to hours of simulation, for benchmarks (`autoballoon bench
# --scale`) and their own notebooks; the quick tools (the explorer) leave them out.
FULL_SCALE = frozenset({"rfc-v2"})


def quick_scenarios() -> list[Bundled]:
    """The bundled scenarios that run in seconds: all but the full-scale ones."""
    return [b for b in bundled_scenarios() if b.name not in FULL_SCALE]


def bundled_path(name: str) -> Path:
    """The bundled scenario called ``name`` (a file name without ``.toml``)."""
    path = library_dir() / f"{name}.toml"
    if not path.is_file():
        names = ", ".join(b.name for b in bundled_scenarios())
        raise SpecError(f"no bundled scenario named {name!r} (bundled: {names})")
    return path


def scenario_path(name_or_path) -> Path:
    """A path to a scenario file: ``name_or_path`` itself if it names a file (or ends in
    ``.toml``), else the bundled scenario of that name."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():
        return path
    return bundled_path(str(name_or_path))


def header_comment(path) -> str:
    """The comment block at the top of a scenario file (what its guests do and why), as text."""
    lines = []
    for line in Path(path).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return "\n".join(lines).strip()
