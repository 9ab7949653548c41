"""Why a request with an ``Idempotency-Key`` was not run."""

from __future__ import annotations

from domain.shared.errors import Conflict, RuleViolation


class IdempotencyKeyInUse(Conflict):
    """A request with this key is still running: a concurrent duplicate, refused rather than run twice."""

    code = "idempotency_key_in_use"
    title = "A request with this Idempotency-Key is in progress"


class IdempotencyKeyReused(RuleViolation):
    """The key was first used for a different request: a client bug, not a retry."""

    code = "idempotency_key_reused"
    title = "Idempotency-Key reused for a different request"
