"""Per-step usage counts the worker processes a step uses (joblib's outlive the step)."""

import subprocess
import sys
import time

from ml_assets.core.usage import measure_step

WORKER = """
import sys, time
block = bytearray(300 * 2**20)  # touched: resident
for i in range(0, len(block), 4096):
    block[i] = 1
start = time.process_time()
while time.process_time() - start < 0.5:
    pass
print("done", flush=True)
sys.stdin.read()  # alive until told to go, like a reusable worker
"""


def test_a_steps_usage_includes_its_live_worker_processes():
    with measure_step() as usage:
        worker = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        assert worker.stdout.readline() == "done\n"  # waits on the worker, which burned 0.5 s of CPU
    worker.communicate("")
    assert usage.cpu_seconds >= 0.5  # the parent itself only waited
    assert usage.peak_memory_bytes >= 300 * 2**20
    assert usage.seconds > 0
    assert set(usage.metrics("step")) == {"step_seconds", "step_cpu_seconds", "step_peak_memory_mb"}


def test_cpu_of_the_process_itself_is_counted_and_a_failed_step_is_still_measured():
    try:
        with measure_step() as usage:
            start = time.process_time()
            while time.process_time() - start < 0.3:
                pass
            raise RuntimeError("the step failed")
    except RuntimeError:
        pass
    assert usage.cpu_seconds >= 0.3 and usage.peak_memory_bytes > 0
