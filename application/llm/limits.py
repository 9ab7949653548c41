"""Limits on what a client may ask of a model, checked before any call: a request the model cannot honour is the
client's error (422), not something to cap behind their back."""

from __future__ import annotations

from domain.llm.model import CompletionRequest
from domain.llm.ports import ModelCatalog
from domain.shared.errors import RuleViolation


def check_output_limit(catalog: ModelCatalog, request: CompletionRequest) -> None:
    """``max_tokens`` must not exceed the model's ``max_output_tokens`` (a model with A/B variants: the smallest)."""
    spec = catalog.find(request.model)
    if spec is None or request.max_tokens is None:
        return  # an unknown model is the router's NotFound
    if request.max_tokens > spec.max_output_tokens:
        raise RuleViolation(
            f"max_tokens is {request.max_tokens}, above the {spec.max_output_tokens} output tokens model "
            f"'{spec.name}' allows"
        )
