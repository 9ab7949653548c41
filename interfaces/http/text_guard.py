"""Refuses a request with a NUL character (U+0000) anywhere a client puts text, before any route runs.

PostgreSQL's ``text`` cannot hold a NUL, and no header, name, prompt or email needs one; a request carrying one
could only fail later, after a model call was made and billed. So it is refused here, at the edge, for every route:
in the path, the query string (``%00``), a header, or the body: a raw NUL byte, a JSON ``\\u0000`` escape (not an
escaped backslash followed by ``u0000``, which is ordinary text), or ``%00`` in a form. The native API answers 422
in problem+json, ``/v1`` a 400 in the OpenAI or Anthropic shape. A multipart upload to ``/v1/files`` is the one body
not scanned: a file's bytes are data, not text (a PDF holds NUL bytes); its handler checks the text fields it reads,
and what reads a file's text later refuses NUL (a batch's lines) or drops it (a document's parsed text). The domain
refuses NUL in what it stores as well.

The body is read whole before the app sees it and replayed; the request middleware outside has already bounded it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interfaces.http.compat.app import PREFIX as COMPAT_PREFIX
from interfaces.http.compat.errors import dialect_of, error_response
from interfaces.http.compat.files import PATH as UPLOAD_PATH
from interfaces.http.errors import problem_response

_NUL = b"\x00"
_JSON_NUL = b"\\u0000"
_FORM_NUL = b"%00"
_FORM = b"application/x-www-form-urlencoded"
_MULTIPART = b"multipart/form-data"


def json_has_nul(body: bytes) -> bool:
    """Whether a JSON text holds a ``\\u0000`` escape: one whose backslash is not itself escaped."""
    start = body.find(_JSON_NUL)
    while start != -1:
        backslashes = 0
        while start - backslashes > 0 and body[start - backslashes - 1] == 0x5C:
            backslashes += 1
        if backslashes % 2 == 0:
            return True
        start = body.find(_JSON_NUL, start + 1)
    return False


def body_has_nul(body: bytes, content_type: bytes) -> bool:
    if _NUL in body:
        return True
    if content_type.startswith(_FORM):
        return _FORM_NUL in body
    return json_has_nul(body)  # every other body the API reads is JSON, whatever its declared type


def nul_in_head(scope: Scope) -> list[str | int] | None:
    """Where the request line or headers hold a NUL, as an error location; ``None`` when they hold none."""
    if "\x00" in scope["path"]:
        return ["path"]
    query: bytes = scope.get("query_string", b"")
    if _NUL in query or _FORM_NUL in query:
        return ["query"]
    for name, value in scope["headers"]:
        if _NUL in value or _NUL in name:
            return ["header", name.decode("latin-1").replace("\x00", "")]
    return None


class NulGuard:
    """Pure ASGI: checks the request line and headers, then the body, and answers in the API's error shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._compat = COMPAT_PREFIX + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = nul_in_head(scope)
        if where is not None:
            await self._refuse(scope, where, receive, send)
            return
        content_type = b""
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.lower()
            elif (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
                has_body = True
        if not has_body:
            await self.app(scope, receive, send)
            return
        body, ended = await _read(receive)
        upload = scope["path"] == UPLOAD_PATH and content_type.startswith(_MULTIPART)
        if ended is None and not upload and body_has_nul(body, content_type):
            await self._refuse(scope, ["body"], receive, send)
            return
        await self.app(scope, _replay(body, ended, receive), send)

    async def _refuse(self, scope: Scope, where: list[str | int], receive: Receive, send: Send) -> None:
        part = " ".join(str(p) for p in where)
        detail = f"the request's {part} contains a NUL character (U+0000), which no text may hold"
        if scope["path"].startswith(self._compat):
            param = ".".join(str(p) for p in where)
            response = error_response(dialect_of(scope), 400, detail, code="invalid_value", param=param)
            await response(scope, receive, send)
            return
        errors = [{"loc": where, "msg": "must not contain a NUL character (U+0000)", "type": "nul_character"}]
        problem = problem_response(
            Request(scope),
            status=422,
            code="validation_error",
            title="Invalid request",
            detail=detail,
            errors=errors,
        )
        await problem(scope, receive, send)


async def _read(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole body, and the message that ended it early (a disconnect), if one did."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, ended: Message | None, receive: Receive) -> Receive:
    first: Message = ended or {"type": "http.request", "body": body, "more_body": False}
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
