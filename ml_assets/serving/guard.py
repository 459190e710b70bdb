"""ASGI middleware around every request: request id, optional bearer token, body-size limit (also
for chunked bodies), body read deadline, request metrics by endpoint and status, and one JSON error
shape — `{"error", "request_id", "detail"?}` — for everything it answers itself.

Status codes are the client's story, not ours: a body over the limit is 413, a body that does not
arrive in time 408 (a Content-Length larger than the body cannot hold a connection forever), a
missing or wrong token 401, a client that hangs up mid-body is counted as 499 (nginx's "client
closed request"; nothing is answered). 500 is only our own bug, logged with its traceback here and
answered without internals.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from ml_assets.serving.metrics import ServiceMetrics

ENDPOINTS = {"/predict", "/health", "/metrics", "/docs", "/openapi.json"}
PROTECTED = {"/predict", "/metrics"}  # with a token; /health stays open for probes, /docs for people
DOCS_ASSETS = "/static-offline-docs"  # where fastapi-offline mounts the Swagger UI files
CLIENT_CLOSED = 499
logger = logging.getLogger(__name__)


class RequestIds:
    """The caller's X-Request-ID when it is sane, else a new one: 32 hex characters like a uuid4's,
    a random prefix per app (so per worker process) and a counter, unique without asking the OS for
    16 random bytes per request (which cost more than the rest of the guard)."""

    def __init__(self):
        self.prefix, self.counter = uuid.uuid4().hex[:20], itertools.count()

    def __call__(self, given: str | None) -> str:
        if given and len(given) <= 128 and given.isprintable():
            return given
        return f"{self.prefix}{next(self.counter) % (1 << 48):012x}"


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


def error(status: int, message: str, request_id: str | None, metrics: ServiceMetrics, kind: str,
          detail: list | None = None, headers: dict | None = None) -> JSONResponse:
    metrics.errors.labels(kind).inc()
    body = {"error": message, "request_id": request_id, **({"detail": detail} if detail else {})}
    return JSONResponse(body, status_code=status,
                        headers={**({"x-request-id": request_id} if request_id else {}), **(headers or {})})


Handler = Callable[[bytes, str], Awaitable[Response]]


class Guard:
    """`fast_routes` maps (method, path) to a handler of (body, request id) answered here, without
    passing through the application (its routing and middleware layers); everything the guard
    does (limits, token, ids, metrics, error shape) applies to them too."""

    def __init__(self, app, metrics: ServiceMetrics, max_body_bytes: int, body_timeout_seconds: float = 10.0,
                 token: str | None = None, fast_routes: dict[tuple[str, str], Handler] | None = None):
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes
        self.body_timeout, self.token = body_timeout_seconds, (token or "").encode() or None
        self.fast_routes, self.request_id = fast_routes or {}, RequestIds()
        self._counted: dict[tuple[str, str, str], Callable[[], None]] = {}  # label look-ups, once each
        self._timed: dict[tuple[str, str], Callable[[float], None]] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, state = time.perf_counter(), {"status": 500, "started": False, "received": 0, "body_done": False}
        path = scope["path"]
        endpoint = path if path in ENDPOINTS else "/docs" if path.startswith(DOCS_ASSETS) else "other"
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0")
        rid = self.request_id(headers.get(b"x-request-id", b"").decode("latin-1"))
        scope = {**scope, "state": {**(scope.get("state") or {}), "request_id": rid}}  # read by the app
        deadline = asyncio.get_running_loop().time() + self.body_timeout

        async def guarded_receive():
            if state["body_done"]:  # after the body: a wait for disconnect is no body read
                return await receive()
            try:
                message = await _before(receive(), deadline)
            except TimeoutError:
                raise BodyTimeout from None
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["body_done"] = not message.get("more_body", False)
                if state["received"] > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        async def reply(status: int, message: str, kind: str, extra: dict | None = None):
            await error(status, message, rid, self.metrics, kind, headers=extra)(scope, receive, tracked_send)

        try:
            if self.token and path in PROTECTED and not self._authorized(headers.get(b"authorization", b"")):
                await reply(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                            "unauthorized", {"www-authenticate": "Bearer"})
            elif length.isdigit() and int(length) > self.max_body_bytes:
                raise BodyTooLarge
            elif (handler := self.fast_routes.get((scope["method"], path))) is not None:
                response = await handler(await _body(guarded_receive), rid)
                await response(scope, guarded_receive, tracked_send)
            else:
                await self.app(scope, guarded_receive, tracked_send)
        except BodyTooLarge:
            await reply(413, f"request body over the limit of {self.max_body_bytes} bytes", "too_large",
                        {"connection": "close"})
        except BodyTimeout:
            await reply(408, f"the request body did not arrive within {self.body_timeout:g} s "
                             f"({state['received']} of {length.decode('latin-1')} bytes)", "body_timeout",
                        {"connection": "close"})
        except ClientDisconnect:
            state["status"] = CLIENT_CLOSED  # nobody to answer; not a server error
            self.metrics.errors.labels("client_disconnect").inc()
        except Exception:
            logger.exception("internal error answering %s %s (request %s)", scope["method"], path, rid)
            if state["started"]:
                raise
            await reply(500, "internal error (logged by the service)", "internal")
        finally:
            self._count(endpoint, scope["method"], state["status"], time.perf_counter() - started)

    def _count(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, str(status))
        if (count := self._counted.get(key)) is None:
            count = self._counted[key] = self.metrics.requests.labels(*key).inc
        if (observe := self._timed.get(key[:2])) is None:
            observe = self._timed[key[:2]] = self.metrics.latency.labels(endpoint, method).observe
        count()
        observe(seconds)

    def _authorized(self, header: bytes) -> bool:
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)


async def _before(awaitable, deadline: float):
    """`await awaitable`, raising TimeoutError at the loop time `deadline`. asyncio.timeout_at
    (Python >= 3.11) costs a timer; wait_for (3.10) a task per body read."""
    if hasattr(asyncio, "timeout_at"):
        async with asyncio.timeout_at(deadline):
            return await awaitable
    return await asyncio.wait_for(awaitable, max(0.0, deadline - asyncio.get_running_loop().time()))


async def _body(receive) -> bytes:
    """The whole request body (as starlette's `Request.body()`: a hang-up is ClientDisconnect)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
