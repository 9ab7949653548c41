"""The domain's error tree.

Every error has a stable machine-readable ``code``; none knows about HTTP. The interfaces layer owns the one table
from error class to status code.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain and the use cases raise on purpose."""

    code: str = "domain_error"
    title: str = "Domain error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class RuleViolation(DomainError):
    """The request is well-formed but breaks a business rule (bad value, limit reached)."""

    code = "rule_violation"
    title = "Business rule violated"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class RateLimited(DomainError):
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class DependencyUnavailable(DomainError):
    """A backing service of the gateway itself (Redis) cannot be reached."""

    code = "dependency_unavailable"
    title = "Service temporarily unavailable"


class ServiceUnavailable(DomainError):
    """Something the service itself depends on (its database) cannot be reached now; the same request may work
    after ``retry_after_seconds``. Never the client's fault, and never a crash."""

    code = "service_unavailable"
    title = "Service temporarily unavailable"

    def __init__(self, detail: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class UpstreamError(DomainError):
    """An LLM provider failed. Subclasses say how, so callers can decide to retry or fall back."""

    code = "upstream_error"
    title = "Upstream provider error"
    retryable: bool = False

    def __init__(self, detail: str, *, provider: str = "", model: str = "") -> None:
        super().__init__(detail)
        self.provider = provider
        self.model = model


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"
    title = "Upstream provider unavailable"
    retryable = True


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"
    title = "Upstream provider timed out"
    retryable = True


class UpstreamRateLimited(UpstreamError):
    code = "upstream_rate_limited"
    title = "Upstream provider rate limit"
    retryable = True

    def __init__(
        self, detail: str, *, provider: str = "", model: str = "", retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(detail, provider=provider, model=model)
        self.retry_after_seconds = retry_after_seconds


class UpstreamBadResponse(UpstreamError):
    """The provider answered with something that is not a valid response (malformed body, cut stream).

    Retryable unless raised with ``retryable=False``, for an answer the same request would get again (a redirect,
    an HTML page instead of the API's error): a retry is for what may succeed the second time.
    """

    code = "upstream_bad_response"
    title = "Upstream provider sent an invalid response"
    retryable = True

    def __init__(self, detail: str, *, provider: str = "", model: str = "", retryable: bool = True) -> None:
        super().__init__(detail, provider=provider, model=model)
        self.retryable = retryable


class UpstreamRejected(UpstreamError):
    """The provider refused the request as invalid; sending it again will fail again."""

    code = "upstream_rejected"
    title = "Upstream provider rejected the request"


class ContentFiltered(UpstreamRejected):
    """The provider's content filter refused the prompt (Azure OpenAI's ``content_filter``): the caller's to change."""

    code = "content_filtered"
    title = "The provider's content filter refused the request"


class UpstreamAuthError(UpstreamError):
    """The gateway's own provider credentials were refused: an operator problem, not the client's."""

    code = "upstream_auth_error"
    title = "Upstream provider refused the gateway's credentials"


class ContextTooLong(UpstreamError):
    code = "context_too_long"
    title = "Conversation too long for the model"


class CircuitOpen(UpstreamError):
    code = "circuit_open"
    title = "Upstream provider temporarily disabled"
    retryable = True


class ShuttingDown(DomainError):
    """This instance is stopping: what it was doing was cut short, and the request may be sent again elsewhere."""

    code = "shutting_down"
    title = "Service shutting down"
