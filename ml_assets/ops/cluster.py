"""`make cluster`: the multi-process topology on one machine, on the engines production uses.

    python -m ml_assets.ops.cluster up [--workers 2]   start what is missing, print where it is
    python -m ml_assets.ops.cluster down               stop exactly what `up` started
    python -m ml_assets.ops.cluster status

- Dagster on PostgreSQL (runs, event log, schedules, sensor cursors): webserver + daemon, whose
  run queue launches every run in a process of its own;
- the training job's steps on Celery workers over RabbitMQ (ML_ASSETS_EXECUTOR=celery);
- an MLflow tracking server on PostgreSQL that serves the model artifacts from object storage;
- warehouse, landing zone, raw archive and prediction log on an S3-compatible server (moto's
  server mode, a stand-in for S3/MinIO reached over HTTP);
- Optuna studies on the same PostgreSQL.

PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672) are the machine's own; the cluster only
creates its databases (named `<prefix>_dagster|mlflow|optuna`) in them. Everything else it starts
lives in `<project>/.cluster/` (logs, state, the Dagster home) and `.cluster/env` says how to reach
it: `ML_ASSETS_PROFILE=cluster make demo` runs the demo against it, `. .cluster/env` points a shell
at it. The local S3 server keeps its objects in memory, so a cluster that starts anew starts empty:
`up` then recreates its databases too, and never leaves runs recorded whose data is gone.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ml_assets import settings
from ml_assets.ops.supervisor import Service, Supervisor

BIN = Path(sys.executable).parent
BUCKET = "ml-assets"
ROLES = ("dagster", "mlflow", "optuna")
# One machine plays a cluster whose weeks the demo compresses into minutes: sensors tick in
# seconds, and a drift retrain may follow the first training at once (the spec's cooldown is hours).
DEMO_TIMING = {"ML_ASSETS_LANDING_SENSOR_INTERVAL_SECONDS": "3", "ML_ASSETS_AUTOMATION_SENSOR_INTERVAL_SECONDS": "3",
               "ML_ASSETS_RETRAIN_SENSOR_INTERVAL_SECONDS": "5", "ML_ASSETS_EXPERIMENT_SENSOR_INTERVAL_SECONDS": "10",
               "ML_ASSETS_RETRAIN_COOLDOWN_HOURS": "0"}


@dataclass(frozen=True)
class Topology:
    home: Path  # the project: workspace.yaml, deploy/
    folder: Path  # logs, state, Dagster home, env file
    ui_port: int = 3000
    mlflow_port: int = 5000
    s3_port: int = 9000
    workers: int = 2
    pg: str = "postgres@127.0.0.1:5432"  # user@host:port of the machine's PostgreSQL (trust auth)
    broker: str = "pyamqp://guest:guest@127.0.0.1:5672//"
    prefix: str = "ml_assets"  # of the databases
    extra_env: dict[str, str] = field(default_factory=lambda: dict(DEMO_TIMING))
    workspace: Path | None = None  # the code locations to serve (default: the project's workspace.yaml)

    def database(self, role: str) -> str:
        return f"{self.prefix}_{role}"

    def pg_url(self, role: str) -> str:
        return f"postgresql+psycopg2://{self.pg}/{self.database(role)}"

    def environment(self) -> dict[str, str | None]:
        user, hostport = self.pg.split("@")
        host, port = hostport.split(":")
        s3 = f"http://127.0.0.1:{self.s3_port}"
        return {
            "ML_ASSETS_HOME": str(self.home), "DAGSTER_HOME": str(self.folder / "dagster_home"),
            "ML_ASSETS_DAGSTER_URL": f"http://127.0.0.1:{self.ui_port}",
            "DAGSTER_PG_HOST": host, "DAGSTER_PG_PORT": port, "DAGSTER_PG_USER": user, "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": self.database("dagster"),
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{self.mlflow_port}",
            "ML_ASSETS_MLFLOW_UI_URL": f"http://127.0.0.1:{self.mlflow_port}",
            # a local stand-in for S3: fixed, non-secret credentials (moto accepts any)
            "AWS_ENDPOINT_URL": s3, "MLFLOW_S3_ENDPOINT_URL": s3, "AWS_ACCESS_KEY_ID": "cluster",
            "AWS_SECRET_ACCESS_KEY": "cluster", "AWS_DEFAULT_REGION": "us-east-1",
            "ML_ASSETS_WAREHOUSE": f"s3://{BUCKET}/warehouse", "ML_ASSETS_LANDING_DIR": f"s3://{BUCKET}/landing",
            "ML_ASSETS_ARCHIVE_DIR": f"s3://{BUCKET}/raw", "ML_ASSETS_PREDICTION_LOG_URL": f"s3://{BUCKET}/prediction_log",
            "ML_ASSETS_EXECUTOR": "celery", "ML_ASSETS_CELERY_BROKER": self.broker,
            "ML_ASSETS_OPTUNA_STORAGE": self.pg_url("optuna"),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            # unset what a caller's shell may hold and would point the cluster elsewhere (None unsets):
            # a local artifact folder would keep the server's experiments off S3
            "ML_ASSETS_MLFLOW_ARTIFACTS": None, "MLFLOW_REGISTRY_URI": None, "ML_ASSETS_DATA_DIR": None,
            **self.extra_env,
        }

    def log(self, name: str) -> Path:
        return self.folder / "logs" / f"{name}.log"

    def services(self) -> list[Service]:
        env, workspace, home = self.environment(), str(self.workspace or self.home / "workspace.yaml"), str(self.home)
        # dagster-celery starts `celery` by name: this environment's first on PATH
        worker_env = {**env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        s3 = Service("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)], env,
                     port=self.s3_port, where=env["AWS_ENDPOINT_URL"] + f" (bucket {BUCKET}, in memory)")
        mlflow = Service("mlflow", [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.mlflow_port),
                                    "--backend-store-uri", self.pg_url("mlflow"), "--serve-artifacts",
                                    "--artifacts-destination", f"s3://{BUCKET}/mlflow", "--workers", "1"], env,
                         port=self.mlflow_port, ready=lambda: _answers(f"{env['MLFLOW_TRACKING_URI']}/health"),
                         where=env["MLFLOW_TRACKING_URI"])
        workers = [Service(f"celery-worker-{i}", [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                                                  "-y", str(self.home / "deploy" / "celery.yaml"), "-n", f"worker{i}",
                                                  "--", "--concurrency=1"], worker_env,
                           ready=lambda i=i: _log_says(self.log(f"celery-worker-{i}"), " ready."),
                           where=f"Celery worker{i} on {self.broker.split('@')[-1]}", cwd=home)
                   for i in range(1, self.workers + 1)]
        daemon = Service("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], env,
                         ready=lambda: _log_says(self.log("daemon"), "SensorDaemon"),
                         where="sensors, schedules, run queue", cwd=home)
        webserver = Service("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.ui_port),
                                          "-w", workspace], env, port=self.ui_port,
                            ready=lambda: _answers(f"http://127.0.0.1:{self.ui_port}/server_info"),
                            where=f"http://127.0.0.1:{self.ui_port}", cwd=home)
        return [s3, mlflow, *workers, daemon, webserver]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _log_says(path: Path, needle: str) -> bool:
    return path.exists() and needle in path.read_text(errors="replace")


def drop_databases(topology: Topology, recreate: bool = False) -> None:
    """Drop the cluster's databases; with `recreate`, create them empty again (a new cluster's S3
    server starts empty, and an instance or registry that remembered objects no longer there would
    mislead)."""
    import sqlalchemy as sa

    admin = sa.create_engine(f"postgresql+psycopg2://{topology.pg}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for role in ROLES:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{topology.database(role)}" WITH (FORCE)'))
            if recreate:
                conn.execute(sa.text(f'CREATE DATABASE "{topology.database(role)}"'))
    admin.dispose()


def _bucket(topology: Topology) -> None:
    import s3fs

    env = topology.environment()
    fs = s3fs.S3FileSystem(key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"],
                           client_kwargs={"endpoint_url": env["AWS_ENDPOINT_URL"]})
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)


def env_file(topology: Topology) -> Path:
    """`export K=V` lines: for a shell (`. .cluster/env`) and for make (`include`)."""
    path = topology.folder / "env"
    path.write_text("# written by `make cluster`: the environment that reaches this cluster\n" +
                    "".join(f"unset {k}\n" if v is None else f"export {k}={shlex.quote(v) if v else ''}\n"
                            for k, v in topology.environment().items()))
    return path


def up(topology: Topology) -> Supervisor:
    supervisor = Supervisor(topology.folder)
    topology.folder.mkdir(parents=True, exist_ok=True)
    if "s3" not in supervisor.running():
        drop_databases(topology, recreate=True)
    home = topology.folder / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((topology.home / "deploy" / "dagster.postgres.yaml").read_text())
    env_file(topology)
    for service in topology.services():
        print(f"starting {service.name} ...", flush=True)
        supervisor.start(service)
        if service.name == "s3":
            _bucket(topology)
    return supervisor


def describe(supervisor: Supervisor, topology: Topology) -> str:
    lines = [f"  {name:<16} pid {entry['pid']:<8} {entry['where']}   (log {entry['log']})"
             for name, entry in supervisor.state().items()]
    lines.append(f"  {'postgres':<16} {'':<12} {topology.pg}: databases "
                 f"{', '.join(topology.database(r) for r in ROLES)}")
    lines.append(f"\nenvironment: . {topology.folder / 'env'}   demo: ML_ASSETS_PROFILE=cluster make demo   "
                 "stop: make cluster-down")
    return "\n".join(lines)


def topology_from(argv: list[str] | None) -> tuple[str, Topology]:
    parser = argparse.ArgumentParser(prog="python -m ml_assets.ops.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--folder", type=Path, help="logs, state and Dagster home (default: <project>/.cluster)")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--ui-port", type=int, default=3000)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--s3-port", type=int, default=9000)
    parser.add_argument("--broker", default=os.environ.get("ML_ASSETS_CELERY_BROKER",
                                                           "pyamqp://guest:guest@127.0.0.1:5672//"))
    parser.add_argument("--prefix", default=os.environ.get("ML_ASSETS_CLUSTER_PREFIX", "ml_assets"),
                        help="of the PostgreSQL databases it creates")
    parser.add_argument("--workspace", type=Path, help="a workspace.yaml (default: the project's)")
    parser.add_argument("--drop-databases", action="store_true", help="with down: also drop the cluster's databases")
    args = parser.parse_args(argv)
    home = settings.project_home()
    topology = Topology(home, (args.folder or home / ".cluster").resolve(), args.ui_port, args.mlflow_port,
                        args.s3_port, args.workers, broker=args.broker, prefix=args.prefix,
                        workspace=args.workspace.resolve() if args.workspace else None)
    action = "down+drop" if args.action == "down" and args.drop_databases else args.action
    return action, topology


def main(argv: list[str] | None = None) -> int:
    action, topology = topology_from(argv)
    supervisor = Supervisor(topology.folder)
    if action.startswith("down"):
        stopped = supervisor.stop_all()
        print(f"stopped {', '.join(stopped)}" if stopped else "nothing of this cluster was running")
        if action == "down+drop":
            drop_databases(topology)
            print(f"dropped {', '.join(topology.database(r) for r in ROLES)}")
        return 0
    if action == "up":
        try:
            up(topology)
        except RuntimeError as err:
            print(f"cluster: {err}", file=sys.stderr)
            stopped = supervisor.stop_all()  # no half cluster left behind
            print(f"stopped what had started: {', '.join(stopped) or 'nothing'}", file=sys.stderr)
            return 1
        print("\ncluster up:")
    print(describe(supervisor, topology))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
