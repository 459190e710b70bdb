"""What a step cost: wall-clock seconds, CPU seconds and peak memory, from the standard library
(time, resource, /proc), so training runs can be monitored without extra dependencies."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


@dataclass
class StepUsage:
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process (all threads) plus the worker processes it waited for
    peak_memory_bytes: int = 0  # the step's peak RSS when the OS can reset the mark, else the process's
    peak_is_step: bool = field(default=False, repr=False)

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat numbers for MLflow and asset metadata, e.g. `candidate_model_seconds`."""
        return {f"{prefix}_seconds": round(self.seconds, 3), f"{prefix}_cpu_seconds": round(self.cpu_seconds, 3),
                f"{prefix}_peak_memory_mb": round(self.peak_memory_bytes / 2**20, 1)}


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _reset_peak() -> bool:
    """Linux resets VmHWM (the peak RSS) on `5` in clear_refs; elsewhere the peak is the process's."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _peak_bytes() -> int:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


@contextmanager
def measure_step() -> Iterator[StepUsage]:
    """Fill the yielded StepUsage when the block ends (also when it raises)."""
    usage = StepUsage(peak_is_step=_reset_peak())
    wall, cpu = time.perf_counter(), _cpu_seconds()
    try:
        yield usage
    finally:
        usage.seconds, usage.cpu_seconds = time.perf_counter() - wall, _cpu_seconds() - cpu
        usage.peak_memory_bytes = _peak_bytes()
