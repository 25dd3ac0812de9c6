"""Plain ASGI around the app: guards before any parsing (body size 413, content type 415), and
the count and timing of every response."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from level1_devops.settings import is_loopback
from level3_deployment.service.metrics import ServiceMetrics

Scope = dict[str, Any]
log = logging.getLogger("mlops.service")


async def _reply(send: Any, status: int, detail: str,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class AdmissionGuard:
    """Shed load before any work: when a prediction route is full (``full(path)`` names the
    bound, or None), answer 503 with Retry-After before the body is read or parsed, so that
    refusing a request costs almost nothing and overload does not eat the capacity."""

    def __init__(self, app: Any, full: Callable[[str], str | None], retry_after_s: int,
                 on_shed: Callable[[str], None]) -> None:
        self.app, self.full, self.on_shed = app, full, on_shed
        self.retry_after = str(retry_after_s).encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            bound = self.full(scope["path"])
            if bound is not None:
                self.on_shed(bound)
                await _reply(send, 503, f"overloaded: {bound}; retry in "
                             f"{self.retry_after.decode()} s",
                             ((b"retry-after", self.retry_after),))
                return
        await self.app(scope, receive, send)


class RequestGuard:
    """Refuse non-JSON POST bodies (415) and bodies over ``max_body_bytes`` (413).

    The declared Content-Length is checked before reading; a body sent without one (chunked)
    is read up to the limit first, refused as soon as it passes it, and otherwise handed on.
    """

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        has_body = b"transfer-encoding" in headers or declared not in (None, b"0")
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if has_body and content_type != b"application/json":
            await _reply(send, 415, "Content-Type must be application/json")
            return
        if declared is not None and (not declared.isdigit()
                                     or int(declared) > self.max_body_bytes):
            await _reply(send, 413, f"body larger than {self.max_body_bytes} bytes")
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit before the app parses anything.
        chunks: list[bytes] = []
        seen, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            more = message.get("more_body", False)
            if seen > self.max_body_bytes:
                await _reply(send, 413, f"body larger than {self.max_body_bytes} bytes")
                return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


class ExposureGuard:
    """Without an API key the service answers only on a loopback address, however it was
    started (`mlops serve`, a bare `uvicorn --factory`, a container): a request that arrived
    on any other local address gets 503 and the log says why."""

    def __init__(self, app: Any, has_key: bool) -> None:
        self.app, self.has_key, self._warned = app, has_key, False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.has_key:
            host = (scope.get("server") or ("127.0.0.1", None))[0]
            if not is_loopback(str(host)):
                if not self._warned:
                    log.error("refusing requests on %s: an exposed address needs "
                              "MLOPS_SERVICE_API_KEY", host)
                    self._warned = True
                await _reply(send, 503, f"this service has no API key, so it serves only on "
                             f"loopback, not on {host}: set MLOPS_SERVICE_API_KEY")
                return
        await self.app(scope, receive, send)


class Instrumented:
    """Counts every response by route and status, and times it (pure ASGI)."""

    def __init__(self, app: Any, metrics: ServiceMetrics, routes: Collection[str]) -> None:
        self.app, self.metrics, self.routes = app, metrics, frozenset(routes)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        start, status = time.perf_counter(), 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
