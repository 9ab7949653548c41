"""Checks every use case makes about who may do what."""

from __future__ import annotations

from domain.auth.model import Principal, Scope
from domain.shared.errors import Forbidden


def require_scope(principal: Principal, scope: Scope) -> None:
    if scope not in principal.scopes:
        raise Forbidden(f"this credential lacks the '{scope}' scope")


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("administrator role required")
