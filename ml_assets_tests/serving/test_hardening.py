"""No 5xx for any client input, over real HTTP: nesting, disconnects, slow bodies, tokens, docs,
dependency failures, one error shape; and a store that does not exist stops the service at start-up."""

import json
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from ml_assets.serving.app import ServiceConfig, create_app
from ml_assets.serving.startup import BadTrackingUri
from ml_assets_tests.registered import raw_records
from ml_assets_tests.serving.conftest import free_port, running

GOOD = raw_records(1)[0]


def _error_shape(response, status: int) -> dict:
    body = response.json()
    assert response.status_code == status, response.text
    assert set(body) <= {"error", "request_id", "detail"} and body["error"] and body["request_id"]
    assert response.headers["x-request-id"] == body["request_id"]
    return body


@pytest.mark.parametrize("body", [b"[" * 1000 + b"]" * 1000, b'{"records": ' + b"[" * 1000 + b"]" * 1000 + b"}"],
                         ids=["bare", "in-records"])
def test_deep_nesting_is_a_400_with_a_message(config, body):
    assert len(body) >= 2000
    with running(config) as http:
        response = http.post("/predict", content=body, headers={"content-type": "application/json"})
        metrics = http.get("/metrics").text
    assert "nested too deeply" in _error_shape(response, 400)["error"]
    assert 'status="500"' not in metrics


def _raw(port: int, request: bytes, read: bool = True, timeout: float = 30) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        if not read:
            return b""
        chunks = []
        while chunk := s.recv(65536):  # until the server closes the connection
            chunks.append(chunk)
        return b"".join(chunks)


def _head(length: int, path: str = "/predict") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def _wait_for(http, text: str, timeout: float = 20) -> str:
    deadline = time.time() + timeout
    while text not in (metrics := http.get("/metrics").text):
        assert time.time() < deadline, f"{text!r} never appeared in /metrics"
        time.sleep(0.05)
    return metrics


def test_a_client_hanging_up_mid_body_is_not_a_server_error(config):
    with running(config) as http:
        port = http.base_url.port
        _raw(port, _head(5000) + b'{"customer_id": "C1", ', read=False)  # sends part of the body, closes
        metrics = _wait_for(http, 'ml_assets_errors_total{kind="client_disconnect"} 1.0')
    assert 'endpoint="/predict",method="POST",status="499"} 1.0' in metrics
    assert 'status="5' not in metrics  # the paging 5xx alert stays quiet


def test_a_body_shorter_than_its_content_length_gets_408_and_the_connection_is_closed(config):
    with running(replace(config, body_timeout_seconds=0.5)) as http:
        raw = _raw(http.base_url.port, _head(5000) + b'{"customer_id": "C1", ')  # returns once closed
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert "did not arrive within 0.5 s" in json.loads(body)["error"]


def test_a_registry_failure_is_503_without_internals(config, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # what `ml-assets serve` sets
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with running(replace(config, tracking_uri=dead, problem_ref="ml_examples.churn.problem:CHURN")) as http:
        predict, health = http.post("/predict", json=GOOD), http.get("/health")
    body = _error_shape(predict, 503)
    assert body["error"] == "no model to score with: the model registry cannot be read"
    assert health.status_code == 503
    for text in (predict.text, health.text):
        assert "127.0.0.1" not in text and "urllib3" not in text.lower() and "Exception" not in text


def test_not_found_and_wrong_method_have_the_same_error_shape(config):
    with running(config) as http:
        missing = http.get("/nope", headers={"x-request-id": "r-404"})
        wrong = http.get("/predict")
    assert _error_shape(missing, 404) == {"error": "Not Found", "request_id": "r-404"}
    assert _error_shape(wrong, 405)["error"] == "Method Not Allowed"


def test_docs_are_served_without_a_cdn(config):
    with running(config) as http:
        page = http.get("/docs")
        assets = [http.get(f"/static-offline-docs/{name}") for name in ("swagger-ui-bundle.js", "swagger-ui.css")]
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "https://" not in page.text and "http://" not in page.text  # every asset is the service's own
    assert all(a.status_code == 200 and len(a.content) > 10_000 for a in assets)


def test_a_bearer_token_protects_predict_and_metrics_not_health(config, monkeypatch):
    monkeypatch.setenv("ML_ASSETS_SERVICE_TOKEN", "s3cret")
    protected = ServiceConfig(**{**config.__dict__, "token": ServiceConfig(problem="churn").token})  # read from the env
    with running(protected) as http:
        anonymous, wrong = http.post("/predict", json=GOOD), http.post("/predict", json=GOOD,
                                                                       headers={"authorization": "Bearer nope"})
        right = http.post("/predict", json=GOOD, headers={"authorization": "Bearer s3cret"})
        metrics_anonymous, metrics_right = http.get("/metrics"), http.get("/metrics",
                                                                          headers={"authorization": "Bearer s3cret"})
        health = http.get("/health")
    assert "bearer token" in _error_shape(anonymous, 401)["error"] and anonymous.headers["www-authenticate"] == "Bearer"
    _error_shape(wrong, 401)
    _error_shape(metrics_anonymous, 401)
    assert right.status_code == 200 and 0 <= right.json()["score"] <= 1
    assert metrics_right.status_code == 200 and "ml_assets_http_requests_total" in metrics_right.text
    assert health.status_code == 200 and health.json()["status"] == "ok"


EXTREMES = [10**30, -(10**30), 1e308, -1e308, 5e-324, "x" * 10_000, "\ud800", "", None, True, [], {},
            "9999-12-31T23:59:59", "0001-01-01T00:00:00", "2026-01-01T00:00:00+14:00"]


def test_extreme_values_in_every_field_never_answer_5xx(config):
    bodies = [json.dumps({**GOOD, field: value}) for field in GOOD for value in EXTREMES]
    bodies += [json.dumps({"records": [{**GOOD, field: value}, GOOD]}) for field in GOOD for value in EXTREMES[:8]]
    with running(config) as http:
        statuses = {body: http.post("/predict", content=body, headers={"content-type": "application/json"})
                    .status_code for body in bodies}
    assert not {body: s for body, s in statuses.items() if s >= 500}
    assert 200 in statuses.values() and 422 in statuses.values()


@pytest.mark.parametrize("uri", ["sqlite:///{tmp}/no_such.db", "sqlit:///{tmp}/mlflow.db", "{tmp}/no_such_dir",
                                 "file://{tmp}/no_such_dir"], ids=["missing-sqlite", "typo-scheme", "missing-path",
                                                                    "missing-file-store"])
def test_a_tracking_uri_that_does_not_exist_stops_the_service_at_start_up(config, tmp_path, uri):
    uri = uri.format(tmp=tmp_path)
    with pytest.raises(BadTrackingUri, match="tracking URI"):
        create_app(replace(config, tracking_uri=uri))
    done = subprocess.run([sys.executable, "-m", "ml_assets.ops.cli", "serve", "--problem", "churn", "--tracking-uri", uri,
                           "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "tracking URI" in done.stderr and "--tracking-uri" in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.iterdir())  # no empty database was created
