"""The ``/v1`` sub-application: OpenAI's and Anthropic's endpoints with their own error shapes.

A mounted application of its own, so that its errors never take the problem+json shape of ``/api`` and an unknown
``/v1`` path is answered as the API the client speaks would. It shares the parent's container and middleware. It is
plain Starlette, not FastAPI: these are the hot paths. Its OpenAPI document (``/v1/openapi.json``, served with the
native one's setting) is built from the same request models (``interfaces.http.compat.openapi``).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from interfaces.http.compat import anthropic, batches, files, message_batches, models, openai, responses, vector_stores
from interfaces.http.compat.auth import container_of, counted_with_model_call
from interfaces.http.compat.errors import EXCEPTION_HANDLERS, JsonResponse
from interfaces.http.compat.openapi import compat_openapi

PREFIX = "/v1"
_STORE = "/vector_stores/{vector_store_id}"
VECTOR_STORE_ROUTES = [
    Route("/vector_stores", vector_stores.create_vector_store, methods=["POST"]),
    Route("/vector_stores", vector_stores.list_vector_stores, methods=["GET"]),
    Route(_STORE, vector_stores.retrieve_vector_store, methods=["GET"]),
    Route(_STORE, vector_stores.modify_vector_store, methods=["POST"]),
    Route(_STORE, vector_stores.delete_vector_store, methods=["DELETE"]),
    Route(_STORE + "/search", vector_stores.search_vector_store, methods=["POST"]),
    Route(_STORE + "/files", vector_stores.create_store_file, methods=["POST"]),
    Route(_STORE + "/files", vector_stores.list_store_files, methods=["GET"]),
    Route(_STORE + "/files/{file_id}", vector_stores.retrieve_store_file, methods=["GET"]),
    Route(_STORE + "/files/{file_id}", vector_stores.update_store_file, methods=["POST"]),
    Route(_STORE + "/files/{file_id}", vector_stores.delete_store_file, methods=["DELETE"]),
    Route(_STORE + "/files/{file_id}/content", vector_stores.store_file_content, methods=["GET"]),
    Route(_STORE + "/file_batches", vector_stores.create_file_batch, methods=["POST"]),
    Route(_STORE + "/file_batches/{batch_id}", vector_stores.retrieve_file_batch, methods=["GET"]),
    Route(_STORE + "/file_batches/{batch_id}/cancel", vector_stores.cancel_file_batch, methods=["POST"]),
    Route(_STORE + "/file_batches/{batch_id}/files", vector_stores.list_batch_files, methods=["GET"]),
]


async def openapi_document(request: Request) -> Response:
    document = getattr(request.app.state, "openapi", None)
    if document is None:  # built once, from the catalog the container loaded
        document = request.app.state.openapi = compat_openapi(container_of(request).catalog().list())
    return JsonResponse(document)


def create_compat_app(*, docs_enabled: bool = True) -> Starlette:
    routes = [
        Route("/chat/completions", counted_with_model_call(openai.create_chat_completion), methods=["POST"]),
        Route("/completions", counted_with_model_call(openai.create_completion), methods=["POST"]),
        Route("/embeddings", counted_with_model_call(openai.create_embeddings), methods=["POST"]),
        Route("/batches", batches.create_batch, methods=["POST"]),
        Route("/batches", batches.list_batches, methods=["GET"]),
        Route("/batches/{batch_id}", batches.retrieve_batch, methods=["GET"]),
        Route("/batches/{batch_id}/cancel", batches.cancel_batch, methods=["POST"]),
        Route("/files", files.upload_file, methods=["POST"]),
        Route("/files", files.list_files, methods=["GET"]),
        Route("/files/{file_id}", files.retrieve_file, methods=["GET"]),
        Route("/files/{file_id}", files.delete_file, methods=["DELETE"]),
        Route("/files/{file_id}/content", files.file_content, methods=["GET"]),
        Route("/messages", counted_with_model_call(anthropic.create_message), methods=["POST"]),
        Route("/messages/count_tokens", anthropic.count_tokens, methods=["POST"]),
        Route("/messages/batches", message_batches.create_message_batch, methods=["POST"]),
        Route("/messages/batches", message_batches.list_message_batches, methods=["GET"]),
        Route("/messages/batches/{batch_id}", message_batches.retrieve_message_batch, methods=["GET"]),
        Route("/messages/batches/{batch_id}", message_batches.delete_message_batch, methods=["DELETE"]),
        Route("/messages/batches/{batch_id}/cancel", message_batches.cancel_message_batch, methods=["POST"]),
        Route("/messages/batches/{batch_id}/results", message_batches.message_batch_results, methods=["GET"]),
        Route("/responses", counted_with_model_call(responses.create_response), methods=["POST"]),
        Route("/responses/input_tokens", responses.count_input_tokens, methods=["POST"]),
        Route("/responses/{response_id}", responses.get_response, methods=["GET"]),
        Route("/responses/{response_id}", responses.delete_response, methods=["DELETE"]),
        Route("/responses/{response_id}/input_items", responses.list_input_items, methods=["GET"]),
        *VECTOR_STORE_ROUTES,
        Route("/responses/{response_id}/cancel", responses.cancel_response, methods=["POST"]),
        Route("/models", models.list_models, methods=["GET"]),
        Route("/models/{model_id:path}", models.get_model, methods=["GET"]),
    ]
    if docs_enabled:
        routes.append(Route("/openapi.json", openapi_document, methods=["GET"]))
    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)


class MountShortcut:
    """Sends a request under ``mount`` straight to it, past the main app's router, which would first try each of the
    native API's routes in turn (FastAPI's matching cost more than the rest of a ``/v1`` request's routing).

    Added innermost among the main app's middleware, so a ``/v1`` request still passes through all of it.
    """

    def __init__(self, app: ASGIApp, mount: Mount) -> None:
        self.app = app
        self._mount = mount
        self._prefix = mount.path + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self._prefix):
            match, child = self._mount.matches(scope)
            if match is not Match.FULL:  # a line break in the path stops the mount's pattern: still the mounted API's
                root_path = scope.get("root_path", "")
                child = {
                    "path_params": dict(scope.get("path_params", {})),
                    "app_root_path": scope.get("app_root_path", root_path),
                    "root_path": root_path + self._mount.path,
                    "endpoint": self._mount.app,
                }
            scope.update(child)  # the mounted app's router names the route (none: "unmatched")
            await self._mount.handle(scope, receive, send)
            return
        await self.app(scope, receive, send)
