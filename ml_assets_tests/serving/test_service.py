"""The scoring service over real HTTP: predictions, bad requests, health, metrics, log."""

import asyncio
import json
import math

import httpx
import numpy as np
import pytest
from ml_examples.churn.problem import CHURN

from ml_assets.core.scoring import to_features
from ml_assets.mlflow.registry import load_version
from ml_assets.serving.predlog import read_log
from ml_assets.serving.scorer import Scorer
from ml_assets_tests.registered import raw_records
from ml_assets_tests.serving.conftest import NAME, running

RECORDS = raw_records(60)
GOOD = RECORDS[0]


def test_one_record_and_a_batch_are_scored_by_the_champion(config, registry):
    with running(config) as http:
        one = http.post("/predict", json=GOOD, headers={"x-request-id": "req-42"})
        batch = http.post("/predict", json={"records": RECORDS})
    assert one.status_code == 200 and one.headers["x-request-id"] == "req-42"
    body = one.json()
    assert body["model_version"] == registry["v1"] and body["request_id"] == "req-42"
    assert 0.0 <= body["score"] <= 1.0 and body["label"] == int(body["score"] >= CHURN.decision_threshold)
    predictions = batch.json()["predictions"]
    assert [p["customer_id"] for p in predictions] == [r["customer_id"] for r in RECORDS]
    # the service (validation, features, numpy fast path) reproduces the registered pipeline exactly
    scorer = Scorer(CHURN)
    frame = scorer.frame([scorer.record_model.model_validate(r) for r in RECORDS])
    expected = load_version(NAME, registry["v1"], registry["uri"]).pipeline.predict_proba(to_features(frame, CHURN))
    np.testing.assert_allclose([p["score"] for p in predictions], expected[:, 1], rtol=1e-9)
    assert predictions[0]["score"] == pytest.approx(body["score"], rel=1e-12)


def _with(**changes) -> dict:
    return {**GOOD, **changes}


def _without(field: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != field}


BAD = [
    pytest.param(b'{"customer_id": "C1", ', 400, "malformed JSON", id="truncated-json"),
    pytest.param(b"\xff\xfe\x00garbage", 400, "malformed JSON", id="not-utf8"),
    pytest.param(json.dumps(_without("tenure_months")), 422, "tenure_months", id="missing-field"),
    pytest.param(json.dumps(_with(favourite_colour="red")), 422, "favourite_colour", id="extra-field"),
    pytest.param(json.dumps(_with(tenure_months="12")), 422, "tenure_months", id="string-for-int"),
    pytest.param(json.dumps(_with(monthly_charges=True)), 422, "monthly_charges", id="bool-for-float"),
    pytest.param(json.dumps(_with(monthly_charges=float("nan"))), 422, "finite", id="nan"),
    pytest.param(json.dumps(_with(monthly_charges=float("inf"))), 422, "finite", id="infinity"),
    pytest.param(json.dumps(_with(tenure_months=-1)), 422, "greater than or equal", id="out-of-range"),
    pytest.param(json.dumps(_with(contract="weekly")), 422, "month_to_month", id="unknown-category"),
    pytest.param(json.dumps(_with(snapshot_date="yesterday")), 422, "snapshot_date", id="bad-date"),
    pytest.param(json.dumps(_with(customer_id="")), 422, "customer_id", id="empty-id"),
    # JSON lets a string escape half a UTF-16 pair; no text holds one, and the log could not write it
    pytest.param(json.dumps(_with(region="north\ud800")), 422, "region", id="lone-surrogate"),
    pytest.param(json.dumps([GOOD]), 422, "JSON object", id="top-level-array"),
    pytest.param(json.dumps({"records": []}), 422, "records", id="empty-batch"),
    pytest.param(json.dumps({"records": [GOOD, GOOD]}), 422, "duplicate", id="duplicate-keys"),
    pytest.param(json.dumps({"records": [GOOD] * 501}), 413, "limit is 500", id="too-many-records"),
    pytest.param(json.dumps({"records": RECORDS * 40}), 413, "over the limit", id="oversized-body"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD)
def test_client_mistakes_are_4xx_with_a_clear_message(config, body, status, message):
    with running(config) as http:
        response = http.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.text and response.json()["request_id"]


def test_an_oversized_chunked_body_is_cut_off_with_413(config):
    def chunks():
        for _ in range(64):
            yield b" " * 8192  # no Content-Length: the limit is enforced while reading
    with running(config) as http:
        response = http.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_a_new_region_is_drift_not_an_error(config):
    with running(config) as http:
        response = http.post("/predict", json=_with(region="antarctica", total_charges=None))
    assert response.status_code == 200 and math.isfinite(response.json()["score"])


def test_health_metrics_and_openapi(config, registry):
    with running(config) as http:
        http.post("/predict", json=GOOD)
        http.post("/predict", content=b"{", headers={"content-type": "application/json"})
        health, metrics, docs = http.get("/health").json(), http.get("/metrics").text, http.get("/openapi.json").json()
    assert health["status"] == "ok" and health["champion"]["version"] == registry["v1"]
    assert health["champion"]["fast_path"]  # the verified numpy path is what serves
    assert f'ml_assets_model_info{{model="{NAME}",role="champion",version="{registry["v1"]}"}} 1.0' in metrics
    assert 'ml_assets_http_requests_total{endpoint="/predict",method="POST",status="200"} 1.0' in metrics
    assert 'ml_assets_http_requests_total{endpoint="/predict",method="POST",status="400"} 1.0' in metrics
    assert "ml_assets_http_request_duration_seconds_bucket" in metrics
    assert 'ml_assets_prediction_score_count 1.0' in metrics and 'ml_assets_errors_total{kind="bad_json"} 1.0' in metrics
    assert "ChurnRecord" in docs["components"]["schemas"]  # the contract is documented, from the schema
    assert docs["components"]["schemas"]["ChurnRecord"]["properties"]["contract"]["enum"] == [
        "month_to_month", "one_year", "two_year"]


def test_every_prediction_lands_in_the_day_partitioned_log(config, registry):
    with running(config) as http:
        ids = [http.post("/predict", json=r).json()["request_id"] for r in RECORDS[:5]]
        batch_id = http.post("/predict", json={"records": RECORDS[5:15]}).json()["request_id"]
    log = read_log(config.log_dir)  # the service flushed on shutdown
    assert len(log) == 15 and set(log["request_id"]) == {*ids, batch_id}
    assert list(config.log_dir.glob("day=*/*.parquet"))
    assert set(log["model_version"]) == {registry["v1"]} and log["score"].between(0, 1).all()
    assert {"customer_id", "snapshot_date", "contract", "timestamp", "shadow_version"} <= set(log.columns)
    assert log.set_index("request_id").loc[ids[0], "customer_id"] == RECORDS[0]["customer_id"]


def test_sustained_mixed_load_never_answers_5xx(config):
    bodies = [json.dumps(r) for r in RECORDS] + [json.dumps(_with(contract="weekly")), "{", json.dumps({"records": RECORDS})]

    async def load(base: str) -> list[int]:
        statuses = []
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            async def worker(offset: int):
                for i in range(60):
                    body = bodies[(offset + i) % len(bodies)]
                    response = await client.post("/predict", content=body, headers={"content-type": "application/json"})
                    statuses.append(response.status_code)
            await asyncio.gather(*(worker(k * 7) for k in range(8)))
        return statuses

    with running(config) as http:
        statuses = asyncio.run(load(str(http.base_url)))
    assert len(statuses) == 480 and not [s for s in statuses if s >= 500]
    assert statuses.count(200) > 400 and {400, 422} <= set(statuses)
