"""Prometheus metrics of the scoring service, in a registry of its own (one per app instance)."""

from __future__ import annotations

import threading

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = tuple(np.round(np.linspace(0.1, 1.0, 10), 2))


class ScoreHistogram(Collector):
    """A score histogram updated a whole batch at a time (one numpy call, not one Python call per
    row: a 10k-row batch would otherwise spend milliseconds in metrics); one series per label set."""

    def __init__(self, name: str, doc: str, buckets: tuple[float, ...], labelnames: tuple[str, ...] = ()):
        self.name, self.doc, self.bounds, self.labelnames = name, doc, np.asarray(buckets, dtype=float), labelnames
        self.series: dict[tuple[str, ...], list] = {}  # labels -> [counts (last: +Inf), sum]
        self.lock = threading.Lock()

    def observe_many(self, values: np.ndarray, labels: tuple[str, ...] = ()) -> None:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        counts = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self.bounds) + 1)
        with self.lock:
            series = self.series.setdefault(labels, [np.zeros(len(self.bounds) + 1, dtype=np.int64), 0.0])
            series[0] += counts
            series[1] += float(values.sum())

    def collect(self):
        family = HistogramMetricFamily(self.name, self.doc, labels=list(self.labelnames))
        with self.lock:
            snapshot = [(labels, np.cumsum(counts), total) for labels, (counts, total) in self.series.items()]
        if not snapshot and not self.labelnames:  # an unlabelled histogram is shown from the start
            snapshot = [((), np.zeros(len(self.bounds) + 1, dtype=np.int64), 0.0)]
        for labels, cumulative, total in snapshot:
            buckets = [(f"{b:g}", int(c)) for b, c in zip(self.bounds, cumulative[:-1])] + [("+Inf", int(cumulative[-1]))]
            family.add_metric(list(labels), buckets, total)
        yield family


class ServiceMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ml_assets_http_requests_total", "HTTP requests by endpoint and status code",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("ml_assets_http_request_duration_seconds", "Request latency by endpoint",
                                 ["endpoint", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.predictions = Counter("ml_assets_predictions_total", "Records scored", ["model_version"], registry=r)
        self.batch_rows = Histogram("ml_assets_scoring_batch_rows", "Rows per model call (after micro-batching)",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384), registry=r)
        self.errors = Counter("ml_assets_errors_total", "Errors by kind (client errors are 4xx, internal 5xx)",
                              ["kind"], registry=r)
        self.model_info = Gauge("ml_assets_model_info", "The loaded model (value 1)", ["model", "version", "role"],
                                registry=r)
        self.model_version = Gauge("ml_assets_model_version", "Loaded champion version number", ["model"], registry=r)
        self.degraded = Gauge("ml_assets_degraded", "1 while the registry cannot be read or a load failed",
                              registry=r)
        self.swaps = Counter("ml_assets_model_swaps_total", "Hot swaps to a new model version", ["role"], registry=r)
        self.scores = ScoreHistogram("ml_assets_prediction_score", "Champion prediction scores", SCORE_BUCKETS)
        r.register(self.scores)
        # An online experiment, per arm: what the guardrails (core/guardrails.py) and the alert rules read
        self.routed = Counter("ml_assets_experiment_routed", "Rows routed to each arm of the running experiment",
                              ["experiment", "arm"], registry=r)
        self.failures = Counter("ml_assets_experiment_failures", "Rows the challenger failed to score (answered by "
                                "the champion instead)", ["experiment", "arm"], registry=r)
        self.model_seconds = Histogram("ml_assets_experiment_model_seconds", "Model call time per arm",
                                       ["experiment", "arm"], buckets=LATENCY_BUCKETS, registry=r)
        self.arm_scores = ScoreHistogram("ml_assets_experiment_score", "Prediction scores per arm", SCORE_BUCKETS,
                                         ("experiment", "arm"))
        r.register(self.arm_scores)
        self.experiment = Gauge("ml_assets_experiment_share", "Share of entities the running experiment's challenger "
                                "answers (0 in shadow mode)", ["experiment", "mode", "challenger_version"], registry=r)

    def loaded(self, role: str, name: str, version: str, old: str | None) -> None:
        if old is not None:
            self.model_info.remove(name, old, role)
        self.model_info.labels(name, version, role).set(1)
        if role == "champion":
            self.model_version.labels(name).set(float(version))
        self.swaps.labels(role).inc()
