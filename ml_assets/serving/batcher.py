"""Opportunistic micro-batching: requests that arrive while the model is busy are scored together
in one call. At low load a request is scored alone and at once (no added wait); under load the
fixed per-call cost of pandas + scikit-learn (~1 ms) is shared by every waiting request. One
scoring thread keeps the event loop free to parse and answer HTTP meanwhile. With the durable
prediction log, answers are released when the log's writer thread has synced their rows, while
this thread already scores the next batch."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from ml_assets.serving.metrics import ServiceMetrics
from ml_assets.serving.predlog import LogUnavailable, PredictionLog
from ml_assets.serving.scorer import Scorer
from ml_assets.serving.watcher import ModelWatcher

logger = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """No champion is loaded (none promoted yet, or the registry was unreachable since start)."""


@dataclass
class Scored:
    score: np.ndarray
    label: np.ndarray | None
    version: str


@dataclass
class _Item:
    records: list[BaseModel]
    request_id: str
    future: asyncio.Future


class MicroBatcher:
    def __init__(self, scorer: Scorer, champion: ModelWatcher, metrics: ServiceMetrics,
                 log: PredictionLog | None = None, shadow: ModelWatcher | None = None, max_rows: int = 2048,
                 model_threads: int = 1):
        self.scorer, self.champion, self.shadow, self.metrics, self.log = scorer, champion, shadow, metrics, log
        self.max_rows = max_rows
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        # Online batches are small: OpenMP/BLAS thread teams cost more than they save there, and the
        # event loop needs the other core. The limit applies to the scoring thread's model calls.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="scoring",
                                           initializer=lambda: threadpool_limits(model_threads))

    async def score(self, records: list[BaseModel], request_id: str) -> Scored:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Item(records, request_id, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            rows = len(items[0].records)
            while rows < self.max_rows and not self.queue.empty():
                items.append(self.queue.get_nowait())
                rows += len(items[-1].records)
            await loop.run_in_executor(self.executor, self._process, items, loop)

    def _process(self, items: list[_Item], loop: asyncio.AbstractEventLoop) -> None:
        model = self.champion.current  # read once: the whole batch is scored by one version
        try:
            if model is None:
                raise NoModelError(self.champion.degraded or "no champion model is loaded")
            frame = self.scorer.frame([r for item in items for r in item.records])
            score, label = self.scorer.score(model, frame)
        except Exception as err:
            for item in items:
                loop.call_soon_threadsafe(_set_exception, item.future, err)
            return
        self.metrics.batch_rows.observe(len(frame))  # before answering, so /metrics right after sees it
        self.metrics.predictions.labels(model.version).inc(len(frame))
        self.metrics.scores.observe_many(score)
        parts, offset = [], 0
        for item in items:
            end = offset + len(item.records)
            parts.append(Scored(score[offset:end], None if label is None else label[offset:end], model.version))
            offset = end

        def answer(err: BaseException | None = None) -> None:
            for item, part in zip(items, parts):
                if err is None:
                    loop.call_soon_threadsafe(_set_result, item.future, part)
                else:
                    loop.call_soon_threadsafe(_set_exception, item.future, err)

        if self.log is None:
            return answer()
        durable = self.log.durable  # then answered once the rows are on disk (group commit, see predlog)
        if not durable:
            answer()
        try:
            self.log.append(self._log_rows(items, frame, score, label, model), answer if durable else None)
        except Exception:  # rows the log cannot take: logged here; with a durable log, not answered
            logger.exception("prediction log append failed")
            self.metrics.errors.labels("log").inc()
            if durable:
                answer(LogUnavailable("the prediction could not be recorded"))

    def _log_rows(self, items, frame, score, label, model) -> dict[str, np.ndarray]:
        n, now = len(frame), np.datetime64(time.time_ns(), "ns")
        columns = {"request_id": np.repeat([i.request_id for i in items], [len(i.records) for i in items]),
                   "timestamp": np.full(n, now), **{c: np.asarray(frame[c], dtype=_log_dtype(frame[c]))
                                                    for c in frame.columns},
                   "model_name": np.full(n, model.name, dtype=object),
                   "model_version": np.full(n, model.version, dtype=object), "score": np.asarray(score, dtype=float)}
        if label is not None:
            columns["label"] = np.asarray(label)
        shadow = self.shadow.current if self.shadow is not None else None
        columns["shadow_version"] = np.full(n, shadow.version if shadow else None, dtype=object)
        columns["shadow_score"] = np.full(n, np.nan)
        if shadow is not None and shadow.version != model.version:
            started = time.perf_counter()
            try:
                columns["shadow_score"] = np.asarray(self.scorer.score(shadow, frame)[0], dtype=float)
            except Exception:  # a broken challenger must never hurt the champion's answers
                self.metrics.errors.labels("shadow").inc()
            self.metrics.latency.labels("shadow", "-").observe(time.perf_counter() - started)
        return columns


def _log_dtype(series: pd.Series):
    """Plain numpy types for the log (categoricals as strings, so every file has the same schema)."""
    return object if isinstance(series.dtype, pd.CategoricalDtype) else series.dtype


def _set_result(future: asyncio.Future, value) -> None:
    if not future.done():  # the client may have gone away
        future.set_result(value)


def _set_exception(future: asyncio.Future, err: BaseException) -> None:
    if not future.done():
        future.set_exception(err)
