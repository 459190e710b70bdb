"""What a step cost: wall-clock seconds, CPU seconds and peak memory, from the standard library
(time, resource, /proc), so training runs can be monitored without extra dependencies.

The tuning step spreads its work over joblib's worker processes, which outlive the step (they are
reused), so `RUSAGE_CHILDREN` alone would miss them: on Linux the live children are read from
/proc too (CPU as a delta over the step, peak memory after resetting their high-water marks)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class StepUsage:
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process (all threads) plus its worker processes during the step
    peak_memory_bytes: int = 0  # peak RSS of the process plus each live worker's peak (an upper bound)

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat numbers for MLflow and asset metadata, e.g. `candidate_model_seconds`."""
        return {f"{prefix}_seconds": round(self.seconds, 3), f"{prefix}_cpu_seconds": round(self.cpu_seconds, 3),
                f"{prefix}_peak_memory_mb": round(self.peak_memory_bytes / 2**20, 1)}


def _children() -> list[str]:
    pids: list[str] = []
    for path in Path("/proc/self/task").glob("*/children"):
        try:
            pids += path.read_text().split()
        except OSError:
            pass
    return pids


def _child_cpu(pid: str) -> float | None:
    try:  # utime and stime: fields 14 and 15 of /proc/<pid>/stat, counted after the `(comm)` field
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):  # the worker exited meanwhile
        return None


def _reset_peak(pid: str) -> None:
    """Linux resets VmHWM (the peak RSS) on `5` in clear_refs; elsewhere the peak is the process's."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_bytes(pid: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 if pid == "self" else 0  # kB on Linux


def _own_cpu() -> float:
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)  # children that exited and were reaped
    return time.process_time() + waited.ru_utime + waited.ru_stime


@contextmanager
def measure_step() -> Iterator[StepUsage]:
    """Fill the yielded StepUsage when the block ends (also when it raises)."""
    usage, workers = StepUsage(), {pid: _child_cpu(pid) for pid in _children()}
    for pid in ["self", *workers]:
        _reset_peak(pid)
    wall, cpu = time.perf_counter(), _own_cpu()
    try:
        yield usage
    finally:
        usage.seconds, usage.cpu_seconds = time.perf_counter() - wall, _own_cpu() - cpu
        alive = _children()
        usage.cpu_seconds += sum(max(0.0, (_child_cpu(pid) or 0.0) - (workers.get(pid) or 0.0)) for pid in alive)
        usage.peak_memory_bytes = _peak_bytes("self") + sum(_peak_bytes(pid) for pid in alive)
