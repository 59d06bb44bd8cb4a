"""Paper artefacts beside their provenance: ``export_figure`` writes ``ROOT/figures/NAME.pdf``
and ``NAME.png``, ``export_table`` writes ``ROOT/tables/NAME.csv``; each also writes
``NAME.manifests.json``, the manifests of the runs it was made from (scenario, seed, policy,
package version, git revision), so that every figure in a paper can be traced to its runs.
Every file is written atomically.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from autoballoon.results.run import Results, _atomic

FIGURE_FORMATS = ("pdf", "png")


def _manifests(path: Path, name: str, results: dict[str, Results | dict]) -> None:
    """``results``: Results, or the manifests themselves (a sweep's ``_manifests/*.json``)."""
    runs = {p: getattr(r, "manifest", r) for p, r in results.items()}
    text = json.dumps({"artefact": name, "runs": runs}, indent=2, sort_keys=True,
                      default=str) + "\n"
    _atomic(path, lambda p: p.write_text(text))


def export_figure(fig, name: str, results: dict[str, Results], root="results",
                  formats=FIGURE_FORMATS) -> list[Path]:
    """Save ``fig`` as ``ROOT/figures/NAME.<format>`` for each format, plus its manifests."""
    d = Path(root) / "figures"
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = d / f"{name}.{fmt}"
        _atomic(path, lambda p, fmt=fmt: fig.savefig(p, format=fmt))
        paths.append(path)
    _manifests(d / f"{name}.manifests.json", name, results)
    return paths


def export_table(table: pd.DataFrame, name: str, results: dict[str, Results],
                 root="results") -> Path:
    """Save ``table`` as ``ROOT/tables/NAME.csv`` (index included), plus its manifests."""
    d = Path(root) / "tables"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.csv"
    _atomic(path, lambda p: table.to_csv(p))
    _manifests(d / f"{name}.manifests.json", name, results)
    return path
