"""The ``autoballoon`` command.

    autoballoon run SCENARIO.toml --out DIR [--policy NAME] [--quiet]
    autoballoon compare [SCENARIO.toml] [--policies none,static,qemu-auto] [--out DIR] [--quiet]
    autoballoon bench [--json]
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


def _cmd_run(args) -> int:
    from autoballoon.control.loop import load_scenario     # checks the policy too
    from autoballoon.results.run import save, simulate

    _check_out(args.out)
    scenario = load_scenario(Path(args.scenario))
    results = simulate(scenario, args.policy, progress=not args.quiet, debug=args.debug)
    out = save(results, args.out)
    if not args.quiet:
        with _pandas_display():
            print(results.summary.set_index("guest").to_string())
        print(f"results written to {out}/")
    return 0


def _cmd_compare(args) -> int:
    from autoballoon.control.loop import load_scenario     # checks the policy too
    from autoballoon.control.policies import policy_class
    from autoballoon.errors import SpecError
    from autoballoon.plots import plot_comparison
    from autoballoon.results.compare import compare
    from autoballoon.results.run import _atomic, save
    from autoballoon.scenario.parse import default_scenario_path

    _check_out(args.out)
    path = Path(args.scenario) if args.scenario else default_scenario_path()
    scenario = load_scenario(path)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not policies:
        raise SpecError(f"--policies: expected comma-separated policy names, got "
                        f"{args.policies!r}")
    for name in policies:                   # every name, before the first run
        policy_class(name, "--policies")
        _check_out(str(Path(args.out) / name.replace(":", "_").replace("/", "_")), "--out")
    table, results = compare(scenario, policies, progress=not args.quiet, workers=args.jobs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, r in results.items():
        save(r, out / name.replace(":", "_").replace("/", "_"))
    _atomic(out / "compare.csv", lambda p: table.to_csv(p))
    fig = plot_comparison(results, title=f"{path.name}: " + " vs ".join(results))
    _atomic(out / "compare.png", lambda p: fig.savefig(p, dpi=110, format="png"))
    with _pandas_display():
        print(f"scenario: {path}")
        print(table.drop(columns="note").to_string())
        for name, note in table["note"].items():
            print(f"  {name}: {note}")
    if not args.quiet:
        print(f"table, figure and per-policy results written to {out}/")
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
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--policy", help="host policy (default: the scenario's [host] policy)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    p.add_argument("--debug", action="store_true", help="check model invariants (slow)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("compare", help="run a scenario under several policies; print a table")
    p.add_argument("scenario", nargs="?", help="scenario TOML file (default: the bundled one)")
    p.add_argument("--policies", default="none,static,qemu-auto",
                   help="comma-separated policy names (default: %(default)s)")
    p.add_argument("--out", default="results", help="output directory (default: %(default)s)")
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help="run policies in this many processes (same results; default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_compare)

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
    from autoballoon.trace.format import TraceError
    try:
        return int(args.func(args) or 0)
    except (SpecError, TraceError) as e:
        # a bad scenario, parameter or trace file: the message names the file, line and key
        return _error(str(e))
    except OSError as e:            # a file that cannot be read or written (disk full, ...)
        return _error(f"{e.filename}: {e.strerror or e}" if e.filename else str(e))
    except MemoryError as e:
        return _error(f"out of memory ({e or 'no detail'})")
    except KeyboardInterrupt as e:
        # from a run, the message says how far it got (control.loop.Interrupted), and no
        # results were saved; elsewhere every file is written atomically
        where = f" {e}; no results were written" if str(e) else ""
        print(f"autoballoon: interrupted{where}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
