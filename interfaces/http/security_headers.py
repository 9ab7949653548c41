"""Response headers that make browsers treat the API as data: never sniffed, framed, cached or downgraded to HTTP.

``RequestContextMiddleware`` sets the basic ones on every response; this adds a Content-Security-Policy that forbids
everything (an API answer is never a page to render; the interactive docs keep the policy they need) and, when the
service is served over TLS, ``Strict-Transport-Security``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = b"max-age=63072000; includeSubDomains"  # two years, OWASP's recommendation
DOCS_PREFIX = "/docs"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra: list[tuple[bytes, bytes]] = []
        if not scope["path"].startswith(DOCS_PREFIX):
            extra.append((b"content-security-policy", API_CSP))
        if self.hsts:
            extra.append((b"strict-transport-security", HSTS))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in extra if header[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
