"""The prediction log's durability levels: what an answer waits for (the write at `process`, the
fsync too at `machine`, nothing at `none`), the background sync that bounds what a machine crash
can lose, records cut anywhere by a kill, and the CLI that chooses the level."""

import json
import os
import shutil
import threading
import uuid
from dataclasses import replace

import httpx
import numpy as np
import pytest

from ml_assets.ops.cli import main
from ml_assets.serving import logstore
from ml_assets.serving.app import CONFIG_ENV
from ml_assets.serving.predlog import PredictionLog, read_log
from ml_assets.serving.segment import SEGMENTS, Segment
from ml_assets.serving.segment_read import read_segment
from ml_assets_tests.registered import raw_records
from ml_assets_tests.serving.conftest import running, serve_process

RECORD = raw_records(1)[0]


class Gate:
    """Stands in for a slow disk: every call of the wrapped function waits until `open()`."""

    def __init__(self, function):
        self.function, self.entered, self.opened = function, threading.Event(), threading.Event()

    def __call__(self, *args, **kwargs):
        self.entered.set()
        assert self.opened.wait(60), "the test never opened the gate"
        return self.function(*args, **kwargs)

    def open(self) -> None:
        self.opened.set()


@pytest.mark.parametrize("durability, slow, waits", [
    ("process", "write", True),  # the answer waits until its row is written to the segment file ...
    ("process", "fdatasync", False),  # ... but not for the disk
    ("machine", "fdatasync", True),  # at `machine` it waits for the fsync as well
    ("none", "write", False),  # at `none` it waits for nothing: answered while the disk is slow
])
def test_what_an_answer_waits_for(config, monkeypatch, durability, slow, waits):
    if slow == "write":
        gate = Gate(Segment.write)
        monkeypatch.setattr(Segment, "write", lambda self, data, rows: gate(self, data, rows))
    else:
        gate = Gate(os.fdatasync)
        monkeypatch.setattr(logstore.os, "fdatasync", gate)
    rid, response = uuid.uuid4().hex, []
    with running(replace(config, log_durability=durability, log_roll_seconds=3600)) as http:
        client = threading.Thread(target=lambda: response.append(
            http.post("/predict", json=RECORD, headers={"x-request-id": rid})))
        try:
            client.start()
            if waits:
                assert gate.entered.wait(30), "the log never reached the slow call"
                client.join(1.0)
                assert not response, "answered before the log's write/fsync returned"
                gate.open()
            client.join(30)
            assert [r.status_code for r in response] == [200]
        finally:
            gate.open()
            client.join(30)
        if durability != "none":  # written before it was answered: another reader finds it already
            assert rid in set(read_log(config.log_dir)["request_id"])


def test_after_each_200_the_row_is_in_the_file_and_outlives_a_kill_before_any_sync(registry, tmp_path):
    """The default (`process`), in a real `ml-assets serve` process: right after every 200 another
    process reads the answer's row from the live segment; with the background sync never due (1 h)
    and no roll-over, kill -9 still loses none of them (they are in the kernel, not in the service)."""
    log_dir, answered = tmp_path / "log", []
    with serve_process(registry["uri"], log_dir, "--log-sync-interval", "3600", "--log-roll-seconds", "3600") as (
            service, base), httpx.Client(base_url=base, timeout=30) as http:
        for record in raw_records(20):
            rid = uuid.uuid4().hex
            assert http.post("/predict", json=record, headers={"x-request-id": rid}).status_code == 200
            answered.append(rid)
            assert rid in set(read_log(log_dir)["request_id"])
        service.kill()
        service.wait()
    assert list(read_log(log_dir)["request_id"]) == answered


@pytest.mark.parametrize("sync_interval, roll_seconds, syncer", [
    (0.05, 3600, "prediction-log-sync"),  # every interval, while the segment stays open
    (3600, 0.05, "prediction-log-compactor"),  # and when it rolls over
])
def test_written_rows_are_synced_off_the_answer_path(tmp_path, monkeypatch, sync_interval, roll_seconds, syncer):
    syncs = []
    synced = threading.Event()

    def fdatasync(fd):
        syncs.append(threading.current_thread().name)
        os.fsync(fd)
        synced.set()

    monkeypatch.setattr(logstore.os, "fdatasync", fdatasync)
    log = PredictionLog(tmp_path, roll_seconds=roll_seconds, sync_interval=sync_interval)
    log.start()
    try:
        done = threading.Event()
        log.append(_rows(3), lambda err: done.set())
        assert done.wait(30) and synced.wait(30)
        assert syncs[0] == syncer  # not the writer: no answer waited for it
    finally:
        log.close()


def _rows(n: int, start: int = 0) -> dict[str, np.ndarray]:
    return {"request_id": np.array([f"r{i}" for i in range(start, start + n)], dtype=object),
            "timestamp": np.full(n, np.datetime64("2026-12-01T12:00:00", "ns")), "score": np.linspace(0, 1, n)}


@pytest.mark.parametrize("batch", [2, 16])  # a line per row, or the batch as one line
def test_a_record_cut_at_any_byte_keeps_every_complete_record_before_it(tmp_path, batch):
    """What kill -9 in the middle of a write, or a machine crash before a sync, leaves: the file cut
    at any byte, or followed (or cut and followed) by zeros. Every row whose line is whole is kept."""
    segment = Segment(tmp_path)
    for k in range(3):
        segment.write(segment.encode(_rows(batch, start=batch * k)), batch)
        segment.flush()
    whole, cut = segment.path.read_bytes(), tmp_path / "cut.jsonl"
    segment.release()
    segment.path.unlink()
    ends, rows = [], []  # each line's end, and the rows whole once the file reaches it
    for line in whole.split(b"\n")[:-1]:
        ends.append((ends[-1] if ends else 0) + len(line) + 1)
        count = 0 if line.startswith(b"#") else len(json.loads(line[1:])["request_id"]) if line.startswith(b"@") else 1
        rows.append((rows[-1] if rows else 0) + count)
    assert rows[-1] == 3 * batch and len(ends) == (4 if batch == 16 else 7)
    for size in range(len(whole) + 1):
        kept = [f"r{i}" for i in range(max([n for end, n in zip(ends, rows) if end <= size], default=0))]
        for tail in (b"", bytes(4096)):  # a crash can leave the file's unsynced end as zeros
            cut.write_bytes(whole[:size] + tail)
            table = read_segment(cut)
            assert (table["request_id"].to_pylist() if table is not None else []) == kept, (size, tail[:1])
    cut.write_bytes(whole[:ends[-2] + 7])  # the last line torn
    two_lines = [f"r{i}" for i in range(rows[-2])]
    shutil.copyfile(cut, tmp_path / SEGMENTS / "seg-host-1-1-dead.jsonl")  # read_log reads it so ...
    assert list(read_log(tmp_path)["request_id"]) == two_lines
    log = PredictionLog(tmp_path)
    log.start()  # ... and the next start-up compacts it so
    log.close()
    assert not list((tmp_path / SEGMENTS).iterdir()) and list(read_log(tmp_path)["request_id"]) == two_lines


@pytest.mark.parametrize("options, durability", [
    ([], "process"), (["--log-durability", "machine"], "machine"), (["--log-durability", "none"], "none"),
    (["--no-durable-log"], "none"),  # the older flag, kept as an alias
])
def test_the_cli_sets_the_durability(registry, monkeypatch, options, durability):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    for name in (CONFIG_ENV, "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT",
                 "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"):  # what serve sets: as before the test afterwards
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--problem", "churn", "--tracking-uri", registry["uri"], *options]) == 0
    config = json.loads(os.environ[CONFIG_ENV])
    assert (config["log_durability"], config["log_sync_interval"]) == (durability, 1.0)
