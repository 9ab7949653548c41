"""What both compatible APIs build from a request before calling a use case."""

from __future__ import annotations

from application.compat.create_completion import CompletionCommand
from application.llm.gateway import CachePolicy
from domain.auth.model import Principal
from domain.llm.model import CompletionRequest
from interfaces.http.context import request_id_var


def cache_policy(cache_control: str) -> CachePolicy:
    """``Cache-Control: no-store`` (or ``no-cache``) opts out of Switchboard's response cache."""
    directives = {d.strip().lower() for d in cache_control.split(",")}
    return CachePolicy.BYPASS if directives & {"no-store", "no-cache"} else CachePolicy.DEFAULT


def completion_command(principal: Principal, request: CompletionRequest, cache_control: str) -> CompletionCommand:
    return CompletionCommand(
        principal=principal, request=request, request_id=request_id_var.get(), cache=cache_policy(cache_control)
    )
