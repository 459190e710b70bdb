"""Start, check and stop a set of long-running processes, remembering exactly what was started.

`make cluster` runs several servers on one machine (webserver, daemon, workers, MLflow, a local
S3). Each is started in its own session (process group), its output goes to a log file, and its
pid lands in a state file as soon as it is started: `make cluster-down` then stops those groups and
nothing else — not a server of the same name someone else runs, not the machine's PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    env: dict[str, str | None] = field(default_factory=dict)  # on top of the caller's environment; None unsets
    port: int | None = None  # ready once it accepts connections here
    ready: Callable[[], bool] | None = None  # or once this says so
    where: str = ""  # what to print: a URL, a queue
    cwd: str | None = None


def environment(overrides: dict[str, str | None]) -> dict[str, str]:
    """The caller's environment with `overrides` on top; a None override removes the variable."""
    return {k: v for k, v in {**os.environ, **overrides}.items() if v is not None}


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _alive(pid: int, group: bool = False) -> bool:
    """Whether the process (or any process of its group: servers fork workers) still exists."""
    try:
        os.killpg(pid, 0) if group else os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Supervisor:
    def __init__(self, folder: Path):
        self.folder = folder
        self.state_file = folder / "state.json"
        self.logs = folder / "logs"

    def state(self) -> dict[str, dict]:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def running(self) -> list[str]:
        """The started services whose process group is still alive."""
        return [name for name, entry in self.state().items() if _alive(entry["pid"], group=True)]

    def _save(self, state: dict[str, dict]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def start(self, service: Service, timeout_s: float = 300) -> None:
        """Start one service and wait until it is ready; a crash or a time-out stops it and raises
        with the end of its log, so the operator sees why."""
        state = self.state()
        if service.name in state and _alive(state[service.name]["pid"]):
            return  # `make cluster` twice: keep what runs
        if service.port and port_open(service.port):
            raise RuntimeError(f"{service.name}: port {service.port} is already taken by a process this cluster did not "
                               "start; stop it or choose other ports (see `python -m ml_assets.ops.cluster up --help`)")
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{service.name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(service.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=environment(service.env), cwd=service.cwd, start_new_session=True)
        state[service.name] = {"pid": process.pid, "argv": service.argv, "log": str(log_path), "where": service.where}
        self._save(state)  # recorded before the wait: a failed start is still stopped by `down`
        deadline = time.monotonic() + timeout_s
        while not self._ready(service):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop(service.name)
                tail = log_path.read_text(errors="replace")[-3000:]
                problem = "exited" if process.returncode is not None else f"was not ready after {timeout_s:.0f} s"
                raise RuntimeError(f"{service.name} {problem} (log {log_path}):\n{tail}")
            time.sleep(0.5)

    @staticmethod
    def _ready(service: Service) -> bool:
        if service.port is not None and not port_open(service.port):
            return False
        return service.ready() if service.ready else True

    def stop(self, name: str, grace_s: float = 20) -> bool:
        """SIGTERM the service's process group, SIGKILL what is left after `grace_s`."""
        state = self.state()
        entry = state.pop(name, None)
        if entry is None:
            return False
        pid = entry["pid"]
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while _alive(pid, group=True) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.2)
            if not _alive(pid, group=True):
                break
        self._save(state)
        return True

    def stop_all(self) -> list[str]:
        names = list(self.state())
        for name in reversed(names):  # dependants first: workers before the broker they talk to
            self.stop(name)
        return names


def _reap(pid: int) -> None:
    """A child of this process stays a zombie (and 'alive') until waited for."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
