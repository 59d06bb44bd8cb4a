"""Paper figures (autoballoon/plots.py), stall time by cause, the comparison table in words,
exports, and the bundled scenario library — on the fake machine (no numba), except the library
parse check."""
import base64
import dataclasses
import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from fakes import FakeMachine
from IPython.core.formatters import DisplayFormatter

from autoballoon.cli import main
from autoballoon.plots import (
    POLICY_STYLES,
    PaperFigure,
    host_capacity_mib,
    plot_balloons,
    plot_comparison,
    plot_run,
    plot_stalls,
)
from autoballoon.results.compare import compare
from autoballoon.results.export import export_figure, export_table
from autoballoon.results.findings import describe
from autoballoon.results.stalls import OTHER, UNSPLIT, stall_by_cause, stall_table
from autoballoon.scenario.bundled import (
    FULL_SCALE,
    bundled_path,
    bundled_scenarios,
    header_comment,
    quick_scenarios,
    scenario_path,
)
from autoballoon.scenario.parse import load_scenario, parse_scenario
from autoballoon.scenario.scale import shorten
from autoballoon.scenario.spec import SpecError

MIB = 2**20
PNG = b"\x89PNG\r\n\x1a\n"

TEXT = textwrap.dedent("""\
    [run]
    duration = "2s"
    tick = "100ms"
    seed = 3
    [host]
    memory = "400MiB"
    policy = "qemu-auto"
    policy_params = { inflate = "8MiB" }
    [[guest]]
    name = "vm"
    count = 3
    memory = "256MiB"
    features = ["stats_vq", "auto_balloon"]
    workload = { kind = "phases", phases = [ { length = "200MiB", duration = "2s" } ] }
    [[guest]]
    name = "solo"
    memory = "128MiB"
    workload = { kind = "phases", phases = [ { length = "64MiB", duration = "2s" } ] }
    """)


class SplitStallMachine(FakeMachine):
    """The fake machine with stall time split by cause, as the model's counters will be:
    ``stall_<cause>_ns`` beside the total ``stall_ns`` (the fake's split: 3/4 and the rest)."""

    def vmstat(self, g):
        v = super().vmstat(g)
        swap = v["stall_ns"] * 3 // 4
        return {**v, "stall_guest_swapin_ns": swap, "stall_host_swapin_ns": v["stall_ns"] - swap}


@pytest.fixture(scope="module")
def runs():
    return compare(parse_scenario(TEXT), progress=False, machine_factory=FakeMachine)


@pytest.fixture(scope="module")
def split_runs():
    return compare(parse_scenario(TEXT), progress=False, machine_factory=SplitStallMachine)


def figures(results):
    return [plot_comparison(results, title="t"), plot_balloons(results), plot_stalls(results),
            plot_run(next(iter(results.values())))]


def test_every_figure_displays_as_a_png_through_ipython(runs):
    """What a Jupyter kernel sends for a figure: IPython's formatter must find image/png."""
    for fig in figures(runs[1]):
        assert isinstance(fig, PaperFigure)
        data, meta = DisplayFormatter().format(fig)
        assert base64.b64decode(data["image/png"]).startswith(PNG)
        w, _ = fig.get_size_inches()
        assert meta["image/png"]["width"] == round(w * fig.display_dpi)


def test_every_figure_saves_as_pdf_svg_png_with_truetype_fonts(runs, tmp_path):
    fig = plot_comparison(runs[1])
    for fmt, magic in (("pdf", b"%PDF"), ("svg", b"<?xml"), ("png", PNG)):
        fig.savefig(tmp_path / f"f.{fmt}")
        assert (tmp_path / f"f.{fmt}").read_bytes().startswith(magic)
    pdf = (tmp_path / "f.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf       # venues refuse Type 3 fonts


def test_policies_differ_in_colour_line_style_and_marker(runs):
    fig = plot_comparison(runs[1])
    ax = fig.axes[0]
    looks = [(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in ax.get_lines()]
    assert len(looks) == 3 and looks[2][0] == POLICY_STYLES["qemu-auto"]["color"]
    for i in range(3):
        for j in range(i):
            assert all(a != b for a, b in zip(looks[i], looks[j])), (looks[i], looks[j])


def test_no_offset_or_scientific_tick_labels(runs):
    for fig in figures(runs[1]):
        fig.canvas.draw()
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                assert axis.get_major_formatter().get_offset() == ""


def test_host_ram_is_drawn_on_the_host_memory_panel(runs):
    fig = plot_comparison(runs[1])
    ax = next(a for a in fig.axes if a.get_title("left").startswith("host memory used"))
    cap = host_capacity_mib(runs[1]["none"])
    assert cap == 400
    assert any(np.allclose(ln.get_ydata(), cap) for ln in ax.get_lines())
    assert ax.get_ylim()[1] > cap


def test_all_zero_panels_are_dropped_and_named(runs):
    swap = "guest swap-ins + swap-outs (MiB, cumulative)"
    reversals = "balloon reversals, inflate \u21c4 deflate (cumulative)"
    titles = [a.get_title("left") for a in plot_comparison(runs[1]).axes]
    assert swap in titles and reversals not in titles        # the fake never reverses
    # the same runs without guest swapping: that panel goes too, and the note names both
    def no_guest_swap(ts):
        host = ts["guest"] == "host"
        return ts.assign(pswpin=ts["pswpin"].where(host, 0), pswpout=ts["pswpout"].where(host, 0))
    quiet = {p: dataclasses.replace(r, timeseries=no_guest_swap(r.timeseries))
             for p, r in runs[1].items()}
    fig = plot_comparison(quiet)
    titles = [a.get_title("left") for a in fig.axes]
    assert swap not in titles and "balloons, all guests (MiB)" in titles
    note = fig.get_supxlabel()
    assert note.replace("\n", " ") == f"Not drawn, zero under every policy: {swap}; {reversals}."
    assert max(len(line) for line in note.splitlines()) <= 7 * 17     # wrapped to the figure


def test_replicas_are_one_mean_line_with_a_range_band(runs):
    results = runs[1]
    fig = plot_balloons(results)
    columns = len(results)
    ax = fig.axes[0]            # memory after ballooning, policy none
    # two groups (vm x3, solo x1): per group one actual + one target line, not one per guest
    assert len(ax.get_lines()) == 2 * 2
    assert len(ax.collections) == 1                     # a band for the 3 replicas only
    assert len(fig.axes) % columns == 0
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "vm (3 guests: mean, band = range)" in legend and "solo" in legend


def test_stall_by_cause_reads_whichever_split_the_counters_have(runs, split_runs):
    g = runs[1]["qemu-auto"].guest_summary()
    assert stall_by_cause(g) == {UNSPLIT: pytest.approx(g["stall_seconds"].sum())}
    g = split_runs[1]["qemu-auto"].guest_summary()
    causes = stall_by_cause(g)
    assert set(causes) == {"guest_swapin", "host_swapin"}
    assert sum(causes.values()) == pytest.approx(g["stall_seconds"].sum())
    assert causes["guest_swapin"] > 0
    # causes that do not add up to the total: the rest is 'other'
    part = g.assign(stall_host_swapin_ns=0)
    assert stall_by_cause(part)[OTHER] == pytest.approx(causes["host_swapin"])


def test_comparison_table_and_stall_figure_report_causes(split_runs):
    table, results = split_runs
    assert {"stall_guest_swapin_s", "stall_host_swapin_s"} <= set(table.columns)
    row = table.loc["qemu-auto"]
    assert row.stall_guest_swapin_s + row.stall_host_swapin_s == pytest.approx(row.stall_s,
                                                                               abs=2e-3)
    st = stall_table(results)
    assert (st["guest_time_s"] == 4 * 2.0).all()
    total = st.drop(columns="guest_time_s").sum(axis=1)
    assert np.allclose(total, st["guest_time_s"])
    labels = [t.get_text() for t in plot_stalls(results).axes[0].get_legend().get_texts()]
    assert labels[:2] == ["stall: guest swapin", "stall: host swapin"]


def test_unsplit_table_has_no_cause_columns(runs):
    table = runs[0]
    assert not [c for c in table.columns if c.startswith("stall_") and c != "stall_s"]
    assert "balloon_reversals" in table and "balloon_moved_mib" in table


def test_findings_state_the_table_values():
    t = pd.DataFrame({
        "guest_pswpin": [0, 256, 512], "guest_pswpout": [0, 256, 0],
        "host_pswpin": [2560, 0, 256], "host_pswpout": [0, 0, 0],
        "progress": [2_000_000, 3_000_000, 1_000_000], "stall_s": [1.0, 2.0, 3.0],
        "stall_host_swapin_s": [0.5, 1.5, 2.0], "mean_balloon_mib": [0.0, 64.0, 64.0],
        "balloon_reversals": [0, 0, 7], "guest_oom_kill": [0, 0, 0], "host_oom_kill": [0, 0, 1],
    }, index=pd.Index(["none", "static", "qemu-auto"], name="policy"))
    text = describe(t)
    assert "`none` 10, `static` 0, `qemu-auto` 1." in text                     # host MiB
    assert "`none` 0, `static` 2, `qemu-auto` 2." in text                      # guest MiB
    assert ("`static` 3.00 (+50% vs `none`), `qemu-auto` 1.00 (-50% vs `none`); against "
            "`static`: `qemu-auto` -67%." in text)
    assert "`qemu-auto` host swapin 2.0" in text
    assert "balloon reversals (inflate \u21c4 deflate): `none` 0, `static` 0, `qemu-auto` 7" \
        in text
    assert "VMs the host OOM-killed: `none` 0, `static` 0, `qemu-auto` 1." in text
    assert "Guest OOM kills" not in text
    assert "No guest swapped" in describe(t.assign(guest_pswpin=0, guest_pswpout=0))


def test_export_writes_figure_table_and_their_manifests(runs, tmp_path):
    table, results = runs
    paths = export_figure(plot_stalls(results), "x-stalls", results, root=tmp_path)
    assert [p.name for p in paths] == ["x-stalls.pdf", "x-stalls.png"]
    assert paths[0].read_bytes().startswith(b"%PDF") and paths[1].read_bytes().startswith(PNG)
    csv = export_table(table, "x-compare", results, root=tmp_path)
    assert pd.read_csv(csv, index_col="policy").loc["none", "progress"] == table.loc["none",
                                                                                     "progress"]
    for d, name in (("figures", "x-stalls"), ("tables", "x-compare")):
        m = json.loads((tmp_path / d / f"{name}.manifests.json").read_text())
        assert m["artefact"] == name
        assert m["runs"] == json.loads(json.dumps({p: r.manifest for p, r in results.items()},
                                                  default=str))
    assert not list(tmp_path.rglob(".*tmp*"))


# --- the scenario library -----------------------------------------------------------------

def test_library_lists_every_bundled_scenario_with_its_description():
    names = [b.name for b in bundled_scenarios()]
    assert names[0] == "default"
    assert {"default", "staggered", "anon-pressure", "traces-mix"} <= set(names)
    for b in bundled_scenarios():
        assert b.description and header_comment(b.path)
        assert scenario_path(b.name) == b.path == bundled_path(b.name)


def test_bundled_scenarios_are_short_and_small():
    """The explorer and `make figures`' quick notebooks must finish in minutes: tens of seconds,
    guests of 128-512 MiB (the full-scale reproductions aside)."""
    assert {b.name for b in bundled_scenarios()} - {b.name for b in quick_scenarios()} == \
        FULL_SCALE
    for b in quick_scenarios():
        s = load_scenario(b.path)
        assert s.run.duration_ns <= 60 * 10**9, b.name
        assert all(128 * MIB <= g.memory <= 512 * MIB for g in s.guests), b.name
        assert sum(g.memory for g in s.guests) > s.host.memory, b.name     # overcommitted


def test_unknown_bundled_name_is_a_clear_error():
    with pytest.raises(SpecError, match="no bundled scenario named 'nope' \\(bundled: default"):
        bundled_path("nope")


def test_cli_lists_the_library(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for b in bundled_scenarios():
        assert f"{b.name}\n    {b.description}\n    {b.path}\n" in out


def test_shorten_compresses_the_timeline():
    s = load_scenario(bundled_path("staggered"))
    short = shorten(s, 3 * 10**9)
    assert short.run.duration_ns == 3 * 10**9
    late = next(g for g in short.guests if g.group == "late")
    assert late.workload.start_ns == 10**9                      # 10 s of 30 s -> 1 s of 3 s
    early = next(g for g in short.guests if g.group == "early")
    assert [p.duration_ns for p in early.workload.phases] == [None, None, 6 * 10**8, 10**9,
                                                              2 * 10**9]
    assert [p.passes for p in early.workload.phases][:2] == [1, 1]
    assert "shortened to 3s" in short.raw["description"]


def test_rfc_v2_is_the_rfcs_testbed():
    """35 guests of 1 GiB on a 32 GiB host with 16 GiB of swap, starts 1 s apart, each a
    kernel build replayed long enough to last about as long as the RFC's (~600 s)."""
    s = load_scenario(bundled_path("rfc-v2"))
    assert len(s.guests) == 35 and {g.memory for g in s.guests} == {2**30}
    assert s.host.memory == 32 * 2**30 and s.host.swap.size == 16 * 2**30
    assert [g.workload.start_ns for g in s.guests] == [k * 10**9 for k in range(35)]
    w = s.guests[0].workload
    assert "kbuild" in w.path and w.repeat == 10 and w.fresh_files and not w.loop
    assert s.run.duration_ns >= 700 * 10**9
