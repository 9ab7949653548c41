"""The OpenAI- and Anthropic-compatible endpoints under ``/v1``: the official SDKs work unchanged against them."""
