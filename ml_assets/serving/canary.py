"""Infra validation in a fresh process: load a registered version from the registry, score a
canary batch through the serving code path, and time single-record predictions.

    python -m ml_assets.serving.canary --problem churn --version 7 --records canary.json

Prints one JSON report on stdout (exit 0 even when scores are bad: the gate judges the report;
exit 1 only when the canary itself could not run, with the error in the report).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits


def measure(problem: str, version: str, records: list[dict], tracking_uri: str | None) -> dict:
    from ml_assets.model_registry import load_version
    from ml_assets.problems.registry import get_problem
    from ml_assets.serving.scorer import Scorer

    spec = get_problem(problem)
    scorer = Scorer(spec)
    started = time.perf_counter()
    model = scorer.prepare(load_version(spec.registered_model_name, version, tracking_uri))
    load_seconds = time.perf_counter() - started
    frame = scorer.frame([scorer.record_model.model_validate(r) for r in records])  # as the service parses
    score, _ = scorer.score(model, frame)
    rows = [frame.iloc[i:i + 1] for i in range(len(frame))]
    with threadpool_limits(1):  # the service's runtime set-up (see serving.batcher and serving.app)
        gc.freeze()
        for row in rows[:20]:  # warm-up, untimed: first calls fill caches
            scorer.score(model, row)
        latencies = [_timed_ms(scorer.score, model, row) for row in rows]
    return {"version": str(version), "rows": len(frame), "load_seconds": round(load_seconds, 3),
            "fast_path": model.predictor is not model.pipeline,
            "non_finite": int((~np.isfinite(score)).sum()), "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99))}


def _timed_ms(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return (time.perf_counter() - started) * 1000


def run_canary(problem: str, version: str, records: list[dict], tracking_uri: str, workdir: Path,
               timeout: float = 300) -> dict:
    """Run `measure` in a new interpreter (nothing cached from the training process can help it)."""
    path = workdir / f"canary_{problem}_v{version}.json"
    path.write_text(json.dumps(records))
    command = [sys.executable, "-m", "ml_assets.serving.canary", "--problem", problem, "--version", str(version),
               "--records", str(path), "--tracking-uri", tracking_uri]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"canary did not finish within {timeout:.0f}s"}
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"canary exited {done.returncode}: {done.stderr.strip()[-2000:]}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--records", required=True, type=Path)
    parser.add_argument("--tracking-uri")
    args = parser.parse_args(argv)
    try:
        report = measure(args.problem, args.version, json.loads(args.records.read_text()), args.tracking_uri)
    except Exception as err:  # reported, not raised: the gate shows the reason in the UI
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
