"""Errors of the auth context."""

from __future__ import annotations

from domain.shared.errors import RuleViolation


class WeakPassword(RuleViolation):
    """A new password that guessing would find early: too short, a sequence, common, breached, or the email."""

    code = "weak_password"
    title = "Password too weak"
