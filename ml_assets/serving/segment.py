"""A prediction-log segment: the write-ahead file an answer waits for (see `predlog`, `logstore`).

    <root>/_segments/seg-<host>-<pid>-<ns>-<rand>.jsonl

Newline-delimited JSON: a line per scored row, `{name: value, ...}`, or for a batch of at least
`BATCH_LINE_ROWS` rows one line of its columns, `@{name: [values...], ...}`; before them a schema
line `#{name: numpy dtype, ...}` whenever a batch's columns or dtypes differ from the previous
batch's. Why JSON and not Arrow: the lines are encoded on the request path, where turning a batch
of a few rows into Arrow costs ~100 µs (one conversion per column) and `orjson` encodes a row in
~10 µs. The compactor turns a whole segment into Arrow at once, off the request path
(`segment_read`): datetimes are written as int64 nanoseconds, missing floats as null (as Arrow
stores them from pandas), infinities as text. One row per line, because Arrow's JSON reader then
parses the rows without holding the GIL, so a compaction does not make the event loop wait, and
each line is a plain record (`jq`, `grep`); a large batch as one line, because a line per row
would cost it more than Arrow did.

A row is complete when its line is, newline included: a kill -9 mid-write leaves a torn last
line, a machine crash an unsynced tail cut or zero-filled; readers keep every complete line before
the first one that is not.
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

SEGMENTS = "_segments"  # leading underscore: Parquet dataset readers of <root> skip it
SUFFIXES = (".jsonl", ".arrows")  # written now, written by versions before the JSON lines
Columns = dict[str, np.ndarray]
# From this many rows a batch is one `@` line of columns: a line per row costs ~1.5 µs a row to
# encode and ~4 µs to read back, one line ~0.4 µs and ~1 µs
BATCH_LINE_ROWS = 16


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
        """One batch's lines: one per row, or one for the batch from `BATCH_LINE_ROWS` rows (with a
        schema line first when its columns or dtypes are new). Raises TypeError for values JSON
        cannot hold, before anything changes: that batch is not logged."""
        signature = tuple((name, values.dtype) for name, values in columns.items())
        values = [_plain(column) for column in columns.values()]
        if len(values[0]) >= BATCH_LINE_ROWS:
            line = b"@" + orjson.dumps(dict(zip(columns, values)), default=_scalar, option=orjson.OPT_APPEND_NEWLINE)
        else:
            names = list(columns)
            line = b"".join([orjson.dumps(dict(zip(names, row)), default=_scalar, option=orjson.OPT_APPEND_NEWLINE)
                             for row in zip(*values)])
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
