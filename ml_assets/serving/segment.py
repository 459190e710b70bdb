"""A prediction-log segment: the write-ahead file an answer waits for (see `predlog`, `logstore`).

    <root>/_segments/seg-<host>-<pid>-<ns>-<rand>.jsonl

Newline-delimited JSON, one line per scored batch, `{name: [values...], ...}`, preceded by a
schema line `#{name: numpy dtype, ...}` whenever the batch's columns or dtypes differ from the
previous batch's (the `#` tells it from a batch at its first byte). Why JSON and not Arrow: the
line is encoded on the request path, where turning a batch of a few rows into Arrow costs ~100 µs
(one conversion per column) and `orjson` encodes the same columns in ~5 µs. The compactor turns a
whole segment into Arrow at once, off the request path, with each column's type from the schema
line: datetimes are written as int64 nanoseconds, missing floats as null (as Arrow stores them
from pandas), infinities as text.

A batch is complete when its line is, newline included: a kill -9 mid-write leaves a torn last
line, a machine crash an unsynced tail cut or zero-filled; readers keep every complete line before
the first one that is not. Segments of the earlier Arrow IPC format (`.arrows`) are still read, so
an upgrade keeps what a killed older process left.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

SEGMENTS = "_segments"  # leading underscore: Parquet dataset readers of <root> skip it
SUFFIXES = (".jsonl", ".arrows")  # written now, written by versions before the JSON lines
Columns = dict[str, np.ndarray]
# The compactor lets the event loop take the GIL after parsing this much and after converting each
# column's chunk of rows (each step well under a millisecond)
YIELD_BYTES, CHUNK = 64 * 1024, 8192


def fsync_dir(folder: Path) -> None:
    """Make a created, renamed or deleted name in `folder` durable too (not only the file's bytes)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_files(root: Path) -> list[Path]:
    return sorted(p for p in (Path(root) / SEGMENTS).glob("seg-*") if p.suffix in SUFFIXES)


class Segment:
    """This process's open segment: `encode` a batch, `write` encoded batches; `flush()` hands them to
    the kernel (they then survive the process), `sync()` / `sync_written()` make them durable on disk."""

    def __init__(self, root: Path):
        folder = Path(root) / SEGMENTS
        folder.mkdir(parents=True, exist_ok=True)
        name = f"seg-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}-{uuid.uuid4().hex[:6]}.jsonl"
        self.path, self.rows, self.opened = folder / name, 0, time.monotonic()
        # held open (and locked) for the segment's life; a buffer large enough that a group is one write()
        self.file = open(self.path, "ab", buffering=1 << 20)  # noqa: SIM115
        fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._named = False  # the file's name is made durable by the first sync (no disk wait here)
        self._signature: tuple | None = None  # the columns and dtypes of the last schema line encoded
        self.flushed_rows = self._synced_rows = 0
        self._lock = threading.Lock()  # a background sync never touches a released file

    def encode(self, columns: Columns) -> bytes:
        """One batch's line (with a schema line first when its columns or dtypes are new). Raises
        TypeError for values JSON cannot hold, before anything changes: that batch is not logged."""
        signature = tuple((name, values.dtype) for name, values in columns.items())
        line = orjson.dumps({name: _plain(values) for name, values in columns.items()}, default=_scalar,
                            option=orjson.OPT_APPEND_NEWLINE)
        if signature == self._signature:
            return line
        head = b"#" + orjson.dumps({name: dtype.str for name, dtype in signature}, option=orjson.OPT_APPEND_NEWLINE)
        self._signature = signature
        return head + line

    def write(self, data: bytes, rows: int) -> None:
        """Append encoded batches holding `rows` rows (buffered: `flush()` hands them to the kernel)."""
        self.file.write(data)
        self.rows += rows

    def flush(self) -> None:
        """Hand every written byte to the kernel (`write()` returned for all of them): in the page
        cache they outlive the process, though not the machine."""
        self.file.flush()
        self.flushed_rows = self.rows

    def sync(self) -> None:
        """`flush()`, then fdatasync: the data and the metadata needed to read it back (the file
        size), not the timestamps; what databases use for their write-ahead logs. The first sync
        also makes the file's name durable (`fsync_dir`)."""
        self.flush()
        self._fdatasync()
        self._synced_rows = self.flushed_rows

    def _fdatasync(self) -> None:
        os.fdatasync(self.file.fileno())
        if not self._named:
            fsync_dir(self.path.parent)
            self._named = True

    def sync_written(self) -> None:
        """fdatasync what `flush()` handed to the kernel, from any thread (the writer keeps writing
        meanwhile); nothing when that is already synced or the file was released."""
        with self._lock:
            rows = self.flushed_rows  # read before the sync: these rows are on disk after it
            if self.file.closed or rows == self._synced_rows:
                return
            self._fdatasync()
            self._synced_rows = rows

    def close(self) -> None:
        """Flush (synced by `sync_written`, off the writer's thread); the file stays locked until
        `release()` (after compaction)."""
        self.flush()

    def release(self) -> None:
        with self._lock:
            self.file.close()


def _plain(values: np.ndarray) -> list:
    if values.dtype.kind in "Mm":  # datetime64/timedelta64 as int64 ticks of the schema's unit (NaT: int64 min)
        return values.view("i8").tolist()
    if values.dtype.kind == "f" and np.isinf(values).any():  # JSON has no infinity: written as text
        return [str(v) if np.isinf(v) else v for v in values.tolist()]
    return values.tolist()


def _scalar(value):
    """What `tolist()` leaves that JSON cannot hold as is: numpy scalars inside object arrays."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be written to the prediction log")


def read_segment(path: Path) -> pa.Table | None:
    """Every complete batch of a segment (a torn tail is what a kill -9 or a crash leaves: skipped).

    It runs on the compactor's thread while the service answers on the event loop, so it reads
    line by line, turns every `CHUNK` rows into Arrow at once and drops their Python objects (a
    whole segment's worth of them would make each garbage collection walk millions of them with the
    GIL held), and gives the GIL up every `YIELD_BYTES` and every column chunk."""
    if path.suffix == ".arrows":
        return _read_arrow_stream(path)
    groups: list[_Group] = []
    unyielded = 0
    with open(path, "rb") as lines:
        for line in lines:
            if not line.endswith(b"\n"):
                break  # a torn tail
            try:
                if line.startswith(b"#"):
                    groups.append(_Group(orjson.loads(line[1:])))
                else:
                    groups[-1].add(orjson.loads(line))
            except (ValueError, TypeError, AttributeError, IndexError):
                break  # torn, zero-filled or otherwise cut: every line before it is kept
            unyielded += len(line)
            if unyielded > YIELD_BYTES:
                time.sleep(0)
                unyielded = 0
    tables = [table for group in groups if (table := group.table()) is not None]
    if not tables:
        return None
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


class _Group:
    """The batches under one schema line, converted to Arrow `CHUNK` rows at a time."""

    def __init__(self, dtypes: dict[str, str]):
        self.dtypes = {name: np.dtype(dtype) for name, dtype in dtypes.items()}
        self.pending: dict[str, list] = {name: [] for name in dtypes}
        self.chunks: dict[str, list[pa.Array]] = {name: [] for name in dtypes}
        self.rows = 0

    def add(self, batch: dict[str, list]) -> None:
        if batch.keys() != self.pending.keys() or len(lengths := {len(values) for values in batch.values()}) != 1:
            raise ValueError("not a whole batch")
        for name, values in batch.items():
            self.pending[name].extend(values)
        self.rows += lengths.pop()
        if self.rows >= CHUNK:
            self._convert()

    def _convert(self) -> None:
        if self.rows:
            for name, values in self.pending.items():
                self.chunks[name].append(_array(values, self.dtypes[name]))
                time.sleep(0)
            self.pending, self.rows = {name: [] for name in self.pending}, 0

    def table(self) -> pa.Table | None:
        self._convert()
        if not self.chunks or not next(iter(self.chunks.values())):
            return None
        return pa.table({name: _column(chunks) for name, chunks in self.chunks.items()})


def _column(chunks: list[pa.Array]) -> pa.ChunkedArray:
    """One type for an object column whose chunks inferred different ones."""
    kinds = {chunk.type for chunk in chunks} - {pa.null()}
    if len(kinds) > 1:
        numbers = all(pa.types.is_integer(k) or pa.types.is_floating(k) for k in kinds)
        kinds = {pa.float64() if numbers else pa.string()}  # whole numbers and fractions: floats; else text
    kind = kinds.pop() if kinds else pa.string()  # no value at all (the shadow version without shadow scoring): text
    return pa.chunked_array([chunk.cast(kind) for chunk in chunks], type=kind)


def _array(values: list, dtype: np.dtype) -> pa.Array:
    if dtype.kind in "Mm":  # int64 ticks; NaT (int64 min) -> null
        return pa.array(np.array(values, dtype="i8").view(dtype), from_pandas=True)
    if dtype.kind in "biuf":  # missing floats are null, infinities text: numpy reads both
        return pa.array(np.array(values, dtype=float if dtype.kind == "f" else dtype), from_pandas=True)
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds in an object column: kept, as text
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _read_arrow_stream(path: Path) -> pa.Table | None:
    """A segment of the earlier format: an Arrow IPC stream, one record batch per scored batch."""
    batches = []
    try:
        reader = pa.ipc.open_stream(pa.BufferReader(path.read_bytes()))
        while True:
            batches.append(reader.read_next_batch())
    except StopIteration:
        pass
    except (pa.ArrowInvalid, OSError):  # torn tail (or torn schema message: then no batch at all)
        pass
    return pa.Table.from_batches(batches) if batches else None
