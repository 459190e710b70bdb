"""The segment format: what the request path writes as JSON lines reads back with the types Arrow
gives the same arrays (through Arrow's JSON reader, and line by line for what it refuses), a value
JSON cannot hold fails its own batch only, and segments of the earlier Arrow format (left by a
killed older version) are still read and compacted."""

import json
import threading

import numpy as np
import pyarrow as pa
import pytest

from ml_assets.serving import segment_read
from ml_assets.serving.predlog import LogUnavailable, PredictionLog, read_log
from ml_assets.serving.segment import SEGMENTS, Segment
from ml_assets.serving.segment_read import read_segment

NAT = np.datetime64("NaT", "ns")


def _columns(infinite: bool) -> dict[str, np.ndarray]:
    return {
        "request_id": np.array(["a", "b", "c"], dtype=object),
        "timestamp": np.array(["2026-12-01T12:00:00.123456789", "2026-12-01T23:59:59", "2026-12-02"],
                              dtype="datetime64[ns]"),
        "snapshot_date": np.array(["2026-11-30", NAT, "2026-12-01"], dtype="datetime64[ns]"),
        "tenure_months": np.array([3, -(2**62), 7], dtype=np.int64),
        "monthly_charges": np.array([70.25, np.nan, 1e-300]),
        # JSON has no infinity: written as text, read back as float
        "score": np.array([np.inf, -np.inf, 0.5]) if infinite else np.array([0.25, 1.0, 0.5]),
        "is_senior": np.array([True, False, True]),
        "contract": np.array(["month-to-month", None, np.nan], dtype=object),  # a categorical: missing is NaN
        "region": np.array(["north", "süd", "东"], dtype="<U5"),
        "shadow_version": np.array([None, None, None], dtype=object),
        "weight": np.array([np.float64(1.5), None, 2], dtype=object),  # numpy scalars inside an object array
    }


@pytest.mark.parametrize("infinite", [False, True])
@pytest.mark.parametrize("chunk", [8192, 2])  # converted in one chunk, or in chunks of 2 rows
@pytest.mark.parametrize("repeat", [1, 6])  # batches of 3 rows (a line each) and of 18 (one batch line)
def test_every_column_reads_back_as_arrow_stores_it(tmp_path, monkeypatch, infinite, chunk, repeat):
    monkeypatch.setattr(segment_read, "CHUNK", chunk)
    if not infinite:  # the compactor's usual path: Arrow's reader takes every row, none is parsed line by line
        monkeypatch.setattr(segment_read, "_rows_by_line", lambda lines: pytest.fail("parsed line by line"))
    segment = Segment(tmp_path)
    columns = {name: np.tile(values, repeat) for name, values in _columns(infinite).items()}
    small = {name: values[:3] for name, values in columns.items()}
    batches = [columns, small, columns]  # rows, then a batch line between row lines, or the other way round
    segment.write(b"".join(segment.encode(b) for b in batches), 3 * repeat)  # one schema line
    segment.flush()
    lines = segment.path.read_bytes().splitlines()  # newline-delimited JSON: a schema line, then records
    assert lines[0].startswith(b"#") and [line[:1] == b"@" for line in lines[1:]] == (
        [False] * 9 if repeat == 1 else [True, False, False, False, True])
    if repeat == 1:
        assert [json.loads(line)["request_id"] for line in lines[1:]] == ["a", "b", "c"] * 3
    table = read_segment(segment.path)
    segment.release()
    expected = pa.table({name: pa.array(np.concatenate([b[name] for b in batches]), from_pandas=True)
                         for name in columns})
    for name in columns:
        got, want = table[name], expected[name]
        if name == "shadow_version":  # all missing: text (a later batch's versions join it)
            assert got.type == pa.string() and got.null_count == len(expected)
        elif name == "score" and infinite:
            assert got.to_pylist() == [np.inf, -np.inf, 0.5] * (len(expected) // 3)
        else:
            assert got.type == want.type and got.to_pylist() == want.to_pylist(), name


@pytest.mark.parametrize("chunk", [8192, 2])
def test_an_object_column_keeps_one_type_across_batches_and_chunks(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(segment_read, "CHUNK", chunk)
    segment = Segment(tmp_path)
    batches = {"version": ([None, None], ["3", None]),  # no value in a chunk: the others' type
               "weight": ([1, 2], [2.5, None]),  # whole numbers, then fractions: floats
               "note": (["a", None], [1, 2.5])}  # text, then numbers: one type cannot hold both, kept as text
    for k in range(2):
        segment.write(segment.encode({name: np.array(b[k], dtype=object) for name, b in batches.items()}), 2)
    segment.flush()
    table = read_segment(segment.path)
    segment.release()
    assert table["version"].to_pylist() == [None, None, "3", None] and table["version"].type == pa.string()
    assert table["weight"].to_pylist() == [1.0, 2.0, 2.5, None] and table["weight"].type == pa.float64()
    assert table["note"].to_pylist() == ["a", None, "1", "2.5"]


def test_a_value_json_cannot_hold_fails_its_own_batch_only(tmp_path):
    log = PredictionLog(tmp_path, roll_seconds=3600)
    log.start()
    outcomes = []
    try:
        for k, value in enumerate(["fine", object(), "also fine"]):
            done = threading.Event()
            log.append({"request_id": np.array([f"r{k}"], dtype=object),
                        "timestamp": np.array(["2026-12-01"], dtype="datetime64[ns]"),
                        "note": np.array([value], dtype=object)}, lambda err, d=done: (outcomes.append(err), d.set()))
            assert done.wait(30)
    finally:
        log.close()
    assert outcomes[0] is None and isinstance(outcomes[1], LogUnavailable) and outcomes[2] is None
    assert list(read_log(tmp_path)["request_id"]) == ["r0", "r2"]


@pytest.mark.parametrize("torn", [b"", b"\xff\xff\xff\xff\x90\x00\x00 half a batch"])
def test_a_segment_of_the_earlier_arrow_format_is_read_and_compacted(tmp_path, torn):
    """An upgrade keeps what a killed older version left: its `.arrows` segment (an Arrow IPC stream,
    possibly torn) is read by `read_log` and compacted at the next start-up."""
    (tmp_path / SEGMENTS).mkdir(parents=True)
    path = tmp_path / SEGMENTS / "seg-host-1-1-old.arrows"
    batch = pa.table({"request_id": ["r0", "r1"], "timestamp": pa.array(
        np.array(["2026-12-01T10:00", "2026-12-01T11:00"], dtype="datetime64[ns]")), "score": [0.1, 0.9]})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_table(batch)
    path.write_bytes(path.read_bytes() + torn)
    assert list(read_log(tmp_path)["request_id"]) == ["r0", "r1"]
    log = PredictionLog(tmp_path)
    log.start()
    log.close()
    assert not path.exists() and list(tmp_path.glob("day=2026-12-01/*.parquet"))
    assert read_log(tmp_path)["score"].tolist() == [0.1, 0.9]


def test_text_that_looks_like_the_format_reads_back_unchanged(tmp_path, monkeypatch):
    """A client's text can hold newlines, `#` and `@` (the format's line markers), quotes, escapes,
    NUL and any Unicode: JSON escapes it inside its line, so every line stays one row."""
    monkeypatch.setattr(segment_read, "_rows_by_line", lambda lines: pytest.fail("parsed line by line"))
    hostile = ["x\n#{\"a\": 1}", "\n@{}\n", '"quoted" \\ back\\slash', "nul\x00byte", "emoji 🙂 and 漢字", "#", "@", ""]
    segment = Segment(tmp_path)
    for k, text in enumerate(hostile):
        segment.write(segment.encode({"request_id": np.array([f"r{k}"], dtype=object),
                                      "note": np.array([text], dtype=object)}), 1)
    batch = {"request_id": np.array([f"b{k}" for k in range(16)], dtype=object),  # one batch line
             "note": np.array((hostile * 2)[:16], dtype=object)}
    segment.write(segment.encode(batch), 16)
    segment.flush()
    assert len(segment.path.read_bytes().splitlines()) == 1 + len(hostile) + 1
    table = read_segment(segment.path)
    segment.release()
    assert table["note"].to_pylist() == hostile + (hostile * 2)[:16]
