"""ASGI middleware around every request: body-size limit (also for chunked bodies), request
metrics by endpoint and status, and a JSON 500 (with the request id) for our own bugs."""

from __future__ import annotations

import time
import uuid

from fastapi.responses import JSONResponse

from ml_assets.serving.metrics import ServiceMetrics

ENDPOINTS = {"/predict", "/health", "/metrics", "/docs", "/openapi.json"}


def request_id(given: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    return given if given and len(given) <= 128 and given.isprintable() else uuid.uuid4().hex


class BodyTooLarge(Exception):
    pass


def error(status: int, message: str, request_id: str | None, metrics: ServiceMetrics, kind: str,
          detail: list | None = None) -> JSONResponse:
    metrics.errors.labels(kind).inc()
    body = {"error": message, "request_id": request_id, **({"detail": detail} if detail else {})}
    return JSONResponse(body, status_code=status, headers={"x-request-id": request_id} if request_id else None)


class Guard:
    def __init__(self, app, metrics: ServiceMetrics, max_body_bytes: int):
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, state = time.perf_counter(), {"status": 500, "started": False, "received": 0}
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0")
        rid = request_id(headers.get(b"x-request-id", b"").decode("latin-1"))

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        try:
            if length.isdigit() and int(length) > self.max_body_bytes:
                raise BodyTooLarge
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            await self._reply(error(413, f"request body over the limit of {self.max_body_bytes} bytes", rid,
                                    self.metrics, "too_large"), scope, receive, tracked_send)
        except Exception as err:
            if state["started"]:
                raise
            await self._reply(error(500, f"internal error: {type(err).__name__}", rid, self.metrics, "internal"),
                              scope, receive, tracked_send)
        finally:
            self.metrics.requests.labels(endpoint, scope["method"], str(state["status"])).inc()
            self.metrics.latency.labels(endpoint, scope["method"]).observe(time.perf_counter() - started)

    @staticmethod
    async def _reply(response: JSONResponse, scope, receive, send) -> None:
        await response(scope, receive, send)
