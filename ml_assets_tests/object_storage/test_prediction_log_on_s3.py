"""The prediction log shipped to object storage: the service's write-ahead segments stay on local disk
(an answer waits for a local fsync, never for the store), sealed segments are shipped as day Parquet to
S3 and deleted locally only then, and the log reads back from S3 on a machine without the local folder,
including in the served-predictions asset."""

import threading

import dagster as dg
import numpy as np
import pytest

from ml_assets.serving.predlog import PredictionLog, read_log
from ml_assets.serving.segment import SEGMENTS, Segment, segment_files
from ml_assets_tests.conftest import _environ

DAYS = ("2026-01-05", "2026-01-06")


def _rows(n: int, start: int, day: str) -> dict[str, np.ndarray]:
    stamp = np.datetime64(f"{day}T12:00:00", "ns")
    return {"request_id": np.array([f"r{i}" for i in range(start, start + n)], dtype=object),
            "timestamp": np.full(n, stamp), "customer_id": np.array([f"C{i}" for i in range(start, start + n)], dtype=object),
            "snapshot_date": np.full(n, np.datetime64(day, "ns")), "model_name": np.full(n, "churn_model", dtype=object),
            "model_version": np.full(n, "1", dtype=object), "score": np.linspace(0, 1, n)}


def _durable(log: PredictionLog, columns: dict) -> None:
    done, errors = threading.Event(), []
    log.append(columns, lambda err: (errors.append(err), done.set()))
    assert done.wait(30) and errors == [None]


def _shipped(s3, url: str) -> list[str]:
    s3.fs.invalidate_cache()
    return sorted(p.split("/", 2)[2] for p in s3.fs.find(url)) if s3.fs.exists(url) else []


def test_sealed_segments_are_shipped_and_read_back_from_s3_elsewhere(s3, tmp_path):
    url = s3.folder()
    root = tmp_path / "service" / "churn"
    with _environ({"ML_ASSETS_PREDICTION_LOG_URL": url}):
        log = PredictionLog(root, roll_seconds=3600)
        log.start()
        _durable(log, _rows(3, 0, DAYS[0]))
        _durable(log, _rows(2, 3, DAYS[1]))
        assert list(read_log(root)["request_id"]) == [f"r{i}" for i in range(5)]  # from the local segment
        assert _shipped(s3, url) == []  # nothing shipped while the segment is open
        log.close()  # seals and ships it
        shipped = _shipped(s3, url)
        assert [p.split("/")[-2] for p in shipped] == [f"day={d}" for d in DAYS]
        assert all(p.split("/")[-3] == "churn" for p in shipped)
        assert not list(root.rglob("*.parquet")) and not list((root / SEGMENTS).iterdir())  # nothing kept locally
        elsewhere = read_log(tmp_path / "dagster-machine" / "churn")  # a folder that does not exist
        assert list(elsewhere["request_id"]) == [f"r{i}" for i in range(5)]
        assert elsewhere["day"].tolist() == [DAYS[0]] * 3 + [DAYS[1]] * 2
    assert read_log(tmp_path / "dagster-machine" / "churn").empty  # without the URL: the local folder only


def test_a_store_that_is_down_loses_nothing_and_the_next_shipment_takes_what_failed(s3, tmp_path):
    root = tmp_path / "churn"
    dead = Segment(root)  # a killed process's segment, synced, lock released
    dead.write(dead.encode(_rows(2, 0, DAYS[0])), 2)
    dead.sync()
    dead.release()
    down = f"s3://{s3.bucket}-missing/prediction_log"  # no such bucket: every PUT fails
    with _environ({"ML_ASSETS_PREDICTION_LOG_URL": down}):
        log = PredictionLog(root, roll_seconds=3600)
        log.start()  # starts anyway: the segment stays
        _durable(log, _rows(1, 2, DAYS[0]))  # and answers are still recorded locally
        log.close()
        assert len(segment_files(root)) == 2
        assert sorted(read_log(root)["request_id"]) == ["r0", "r1", "r2"]
        assert not s3.fs.exists(down.removeprefix("s3://").split("/")[0])  # no bucket created by a write
    url = s3.folder()
    with _environ({"ML_ASSETS_PREDICTION_LOG_URL": down}):
        log = PredictionLog(root, roll_seconds=3600)
        log.start()
        _durable(log, _rows(1, 3, DAYS[1]))
        with _environ({"ML_ASSETS_PREDICTION_LOG_URL": url}):  # the store is back before the roll-over
            log.close()  # ships its own segment, then the two an earlier upload failed on
            assert not segment_files(root) and len(_shipped(s3, url)) == 3
            assert sorted(read_log(tmp_path / "other" / "churn")["request_id"]) == ["r0", "r1", "r2", "r3"]


@pytest.mark.slow
def test_the_served_predictions_asset_reads_the_shipped_log(s3, tmp_path, defs, instance):
    url = s3.folder()
    with _environ({"ML_ASSETS_PREDICTION_LOG_URL": url}):
        log = PredictionLog(tmp_path / "service" / "churn")
        log.start()
        _durable(log, _rows(4, 0, DAYS[0]))
        _durable(log, _rows(1, 4, DAYS[1]))
        log.close()
        job = defs.resolve_implicit_global_asset_job_def()
        config = {"ops": {"churn__served_predictions": {"config": {"log_dir": str(tmp_path / "absent" / "churn")}}}}
        result = job.execute_in_process(instance=instance, partition_key=DAYS[0], run_config=config,
                                        asset_selection=[dg.AssetKey(["churn", "served_predictions"])])
    [materialization] = result.asset_materializations_for_node("churn__served_predictions")
    assert materialization.metadata["rows_served"].value == 4
    assert materialization.metadata["prediction_log_store"].value == f"{url}/churn"
