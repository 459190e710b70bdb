"""Reading a prediction-log segment (its format is in `segment`) back as Arrow: what the compactor
and `read_log` see. Segments of the earlier Arrow IPC format (`.arrows`) are still read, so an
upgrade keeps what a killed older process left."""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

# Where the compactor parses in Python, it lets the event loop take the GIL after parsing this much
# and after converting each column's chunk of rows (each step well under a millisecond)
YIELD_BYTES, CHUNK, WINDOW = 64 * 1024, 8192, 256 * 1024


def read_segment(path: Path) -> pa.Table | None:
    """Every complete row of a segment (a torn tail is what a kill -9 or a crash leaves: skipped).

    It runs on the compactor's thread while the service answers on the event loop. The file is
    mapped, not copied (a copy of a 100 MB segment holds the GIL for tens of milliseconds), searched
    a window at a time, and Arrow's JSON reader parses each schema's rows in C++ without holding the
    GIL (~4 µs a row); a large batch's single line is parsed here (~1 µs a row). Only what Arrow
    refuses (a cut or zero-filled line, an infinity written as text, an object column of mixed
    kinds) is parsed here line by line, `CHUNK` rows at a time, giving the GIL up as it goes."""
    if path.suffix == ".arrows":
        return _read_arrow_stream(path)
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _read_mapped(data)


def _read_mapped(data: mmap.mmap) -> pa.Table | None:
    limit = data.rfind(b"\n") + 1  # after the last newline: a torn tail (or nothing)
    buffer, tables = pa.py_buffer(data), []
    try:
        starts = _line_starts(data, b"#", 0, limit)
        for start, end in zip(starts, [*starts[1:], limit]):
            try:
                tables.extend(_group(data, buffer, start, end))
            except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowTypeError):  # line by line, up to a broken line
                table, whole = _rows_by_line(data[start:end])
                tables.append(table)
                if not whole:
                    break  # every line after the first broken one is dropped, as for a torn tail
    finally:
        del buffer  # the map cannot close while Arrow holds a view of it
    tables = [table for table in tables if table is not None]
    if not tables:
        return None
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def _group(data: mmap.mmap, buffer: pa.Buffer, start: int, end: int) -> list[pa.Table | None]:
    """One schema line's rows: runs of row lines through Arrow's reader, batch (`@`) lines here."""
    body = data.find(b"\n", start, end) + 1
    dtypes, tables = orjson.loads(data[start + 1:body]), []
    batches, at = _Group(dtypes), body
    for batch in [*_line_starts(data, b"@", body, end), end]:
        if batch > at:  # the row lines before it (after the batches before them: rows stay in order)
            tables += [batches.table(), _rows_by_arrow(buffer[at:batch], dtypes)]
            batches = _Group(dtypes)
        if batch < end:
            at = data.find(b"\n", batch, end) + 1
            batches.add_batch(orjson.loads(data[batch + 1:at]))
            time.sleep(0)  # a batch line takes ~0.1 ms to parse: the event loop may take the GIL between two
    return [*tables, batches.table()]


def _line_starts(data: mmap.mmap, marker: bytes, begin: int, limit: int) -> list[int]:
    """Where the lines starting with `marker` begin in [begin, limit) (`begin` is a line's start).
    Searched `WINDOW` bytes at a time, letting the event loop in between."""
    starts, at, pattern = [begin] if data[begin:begin + 1] == marker else [], begin, b"\n" + marker
    scanned = 0
    while at < limit:
        found = data.find(pattern, at, min(limit, at + WINDOW + 1))
        step = found + 1 - at if found >= 0 else WINDOW
        if found >= 0:
            starts.append(found + 1)
        at, scanned = at + step, scanned + step
        if scanned >= WINDOW:  # a first read of mapped pages holds the GIL for each page fault
            time.sleep(0)
            scanned = 0
    return starts


def _rows_by_arrow(lines: pa.Buffer, dtypes: dict[str, str]) -> pa.Table:
    """Numeric and datetime columns declared with their types, text and objects inferred. Raises for
    anything it cannot take as declared (the caller then reads line by line)."""
    numpy = {name: np.dtype(dtype) for name, dtype in dtypes.items()}
    declared = pa.schema([(name, pa.int64() if d.kind in "Mm" else pa.from_numpy_dtype(d))
                          for name, d in numpy.items() if d.kind in "Mmbiuf"])
    table = pj.read_json(pa.BufferReader(lines), read_options=pj.ReadOptions(use_threads=False),
                         parse_options=pj.ParseOptions(explicit_schema=declared, unexpected_field_behavior="infer"))
    if set(table.column_names) != set(dtypes):
        raise ValueError("rows without the schema's columns")
    columns = {}
    for name, dtype in numpy.items():
        column = table[name]
        if dtype.kind in "Mm":  # int64 ticks; NaT (int64 min) -> null
            column = pc.if_else(pc.equal(column, np.iinfo(np.int64).min), pa.scalar(None, pa.int64()), column)
            column = column.cast(pa.from_numpy_dtype(dtype))
        columns[name] = column.cast(pa.string()) if pa.types.is_null(column.type) else column  # no value: text
    return pa.table(columns)


def _rows_by_line(lines: bytes) -> tuple[pa.Table | None, bool]:
    """One schema line and its rows, parsed here up to the first line that is not a whole row:
    (the table, whether every line was whole)."""
    rows, group, unyielded = lines.split(b"\n")[:-1], None, 0
    try:
        group = _Group(orjson.loads(rows[0][1:]))
        for line in rows[1:]:
            if line.startswith(b"@"):
                group.add_batch(orjson.loads(line[1:]))
            else:
                group.add(orjson.loads(line))
            unyielded += len(line)
            if unyielded > YIELD_BYTES:
                time.sleep(0)
                unyielded = 0
    except (ValueError, TypeError, AttributeError, IndexError):  # torn, zero-filled or otherwise cut
        return (group.table() if group is not None else None), False
    return group.table(), True


class _Group:
    """Rows and batches under one schema line, converted to Arrow `CHUNK` rows at a time (a whole segment of
    Python objects would make each garbage collection walk millions of them with the GIL held)."""

    def __init__(self, dtypes: dict[str, str]):
        self.dtypes = {name: np.dtype(dtype) for name, dtype in dtypes.items()}
        self.pending: dict[str, list] = {name: [] for name in dtypes}
        self.chunks: dict[str, list[pa.Array]] = {name: [] for name in dtypes}
        self.rows = 0

    def add(self, row: dict) -> None:
        if row.keys() != self.pending.keys():
            raise ValueError("not a whole row")
        for name, value in row.items():
            self.pending[name].append(value)
        self.rows += 1
        if self.rows >= CHUNK:
            self._convert()

    def add_batch(self, batch: dict[str, list]) -> None:
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
