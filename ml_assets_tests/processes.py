"""A long-running command under test (the exporter): started, scraped until it answers, always stopped.

Output goes to a file, not a pipe nobody reads (a full pipe would block the process), and the wait
for start-up is generous: on a busy machine importing and loading a code location takes a minute."""

import os
import socket
import subprocess
import tempfile
import time

import httpx


def free_port() -> int:
    """A port nobody listens on: in ML_ASSETS_TEST_PORTS (LOW-HIGH) when set, so suites sharing a
    machine can keep to their own range; else any free one the system picks."""
    span = os.environ.get("ML_ASSETS_TEST_PORTS", "")
    candidates = range(int(span.split("-")[0]), int(span.split("-")[1]) + 1) if span else [0]
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in ML_ASSETS_TEST_PORTS={span}")


def scrape_until(command: list[str], url: str, needle: str, cwd=None, env=None, deadline_s: float = 300) -> str:
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline, text = time.monotonic() + deadline_s, ""
            while needle not in text:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise AssertionError(f"{command} never served {needle!r}: {log.read()[-3000:]}")
                try:
                    text = httpx.get(url, timeout=30).text
                except httpx.TransportError:
                    time.sleep(0.5)
            return text
        finally:
            stop(process, 30)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds (a process may have inherited SIGTERM ignored)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
