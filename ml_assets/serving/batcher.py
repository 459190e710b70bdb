"""Opportunistic micro-batching: requests that arrive together are scored together in one call.
At low load a request is scored alone and at once (no added wait); under load, every request the
event loop parsed in the same turn shares one model call, so the fixed per-call cost of feature
building and the model is shared by every waiting request.

Where a batch is scored depends on what it costs. A model with a verified numpy path
(`compiled`: preprocessing replayed, and the trees of a HistGradientBoosting model or a linear
model) takes tens of microseconds for a few rows: such batches are scored on the event loop
itself, which saves two thread hand-offs per batch (each can wait up to the GIL switch interval,
5 ms, on a busy interpreter). Large batches and other models (any scikit-learn estimator, user
code) are scored in one scoring thread, so the loop keeps parsing and answering HTTP meanwhile.
Unless the prediction log's durability is `none`, answers are released once their rows are in the
log: at `process` written by the thread that scored them, right after scoring; at `machine` written
and synced by the log's writer thread (one wake-up of the loop per batch, not per request)."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from ml_assets.core.experiments import CHALLENGER_ARM, CHAMPION_ARM
from ml_assets.serving.compiled import CompiledPipeline
from ml_assets.serving.experiment import Active, ExperimentWatcher
from ml_assets.serving.metrics import ServiceMetrics
from ml_assets.serving.predlog import LogUnavailable, PredictionLog
from ml_assets.serving.scorer import Scorer
from ml_assets.serving.trees import TreeEnsemble
from ml_assets.serving.watcher import ModelWatcher

logger = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """No champion is loaded (none promoted yet, or the registry was unreachable since start)."""


@dataclass
class Scored:
    score: np.ndarray
    label: np.ndarray | None
    version: str  # the champion's
    versions: np.ndarray | None = None  # per row, while an experiment routes some rows to its challenger


@dataclass
class _Item:
    records: list[BaseModel]
    request_id: str
    future: asyncio.Future


class MicroBatcher:
    def __init__(self, scorer: Scorer, champion: ModelWatcher, metrics: ServiceMetrics,
                 log: PredictionLog | None = None, shadow: ModelWatcher | None = None, max_rows: int = 2048,
                 model_threads: int = 1, inline_rows: int = 256, experiment: ExperimentWatcher | None = None):
        self.scorer, self.champion, self.shadow, self.metrics, self.log = scorer, champion, shadow, metrics, log
        self.experiment = experiment
        self.max_rows, self.inline_rows = max_rows, inline_rows
        self.pending: list[_Item] = []
        self.flush_scheduled = False
        # Online batches are small: OpenMP/BLAS thread teams cost more than they save there, and the
        # event loop needs the other core. The limit applies to the scoring thread's model calls.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="scoring",
                                           initializer=lambda: threadpool_limits(model_threads))

    async def score(self, records: list[BaseModel], request_id: str) -> Scored:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append(_Item(records, request_id, future))
        if not self.flush_scheduled:  # after the requests already parsed in this turn of the loop
            self.flush_scheduled = True
            loop.call_soon(self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self.flush_scheduled = False
        items, self.pending = self.pending, []
        shadow = self.shadow.current if self.shadow is not None else None
        active = self.experiment.active if self.experiment is not None else None
        fast = _fast(self.champion.current) and (shadow is None or _fast(shadow)) and \
            (active is None or active.challenger is None or _fast(active.challenger))
        batch, rows = [], 0
        for item in [*items, None]:  # None: the end, flush what is left
            if batch and (item is None or rows + len(item.records) > self.max_rows):
                if fast and rows <= self.inline_rows:
                    self._guarded(batch, loop)
                else:
                    loop.run_in_executor(self.executor, self._guarded, batch, loop)
                batch, rows = [], 0
            if item is not None:
                batch.append(item)
                rows += len(item.records)

    def _guarded(self, items: list[_Item], loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._process(items, loop)
        except Exception as err:  # our bug: those requests get a 500 (logged by the guard), not a hang
            _release(loop, [(item.future, None, err) for item in items])

    def _process(self, items: list[_Item], loop: asyncio.AbstractEventLoop) -> None:
        model = self.champion.current  # read once: the whole batch is scored by one version
        active = self.experiment.active if self.experiment is not None else None  # and routed by one experiment
        try:
            if model is None:
                raise NoModelError(self.champion.degraded or "no champion model is loaded")
            columns = self.scorer.arrays([r for item in items for r in item.records])
            started = time.perf_counter()
            score, label = self.scorer.score(model, columns)
        except Exception as err:
            return _release(loop, [(item.future, None, err) for item in items])
        n = len(score)
        routing = None
        if active is not None:
            self.metrics.model_seconds.labels(active.record.id, CHAMPION_ARM).observe(time.perf_counter() - started)
            score, label, routing = self._route(active, model, columns, score, label)
        self.metrics.batch_rows.observe(n)  # before answering, so /metrics right after sees it
        self.metrics.predictions.labels(model.version).inc(n)
        self.metrics.scores.observe_many(score)
        parts, offset = [], 0
        for item in items:
            end = offset + len(item.records)
            parts.append(Scored(score[offset:end], None if label is None else label[offset:end], model.version,
                                None if routing is None else routing["model_version"][offset:end]))
            offset = end

        def answer(err: BaseException | None = None) -> None:
            _release(loop, [(item.future, part, err) for item, part in zip(items, parts)])

        if self.log is None:
            return answer()
        waits = self.log.answers_wait  # then answered once the rows are in the log (group commit, see predlog)
        if not waits:
            answer()
        try:
            self.log.append(self._log_rows(items, columns, n, score, label, model, active, routing),
                            answer if waits else None)
        except Exception:  # rows the log cannot take: logged here; unless durability is none, not answered
            logger.exception("prediction log append failed")
            self.metrics.errors.labels("log").inc()
            if waits:
                answer(LogUnavailable("the prediction could not be recorded"))

    def _route(self, active: Active, model, columns: dict, score: np.ndarray, label: np.ndarray | None):
        """The challenger's answers for the rows its arm owns; a challenger that fails leaves them to
        the champion (counted: the error-rate guardrail stops such an experiment), never to a 5xx."""
        experiment, routed = active.record.id, active.routed(columns[self.scorer.spec.data.id_column])
        assigned = int(routed.sum())
        self.metrics.routed.labels(experiment, CHALLENGER_ARM).inc(assigned)
        self.metrics.routed.labels(experiment, CHAMPION_ARM).inc(len(score) - assigned)
        if assigned and active.challenger is None:  # it could not be loaded: its failures
            self.metrics.failures.labels(experiment, CHALLENGER_ARM).inc(assigned)
            routed = np.zeros(len(score), dtype=bool)
        elif assigned:
            started = time.perf_counter()
            try:
                answer, answer_label = self.scorer.score(active.challenger, {k: v[routed] for k, v in columns.items()})
                self.metrics.model_seconds.labels(experiment, CHALLENGER_ARM).observe(time.perf_counter() - started)
                score = np.asarray(score, dtype=float).copy()
                score[routed] = answer
                if label is not None:
                    label = np.asarray(label).copy()
                    label[routed] = answer_label
            except Exception:
                logger.warning("challenger v%s failed on %d rows; the champion answered them",
                               active.challenger.version, assigned, exc_info=True)
                self.metrics.failures.labels(experiment, CHALLENGER_ARM).inc(assigned)
                routed = np.zeros(len(score), dtype=bool)
        self.metrics.arm_scores.observe_many(score[~routed], (experiment, CHAMPION_ARM))
        self.metrics.arm_scores.observe_many(score[routed], (experiment, CHALLENGER_ARM))
        return score, label, {"experiment_id": np.full(len(score), experiment, dtype=object),
                              "arm": active.arms(routed),
                              "model_version": np.where(routed, active.challenger.version if active.challenger else "",
                                                        model.version).astype(object)}

    def _log_rows(self, items, inputs, n, score, label, model, active: Active | None = None,
                  routing: dict | None = None) -> dict[str, np.ndarray]:
        now = np.datetime64(time.time_ns(), "ns")
        request_ids = [i.request_id for i in items]
        columns = {"request_id": np.array(request_ids, dtype=object) if n == len(items) else
                   np.repeat(np.array(request_ids, dtype=object), [len(i.records) for i in items]),
                   "timestamp": np.full(n, now), **inputs,  # categoricals are object arrays: one schema per file
                   "model_name": np.full(n, model.name, dtype=object),
                   "model_version": np.full(n, model.version, dtype=object), "score": np.asarray(score, dtype=float)}
        if label is not None:
            columns["label"] = np.asarray(label)
        # every row says which experiment and arm it belongs to (None outside an experiment)
        columns["experiment_id"] = routing["experiment_id"] if routing else np.full(n, None, dtype=object)
        columns["arm"] = routing["arm"] if routing else np.full(n, None, dtype=object)
        if routing:
            columns["model_version"] = routing["model_version"]
        shadow = active.challenger if active is not None and active.shadow else \
            (self.shadow.current if self.shadow is not None else None)
        if active is not None and active.shadow and shadow is None:  # could not be loaded: all its rows failed
            self.metrics.routed.labels(active.record.id, CHALLENGER_ARM).inc(n)
            self.metrics.failures.labels(active.record.id, CHALLENGER_ARM).inc(n)
        columns["shadow_version"] = np.full(n, shadow.version if shadow else None, dtype=object)
        columns["shadow_score"] = np.full(n, np.nan)
        if shadow is not None and shadow.version != model.version:
            started = time.perf_counter()
            try:
                columns["shadow_score"] = np.asarray(self.scorer.score(shadow, inputs)[0], dtype=float)
            except Exception:  # a broken challenger must never hurt the champion's answers
                self.metrics.errors.labels("shadow").inc()
                if active is not None:
                    self.metrics.failures.labels(active.record.id, CHALLENGER_ARM).inc(n)
            self.metrics.latency.labels("shadow", "-").observe(time.perf_counter() - started)
            if active is not None and active.shadow:
                self.metrics.model_seconds.labels(active.record.id, CHALLENGER_ARM).observe(time.perf_counter() - started)
                self.metrics.routed.labels(active.record.id, CHALLENGER_ARM).inc(n)
                self.metrics.arm_scores.observe_many(columns["shadow_score"], (active.record.id, CHALLENGER_ARM))
        return columns


def _fast(model) -> bool:
    """Whether the model's cost per small batch is known to be small (see the module doc)."""
    predictor = getattr(model, "predictor", None)
    if not isinstance(predictor, CompiledPipeline):
        return False
    return isinstance(predictor.model, TreeEnsemble) or type(predictor.model).__module__.startswith(
        "sklearn.linear_model")


def _release(loop: asyncio.AbstractEventLoop, outcomes: list) -> None:
    """Resolve (future, result, error) triples on the loop, with one wake-up for them all."""
    def resolve() -> None:
        for future, result, err in outcomes:
            if err is None:
                _set_result(future, result)
            else:
                _set_exception(future, err)

    if _on_loop(loop):
        resolve()
    else:
        loop.call_soon_threadsafe(resolve)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _set_result(future: asyncio.Future, value) -> None:
    if not future.done():  # the client may have gone away
        future.set_result(value)


def _set_exception(future: asyncio.Future, err: BaseException) -> None:
    if not future.done():
        future.set_exception(err)
