"""What both compatible APIs build from a request before calling a use case."""

from __future__ import annotations

from application.compat.create_completion import CompletionCommand
from domain.auth.model import Principal
from domain.llm.model import CompletionRequest
from interfaces.http.cache_control import cache_policy
from interfaces.http.context import request_id_var


def completion_command(principal: Principal, request: CompletionRequest, cache_control: str) -> CompletionCommand:
    return CompletionCommand(
        principal=principal, request=request, request_id=request_id_var.get(), cache=cache_policy(cache_control)
    )
