"""Online scoring, side by side in one run: `ml-assets serve`, the framework ceiling and
`mlflow models serve --env-manager local`, on the same registered model and the same machine.

- ours: the churn champion (the platform's preprocessing + histogram gradient boosting), raw
  customer records in, with everything on: contract validation, features, the prediction log at
  its default durability (`process`: an answer waits until its rows are written to the log file,
  which then survives kill -9; fdatasync every second in the background), metrics, request ids,
  hot-swap polling.
- ours_machine: the same with `--log-durability machine` (an answer also waits for the fdatasync
  of its rows: survives a power cut), ours_none with `--log-durability none` (answered before it
  is written): what each level's wait costs.
- ceiling (`benchmarks/ceiling.py`): a FastAPI `POST /predict` that parses the same JSON body into
  a dict and returns a constant, same uvicorn flags: the most any FastAPI service can do here.
- mlflow: the same model version, given ready-made feature rows (it does less work per request).

Scenarios (wrk, interleaved round by round so machine drift hits every server alike): single-record
requests at 8 and 64 connections, batch requests of 100 records (rows/s) at 8 connections, and
2 worker processes at 8 connections. Besides req/s, p50 and p99, every run reports the server's
CPU time per request (utime + stime of all its processes, from /proc, over the run): the figure a
machine shared with other work disturbs least. The load average is printed before each round.

    .venv/bin/python benchmarks/serving.py [--seconds 10] [--rounds 3] [--port-base 8600]    # needs wrk
"""

import argparse
import json
import os
import re
import shutil
import signal
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
HERE = Path(__file__).resolve().parent
# (scenario, server, body, connections); rows per request come from the body
OURS = ("ours", "ours_machine", "ours_none")  # durability process (the default), machine, none
LABELS = {"ours": "ours (process)", "ours_machine": "ours (machine)", "ours_none": "ours (none)"}
SCENARIOS = [("1 record, 8 connections", name, "one", 8) for name in (*OURS, "ceiling", "mlflow")] + \
    [("1 record, 64 connections", name, "one", 64) for name in ("ours", "ours_machine", "ceiling", "mlflow")] + \
    [("100 records, 8 connections", name, "batch", 8) for name in ("ours", "ours_machine", "ceiling", "mlflow")] + \
    [("2 workers, 1 record, 8 connections", name, "one", 8) for name in ("ours_2w", "ceiling_2w")]


def _body_of(server: str) -> str:
    return "ours" if server.startswith("ours") else server.removesuffix("_2w")


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], url: str, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # its own process group: CPU summed over it, killed with it
    deadline = time.time() + 180
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.time() > deadline or process.poll() is not None:
            _stop(process)
            raise RuntimeError(f"{command[:3]} did not come up")
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=20)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def cpu_seconds(group: int) -> float:
    """utime + stime of every live process in the process group (clock ticks -> seconds)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _ms(match: re.Match) -> float:
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]


def wrk(url: str, body: Path, seconds: int, connections: int, script: Path, group: int) -> dict:
    before = cpu_seconds(group)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         env={**os.environ, "BODY_FILE": str(body)}, capture_output=True, text=True,
                         check=True).stdout
    cpu = cpu_seconds(group) - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": _ms(re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)),
            "p99_ms": _ms(re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)),
            "cpu_ms": 1000 * cpu / max(requests, 1), "non_2xx": int(errors.group(1)) if errors else 0}


def _bodies(tmp: Path) -> dict[str, Path]:
    customers, _ = simulated_features(300, day=3)
    raw = canary_records(customers, CHURN, 100)
    features = CHURN.features_of(customers.head(100))
    features["snapshot_date"] = features["snapshot_date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    features = features[CHURN.feature_columns].to_dict("records")
    bodies = {("ours", "one"): raw[0], ("ours", "batch"): {"records": raw},
              ("mlflow", "one"): {"dataframe_records": features[:1]},
              ("mlflow", "batch"): {"dataframe_records": features}}
    bodies[("ceiling", "one")], bodies[("ceiling", "batch")] = bodies[("ours", "one")], bodies[("ours", "batch")]
    paths = {}
    for (server, kind), body in bodies.items():
        paths[(server, kind)] = tmp / f"{server}_{kind}.json"
        paths[(server, kind)].write_text(json.dumps(body))
    return paths


def _servers(tmp: Path, uri: str, version: str, env: dict, port_base: int | None) -> tuple[dict, list]:
    bin_dir = Path(sys.executable).parent
    names = (*OURS, "ours_2w", "ceiling", "ceiling_2w", "mlflow")
    ports = {name: port_base + i if port_base else _port() for i, name in enumerate(names)}
    serve = [str(bin_dir / "ml-assets"), "serve", "--problem", "churn", "--log-level", "warning",
             "--tracking-uri", uri]
    commands = {
        "ours": [*serve, "--port", str(ports["ours"]), "--log-dir", str(tmp / "log")],
        **{name: [*serve, "--port", str(ports[name]), "--log-dir", str(tmp / f"log_{name}"),
                  "--log-durability", name.removeprefix("ours_")] for name in OURS[1:]},
        "ours_2w": [*serve, "--port", str(ports["ours_2w"]), "--log-dir", str(tmp / "log_2w"), "--workers", "2"],
        "ceiling": [sys.executable, str(HERE / "ceiling.py"), str(ports["ceiling"])],
        "ceiling_2w": [sys.executable, str(HERE / "ceiling.py"), str(ports["ceiling_2w"]), "2"],
        "mlflow": [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{CHURN.registered_model_name}/{version}",
                   "--env-manager", "local", "-h", "127.0.0.1", "-p", str(ports["mlflow"])]}
    urls, processes = {}, []
    try:
        for name, command in commands.items():
            base = f"http://127.0.0.1:{ports[name]}"
            processes.append(_start(command, base + ("/ping" if name == "mlflow" else "/health"), env))
            urls[name] = (base + ("/invocations" if name == "mlflow" else "/predict"), processes[-1].pid)
    except BaseException:
        for process in processes:
            _stop(process)
        raise
    return urls, processes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port-base", type=int, help="servers on consecutive ports from here (default: free ones)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("benchmarks/serving.py needs wrk on PATH (Debian package `wrk`)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    _, features = simulated_features(5_000)
    pipeline = fitted_pipeline()
    uri, version = register_champion(tmp, pipeline, features[CHURN.feature_columns])
    bodies = _bodies(tmp)
    (tmp / "post.lua").write_text(LUA)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    urls, processes = _servers(tmp, uri, version, env, args.port_base)
    results: dict[tuple[str, str], list[dict]] = {}
    loads = []
    try:
        for _, server, kind, connections in SCENARIOS:  # every server answers 200, then a warm-up run
            url, group = urls[server]
            body = bodies[(_body_of(server), kind)]
            response = httpx.post(url, content=body.read_bytes(), headers={"content-type": "application/json"},
                                  timeout=60)
            assert response.status_code == 200, (server, response.text[:300])
            wrk(url, body, 2, connections, tmp / "post.lua", group)
        for _ in range(args.rounds):
            loads.append(Path("/proc/loadavg").read_text().split()[:3])
            for scenario, server, kind, connections in SCENARIOS:
                url, group = urls[server]
                results.setdefault((scenario, server), []).append(
                    wrk(url, bodies[(_body_of(server), kind)], args.seconds, connections,
                        tmp / "post.lua", group))
        loads.append(Path("/proc/loadavg").read_text().split()[:3])
    finally:
        for process in processes:
            _stop(process)
    report(results, loads, args, version, type(pipeline[-1]).__name__)
    shutil.rmtree(tmp, ignore_errors=True)


def report(results: dict, loads: list, args, version: str, model: str) -> None:
    print(f"wrk -t2, {args.seconds}s per run, {args.rounds} interleaved rounds, model v{version} ({model}), "
          f"2-core machine; load average (1/5/15 min) before each round and at the end: "
          + "; ".join("/".join(load) for load in loads) + "\n")
    rows_per_request = {"100 records, 8 connections": 100}
    for scenario in dict.fromkeys(s for s, *_ in SCENARIOS):
        servers = [s for sc, s, *_ in SCENARIOS if sc == scenario]
        rows = rows_per_request.get(scenario, 1)
        unit = "rows/s" if rows > 1 else "req/s"
        print(f"**{scenario}**\n")
        print(f"| round | server | {unit} | ours / ceiling | p50 | p99 | server CPU per request | non-2xx |")
        print("|---|---|---|---|---|---|---|---|")
        ceiling = next(s for s in servers if s.startswith("ceiling"))
        for i in range(args.rounds + 1):  # the last row: medians
            label = str(i + 1) if i < args.rounds else "median"
            for server in servers:
                runs = results[(scenario, server)]
                r = runs[i] if i < args.rounds else {k: statistics.median(x[k] for x in runs) for k in runs[0]}
                c = results[(scenario, ceiling)][i] if i < args.rounds else \
                    {"rps": statistics.median(x["rps"] for x in results[(scenario, ceiling)])}
                ratio = f"**{r['rps'] / c['rps']:.2f}**" if server.startswith("ours") else ""
                print(f"| {label} | {LABELS.get(server, server)} | {r['rps'] * rows:,.0f} | {ratio} | {r['p50_ms']:.2f} ms | "
                      f"{r['p99_ms']:.2f} ms | {r['cpu_ms']:.3f} ms | {r['non_2xx']:.0f} |")
        print()


if __name__ == "__main__":
    main()
