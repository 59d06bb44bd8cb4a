"""The notebooks, executed as papermill executes them (SMOKE mode): every figure cell shows an
image (not just ``<Figure ...>`` text), the parameters papermill reads are plain assignments,
no prose cell types a number; and the explorer, driven from Python as a user drives its widgets.
"""
import base64
import re
from pathlib import Path

import nbformat
import papermill
import pytest
from nbclient.exceptions import CellTimeoutError

from autoballoon.scenario.spec import PAGE_SIZE

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
PNG = b"\x89PNG\r\n\x1a\n"
MIB = 2**20
# a number with a unit in prose: results must come from code, not be typed by hand
TYPED_RESULT = re.compile(r"\d+(\.\d+)?\s*(MiB|GiB|KiB|%|pages|ms|s\b|x\b)")


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"auto-vs-static.ipynb", "explorer.ipynb",
                                           "policy-zoo.ipynb", "rfc-fixme-spin.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_plain_assignments_papermill_reads(path):
    params = papermill.inspect_notebook(str(path))
    assert "SMOKE" in params and params["SMOKE"]["default"] == "False"
    assert "EXPORT" in params and params["EXPORT"]["default"] == "None"
    cell = next(c for c in nbformat.read(path, 4).cells if "parameters" in c.metadata.get("tags",
                                                                                          []))
    for line in cell.source.splitlines():
        assert line.startswith("#") or not line.strip() or "#" not in line, line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_types_no_results(path):
    for cell in nbformat.read(path, 4).cells:
        if cell.cell_type == "markdown":
            assert not TYPED_RESULT.search(cell.source), TYPED_RESULT.search(cell.source)[0]


# The explorer's SMOKE cells take seconds. About one papermill run in four of it, on this
# machine, never returns from its widget cell although the kernel reports it idle (nbclient waits
# on; not understood, not reproduced with widgets alone). It gets a short cell timeout and one
# more try; a second hang fails the test.
RETRY_ON_HANG = {"explorer": 120}


def _execute(path, out):
    papermill.execute_notebook(str(path), str(out / path.name), parameters={"SMOKE": True},
                               cwd=str(path.parent), kernel_name="python3",
                               progress_bar=False, start_timeout=180,
                               execution_timeout=RETRY_ON_HANG.get(path.stem, 900))  # never hang


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    out = tmp_path_factory.mktemp("notebooks")
    done = {}
    for path in NOTEBOOKS:
        try:
            _execute(path, out)
        except CellTimeoutError:
            if path.stem not in RETRY_ON_HANG:
                raise
            _execute(path, out)
        done[path.stem] = nbformat.read(out / path.name, 4)
    return done


def _images(cell) -> list[bytes]:
    return [base64.b64decode(o["data"]["image/png"]) for o in cell.get("outputs", [])
            if "image/png" in o.get("data", {})]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_cell_shows_images(executed, path):
    nb = executed[path.stem]
    figure_cells = [c for c in nb.cells if "figure" in c.metadata.get("tags", [])]
    assert figure_cells
    for cell in figure_cells:
        images = _images(cell)
        assert images and all(i.startswith(PNG) for i in images), cell.source[:80]
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            # a figure that reached the notebook only as its repr: the bug this test exists for
            assert not ("Figure" in data.get("text/plain", "") and "image/png" not in data), \
                cell.source[:80]
            assert o["output_type"] != "error"


def test_auto_vs_static_shows_three_figures_per_scenario_and_the_numbers(executed):
    nb = executed["auto-vs-static"]
    cell = next(c for c in nb.cells if "figure" in c.metadata.get("tags", []))
    assert len(_images(cell)) == 3 * 4              # 3 figures x the 4 default scenarios
    markdown = [o["data"]["text/markdown"] for o in cell.outputs
                if "text/markdown" in o.get("data", {})]
    findings = [m for m in markdown if "**What this run shows:**" in m]
    assert len(findings) == 4
    # the prose states this run's numbers: the tables' host swap figures appear in it
    tables = [o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]
    assert len(tables) == 4 and all("host_pswpin" in t for t in tables)
    assert all("Host swap traffic" in f and "Work done" in f for f in findings)


def _markdown(nb) -> list[str]:
    return [o["data"]["text/markdown"] for c in nb.cells for o in c.get("outputs", [])
            if "text/markdown" in o.get("data", {})]


def test_policy_zoo_draws_both_pareto_figures_and_states_its_verdicts(executed):
    nb = executed["policy-zoo"]
    cell = next(c for c in nb.cells if "figure" in c.metadata.get("tags", []))
    assert len(_images(cell)) == 2                  # work lost, host swap-ins
    text = "\n".join(_markdown(nb))
    assert "**`staggered`**: the balloons reclaimed most under" in text
    assert "equal-inflate static in" in text and "(non-overlapping intervals over 2 seeds)" in text


def test_rfc_spin_shows_the_rates_and_explains_them_with_this_runs_numbers(executed):
    nb = executed["rfc-fixme-spin"]
    cell = next(c for c in nb.cells if "figure" in c.metadata.get("tags", []))
    assert len(_images(cell)) == 1
    text = "\n".join(_markdown(nb))
    assert "**The spin is the balloon fighting the guest.**" in text
    assert re.search(r"the shrinker returned -1 in\s+\d+% of the calls", text)


# --- the explorer, driven from Python -------------------------------------------------------

@pytest.fixture(scope="module")
def explorer():
    from autoballoon.explorer import Explorer
    return Explorer("staggered", duration_s=1.0)


def test_explorer_runs_on_start_with_the_scenario_as_written(explorer):
    s = explorer.scenario
    assert explorer.results is not None and explorer.figure is not None
    assert s.host.memory == 640 * MIB and s.run.duration_ns == 10**9
    assert explorer.results.policy == "qemu-auto"
    assert [g.memory for g in s.guests] == [256 * MIB] * 4


def test_explorer_reruns_when_a_control_changes(explorer):
    first = explorer.results
    explorer.host_mib.value = 512
    assert explorer.results is not first
    assert explorer.scenario.host.memory == 512 * MIB
    # overcommit 1.6 of 512 MiB, shared by four equal guests
    assert [g.memory for g in explorer.scenario.guests] == [205 * MIB] * 4
    explorer.overcommit.value = 2.0
    assert [g.memory for g in explorer.scenario.guests] == [256 * MIB] * 4
    assert "1024 MiB of guest RAM on 512 MiB" in explorer.status.value


def test_explorer_policy_and_its_parameter(explorer):
    explorer.policy.value = "static"
    assert explorer.param.description == "balloon (%)"
    assert explorer.results.policy == "static"
    explorer.param.value = 25
    targets = explorer.results.manifest["policy"]["params"]["targets"]
    assert set(targets.values()) == {256 * MIB * 3 // 4 // PAGE_SIZE * PAGE_SIZE}
    assert all("auto_balloon" not in g.features for g in explorer.scenario.guests)
    explorer.policy.value = "qemu-auto"
    explorer.param.value = 32
    assert explorer.results.manifest["policy"]["params"] == {"inflate": "32MiB"}
    ts = explorer.results.timeseries
    assert explorer.figure.axes and ts["time_s"].max() == pytest.approx(1.0)


def test_explorer_new_scenario_starts_from_its_own_sizes(explorer):
    explorer.workload.value = "traces-mix"
    s = explorer.scenario
    assert explorer.host_mib.value == 512 and s.host.memory == 512 * MIB
    assert [g.name for g in s.guests] == ["build", "sort", "db", "xz", "disk"]
    assert sum(g.memory for g in s.guests) == 832 * MIB


def test_rfc_v2_puts_the_rfcs_table_beside_ours(executed):
    nb = executed["rfc-v2"]
    tables = [o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", [])
              if "text/html" in o.get("data", {})]
    assert len(tables) == 2                         # at the RFC's host and the matched one
    for t in tables:
        assert "RFC: no auto-balloon" in t and "ours: qemu-auto" in t and "1.54 M" in t
    figure = next(c for c in nb.cells if "figure" in c.metadata.get("tags", []))
    assert len(_images(figure)) == 2                # host swap over time, per host
    prose = [o["data"]["text/markdown"] for c in nb.cells for o in c.get("outputs", [])
             if "text/markdown" in o.get("data", {})]
    assert any("Why ours differ" in p and "RFC: 1,540,000" in p for p in prose)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_ends_with_its_references(path):
    last = nbformat.read(path, 4).cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## References")
