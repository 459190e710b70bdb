"""The online scoring service (FastAPI): POST /predict, GET /health, GET /metrics, /docs.

Client mistakes are 4xx with a message (400 malformed or too deeply nested JSON, 401 missing token,
404/405, 408 body too slow, 413 too large, 422 contract violations), all in one shape:
`{"error": ..., "request_id": ..., "detail"?: [...]}`. 503 when no champion is loaded or the
prediction cannot be recorded, answered without internals (the cause is logged server-side);
other 5xx are reserved for our own bugs. `/docs` is Swagger UI served from the package's own
files (fastapi-offline), with no CDN.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException

from ml_assets import settings
from ml_assets.mlflow.problems import served_problem
from ml_assets.mlflow.registry import CHALLENGER, CHAMPION, client
from ml_assets.problem.loading import load_problem
from ml_assets.serving.batcher import MicroBatcher, NoModelError
from ml_assets.serving.experiment import ExperimentWatcher
from ml_assets.serving.guard import Guard, error
from ml_assets.serving.metrics import ServiceMetrics
from ml_assets.serving.predlog import LogUnavailable, PredictionLog
from ml_assets.serving.scorer import Scorer
from ml_assets.serving.startup import check_tracking_uri
from ml_assets.serving.watcher import ModelWatcher

TOKEN_ENV = "ML_ASSETS_SERVICE_TOKEN"
CONFIG_ENV = "ML_ASSETS_SERVICE_CONFIG"  # how `ml-assets serve --workers N` hands the config to each worker
logger = logging.getLogger(__name__)


@dataclass
class ServiceConfig:
    problem: str  # the name; its spec is imported by the reference its model versions record ...
    problem_ref: str | None = None  # ... or by this one ("package.module:ATTR"): starts before any registration
    tracking_uri: str | None = None  # default: the platform's (MLFLOW_TRACKING_URI or the embedded store)
    poll_seconds: float = 10.0
    shadow: bool = False  # also score the `challenger` alias and log both
    log_dir: Path | None = None  # default: <data>/prediction_log/<problem>
    log_roll_seconds: float = 60.0  # a segment is compacted to Parquet after this long
    log_durability: str = "process"  # what an answer waits for: written (process), synced (machine), nothing (none)
    log_sync_interval: float = 1.0  # process/none: the log is fdatasynced this often (a machine crash's window)
    max_body_bytes: int = 8 * 1024 * 1024
    body_timeout_seconds: float = 10.0
    max_records: int = 10_000
    token: str | None = field(default_factory=lambda: os.environ.get(TOKEN_ENV) or None, repr=False)


def app_from_env() -> FastAPI:
    """The app from the JSON config in $ML_ASSETS_SERVICE_CONFIG (uvicorn's factory for --workers)."""
    values = json.loads(os.environ[CONFIG_ENV])
    if values.get("log_dir"):
        values["log_dir"] = Path(values["log_dir"])
    return create_app(ServiceConfig(**values))


def config_env(config: ServiceConfig) -> str:
    """`config` as $ML_ASSETS_SERVICE_CONFIG (without the token: each worker reads its own env)."""
    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items() if k != "token"}
    return json.dumps(values)


def create_app(config: ServiceConfig) -> FastAPI:
    """Raises `startup.BadTrackingUri` for a store that does not exist (see `startup`) and SpecError
    when no version of the problem's model is registered (or its problem cannot be imported)."""
    check_tracking_uri(config.tracking_uri or settings.mlflow_tracking_uri())
    # The spec is fixed for the process's life (a hot swap changes the model, not the request contract).
    spec = load_problem(config.problem_ref) if config.problem_ref else \
        served_problem(client(config.tracking_uri), config.problem)
    scorer, metrics = Scorer(spec, config.max_records), ServiceMetrics()

    def swapped(role: str):
        return lambda new, old: metrics.loaded(role, new.name, new.version, old.version if old else None)

    champion = ModelWatcher(spec.registered_model_name, CHAMPION, config.tracking_uri, swapped("champion"),
                            scorer.prepare)
    shadow = ModelWatcher(spec.registered_model_name, CHALLENGER, config.tracking_uri, swapped("shadow"),
                          scorer.prepare) if config.shadow else None
    log = PredictionLog(config.log_dir or settings.data_dir() / "prediction_log" / spec.name,
                        roll_seconds=config.log_roll_seconds, durability=config.log_durability,
                        sync_interval=config.log_sync_interval)
    experiment = ExperimentWatcher(spec.registered_model_name, config.tracking_uri, scorer.prepare,
                                   lambda active: _experiment_gauge(metrics, active))
    batcher = MicroBatcher(scorer, champion, metrics, log, shadow, experiment=experiment)
    watchers = [w for w in (champion, shadow, experiment) if w is not None]

    async def poll() -> None:
        while True:
            await asyncio.sleep(config.poll_seconds)
            for watcher in watchers:
                await asyncio.to_thread(watcher.refresh)
            metrics.degraded.set(1 if champion.degraded else 0)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        for watcher in watchers:
            await asyncio.to_thread(watcher.refresh)
        metrics.degraded.set(1 if champion.degraded else 0)
        gc.freeze()  # the long-lived heap (libraries, model) leaves the collector: no multi-ms gen-2 pauses
        log.start()
        poller = asyncio.create_task(poll())
        yield
        poller.cancel()
        batcher.executor.shutdown(wait=True)
        log.close()

    async def answer_predict(body: bytes, request_id: str) -> JSONResponse:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            return error(400, f"malformed JSON: {err}", request_id, metrics, "bad_json")
        except RecursionError:
            return error(400, "malformed JSON: nested too deeply (a record is one flat object)", request_id,
                         metrics, "bad_json")
        batch = isinstance(data, dict) and "records" in data
        if batch and isinstance(data["records"], list) and len(data["records"]) > config.max_records:
            return error(413, f"{len(data['records'])} records in one request; the limit is {config.max_records}",
                         request_id, metrics, "too_many_records")
        if not isinstance(data, dict):
            return error(422, 'expected a JSON object: one record, or {"records": [...]}', request_id, metrics,
                         "contract")
        try:
            records = scorer.batch_model.model_validate(data).records if batch \
                else [scorer.record_model.model_validate(data)]
        except ValidationError as err:
            return error(422, "the request does not match the input contract", request_id, metrics, "contract",
                         [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in err.errors()[:50]])
        if dupes := scorer.duplicates(records):
            return error(422, f"duplicate keys within the request: {dupes[:5]}", request_id, metrics, "contract")
        try:
            scored = await batcher.score(records, request_id)
        except NoModelError:
            return error(503, "no model to score with: " + champion.public_reason(), request_id, metrics,
                         "no_model")
        except LogUnavailable as err:
            return error(503, f"{err}; not answered (see the service log)", request_id, metrics, "log")
        versions = scored.versions  # an experiment answers some entities with its challenger
        head = {"request_id": request_id, "model_name": spec.registered_model_name,
                "model_version": scored.version}  # a batch: the champion; each prediction names its own
        labels = scored.label.tolist() if scored.label is not None else [None] * len(records)
        if not batch:
            version = scored.version if versions is None else str(versions[0])
            return JSONResponse({**head, "model_version": version, "score": float(scored.score[0]), "label": labels[0]},
                                headers={"x-request-id": request_id})
        ids = [getattr(r, spec.data.id_column) for r in records]
        rows = [{spec.data.id_column: i, "score": s, "label": lab} for i, s, lab in zip(ids, scored.score.tolist(), labels)]
        if versions is not None:
            for row, version in zip(rows, versions.tolist()):
                row["model_version"] = version
        return JSONResponse({**head, "predictions": rows}, headers={"x-request-id": request_id})

    app = FastAPIOffline(title=f"ml_assets scoring: {spec.name}", lifespan=lifespan, redoc_url=None,
                         description=f"Scores `{spec.registered_model_name}@{CHAMPION}` from the MLflow registry.")
    # POST /predict is answered by the guard itself: the same handler as the route below (which
    # documents it), without the framework's routing, dependency and exception layers per request.
    app.add_middleware(Guard, metrics=metrics, max_body_bytes=config.max_body_bytes,
                       body_timeout_seconds=config.body_timeout_seconds, token=config.token,
                       fast_routes={("POST", "/predict"): answer_predict})
    _error_shape(app, metrics)
    app.state.champion, app.state.shadow, app.state.log, app.state.metrics = champion, shadow, log, metrics

    @app.post("/predict", openapi_extra=_request_body(scorer))
    async def predict(request: Request) -> JSONResponse:
        """One record -> one prediction; `{"records": [...]}` -> one prediction per record, in order."""
        return await answer_predict(await request.body(), request.state.request_id)

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 while a champion is loaded (status `degraded` if the registry cannot be followed), else 503."""
        state = champion.describe()
        status = "unavailable" if champion.current is None else ("degraded" if champion.degraded else "ok")
        body = {"status": status, "problem": spec.name, "champion": state,
                "shadow": shadow.describe() if shadow else None, "experiment": experiment.describe(),
                "worker_pid": os.getpid(),  # with --workers N: which process answered
                "log_files_written": log.written_files,
                "time": time.time()}
        return JSONResponse(body, status_code=503 if champion.current is None else 200)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: _openapi(app, scorer)
    return app


def _experiment_gauge(metrics: ServiceMetrics, active) -> None:
    metrics.experiment.clear()  # one series: the experiment being routed now (none: no series)
    if active is not None:
        r = active.record
        metrics.experiment.labels(r.id, r.mode, r.challenger_version).set(r.challenger_share)


def _error_shape(app: FastAPI, metrics: ServiceMetrics) -> None:
    """404, 405 and FastAPI's own validation errors in the service's one error shape."""
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), request.state.request_id, metrics, f"http_{exc.status_code}",
                     headers=exc.headers)

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "the request does not match the endpoint", request.state.request_id, metrics, "contract",
                     [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()[:50]])

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def _payload_schema(scorer: Scorer) -> dict:
    return TypeAdapter(scorer.record_model | scorer.batch_model).json_schema(
        ref_template="#/components/schemas/{model}")


def _request_body(scorer: Scorer) -> dict:
    schema = {k: v for k, v in _payload_schema(scorer).items() if k != "$defs"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _openapi(app: FastAPI, scorer: Scorer) -> dict:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version="1", description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(_payload_schema(scorer).get("$defs", {}))
        app.openapi_schema = schema
    return app.openapi_schema
