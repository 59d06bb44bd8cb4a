"""``autoballoon trace ...``: convert, info, synth, expand, record.

``add_subparsers(subparsers)`` registers the ``trace`` command on the package's argparse
sub-parsers; each leaf sets ``func`` (call ``args.func(args)``, which returns an exit status).
Standalone: ``python -m autoballoon.trace.cli trace info data/traces/...``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from autoballoon.errors import SpecError
from autoballoon.trace.format import TraceError
from autoballoon.units import parse_duration, parse_size

FORMATS = ("csv", "oracleGeneral", "lackey", "vmcsv", "datacenter")


def _arg_type(parse, what: str):
    """An argparse ``type=`` from a ``units`` parser: its ``SpecError`` becomes the usage error
    argparse prints (``argument --window: expected a duration ...``)."""
    def convert(text: str) -> int:
        try:
            return parse(text, what)
        except SpecError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix(f"{what}: ")) from None
    convert.__name__ = what          # argparse names the type in "invalid <name> value" messages
    return convert


duration_ns = _arg_type(parse_duration, "duration")     # "200ms", "1.5s", "500us" -> ns
size_bytes = _arg_type(parse_size, "size")              # "1GiB", "512MiB", "4096" -> bytes


def _positive(parse, what: str):
    def read(text, where):
        value = parse(text, where)
        if value <= 0:
            raise SpecError(f"{where}: expected a {what} > 0, got {text!r}")
        return value
    return _arg_type(read, what)


positive_duration_ns = _positive(parse_duration, "duration")


# --- commands ------------------------------------------------------------------------------
def cmd_convert(args) -> int:
    from autoballoon.trace import (  # modules, not functions
        cachesim,
        datacenter,
        lackey,
        store,
        vmcsv,
    )
    f = args.format
    if f == "csv":
        trace = cachesim.read_csv(args.input, time_col=args.time_col, obj_id_col=args.obj_id_col,
                                  obj_size_col=args.obj_size_col or None,
                                  op_col=args.op_col or None, delimiter=args.delimiter,
                                  has_header=not args.no_header, time_unit=args.time_unit,
                                  ids=args.ids, block_size=args.block_size)
    elif f == "oracleGeneral":
        trace = cachesim.read_oracle_general(args.input, ids=args.ids, block_size=args.block_size,
                                             time_unit=args.time_unit)
    elif f == "lackey":
        trace = lackey.read_lackey(args.input, ns_per_access=args.ns_per_access)
    elif f == "vmcsv":
        trace = vmcsv.read_vm_csv(args.input, time_unit=args.time_unit, mem_unit=args.mem_unit)
    else:
        trace = datacenter.datacenter_envelope(args.input, day=args.day, synthetic=args.synthetic,
                                               memory_bytes=args.memory)
    extra = {k: v for k, v in (("source", args.source), ("licence", args.licence)) if v}
    trace = dataclasses.replace(trace, meta={"source": str(args.input), **trace.meta, **extra})
    store.save(trace, args.output)
    print(f"wrote {args.output} ({len(trace)} {'samples' if f in ('vmcsv', 'datacenter') else 'events'})")
    return 0


def cmd_info(args) -> int:
    from autoballoon.trace import stats, store
    trace = store.read_any(args.path)
    d = stats.info(trace, args.window)
    print(json.dumps(d, indent=1) if args.json else stats.format_info(d, trace.meta))
    return 0


def cmd_synth(args) -> int:
    from autoballoon.trace import store
    from autoballoon.trace.synth import synth
    trace = synth(args.pattern, args.pages, seed=args.seed, accesses=args.accesses,
                        passes=args.passes, think_ns=args.think, write_fraction=args.write_fraction,
                        alpha=args.alpha)
    store.save(trace, args.output)
    print(f"wrote {args.output} ({len(trace)} events)")
    return 0


def cmd_expand(args) -> int:
    from autoballoon.trace import store
    from autoballoon.trace.expand import expand
    env = store.load_envelope(args.input)
    trace = expand(env, args.seed, scale=args.scale, reuse=args.reuse, alpha=args.alpha,
                          write_fraction=args.write_fraction,
                          free_on_shrink=not args.keep_on_shrink, max_events=args.max_events)
    store.save(trace, args.output)
    print(f"wrote {args.output} ({len(trace)} events)")
    return 0


def cmd_record(args) -> int:
    from autoballoon.trace import store
    from autoballoon.trace.record import record
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    trace, status = record(command, interval_ns=args.interval, trace_reads=args.trace_reads)
    store.save(trace, args.out)
    print(f"wrote {args.out} ({len(trace)} events, footprint {trace.footprint} pages); "
          f"command exited with {status}", file=sys.stderr)
    return 0


# --- parsers -------------------------------------------------------------------------------
def add_subparsers(subparsers) -> argparse.ArgumentParser:
    """Register ``trace`` and its sub-commands on an argparse sub-parsers object."""
    trace = subparsers.add_parser("trace", help="workload traces: convert, info, synth, expand, record")
    sub = trace.add_subparsers(dest="trace_command", required=True)

    p = sub.add_parser("convert", help="convert a foreign trace to the autoballoon format")
    p.add_argument("--from", dest="format", required=True, choices=FORMATS)
    p.add_argument("input", help="input file (datacenter: alibaba2018, google2019 or azure_v2)")
    p.add_argument("output", help="output .parquet")
    p.add_argument("--time-col", type=int, default=2, help="csv: 1-based (libCacheSim)")
    p.add_argument("--obj-id-col", type=int, default=5)
    p.add_argument("--obj-size-col", type=int, default=4, help="0: none")
    p.add_argument("--op-col", type=int, default=3, help="0: none")
    p.add_argument("--delimiter", default=",")
    p.add_argument("--no-header", action="store_true")
    p.add_argument("--time-unit", default="s", choices=("s", "ms", "us", "ns"))
    p.add_argument("--ids", default="blocks", choices=("blocks", "objects"))
    p.add_argument("--block-size", type=int, default=512, help="bytes per block id (>= 1)")
    p.add_argument("--ns-per-access", type=int, default=1, help="lackey: modelled time")
    p.add_argument("--mem-unit", default=None, help="vmcsv: B, KB, MB, GB (default: from header)")
    p.add_argument("--day", type=int, default=0, help="datacenter: day of the real series")
    p.add_argument("--synthetic", type=int, default=None, help="datacenter: synthetic curve N")
    p.add_argument("--memory", type=size_bytes, default=2**30, help="datacenter: VM size")
    p.add_argument("--source", help="metadata: where the input came from (attribution)")
    p.add_argument("--licence", help="metadata: the input's licence")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("info", help="length, duration, footprint, read/write mix, working set")
    p.add_argument("path")
    p.add_argument("--window", type=positive_duration_ns, default=None,
                   help="working-set window")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("synth", help="write a synthetic trace")
    p.add_argument("pattern", choices=("seq", "rand", "read", "zipf"))
    p.add_argument("output")
    p.add_argument("--pages", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--accesses", type=int, default=None, help="rand/zipf draws (default: pages)")
    p.add_argument("--passes", type=int, default=1, help="seq/read sweeps")
    p.add_argument("--think", type=duration_ns, default=1000, help="think time per access")
    p.add_argument("--write-fraction", type=float, default=1.0)
    p.add_argument("--alpha", type=float, default=0.9)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("expand", help="expand a demand envelope into page accesses")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--scale", type=float, default=1.0, help="multiply sizes (e.g. 0.0625)")
    p.add_argument("--reuse", type=float, default=1.0, help="extra Zipf accesses per page")
    p.add_argument("--alpha", type=float, default=0.9)
    p.add_argument("--write-fraction", type=float, default=0.5)
    p.add_argument("--keep-on-shrink", action="store_true", help="do not free when WSS falls")
    p.add_argument("--max-events", type=int, default=20_000_000)
    p.set_defaults(func=cmd_expand)

    p = sub.add_parser("record", help="run a program and record its page accesses")
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=positive_duration_ns, default=200_000_000)
    p.add_argument("--trace-reads", action=argparse.BooleanOptionalAction, default=None,
                   help="take file reads from tracefs (root; an error if unusable); "
                        "--no-trace-reads: from fd positions; default: tracefs when usable")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    p.set_defaults(func=cmd_record)
    return trace


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="autoballoon")
    add_subparsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TraceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
