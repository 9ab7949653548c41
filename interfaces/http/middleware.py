"""Pure ASGI middleware (no ``BaseHTTPMiddleware``: it buffers and costs a task per request)."""

from __future__ import annotations

import logging
import re
import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interfaces.http.context import request_id_var
from interfaces.http.rate_limit_headers import header_fields

logger = logging.getLogger("switchboard.http")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def _problem(status: int, code: str, title: str, detail: str, path: str, request_id: str) -> bytes:
    return orjson.dumps(
        {
            "type": "urn:switchboard:problem:" + code,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": path,
            "code": code,
            "request_id": request_id,
        }
    )


async def _send_problem(send: Send, status: int, body: bytes, request_id: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                *_SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Request id (from a valid ``X-Request-ID`` or new), security and rate-limit headers, and a last-resort 500.

    An unexpected exception is logged with the request id and answered with a bare problem: no trace, no class name.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _VALID_REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        request_id_var.set(request_id)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"x-request-id" not in present:
                    headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                headers.extend(header_fields(state))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error on %s %s [request_id=%s]", scope["method"], scope["path"], request_id)
            if not started:
                body = _problem(
                    500,
                    "internal_error",
                    "Internal server error",
                    "an unexpected error occurred",
                    scope["path"],
                    request_id,
                )
                await _send_problem(send, 500, body, request_id)


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length up front or by counting a streamed body."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await self._refuse(scope, send)
                    return
                # The server holds the body to its declared length, so nothing more to count.
                await self.app(scope, receive, send)
                return
        # No length given (chunked): read the body here, up to the limit, and replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        request_id = scope.get("state", {}).get("request_id", "-")
        detail = f"request body larger than {self.max_bytes} bytes"
        body = _problem(413, "payload_too_large", "Payload too large", detail, scope["path"], request_id)
        await _send_problem(send, 413, body, request_id)
