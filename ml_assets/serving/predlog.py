"""The prediction log: every scored record with its inputs, outputs, model version, timestamp and
request id, as Parquet files partitioned by day (`<root>/day=YYYY-MM-DD/part-*.parquet`), which
the monitoring assets read as a dataset.

Rows are buffered and written by a background thread every `flush_seconds` or `flush_rows`, so a
request never waits on disk; shutdown flushes what is left. A hard kill loses at most one
interval of log (not of predictions), the usual trade of a log shipper.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class PredictionLog:
    def __init__(self, root: Path, flush_rows: int = 20_000, flush_seconds: float = 5.0):
        self.root, self.flush_rows, self.flush_seconds = Path(root), flush_rows, flush_seconds
        self._batches: list[dict[str, np.ndarray]] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="prediction-log", daemon=True)
        self.written_files = 0

    def start(self) -> None:
        self._thread.start()

    def append(self, columns: dict[str, np.ndarray]) -> None:
        """One scored batch as equal-length column arrays (with a datetime64 `timestamp`)."""
        with self._lock:
            self._batches.append(columns)
            self._rows += len(columns["timestamp"])
            full = self._rows >= self.flush_rows
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write what is buffered. Columns are concatenated with numpy, not pandas: a flush joins
        thousands of small batches, and must not hold the GIL long enough to stall requests."""
        with self._lock:
            batches, self._batches, self._rows = self._batches, [], 0
        if not batches:
            return 0
        table = pa.table({name: _column(np.concatenate([b[name] for b in batches])) for name in batches[0]})
        days = np.asarray(table["timestamp"]).astype("datetime64[D]")
        for day in np.unique(days):
            folder = self.root / f"day={day}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = folder / f".{name}.tmp"
            pq.write_table(table.filter(pa.array(days == day)), tmp)
            tmp.rename(folder / name)  # readers never see a half-written file
            self.written_files += 1
        return table.num_rows

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.flush()


def _column(values: np.ndarray) -> pa.Array:
    array = pa.array(values, from_pandas=True)
    return array.cast(pa.string()) if pa.types.is_null(array.type) else array  # all-None: still a string column


def read_log(root: Path) -> pd.DataFrame:
    """The whole log as one frame (day is a column); empty when nothing was logged yet."""
    root = Path(root)
    if not root.exists() or not any(root.glob("day=*/*.parquet")):
        return pd.DataFrame()
    return pd.read_parquet(root)
