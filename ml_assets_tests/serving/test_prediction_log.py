"""The prediction log: answered means in the log, torn tails, recovery, crash-safe compaction, and
kill -9 of the real multi-worker service under load (the default durability and `machine`)."""

import os
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from ml_assets.serving.predlog import PredictionLog, read_log
from ml_assets.serving.segment import SEGMENTS, Segment
from ml_assets_tests.registered import raw_records
from ml_assets_tests.serving.conftest import running, serve_process

RECORDS = raw_records(40)


def _rows(n: int, start: int = 0, day: str = "2026-12-01", value=None) -> dict[str, np.ndarray]:
    stamp = np.datetime64(f"{day}T12:00:00", "ns")
    return {"request_id": np.array([f"r{i}" for i in range(start, start + n)], dtype=object),
            "timestamp": np.full(n, stamp), "tenure_months": np.full(n, 3 if value is None else value),
            "score": np.linspace(0, 1, n)}


def _durable(log: PredictionLog, columns: dict) -> None:
    """Append and wait for the group commit, as the batcher does before answering."""
    done = threading.Event()
    errors = []
    log.append(columns, lambda err: (errors.append(err), done.set()))
    assert done.wait(30) and errors == [None]


def test_a_row_is_durable_when_its_answer_is_released(tmp_path):
    log = PredictionLog(tmp_path, roll_seconds=3600)
    log.start()
    _durable(log, _rows(3))
    durable = read_log(tmp_path)  # before any compaction: read from the fsynced segment
    assert list(durable["request_id"]) == ["r0", "r1", "r2"] and not list(tmp_path.glob("day=*/*.parquet"))
    log.close()
    compacted = read_log(tmp_path)
    assert list(compacted["request_id"]) == ["r0", "r1", "r2"] and list(tmp_path.glob("day=2026-12-01/*.parquet"))
    assert not list((tmp_path / SEGMENTS).iterdir())  # compacted on close
    assert list(compacted.columns) == ["request_id", "timestamp", "tenure_months", "score", "day"]
    assert compacted["day"].tolist() == ["2026-12-01"] * 3


def _dead_segment(root: Path, batches: list[dict]) -> Path:
    """A segment as a killed process leaves it: written and synced, never closed, lock released."""
    segment = Segment(root)
    for columns in batches:
        segment.write(segment.encode(columns), len(columns["request_id"]))
    segment.sync()
    segment.release()
    return segment.path


def test_a_torn_last_batch_is_skipped_and_the_rest_is_read(tmp_path):
    path = _dead_segment(tmp_path, [_rows(2), _rows(2, start=2)])
    with open(path, "ab") as f:
        f.write(b"\xff\xff\xff\xff\x90\x00\x00\x00 half of a batch")  # a write cut short by kill -9
    assert list(read_log(tmp_path)["request_id"]) == ["r0", "r1", "r2", "r3"]


def test_start_up_compacts_dead_segments_and_leaves_live_ones(tmp_path):
    dead = _dead_segment(tmp_path, [_rows(2), _rows(1, start=2, day="2026-12-02")])
    live = Segment(tmp_path)  # another worker, alive: holds its lock
    live.write(live.encode(_rows(1, start=9)), 1)
    live.sync()
    log = PredictionLog(tmp_path)
    log.start()
    log.close()
    assert not dead.exists() and live.path.exists()
    assert sorted(p.parent.name for p in tmp_path.glob("day=*/*.parquet")) == ["day=2026-12-01", "day=2026-12-02"]
    assert sorted(read_log(tmp_path)["request_id"]) == ["r0", "r1", "r2", "r9"]
    live.close()
    live.release()


def test_a_crash_during_compaction_neither_loses_nor_duplicates_rows(tmp_path):
    path = _dead_segment(tmp_path, [_rows(2), _rows(1, start=2, day="2026-12-02")])
    saved = tmp_path / "saved.jsonl"
    shutil.copyfile(path, saved)
    log = PredictionLog(tmp_path)
    log.start()  # compacts: 2 parts, segment deleted
    log.close()
    shutil.copyfile(saved, path)  # as if killed after writing the parts, before deleting the segment
    assert sorted(read_log(tmp_path)["request_id"]) == ["r0", "r1", "r2"]
    next(tmp_path.glob("day=2026-12-02/*.parquet")).unlink()  # killed after the first of two parts
    assert sorted(read_log(tmp_path)["request_id"]) == ["r0", "r1", "r2"]
    log = PredictionLog(tmp_path)
    log.start()  # redone at the next start-up, to the same names
    log.close()
    assert sorted(read_log(tmp_path)["request_id"]) == ["r0", "r1", "r2"] and not path.exists()


def test_a_batch_of_another_schema_keeps_its_own_types(tmp_path):
    log = PredictionLog(tmp_path, roll_seconds=3600)
    log.start()
    _durable(log, _rows(2))  # tenure_months int64
    _durable(log, _rows(1, start=2, value=np.nan))  # a missing value makes it float: a schema line of its own
    _durable(log, _rows(1, start=3))  # int64 again
    assert [line.startswith(b"#") for line in next((tmp_path / SEGMENTS).iterdir()).read_bytes().splitlines()] == [
        True, False, False, True, False, True, False]  # schema, 2 rows, schema, 1 row, schema, 1 row
    log.close()
    frame = read_log(tmp_path)
    assert list(frame["request_id"]) == ["r0", "r1", "r2", "r3"] and frame["tenure_months"].isna().tolist() == [
        False, False, True, False]


def test_an_all_missing_column_is_text_and_takes_text_later(tmp_path):
    log = PredictionLog(tmp_path, roll_seconds=3600)
    log.start()
    for k, version in enumerate([None, "3", None]):  # e.g. the shadow version, without and with shadow scoring
        _durable(log, {**_rows(1, start=k), "shadow_version": np.array([version], dtype=object)})
    log.close()
    assert read_log(tmp_path)["shadow_version"].tolist() == [None, "3", None]
    assert len(list(tmp_path.glob("day=*/*.parquet"))) == 1  # one schema: all three in one segment


def test_a_log_that_cannot_be_written_answers_503_not_an_unrecorded_200(config):
    config.log_dir.mkdir(parents=True)
    (config.log_dir / SEGMENTS).write_text("a file where the segment folder should be")
    with running(config) as http:
        response = http.post("/predict", json=RECORDS[0])
    assert response.status_code == 503 and "could not be recorded" in response.json()["error"]


def _hammer(base: str, stop: threading.Event, ok: list[str]) -> None:
    # a new connection per request: the kernel spreads them over both workers once both are up
    with httpx.Client(base_url=base, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        for record in iter(lambda: RECORDS[len(ok) % len(RECORDS)], None):
            if stop.is_set():
                return
            rid = uuid.uuid4().hex
            try:
                response = http.post("/predict", json=record, headers={"x-request-id": rid})
            except httpx.HTTPError:
                continue  # the service is gone: keep trying until told to stop
            if response.status_code == 200:
                ok.append(rid)


@pytest.mark.parametrize("durability", [(), ("--log-durability", "machine")], ids=["process (default)", "machine"])
def test_kill_9_under_load_loses_no_answered_prediction(registry, tmp_path, durability):
    log_dir, stop, ok = tmp_path / "log", threading.Event(), []
    with serve_process(registry["uri"], log_dir, "--workers", "2", "--log-roll-seconds", "1", *durability) as (
            service, base):
        clients = [threading.Thread(target=_hammer, args=(base, stop, ok)) for _ in range(6)]
        try:
            for client in clients:
                client.start()
            while len(ok) < 1500:  # long enough for segments to roll and compact meanwhile
                assert service.poll() is None and all(c.is_alive() for c in clients), "service or clients died"
                time.sleep(0.05)
            os.killpg(service.pid, signal.SIGKILL)  # master and both workers, mid-traffic
            service.wait()
            answered = list(ok)  # every 200 the clients saw before the kill
        finally:
            stop.set()
            for client in clients:
                client.join()
    log = read_log(log_dir)
    assert set(answered) <= set(log["request_id"])
    assert log["request_id"].is_unique  # each row once, across Parquet and segments
    workers = {p.stem.rsplit("-", 3)[1] for p in log_dir.glob(f"{SEGMENTS}/seg-*")} | {
        p.stem.rsplit("-", 4)[1] for p in log_dir.glob("day=*/part-seg-*")}  # seg-<host>-<pid>-<ns>-<rand>
    assert len(workers) >= 2  # two processes, each with its own files
    recovered = PredictionLog(log_dir)
    recovered.start()  # the next start-up compacts what the killed workers left
    recovered.close()
    assert not list((log_dir / SEGMENTS).iterdir())
    after = read_log(log_dir)
    assert set(answered) <= set(after["request_id"]) and len(after) == len(log)
    pd.testing.assert_frame_equal(after.sort_values("request_id").reset_index(drop=True),
                                  log.sort_values("request_id").reset_index(drop=True))
