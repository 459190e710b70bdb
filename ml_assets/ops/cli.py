"""`ml-assets`: the operator's commands.

    ml-assets serve    --problem NAME [--port 8000] [--shadow] [--workers N]   the scoring service
                       (optional bearer token for /predict and /metrics: $ML_ASSETS_SERVICE_TOKEN)
    ml-assets rollback --problem NAME [--reason TEXT] [-m MODULE]   champion -> previous (a Dagster run)
    ml-assets status   --problem NAME [-m MODULE]                   where the registry aliases point
    ml-assets experiment start|stop|status --problem NAME [--version N] [--reason TEXT] [-m MODULE]
                                                                    the online experiment (Dagster runs)
    ml-assets exporter [-m MODULE]                                  pipeline metrics for Prometheus

The service imports the problem by the reference its model versions record; rollback, status and
the exporter load the code location (-m, else $ML_ASSETS_DEFINITIONS_MODULE, else
[tool.dagster] module_name of ./pyproject.toml). --problem defaults to $ML_ASSETS_PROBLEM.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ml_assets.ops import experiment_cli
from ml_assets.serving import DURABILITY


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ml_assets.mlflow.problems import served_problem
    from ml_assets.mlflow.registry import client
    from ml_assets.mlflow.resource import MlflowResource
    from ml_assets.problem.loading import load_problem
    from ml_assets.problem.sections import SpecError
    from ml_assets.serving.app import CONFIG_ENV, ServiceConfig, config_env
    from ml_assets.serving.startup import BadTrackingUri, check_tracking_uri

    tracking_uri = MlflowResource(tracking_uri=args.tracking_uri).get_tracking_uri()  # as the pipeline resolves it
    try:  # here, not in each worker: one clear line instead of N tracebacks
        check_tracking_uri(tracking_uri)
        if args.problem_ref:
            load_problem(args.problem_ref)
        else:
            served_problem(client(tracking_uri), args.problem)
    except (BadTrackingUri, SpecError) as err:
        print(f"ml-assets serve: {err}", file=sys.stderr)
        return 2
    # Watching the registry must fail fast (and report degraded), not retry for minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    config = ServiceConfig(problem=args.problem, problem_ref=args.problem_ref, tracking_uri=tracking_uri, poll_seconds=args.poll_seconds,
                           shadow=args.shadow, log_dir=args.log_dir, log_roll_seconds=args.log_roll_seconds,
                           log_durability=args.log_durability, log_sync_interval=args.log_sync_interval)
    os.environ[CONFIG_ENV] = config_env(config)  # every worker process builds the app from it
    uvicorn.run("ml_assets.serving.app:app_from_env", factory=True, workers=args.workers, host=args.host,
                port=args.port, log_level=args.log_level, access_log=False)
    return 0


def rollback(args: argparse.Namespace) -> int:
    from ml_assets.ops.experiment_cli import execute_job

    result, error = execute_job(args.module, f"rollback_{args.problem}_job",
                                {"ops": {f"rollback_{args.problem}_champion": {"config": {"reason": args.reason}}}})
    if error:
        print(f"rollback failed: {error}", file=sys.stderr)
        return 1
    mat = result.asset_materializations_for_node(f"rollback_{args.problem}_champion")[0]
    print(f"{args.problem}: champion is now v{mat.metadata['version'].value} "
          f"(rolled back v{mat.metadata['rolled_back_version'].value}); Dagster run {result.run_id}")
    return 0


def status(args: argparse.Namespace) -> int:
    from ml_assets.mlflow.registry import CHALLENGER, CHAMPION, PREVIOUS, alias_version
    from ml_assets.mlflow.resource import mlflow_of
    from ml_assets.ops.location import load_location
    from ml_assets.problem.spec import model_name

    # the location's `mlflow` resource: the store the pipeline writes to
    name, c = model_name(args.problem), mlflow_of(load_location(args.module)).client()
    for alias in (CHAMPION, PREVIOUS, CHALLENGER):
        version = alias_version(c, name, alias)
        print(f"{name}@{alias}: {'v' + version if version else '-'}")
    return 0


def exporter(args: argparse.Namespace) -> int:
    """Serve the pipeline metrics (drift, realized performance, training, champion, gate, run
    failures) for Prometheus until interrupted or sent SIGTERM."""
    import signal
    import threading

    from prometheus_client import start_http_server

    from ml_assets.ops.exporter import pipeline_registry
    from ml_assets.ops.location import ensure_dagster_home, load_location, location_problems

    ensure_dagster_home()  # the project's instance, as `rollback` and `make exporter` find it
    defs = load_location(args.module)
    # An explicit handler: a process started in the background may inherit SIGTERM ignored, and then
    # `docker stop`, systemd or a test could not stop it short of SIGKILL. Installed before the
    # "listening" line, so whoever waits for that line may stop it at once.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server, thread = start_http_server(args.port, addr=args.host,
                                       registry=pipeline_registry(defs, location_problems(defs)))
    print(f"pipeline metrics on http://{args.host}:{args.port}/metrics", flush=True)
    try:
        while thread.is_alive() and not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    server.shutdown()
    return 0


def _listen_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the service listens; the environment gives the defaults, so a container image sets them
    once (ML_ASSETS_SERVE_HOST=0.0.0.0) and its command line and health check stay the same."""
    parser.add_argument("--host", default=os.environ.get("ML_ASSETS_SERVE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ML_ASSETS_SERVE_PORT", "8000")))


def healthcheck(args: argparse.Namespace) -> int:
    """A container health check: 200 from GET /health (a champion is loaded) within 3 s."""
    import httpx

    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # listening everywhere: ask locally
    try:
        status = httpx.get(f"http://{host}:{args.port}/health", timeout=3).status_code
    except httpx.HTTPError as err:
        print(f"unhealthy: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: /health answered {status}", file=sys.stderr)
    return 0 if status == 200 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ml-assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve", help="run the HTTP scoring service")
    _listen_arguments(p)
    p.add_argument("--shadow", action="store_true", help="also score the challenger alias and log both")
    p.add_argument("--problem-ref", default=os.environ.get("ML_ASSETS_PROBLEM_REF"),
                   help="package.module:ATTR of the problem (default: the reference its model versions record; "
                        "give it to start before the first registration)")
    p.add_argument("--poll-seconds", type=float, default=10.0, help="how often to check the champion alias")
    p.add_argument("--tracking-uri", help="MLflow tracking/registry URI (default: the platform's)")
    p.add_argument("--log-dir", type=Path, help="prediction log root (default: data/prediction_log/<problem>)")
    p.add_argument("--log-roll-seconds", type=float, default=60.0,
                   help="compact the prediction log's segment to Parquet after this long")
    p.add_argument("--log-durability", choices=DURABILITY, default="process",
                   help="what an answer waits for. process (default): its prediction is written to the log "
                        "file, so killing the service (kill -9 included) loses no answered prediction; the log "
                        "is fdatasynced every --log-sync-interval seconds, so a machine crash or power cut can "
                        "lose about the last interval's answers. machine: also fdatasynced before answering "
                        "(a power cut loses none; each answer waits for the disk). none: answered before it is "
                        "written (kill -9 may lose the last rows)")
    p.add_argument("--no-durable-log", dest="log_durability", action="store_const", const="none",
                   help="the same as --log-durability none")
    p.add_argument("--log-sync-interval", type=float, default=1.0,
                   help="with --log-durability process or none: fdatasync the prediction log this often (seconds)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (each logs to its own segment)")
    p.add_argument("--log-level", default="info")
    p.set_defaults(run=serve)
    p = commands.add_parser("rollback", help="move the champion alias back to the previous champion")
    p.add_argument("--reason", default="manual rollback")
    p.set_defaults(run=rollback)
    p = commands.add_parser("status", help="show the registry aliases")
    p.set_defaults(run=status)
    experiment_cli.add_parser(commands)
    for sub in commands.choices.values():
        sub.add_argument("--problem", default=os.environ.get("ML_ASSETS_PROBLEM"),
                         required="ML_ASSETS_PROBLEM" not in os.environ, help="the problem's name")
        if sub is not commands.choices["serve"]:
            sub.add_argument("-m", "--module", help="the code location's definitions module")
    p = commands.add_parser("healthcheck", help="exit 0 when the local service answers /health with 200 (images)")
    _listen_arguments(p)
    p.set_defaults(run=healthcheck)
    p = commands.add_parser("exporter", help="serve pipeline metrics for Prometheus (every problem)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9108)
    p.add_argument("-m", "--module", help="the code location's definitions module")
    p.set_defaults(run=exporter)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
