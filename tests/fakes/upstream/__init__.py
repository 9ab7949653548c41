"""A fake upstream LLM server that speaks the OpenAI, Anthropic and Gemini wire formats (and Azure OpenAI's paths).

It stands in for ``api.openai.com`` and ``api.anthropic.com`` in tests and in ``bench/``: point the OpenAI SDK
at ``f"{up.base_url}/v1"`` and the Anthropic SDK at ``up.base_url``.

Endpoints (all under ``/v1``):

* ``POST /v1/chat/completions`` (OpenAI, JSON or SSE when ``stream: true``)
* ``POST /v1/embeddings`` (OpenAI, ``float`` or ``base64`` encoding, deterministic unit vectors)
* ``POST /v1/messages`` (Anthropic, JSON or SSE when ``stream: true``)
* ``POST /v1/messages/count_tokens`` (Anthropic)
* ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` and ``:batchEmbedContents``
  (Gemini, key in ``x-goog-api-key``)
* ``POST /model/{modelId}/converse`` and ``/converse-stream`` (AWS Bedrock: the SigV4 signature is checked with
  botocore against ``bedrock_routes.ACCESS_KEY`` / ``SECRET_KEY``; the stream is in the AWS event-stream framing)
* ``POST /openai/deployments/{deployment}/chat/completions`` and ``.../embeddings`` (Azure OpenAI: ``api-version``
  query parameter, ``api-key`` header or bearer token; ``content_filtered()`` scripts its content-filter 400)
* ``GET /v1/models`` and ``GET /v1/models/{id}`` (Anthropic shape when ``anthropic-version`` is sent)
* ``/_fake/...`` control endpoints (push behaviours, reset, stats, recorded requests) so that a fake
  running as its own process (``python -m tests.fakes.upstream``) can be scripted over HTTP.

Answers are deterministic: ``"Echo: <last user message text>"``; after a tool result
``"Tool result: <content>"``; a tool call for the first tool when tools are given and the last user
message contains ``CALL_TOOL`` (or the tool choice forces a tool). One token is one
whitespace-separated word; a stream sends one word per content delta.

Every completion-like request (chat completions, messages, embeddings) pops the next scripted
:class:`Behaviour` pushed with :meth:`FakeUpstream.push`; with an empty queue it succeeds normally.
Requests that fail authentication / validation, or hit a model made to fail with
:meth:`FakeUpstream.fail_model`, do not pop the queue.

The modules: ``behaviours`` (what a test scripts), ``server`` (settings, script, recording, lifecycle,
routing), ``control`` (the ``/_fake/...`` endpoints), ``handlers`` (the API endpoints), ``answers`` (the fake
model), ``openai_wire`` / ``anthropic_wire`` / ``embeddings`` (each format's JSON and SSE bodies), ``azure_wire``
(Azure OpenAI's paths over the OpenAI handlers), ``gemini_wire`` / ``gemini_errors`` / ``gemini_routes``
(Gemini's format, errors and paths), ``bedrock_wire`` / ``bedrock_routes`` (Converse, its event-stream framing,
SigV4 checks), ``openai_errors`` / ``anthropic_errors`` (each format's validation
and error bodies), ``faults`` (acting out hangs, cuts, redirects, HTML pages, broken streams, slow chunks),
``transport`` (the exchange and uvicorn), ``thread`` and ``cli`` (other ways to run it).
"""

from tests.fakes.upstream.answers import count_tokens
from tests.fakes.upstream.azure_wire import content_filtered
from tests.fakes.upstream.behaviours import (
    Behaviour,
    BehaviourKind,
    auth_error,
    context_length_exceeded,
    delay,
    disconnect,
    drop_stream_after,
    error,
    hang,
    html_error,
    huge_body,
    malformed,
    missing_fields,
    ok,
    overloaded,
    rate_limited,
    redirect,
    server_error,
    stream_error_after,
)
from tests.fakes.upstream.cli import main
from tests.fakes.upstream.server import FakeUpstream, RecordedRequest
from tests.fakes.upstream.thread import UpstreamThread

__all__ = [
    "Behaviour",
    "BehaviourKind",
    "FakeUpstream",
    "RecordedRequest",
    "UpstreamThread",
    "auth_error",
    "content_filtered",
    "context_length_exceeded",
    "count_tokens",
    "delay",
    "disconnect",
    "drop_stream_after",
    "error",
    "hang",
    "html_error",
    "huge_body",
    "main",
    "malformed",
    "missing_fields",
    "ok",
    "overloaded",
    "rate_limited",
    "redirect",
    "server_error",
    "stream_error_after",
]
