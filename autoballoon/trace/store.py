"""The on-disk format: one Parquet file per trace (pyarrow, zstd).

Access traces have columns ``gap_ns`` (int64), ``page`` (int64), ``op`` (uint8); envelopes have
``time_ns``, ``wss_bytes`` and optionally ``rss_bytes``, ``cache_bytes``, ``provisioned_bytes``
(int64). The Parquet key-value metadata key ``autoballoon`` holds JSON:
``{"format_version": 2, "kind": "access"|"envelope", "meta": {...}, "checksum": "blake2b:..."}``
(plus ``end_ns`` for envelopes), where ``meta`` says the source, how the trace was recorded or
synthesised, units and licence, and ``checksum`` is a BLAKE2b digest of the columns' values
(:func:`checksum`), verified on every load: a file whose data changed after it was written —
flipped bytes that still decode — is refused rather than replayed. Version 1 files (no
checksum) are still read.

Compactness comes from Parquet's lossless encodings (delta-binary-packed integers, run-length
op codes, zstd), so every event is kept and replay is exact.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from autoballoon.trace.format import (

    ENVELOPE_OPTIONAL, FORMAT_VERSION, KIND_ACCESS, KIND_ENVELOPE, AccessTrace, Envelope,

    TraceError)

META_KEY = b"autoballoon"
READ_VERSIONS = (1, FORMAT_VERSION)
ACCESS_SCHEMA = {"gap_ns": pa.int64(), "page": pa.int64(), "op": pa.uint8()}
UNITS_ACCESS = {"gap_ns": "ns (think time before the event)", "page": "4 KiB page number",
                "op": "autoballoon.trace.ops codes"}
UNITS_ENVELOPE = {"time_ns": "ns since trace start", "wss_bytes": "bytes", "rss_bytes": "bytes",
                  "cache_bytes": "bytes", "provisioned_bytes": "bytes"}


def save(trace: AccessTrace | Envelope, path) -> Path:
    """Write ``trace`` to ``path`` atomically: a temporary file in the same directory is
    renamed over ``path`` only once it is complete, so a crash never leaves half a trace."""
    path = Path(path)
    if isinstance(trace, AccessTrace):
        cols = {"gap_ns": trace.gap_ns, "page": trace.page, "op": trace.op}
        header = {"kind": KIND_ACCESS, "meta": {"units": UNITS_ACCESS, **trace.meta}}
    elif isinstance(trace, Envelope):
        cols = trace.columns()
        header = {"kind": KIND_ENVELOPE, "end_ns": trace.end_ns,
                  "meta": {"units": UNITS_ENVELOPE, **trace.meta}}
    else:
        raise TypeError(f"save() takes an AccessTrace or an Envelope, got {type(trace).__name__}")
    header = {"format_version": FORMAT_VERSION, **header, "checksum": checksum(cols)}
    table = pa.table({k: pa.array(np.asarray(v)) for k, v in cols.items()})
    table = table.replace_schema_metadata({META_KEY: json.dumps(header, sort_keys=True)})
    _write_atomic(table, path)
    return path


def checksum(cols: dict[str, np.ndarray]) -> str:
    """BLAKE2b (128 bits) of the columns' names and values (little-endian), in order."""
    h = hashlib.blake2b(digest_size=16)
    for name, values in cols.items():
        arr = np.ascontiguousarray(values)
        h.update(name.encode())
        h.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).view(np.uint8))
    return "blake2b:" + h.hexdigest()


def _write_atomic(table: pa.Table, path: Path) -> None:
    if str(path) in ("", ".") or path.is_dir():
        raise TraceError(f"{str(path)!r}: cannot write: expected a trace file path, got a "
                         f"directory")
    if not path.parent.is_dir():
        raise TraceError(f"{path}: cannot write: directory {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise TraceError(f"{path}: cannot write ({e.strerror})") from None
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", compression_level=9,
                       use_dictionary=False,
                       column_encoding={c: "DELTA_BINARY_PACKED" for c in table.column_names
                                        if c != "op"})
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600; give it normal rights
        os.replace(tmp, path)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError):                # e.g. path is a directory, the disk is full
            raise TraceError(f"{path}: cannot write ({e.strerror or e})") from None
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_header(path) -> dict:
    """The ``autoballoon`` metadata of a trace file, checked for kind and version."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException, ValueError) as e:
        raise TraceError(f"{path}: not a readable Parquet trace file ({e})") from None
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise TraceError(f"{path}: a Parquet file without autoballoon trace metadata; "
                         f"convert it with `autoballoon trace convert`")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise TraceError(f"{path}: trace metadata is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise TraceError(f"{path}: trace metadata: expected a JSON object, got "
                         f"{type(header).__name__}")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in READ_VERSIONS:
        raise TraceError(f"{path}: expected trace format version "
                         f"{' or '.join(map(str, READ_VERSIONS))}, got {version!r}")
    if header.get("kind") not in (KIND_ACCESS, KIND_ENVELOPE):
        raise TraceError(f"{path}: expected kind 'access' or 'envelope', got {header.get('kind')!r}")
    if not isinstance(header.get("meta", {}), dict):
        raise TraceError(f"{path}: trace metadata: 'meta': expected a JSON object, got "
                         f"{header['meta']!r:.60}")
    if version >= 2 and not (isinstance(header.get("checksum"), str)
                             and header["checksum"].startswith("blake2b:")):
        raise TraceError(f"{path}: trace metadata: 'checksum': expected 'blake2b:<hex>', got "
                         f"{header.get('checksum')!r:.60}")
    return header


def _verify(path, header: dict, cols: dict[str, np.ndarray]) -> None:
    """A version-2 file's columns must have the checksum they were written with."""
    if header["format_version"] < 2:
        return
    if checksum(cols) != header["checksum"]:
        raise TraceError(f"{path}: the data does not match its checksum: the file was changed "
                         f"or corrupted after it was written")


def _read_columns(path, expected: dict[str, pa.DataType]) -> dict[str, np.ndarray]:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException, ValueError) as e:
        raise TraceError(f"{path}: cannot read the Parquet data ({e})") from None
    out = {}
    for name, dtype in expected.items():
        if name not in table.column_names:
            continue
        col = table.column(name)
        if col.type != dtype:
            raise TraceError(f"{path}: column '{name}': expected {dtype}, got {col.type}")
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise TraceError(f"{path} row {row}: column '{name}': expected a value, got null")
        out[name] = col.to_numpy()
    return out


def _columns(path, header: dict, expected: dict[str, pa.DataType]) -> dict[str, np.ndarray]:
    """The file's columns among ``expected``, in that order, checked against the checksum."""
    cols = _read_columns(path, expected)
    _verify(path, header, cols)
    return cols


def load(path) -> AccessTrace:
    """Read a page-access trace. A demand envelope must be expanded first (see the error)."""
    header = read_header(path)
    if header["kind"] == KIND_ENVELOPE:
        raise TraceError(
            f"{path}: is a demand envelope (working-set sizes over time), not a page-access "
            f"trace; expand it first: `autoballoon trace expand {path} OUT --seed 1`, or in "
            f"Python `expand(load_envelope(path), seed=1)`")
    cols = _columns(path, header, ACCESS_SCHEMA)
    missing = [c for c in ACCESS_SCHEMA if c not in cols]
    if missing:
        raise TraceError(f"{path}: missing column(s) {', '.join(missing)}; expected "
                         f"gap_ns, page, op")
    return AccessTrace(cols["gap_ns"], cols["page"], cols["op"], meta=header.get("meta", {}),
                       where=str(path))


def load_envelope(path) -> Envelope:
    """Read a demand envelope."""
    header = read_header(path)
    if header["kind"] != KIND_ENVELOPE:
        raise TraceError(f"{path}: is a page-access trace, not a demand envelope; use load()")
    names = ("time_ns", "wss_bytes") + ENVELOPE_OPTIONAL
    cols = _columns(path, header, {n: pa.int64() for n in names})
    for need in ("time_ns", "wss_bytes"):
        if need not in cols:
            raise TraceError(f"{path}: missing column '{need}'")
    if isinstance(header.get("end_ns"), bool) or not isinstance(header.get("end_ns"), int):
        raise TraceError(f"{path}: envelope metadata: 'end_ns': expected an integer (end of the "
                         f"last sample, ns), got {header.get('end_ns')!r}")
    return Envelope(meta=header.get("meta", {}), end_ns=header["end_ns"], where=str(path),
                    **cols)


def read_any(path) -> AccessTrace | Envelope:
    """Whichever kind the file holds (for ``trace info``)."""
    kind = read_header(path)["kind"]
    return load_envelope(path) if kind == KIND_ENVELOPE else load(path)
