"""The ``autoballoon`` command.

    autoballoon run SCENARIO.toml|manifest.json --out DIR [--policy NAME] [--set KEY=VALUE]...
                    [--seed N] [--force] [--quiet]
    autoballoon compare [SCENARIO.toml] [--policies none,static,qemu-auto] [--out DIR]
                        [--set KEY=VALUE]... [--seed N] [--force] [--quiet]
    autoballoon scenarios
    autoballoon sweep SWEEP.toml --out DIR [--scheduler tcp://HOST:PORT] [--workers N]
    autoballoon bench [--json] [--sweep]
    autoballoon trace ...

A scenario, trace, argument or output directory that cannot be used gets a one-line message
(``autoballoon: error: ...``) and exit status 2, before anything is simulated; Ctrl-C a one-line
message and exit status 130.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _check_out(out: str, what: str = "--out") -> Path:
    """``out`` must be a directory this process can write, or one it can create."""
    from autoballoon.errors import SpecError
    if not out:
        raise SpecError(f"{what}: expected a directory path, got {out!r}")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise SpecError(f"{what}: expected a directory, got {out!r}, which is a file")
    parent = path
    while not parent.exists():              # the nearest existing directory makes the rest
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise SpecError(f"{what}: expected a directory this user can write, got {out!r} "
                        f"({parent} is not writable)")
    return path


def _overrides(args) -> dict:
    """``--set KEY=VALUE`` (repeatable) and ``--seed N`` as dotted-key overrides."""
    from autoballoon.scenario.document import parse_assignment
    out = dict(parse_assignment(a) for a in args.set or ())
    if args.seed is not None:
        out["run.seed"] = args.seed
    return out


def _cmd_run(args) -> int:
    from autoballoon.results.run import load_run_input, save, simulate

    _check_out(args.out)
    scenario = load_run_input(args.scenario, _overrides(args))     # checks the policy too
    results = simulate(scenario, args.policy, progress=not args.quiet, debug=args.debug)
    out = save(results, args.out, force=args.force)
    if not args.quiet:
        with _pandas_display():
            print(results.summary.set_index("guest").to_string())
        print(f"run {results.run_id} written to {out}/")
    return 0


def _cmd_compare(args) -> int:
    from autoballoon.control.policies import policy_class
    from autoballoon.errors import SpecError
    from autoballoon.plots import plot_comparison
    from autoballoon.results.compare import _dir_name, compare
    from autoballoon.results.run import _atomic, load_run_input
    from autoballoon.scenario.parse import default_scenario_path

    _check_out(args.out)
    path = Path(args.scenario) if args.scenario else default_scenario_path()
    scenario = load_run_input(path, _overrides(args))
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not policies:
        raise SpecError(f"--policies: expected comma-separated policy names, got "
                        f"{args.policies!r}")
    for name in policies:                   # every name, before the first run
        policy_class(name, "--policies")
        _check_out(str(Path(args.out) / _dir_name(name)), "--out")
    out = Path(args.out)
    table, results = compare(scenario, policies, progress=not args.quiet, workers=args.jobs,
                             out=out, force=args.force)
    cid = table.attrs["compare_id"]
    fig = plot_comparison(results, title=f"{path.name}: " + " vs ".join(results))
    _atomic(out / "compare.png", lambda p: fig.savefig(
        p, dpi=110, format="png", metadata={"Description": f"autoballoon compare {cid}"}))
    with _pandas_display():
        print(f"scenario: {path} (seed {scenario.run.seed}; comparison {cid})")
        print(table.drop(columns="note").to_string())
        for name, note in table["note"].items():
            print(f"  {name}: {note}")
    if not args.quiet:
        print(f"table, figure and per-policy results written to {out}/")
    return 0


def _cmd_sweep(args) -> int:
    from autoballoon.results.sweep import load_sweep_file, sweep

    _check_out(args.out)
    spec = load_sweep_file(args.sweep)
    df = sweep(**spec, out=args.out, scheduler=args.scheduler, workers=args.workers,
               progress=not args.quiet, force=args.force)
    failed = df.attrs.get("failed", 0)
    print(f"{df.attrs.get('runs', 0)} runs ({df.attrs.get('reused', 0)} already done, "
          f"{failed} failed) in {args.out}/: pandas.read_parquet({str(args.out)!r})")
    return 1 if failed else 0


def _cmd_scenarios(args) -> int:
    from autoballoon.scenario.bundled import bundled_scenarios

    for b in bundled_scenarios():
        print(f"{b.name}\n    {b.description}\n    {b.path}")
    return 0


def _cmd_bench(args) -> int:
    try:
        from autoballoon.bench import main as bench_main
    except ImportError as e:
        return _unavailable("bench", str(e))
    return bench_main(args.bench_args) or 0


def _pandas_display():
    import pandas as pd
    return pd.option_context("display.width", 200, "display.max_columns", 40)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoballoon", description="Page-level simulation of VM memory ballooning.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run one scenario and save its results")
    p.add_argument("scenario", help="scenario TOML file, or a saved run's manifest.json (or its "
                                    "scenario.toml) to reproduce it")
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--policy", help="host policy (default: the scenario's [host] policy)")
    _add_scenario_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    p.add_argument("--debug", action="store_true", help="check model invariants (slow)")
    p.set_defaults(func=_cmd_run, kept="no results were written")

    p = sub.add_parser("compare", help="run a scenario under several policies; print a table")
    p.add_argument("scenario", nargs="?", help="scenario TOML file (default: the bundled one)")
    p.add_argument("--policies", default="none,static,qemu-auto",
                   help="comma-separated policy names (default: %(default)s)")
    p.add_argument("--out", default="results", help="output directory (default: %(default)s)")
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help="run policies in this many processes (same results; default 1)")
    _add_scenario_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_compare, kept="the policies that finished are saved in --out, and "
                                           "the same command resumes")

    p = sub.add_parser("sweep", help="run a parameter sweep (on Dask) into a Parquet dataset")
    p.add_argument("sweep", help="sweep TOML file: base scenario, [grid], policies, seeds "
                                 "(exit status 1 if a run failed; rerun to retry it)")
    p.add_argument("--out", required=True, help="dataset directory (a rerun resumes it)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, tcp://HOST:PORT "
                                       "(default: a local cluster, one process per core)")
    p.add_argument("--workers", type=_positive_int,
                   help="local worker processes (default: one per core)")
    p.add_argument("--force", action="store_true",
                   help="replace a dataset of a different sweep in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep, kept="the runs that finished are saved in --out, and the "
                                         "same command resumes")

    p = sub.add_parser("scenarios", help="list the bundled scenarios (name, what the guests do, "
                                         "file)")
    p.set_defaults(func=_cmd_scenarios)

    p = sub.add_parser("bench", help="the standard speed benchmark", add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_bench)

    try:
        from autoballoon.trace.cli import add_subparsers as add_trace_subparsers
    except ImportError as e:
        reason = str(e)
        p = sub.add_parser("trace", help="trace tools (not available in this installation)")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=lambda args: _unavailable("trace", reason))
    else:
        add_trace_subparsers(sub)
    return parser


def _add_scenario_options(p) -> None:
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a scenario key, e.g. host.memory=512MiB, "
                        "guest.vm.swappiness=0, host.policy_params.inflate=64MiB (repeatable)")
    p.add_argument("--seed", type=int, help="the run's seed (same as --set run.seed=N)")
    p.add_argument("--force", action="store_true",
                   help="replace the results of a different run in --out")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_positive_int.__name__ = "positive integer"     # argparse: "invalid positive integer value"


def _unavailable(what: str, reason: str) -> int:
    print(f"autoballoon: error: the '{what}' commands are not available ({reason})",
          file=sys.stderr)
    return 2


def _error(message: str, status: int = 2) -> int:
    """Print ``autoballoon: error: ...`` on one line: a library's message (pyarrow's, pandas')
    inside ours may hold newlines."""
    print(" ".join(f"autoballoon: error: {message}".split()), file=sys.stderr)
    return status


def main(argv=None) -> int:
    from autoballoon.scenario.spec import SpecError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command != "bench":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.bench_args = extra + args.bench_args      # e.g. --json, passed on to bench
    from autoballoon.results.run import OutputError
    from autoballoon.trace.format import TraceError
    try:
        return int(args.func(args) or 0)
    except (SpecError, TraceError, OutputError) as e:
        # a bad scenario, parameter or trace file: the message names the file, line and key;
        # an output directory that holds another run
        return _error(str(e))
    except OSError as e:            # a file that cannot be read or written (disk full, ...)
        return _error(f"{e.filename}: {e.strerror or e}" if e.filename else str(e))
    except MemoryError as e:
        return _error(f"out of memory ({e or 'no detail'})")
    except KeyboardInterrupt as e:
        # from a run, the message says how far it got (control.loop.Interrupted); every file
        # is written atomically, and ``kept`` says what the command keeps of finished work
        kept = getattr(args, "kept", None)
        print("autoballoon: interrupted" + (f" {e}" if str(e) else "")
              + (f"; {kept}" if kept else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
