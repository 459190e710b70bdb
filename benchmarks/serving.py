"""Online scoring: this service vs `mlflow models serve --env-manager local`, same registered model,
same load, same run. 8 concurrent connections, single-record requests, validation on (ours checks
the raw-input contract and computes the features; MLflow gets ready-made features).

Ours runs twice side by side: with the durable prediction log (the default: an answer waits for the
fsync of its group of rows) and with `--no-durable-log` (answered first, logged without fsync), so
the table shows what durability costs.

Load comes from wrk (Debian package `wrk`) when it is on PATH, else from an async Python client.

    .venv/bin/python benchmarks/serving.py [--seconds 15] [--rounds 2]
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ml_examples.churn.problem import CHURN

from common import fitted_pipeline, register_champion, simulated_features
from ml_assets.serving.scorer import canary_records

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BODY_FILE"), "r"); wrk.body = f:read("*a"); f:close()
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], url: str, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.time() > deadline or process.poll() is not None:
            raise RuntimeError(f"{command[:3]} did not come up")
        time.sleep(0.2)


def wrk(url: str, body: Path, seconds: int, script: Path) -> dict:
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         env={**os.environ, "BODY_FILE": str(body)}, capture_output=True, text=True, check=True).stdout
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p99_ms": float(p99.group(1)) * scale, "non_2xx": int(errors.group(1)) if errors else 0}


def python_load(url: str, body: Path, seconds: int) -> dict:
    payload, latencies, failures = body.read_bytes(), [], 0

    async def worker(client: httpx.AsyncClient, stop: float):
        nonlocal failures
        while time.perf_counter() < stop:
            started = time.perf_counter()
            response = await client.post(url, content=payload, headers={"content-type": "application/json"})
            latencies.append((time.perf_counter() - started) * 1000)
            failures += response.status_code != 200

    async def run():
        async with httpx.AsyncClient(timeout=30) as client:
            stop = time.perf_counter() + seconds
            await asyncio.gather(*(worker(client, stop) for _ in range(8)))

    asyncio.run(run())
    latencies.sort()
    return {"rps": len(latencies) / seconds, "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
            "non_2xx": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    _, features = simulated_features(5_000)
    pipeline = fitted_pipeline()
    uri, version = register_champion(tmp, pipeline, features[CHURN.feature_columns])
    customers, _ = simulated_features(50, day=3)
    raw = canary_records(customers, CHURN, 1)[0]
    frame = CHURN.features_of(customers.head(1))
    frame["snapshot_date"] = frame["snapshot_date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    bodies = {"ml_assets": tmp / "ours.json", "mlflow": tmp / "mlflow.json"}
    bodies["ml_assets"].write_text(json.dumps(raw))
    bodies["mlflow"].write_text(json.dumps({"dataframe_records": frame.to_dict("records")}))
    (tmp / "post.lua").write_text(LUA)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    ours, fast, theirs = _port(), _port(), _port()
    bin_dir = Path(sys.executable).parent
    serve = [str(bin_dir / "ml-assets"), "serve", "--problem", "churn", "--log-level", "warning", "--tracking-uri", uri]
    servers = [
        _start([*serve, "--port", str(ours), "--log-dir", str(tmp / "log")], f"http://127.0.0.1:{ours}/health", env),
        _start([*serve, "--port", str(fast), "--log-dir", str(tmp / "log_fast"), "--no-durable-log"],
               f"http://127.0.0.1:{fast}/health", env),
        _start([str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{CHURN.registered_model_name}/{version}",
                "--env-manager", "local", "-h", "127.0.0.1", "-p", str(theirs)], f"http://127.0.0.1:{theirs}/ping", env)]
    urls = {"ml_assets": f"http://127.0.0.1:{ours}/predict", "no_fsync": f"http://127.0.0.1:{fast}/predict",
            "mlflow": f"http://127.0.0.1:{theirs}/invocations"}
    bodies["no_fsync"] = bodies["ml_assets"]
    tool = "wrk" if shutil.which("wrk") else "python"
    try:
        for name, url in urls.items():  # same answer shape check + warm-up
            assert httpx.post(url, content=bodies[name].read_bytes(),
                              headers={"content-type": "application/json"}).status_code == 200
            python_load(url, bodies[name], 2)
        results = {name: [] for name in urls}
        for _ in range(args.rounds):
            for name, url in urls.items():  # interleaved, so drift in the machine hits both
                measure = wrk(url, bodies[name], args.seconds, tmp / "post.lua") if tool == "wrk" \
                    else python_load(url, bodies[name], args.seconds)
                results[name].append(measure)
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print(f"load: {tool}, 8 connections, {args.seconds}s x {args.rounds} rounds, model v{version} "
          f"({type(pipeline[-1]).__name__})\n")
    print("| round | ml_assets req/s | mlflow req/s | ratio | ml_assets p99 | mlflow p99 | p99 ratio | non-2xx |")
    print("|---|---|---|---|---|---|---|---|")
    for i, (a, b) in enumerate(zip(results["ml_assets"], results["mlflow"]), 1):
        print(f"| {i} | {a['rps']:.0f} | {b['rps']:.0f} | **{a['rps'] / b['rps']:.1f}x** | {a['p99_ms']:.1f} ms | "
              f"{b['p99_ms']:.1f} ms | **{a['p99_ms'] / b['p99_ms']:.2f}** | {a['non_2xx']} / {b['non_2xx']} |")
    print("\ntargets: >= 3x the requests/s, <= 0.25x the p99 latency\n")
    print("| round | durable log req/s | no-fsync log req/s | durable / no-fsync | durable p99 | no-fsync p99 |")
    print("|---|---|---|---|---|---|")
    for i, (a, b) in enumerate(zip(results["ml_assets"], results["no_fsync"]), 1):
        print(f"| {i} | {a['rps']:.0f} | {b['rps']:.0f} | **{a['rps'] / b['rps']:.2f}** | {a['p99_ms']:.1f} ms | "
              f"{b['p99_ms']:.1f} ms |")
    median = {name: {k: statistics.median(r[k] for r in results[name]) for k in ("rps", "p99_ms")}
              for name in ("ml_assets", "no_fsync")}
    a, b = median["ml_assets"], median["no_fsync"]
    print(f"| median | {a['rps']:.0f} | {b['rps']:.0f} | **{a['rps'] / b['rps']:.2f}** | {a['p99_ms']:.1f} ms | "
          f"{b['p99_ms']:.1f} ms |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
