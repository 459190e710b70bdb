"""Count a file's records without the parser, so row accounting compares two independent counts.

CSV: one pass over the raw bytes with numpy. A newline ends a record unless it lies inside a quoted
value (an odd number of quote characters before it: doubled quotes inside a value keep the parity).
Empty lines are counted separately (the parser skips them; they are reported, not rows). Parquet:
the row count in the file's footer, written by the producer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

_NL, _CR, _QUOTE = 10, 13, 34


@dataclass(frozen=True)
class RecordCount:
    records: int  # data records: non-empty lines after the header line
    blank_lines: int  # empty lines (or a lone CR), anywhere in the file
    quoted_newlines: int  # newlines inside quoted values (the parser must be told they exist)


def count_csv_records(data) -> RecordCount:
    """Records of a CSV held in memory (bytes, memoryview or an Arrow buffer)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if not len(raw):
        return RecordCount(0, 0, 0)
    ends = np.flatnonzero(raw == _NL)
    quoted = 0
    quotes = np.flatnonzero(raw == _QUOTE)
    if len(quotes):
        inside = (np.searchsorted(quotes, ends) % 2).astype(bool)
        quoted, ends = int(inside.sum()), ends[~inside]
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(raw)]))
    if starts[-1] == len(raw):  # the file ends with a newline: no line after it
        starts, stops = starts[:-1], stops[:-1]
    lengths = stops - starts
    lone_cr = lengths == 1
    lone_cr[lone_cr] = raw[starts[lone_cr]] == _CR
    blank = int(((lengths == 0) | lone_cr).sum())
    lines = len(starts) - blank
    return RecordCount(records=max(lines - 1, 0), blank_lines=blank, quoted_newlines=quoted)


def count_parquet_records(path: Path) -> int:
    """Rows the producer wrote, from the footer (no column is decoded)."""
    return pq.ParquetFile(path).metadata.num_rows
