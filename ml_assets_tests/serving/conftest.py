"""A real scoring service on 127.0.0.1 (uvicorn in a thread, or `ml-assets serve` in its own
process) over a real MLflow registry."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from ml_assets.mlflow.registry import client, promote
from ml_assets.serving.app import ServiceConfig, create_app
from ml_assets_tests.conftest import mlflow_env
from ml_assets_tests.registered import fit_churn, register

NAME = "churn_model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(config: ServiceConfig):
    """Serve `config` on a free port until the block ends; yields an httpx client bound to it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "service did not start"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def serve_process(tracking_uri: str, log_dir: Path, *options: str):
    """`ml-assets serve --problem churn` with `options`, in its own process group, until the block ends
    (then killed with SIGKILL if still alive); yields (the process, its base URL) once /health is 200."""
    port = free_port()
    command = [sys.executable, "-m", "ml_assets.ops.cli", "serve", "--problem", "churn", "--port", str(port),
               "--tracking-uri", tracking_uri, "--log-dir", str(log_dir), "--log-level", "warning", *options]
    service = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base, deadline = f"http://127.0.0.1:{port}", time.time() + 120
    try:
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline and service.poll() is None, "service did not start"
            time.sleep(0.2)
        yield service, base
    finally:
        if service.poll() is None:
            os.killpg(service.pid, signal.SIGKILL)
        service.wait()


@pytest.fixture(scope="module")
def registry(tmp_path_factory, mlflow_template):
    """Two registered churn versions that score differently; v1 is the champion."""
    with mlflow_env(tmp_path_factory.mktemp("serving_mlflow"), mlflow_template) as uri:
        v1, v2 = register(fit_churn(c=1.0)), register(fit_churn(c=0.001))
        promote(client(), NAME, v1)
        yield {"uri": uri, "v1": v1, "v2": v2}


@pytest.fixture
def config(registry, tmp_path) -> ServiceConfig:
    promote(client(registry["uri"]), NAME, registry["v1"])  # each test starts from v1 as champion
    return ServiceConfig(problem="churn", tracking_uri=registry["uri"], poll_seconds=0.2, log_dir=tmp_path / "log",
                         log_roll_seconds=0.2, max_body_bytes=256 * 1024, max_records=500)
