"""The real Dagster daemon and a gRPC code server as subprocesses over an on-disk instance, each in
its own process group so that shutting down also ends the runs they launched."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ml_assets.testing.watch import runs_summary, sensor_ticks, wait_for

__all__ = ["running_daemon", "runs_summary", "sensor_ticks", "wait_for"]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PORT = 18310  # inside the range this project's e2e tests may use (18300-18399)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the whole group (the daemon, its run workers), SIGKILL what is left after 30 s."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            os.killpg(process.pid, signal.SIGKILL)  # stray children of a process that did exit
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the code server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the code server did not listen on {port} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def running_daemon(root: Path, module: str, env: dict[str, str], port: int = PORT):
    """`dagster api grpc` serving `module` on 127.0.0.1:`port` and `dagster-daemon run` on a
    workspace pointing at it, until the block ends. Yields the daemon's log file."""
    workspace = root / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n"
                         f"      location_name: e2e\n")
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    started = []
    try:
        for name, command in (("code_server", [str(BIN / "dagster"), "api", "grpc", "-m", module, "-h", "127.0.0.1",
                                               "-p", str(port)]),
                              ("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])):
            with (logs / f"{name}.log").open("wb") as out:
                started.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True))
            if name == "code_server":
                _wait_for_port(port, started[0], logs / "code_server.log")
        yield logs / "daemon.log"
    finally:
        for process in reversed(started):
            _stop(process)
