"""A prediction-log segment: the write-ahead file an answer waits for (see `predlog`, `logstore`).

    <root>/_segments/seg-<host>-<pid>-<ns>-<rand>.jsonl

Newline-delimited JSON, one line per scored batch: `{"columns": {name: [values...]}}`, preceded by
a `{"schema": {name: numpy dtype}}` line whenever the batch's columns or dtypes differ from the
previous batch's. Why JSON and not Arrow: the line is encoded on the request path, where turning a
batch of a few rows into Arrow costs ~100 µs (one conversion per column) and `orjson` encodes the
same columns in ~5 µs. The compactor turns a whole segment into Arrow at once, off the request path,
with each column's type taken from the schema line (datetimes are written as int64 nanoseconds,
missing floats as null, as Arrow stores them from pandas).

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
        line = orjson.dumps({"columns": {name: _plain(values) for name, values in columns.items()}},
                            default=_scalar, option=orjson.OPT_APPEND_NEWLINE)
        if signature == self._signature:
            return line
        head = orjson.dumps({"schema": {name: dtype.str for name, dtype in signature}}, option=orjson.OPT_APPEND_NEWLINE)
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
    """Every complete batch of a segment (a torn tail is what a kill -9 or a crash leaves: skipped)."""
    if path.suffix == ".arrows":
        return _read_arrow_stream(path)
    groups: list[tuple[dict[str, str], dict[str, list]]] = []
    for n, line in enumerate(path.read_bytes().split(b"\n")[:-1]):  # after the last newline: a torn tail
        try:
            entry = orjson.loads(line)
            if "schema" in entry:
                groups.append((entry["schema"], {name: [] for name in entry["schema"]}))
                continue
            batch, columns = entry["columns"], groups[-1][1]
            if batch.keys() != columns.keys() or len({len(values) for values in batch.values()}) != 1:
                raise ValueError("not a whole batch")
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            break  # torn, zero-filled or otherwise cut: every line before it is kept
        for name, values in batch.items():
            columns[name].extend(values)
        if n % 256 == 255:
            time.sleep(0)  # a long segment is parsed while the service answers: let the event loop in
    tables = [pa.table({name: _array(values, schema[name]) for name, values in columns.items()})
              for schema, columns in groups if columns and len(next(iter(columns.values())))]
    if not tables:
        return None
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def _array(values: list, dtype: str) -> pa.Array:
    numpy = np.dtype(dtype)
    if numpy.kind in "Mm":
        return pa.array(np.array(values, dtype="i8").view(numpy), from_pandas=True)  # NaT -> null
    if numpy.kind in "biuf":
        if numpy.kind == "f" and any(isinstance(v, str) for v in values):
            values = [float(v) if isinstance(v, str) else v for v in values]  # infinities
        return pa.array(values, type=pa.from_numpy_dtype(numpy))
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds in an object column: kept, as text
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return array.cast(pa.string()) if pa.types.is_null(array.type) else array  # all missing: text


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
