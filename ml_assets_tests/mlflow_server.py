"""`mlflow server` as a subprocess for tests: started on a free port, waited for, always stopped."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ml_assets_tests.processes import free_port


@contextmanager
def mlflow_server(folder: Path, backend_store_uri: str, artifacts_destination: str,
                  env: dict[str, str] | None = None) -> Iterator[str]:
    """A tracking server serving artifacts (clients upload and download over HTTP, `mlflow-artifacts:`);
    `env` adds to the server's environment (e.g. MLFLOW_S3_ENDPOINT_URL and S3 credentials).
    Yields its URL; its output is in <folder>/mlflow-server.log."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", backend_store_uri, "--serve-artifacts",
               "--artifacts-destination", artifacts_destination, "--workers", "1"]
    log_path = folder / "mlflow-server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _up(url):
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a worker that ignores SIGTERM
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
