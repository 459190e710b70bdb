"""The process supervisor behind `make cluster`: it stops exactly what it started, and a service
that cannot start fails loudly with its log."""

import subprocess
import sys

import pytest

from ml_assets.ops.supervisor import Service, Supervisor, port_open
from ml_assets_tests.processes import free_port


def _http_server(name: str, port: int) -> Service:
    return Service(name, [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], port=port,
                   where=f"http://127.0.0.1:{port}")


def test_down_stops_what_up_started_and_nothing_else(tmp_path):
    supervisor, ours, theirs = Supervisor(tmp_path), free_port(), free_port()
    stranger = subprocess.Popen([sys.executable, "-m", "http.server", str(theirs), "--bind", "127.0.0.1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        supervisor.start(_http_server("web", ours))
        supervisor.start(_http_server("web", ours))  # twice: the running one is kept, no port clash
        assert port_open(ours) and list(supervisor.state()) == ["web"]
        assert supervisor.stop_all() == ["web"]
        assert not port_open(ours) and supervisor.state() == {}
        assert stranger.poll() is None  # a server of the same kind that the cluster did not start
    finally:
        stranger.kill()
        stranger.wait()


def test_a_service_that_dies_at_start_is_reported_with_its_log(tmp_path):
    supervisor = Supervisor(tmp_path)
    crash = Service("broken", [sys.executable, "-c", "import sys; print('no broker at amqp://x'); sys.exit(3)"],
                    port=free_port())
    with pytest.raises(RuntimeError, match=r"broken exited[\s\S]*no broker at amqp://x"):
        supervisor.start(crash, timeout_s=60)
    assert supervisor.state() == {}


def test_a_taken_port_is_refused_before_starting(tmp_path):
    port = free_port()
    supervisor = Supervisor(tmp_path / "other")
    supervisor.start(_http_server("first", port))
    try:
        with pytest.raises(RuntimeError, match="already taken by a process this cluster did not start"):
            Supervisor(tmp_path).start(_http_server("second", port))
    finally:
        supervisor.stop_all()
