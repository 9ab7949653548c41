"""Errors of the model context."""

from __future__ import annotations

from domain.shared.errors import NotFound


class ModelNotFound(NotFound):
    """No model of that name, or none of the kind asked for (an embedding model asked to chat)."""

    code = "model_not_found"
    title = "Model not found"
