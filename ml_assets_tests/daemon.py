"""The real Dagster daemon as a subprocess of a test, on whatever instance DAGSTER_HOME points at."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def write_workspace(folder: Path, module: str = "ml_examples.definitions") -> Path:
    path = folder / "workspace.yaml"
    path.write_text(f"load_from:\n  - python_module:\n      module_name: {module}\n")
    return path


@contextmanager
def dagster_daemon(workspace: Path, log: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` in its own process group; stopped (group and all) on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, log: Path | None = None,
             every: float = 1.0):
    """Poll until `predicate()` is truthy (returns it); on timeout fail with the daemon's log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n--- daemon log ---\n{tail}")
