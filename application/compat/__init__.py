"""Stateless model calls for the OpenAI- and Anthropic-compatible endpoints: no conversation is stored."""
