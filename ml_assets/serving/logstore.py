"""The prediction log on disk: append-only segment files, compacted to day-partitioned Parquet.

    <root>/_segments/seg-<host>-<pid>-<ns>-<rand>.jsonl      being written (or left by a killed process)
    <root>/day=YYYY-MM-DD/part-<segment>-<k>of<n>.parquet     compacted: part k of the n days it held

A segment (its format is in `segment`: JSON lines, a row or a large batch each) is written by one
process only (its name carries host and pid, and the process holds an exclusive `flock` on it while
alive, so `uvicorn --workers N` never collide and a start-up can tell a dead writer's segment from
a live one). A process killed mid-write leaves a torn last line; readers keep every complete line
before it, and no answered prediction is in a torn line (answers wait until their rows have been
written: see `predlog` for what each durability level waits for). A machine crash can leave the
unsynced tail torn or zero-filled: the same rule keeps every complete line before it.

Compaction writes each day's Parquet file to a temporary name, fsyncs and renames it, and deletes
the segment only after all n parts exist. Readers use a segment's Parquet parts only when all n are
there, else the segment itself, so a row is never read twice nor missed across a crash.

Shipping to object storage (ML_ASSETS_PREDICTION_LOG_URL=s3://bucket/prediction_log): segments stay
on local disk, the write-ahead log an answer waits for (a write there takes microseconds, an
fsync at `machine` about a millisecond, a PUT tens of milliseconds, and a store that is down
must not turn answers into 503s). Compaction is the shipping step: it PUTs the sealed segment's
day parts to `<url>/<log folder name>/day=…/part-…parquet` (a PUT is atomic, so no temporary name)
and deletes the local segment only once all n parts are stored. A failed upload keeps the segment
(read locally meanwhile); the next successful shipment (the next roll-over) or start-up ships it.
Readers merge local and shipped parts with the same all-n rule, so a reader on another machine (the
served-predictions asset) sees every shipped row once; rows still in a live segment appear there
after the segment's roll-over (60 s by default).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_assets import settings
from ml_assets.core.storage import Location, as_path, is_local, put_bytes, refresh
from ml_assets.serving.segment import fsync_dir, segment_files
from ml_assets.serving.segment_read import read_segment

logger = logging.getLogger(__name__)
_PART = re.compile(r"^part-(?P<stem>seg-.+)-(?P<k>\d+)of(?P<n>\d+)\.parquet$")


def shipped_root(root: Path) -> Location | None:
    """Where the compacted Parquet of the log at `root` is shipped: <ML_ASSETS_PREDICTION_LOG_URL>/<root's
    name> (the problem's name under the default layout); None when the log stays on local disk."""
    url = settings.prediction_log_url()
    return as_path(url) / Path(root).name if url else None


def _write_part(table: pa.Table, folder: Location, name: str) -> None:
    if not is_local(folder):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        put_bytes(folder / name, sink.getvalue().to_pybytes())
        return
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.tmp"
    pq.write_table(table, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.rename(folder / name)  # readers never see a half-written file
    fsync_dir(folder)


def compact(path: Path, root: Path, retry_unshipped: bool = True) -> int:
    """Segment -> one Parquet file per day it holds (shipped to object storage when configured), then
    delete the segment. Idempotent: a crash or a failed upload at any point leaves either the segment
    or all of its parts, and redoing it rewrites the same names. Returns the number of files written.

    When shipping succeeds, segments an earlier upload failed on (their lock is free) are shipped
    too: the store coming back is noticed at the next roll-over, not at the next start-up."""
    table = read_segment(path)
    shipped = shipped_root(root)
    target = shipped or Path(root)
    written = 0
    if table is not None and table.num_rows:
        days = np.asarray(table["timestamp"]).astype("datetime64[D]")
        unique = np.unique(days)
        for k, day in enumerate(unique, 1):
            _write_part(table.filter(pa.array(days == day)), target / f"day={day}",
                        f"part-{path.stem}-{k}of{len(unique)}.parquet")
            written += 1
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)
    if shipped is not None and retry_unshipped:
        written += recover(root, sweeping=True)
    return written


def recover(root: Path, sweeping: bool = False) -> int:
    """Compact the segments whose writer is dead (its lock is free); live writers' are left alone.
    A segment that cannot be shipped now (object store unreachable) stays, read locally, until a later
    shipping succeeds: the service starts whether or not the store answers. `sweeping` (while this
    process writes) leaves empty segments alone: a writer creates its file a moment before it locks it."""
    shipping, written = shipped_root(root) is not None, 0
    for path in segment_files(root):
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:  # another worker compacted it meanwhile
            continue
        with handle:
            if sweeping and os.fstat(handle.fileno()).st_size == 0:
                continue
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process is writing it
            if not path.exists():
                continue
            try:
                written += compact(path, Path(root), retry_unshipped=False)
            except Exception:  # only when shipping (a local disk error still stops the start-up)
                if not shipping:
                    raise
                logger.exception("prediction log segment %s not shipped to %s; kept for a later try",
                                 path, shipped_root(root))
    return written


def read_log(root: Path) -> pd.DataFrame:
    """Every durable prediction-log row: compacted Parquet and not-yet-compacted segments (also
    those a killed process left), each row once, ordered by `timestamp`. Empty when nothing was
    logged yet. Columns:

    - `request_id` (str): the request's X-Request-ID (or the id the service gave it); a batch
      request's rows share it
    - `timestamp` (datetime64[ns], UTC, naive): when the record was scored
    - the input contract's columns (the problem's `input_schema`), as the service parsed them
      (categoricals as str; an integer column with a missing value in its batch as float)
    - `model_name` (str), `model_version` (str): the champion that answered
    - `score` (float): the answer's score; `label`: its label (absent for regression)
    - `shadow_version` (str or None), `shadow_score` (float, NaN without shadow scoring)
    - `day` (category, "YYYY-MM-DD"): the UTC day of `timestamp`

    With ML_ASSETS_PREDICTION_LOG_URL set, the parts shipped to object storage are read too, so this
    works from any machine; `root` need not exist there.
    """
    root = Path(root)
    for _ in range(5):  # a segment compacted while we read is found as Parquet on the next pass
        try:
            tables = _durable_tables(root)
            break
        except FileNotFoundError:
            continue
    else:
        tables = _durable_tables(root)
    if not tables:
        return pd.DataFrame()
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    frame["day"] = pd.Categorical(frame["timestamp"].dt.strftime("%Y-%m-%d"))
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _read_part(path: Location) -> pa.Table:
    # through fsspec, not Arrow's own s3:// client (which has its own credentials and endpoint settings)
    return pq.read_table(path if is_local(path) else pa.BufferReader(path.read_bytes()))


def _part_files(root: Path) -> list[Location]:
    """The log's Parquet files: local ones, then the shipped ones (a segment's parts are in one place)."""
    files = sorted(root.glob("day=*/part-*.parquet"))
    if (shipped := shipped_root(root)) is not None:
        refresh(shipped)  # parts shipped by the service since this process last listed
        files += sorted(shipped.glob("day=*/part-*.parquet"), key=str) if shipped.exists() else []
    return files


def _durable_tables(root: Path) -> list[pa.Table]:
    segments = segment_files(root)  # listed first: see read_log's retry
    parts: dict[str, dict[int, Location]] = {}
    whole: dict[str, int] = {}
    tables = []
    for path in _part_files(root):
        match = _PART.match(path.name)
        if match is None:  # a file written by an earlier version of the log: always whole
            tables.append(_read_part(path))
            continue
        parts.setdefault(match["stem"], {})[int(match["k"])] = path
        whole[match["stem"]] = int(match["n"])
    complete = {stem for stem, found in parts.items() if len(found) == whole[stem]}
    live = {path.stem for path in segments}
    for stem, found in parts.items():
        if stem in complete or stem not in live:  # incomplete without its segment cannot happen; keep the rows
            tables.extend(_read_part(path) for path in found.values())
    for path in segments:
        if path.stem not in complete and (table := read_segment(path)) is not None:
            tables.append(table)
    return tables
