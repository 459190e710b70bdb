"""The prediction log: every scored record with its inputs, outputs, model version, timestamp and
request id, in the log before it is answered, compacted to Parquet partitioned by day (`read_log`
reads both; the layout and crash guarantees are in `logstore`).

Writing: at `process` (the default) the thread that scored a batch (for small batches the event
loop itself) encodes its rows as JSON lines (`segment`: ~10 µs, where Arrow conversion took ~100),
appends them to this process's segment file and then releases its answers, in the same turn: the
micro-batcher has already grouped the requests parsed together, and a `write()` into the page cache
takes microseconds, less than handing the rows to another thread and back. At `machine` and `none` one writer thread takes everything that is
waiting, encodes and appends it as one group (at `machine` also fdatasyncs it) and then releases
that group's answers: group commit, requests that arrive during a sync share the next one. If the
log cannot be written the request gets 503, not an answer that is not recorded.

What an answer waits for is the log's durability level (`ml-assets serve --log-durability`):

- `process` (the default): the batch's rows have been written to the segment file (`write()` has
  returned for every byte; nothing is left in a user-space buffer). They are then in the kernel's
  page cache, which outlives the process: kill -9, an OOM kill or a crash of the service loses no
  answered prediction. A background thread fdatasyncs the segment every `sync_interval` seconds
  (1 s by default) and every segment is synced when it rolls over or the log closes, so a crash of
  the *machine* (kernel panic, power cut) can lose the predictions answered in about the last
  `sync_interval` seconds. No answer waits for the disk itself (a `write()` blocks only when the
  kernel throttles writers of too much unwritten data, or on a failing disk: then the event loop
  waits with it).
- `machine`: as `process`, and the group is also fdatasynced before its answers are released:
  even a power cut loses no answered prediction; each answer waits for the disk's flush (group
  commit shares one among the requests of a group).
- `none`: answered first, written afterwards (and synced as in `process`): kill -9 loses the rows
  not yet written, a machine crash also the last `sync_interval` seconds. For deployments that
  prefer not to wait for the log at all (the trade of a log shipper).

Segments roll over after `roll_seconds` or `roll_rows` and are synced and compacted by a background
thread (where the segment becomes Arrow and Parquet, off the request path); segments left by a
killed process are compacted at the next start-up (`logstore.recover`), keeping every complete
record of a torn last write.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ml_assets.serving import DURABILITY
from ml_assets.serving.logstore import compact, read_log, recover
from ml_assets.serving.segment import Segment

__all__ = ["DURABILITY", "LogUnavailable", "PredictionLog", "read_log"]
logger = logging.getLogger(__name__)
Done = Callable[[BaseException | None], None]
Columns = dict[str, np.ndarray]


class LogUnavailable(RuntimeError):
    """The prediction log could not be written: the prediction is not answered."""


class PredictionLog:
    def __init__(self, root: Path, roll_rows: int = 200_000, roll_seconds: float = 60.0,
                 durability: str = "process", sync_interval: float = 1.0):
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {DURABILITY}, not {durability!r}")
        if not sync_interval > 0:
            raise ValueError(f"sync_interval must be positive, not {sync_interval!r}")
        self.root, self.roll_rows, self.roll_seconds = Path(root), roll_rows, roll_seconds
        self.durability, self.sync_interval = durability, sync_interval
        self._pending: list[tuple[Columns, Done | None]] = []
        self._cond = threading.Condition()
        self._stop = False
        self._segment: Segment | None = None
        self._closed_segments: queue.Queue[Segment | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="prediction-log", daemon=True)
        self._compactor = threading.Thread(target=self._compact_loop, name="prediction-log-compactor", daemon=True)
        self._syncer = threading.Thread(target=self._sync_loop, name="prediction-log-sync", daemon=True)
        self._closing = threading.Event()
        self._io = threading.Lock()  # held while the open segment is written or rolled over
        self.written_files = 0

    def start(self) -> None:
        """Compact what dead processes left, then start writing."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.written_files += recover(self.root)
        self._writer.start()
        self._compactor.start()
        if self.durability != "machine":
            self._syncer.start()

    @property
    def answers_wait(self) -> bool:
        """Whether an answer waits for its rows (`append`'s `done`): in `process` and `machine`."""
        return self.durability != "none"

    def append(self, columns: dict[str, np.ndarray], done: Done | None = None) -> None:
        """One scored batch as equal-length column arrays (with a datetime64 `timestamp`).
        `done(None)` is called once the rows are written (and, at `machine`, synced),
        `done(LogUnavailable)` if they cannot be (`none` passes no `done`: answered already).

        At `process` the rows are written here, by the calling thread (for small batches the event
        loop, which then answers in the same turn: a `write()` into the page cache takes
        microseconds, and a hand-off to the writer thread and back cost more than the write).
        Otherwise the writer thread writes every batch that is waiting with one `write()` (and at
        `machine` one fdatasync): group commit."""
        if self.durability == "process" and done is not None:
            with self._io:
                self._commit([(columns, done)])
                if self._due():
                    self._roll()
            return
        with self._cond:
            self._pending.append((columns, done))
            self._cond.notify()

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    if not self._cond.wait(timeout=self._seconds_to_roll()):
                        break  # idle: time to roll the segment over
                group, self._pending = self._pending, []
                stopping = self._stop and not group
            with self._io:  # `append` writes from other threads at `process`
                if group:
                    self._commit(group)
                if stopping or self._due():
                    self._roll()
            if stopping:
                return

    def _commit(self, group: list[tuple[Columns, Done | None]]) -> None:
        if self._segment is None:
            self._segment = Segment(self.root)
        lines, outcome, rows = [], {}, 0
        for item in group:
            try:
                lines.append(self._segment.encode(item[0]))
                rows += len(next(iter(item[0].values())))
            except Exception:  # values JSON cannot hold: these batches fail, the others are written
                logger.exception("prediction log rows could not be encoded")
                outcome[id(item)] = LogUnavailable("the prediction could not be recorded")
        try:
            if lines:  # one write for the group; every byte handed to the kernel outlives this process
                self._segment.write(b"".join(lines), rows)
                self._segment.flush()
                if self.durability == "machine":
                    self._segment.sync()
        except Exception:  # disk full, permissions...: logged here, never answered as a success
            logger.exception("prediction log write failed under %s", self.root)
            error = LogUnavailable("the prediction could not be recorded")
            outcome.update({id(item): error for item in group if id(item) not in outcome})
            self._abandon()
        for item in group:
            if item[1] is not None:
                try:
                    item[1](outcome.get(id(item)))
                except Exception:  # a closed event loop at shutdown must not stop the writer
                    logger.exception("prediction log callback failed")

    def _seconds_to_roll(self) -> float:
        if self._segment is None:  # at `process` another thread may open one: look again within a second
            return min(self.roll_seconds, 1.0)
        return max(0.01, self.roll_seconds - (time.monotonic() - self._segment.opened))

    def _due(self) -> bool:
        s = self._segment
        return s is not None and (s.rows >= self.roll_rows or time.monotonic() - s.opened >= self.roll_seconds)

    def _roll(self) -> None:
        segment, self._segment = self._segment, None
        if segment is not None:
            segment.close()
            if self.durability == "machine":  # a group's rows may span the rolled segment and the next
                segment.sync_written()
            self._closed_segments.put(segment)

    def _abandon(self) -> None:
        """After a failed write the segment may be torn: leave it for recovery, start a new one."""
        segment, self._segment = self._segment, None
        if segment is not None:
            try:
                segment.release()
            except OSError:
                pass

    def _sync_loop(self) -> None:
        """`process` and `none`: the open segment's written rows reach the disk within `sync_interval`."""
        while not self._closing.wait(self.sync_interval):
            segment = self._segment  # may be rolled over meanwhile: then the compactor syncs it
            if segment is not None:
                try:
                    segment.sync_written()
                except Exception:  # the writer's next write fails too and answers 503
                    logger.exception("prediction log sync failed for %s", segment.path)

    def _compact_loop(self) -> None:
        while (segment := self._closed_segments.get()) is not None:
            try:
                segment.sync_written()  # here, not on the writer thread: no answer waits for it
                self.written_files += compact(segment.path, self.root)
            except Exception:  # the segment stays; the next start-up compacts it
                logger.exception("prediction log compaction failed for %s", segment.path)
            finally:
                segment.release()

    def close(self) -> None:
        """Write and sync what is pending, compact this process's segments, stop the threads."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._writer.is_alive():
            self._writer.join(timeout=60)
        self._closing.set()
        self._closed_segments.put(None)
        if self._compactor.is_alive():
            self._compactor.join(timeout=120)

