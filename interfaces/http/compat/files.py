"""OpenAI's Files API, ``/v1/files``: upload (multipart), list, retrieve, delete, content.

The upload's size is enforced here, not by the request middleware's body limit (which is for JSON bodies): the
body is counted as it arrives and refused with a 413 in OpenAI's shape past ``files_max_bytes`` and the multipart
framing around it, before it is all read.
"""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from application.files.get_file import FileQuery
from application.files.list_files import ListFilesQuery
from application.files.upload_file import UploadFileCommand
from domain.auth.model import Principal
from domain.files.errors import FileTooLarge
from domain.files.model import parse_file_id
from domain.shared.errors import RuleViolation
from domain.shared.text import check_storable
from interfaces.http.compat.auth import compat_principal, container_of
from interfaces.http.compat.errors import JsonResponse
from interfaces.http.compat.files_wire import file_body, file_deleted_body, file_list_body

PATH = "/v1/files"
MULTIPART_SLACK = 64 * 1024  # boundaries, part headers and the small fields around the file
MAX_FORM_FIELDS = 16


async def upload_file(request: Request) -> Response:
    principal = await compat_principal(request)
    container = container_of(request)
    form = await read_form(request, container.settings().files_max_bytes)
    try:
        command = await _upload_command(principal, form)
    finally:
        await form.close()
    file = await container.upload_file().execute(command)
    return JsonResponse(file_body(file))


async def list_files(request: Request) -> Response:
    principal = await compat_principal(request)
    params = request.query_params
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise RuleViolation("order: must be 'asc' or 'desc'")
    query = ListFilesQuery(
        principal=principal,
        limit=_integer(params.get("limit", "10000"), "limit"),
        newest_first=order == "desc",
        purpose=params.get("purpose"),
        after=params.get("after"),
    )
    return JsonResponse(file_list_body(await container_of(request).list_files().execute(query)))


async def retrieve_file(request: Request) -> Response:
    query = FileQuery(await compat_principal(request), parse_file_id(request.path_params["file_id"]))
    return JsonResponse(file_body(await container_of(request).get_file().execute(query)))


async def delete_file(request: Request) -> Response:
    query = FileQuery(await compat_principal(request), parse_file_id(request.path_params["file_id"]))
    return JsonResponse(file_deleted_body(await container_of(request).delete_file().execute(query)))


async def file_content(request: Request) -> Response:
    query = FileQuery(await compat_principal(request), parse_file_id(request.path_params["file_id"]))
    _, content = await container_of(request).get_file_content().execute(query)
    return Response(content, media_type="application/octet-stream")


async def read_form(request: Request, max_bytes: int) -> FormData:
    """The multipart form, refused (``FileTooLarge``) as soon as the body passes the limit."""
    allowed = max_bytes + MULTIPART_SLACK
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > allowed:
        raise FileTooLarge(f"request body of {length} bytes: files are limited to {max_bytes} bytes")
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > allowed:
            raise FileTooLarge(f"request body above {allowed} bytes: files are limited to {max_bytes} bytes")
        return message

    return await Request(request.scope, counted).form(max_files=1, max_fields=MAX_FORM_FIELDS)


async def _upload_command(principal: Principal, form: FormData) -> UploadFileCommand:
    upload, purpose = form.get("file"), form.get("purpose")
    if not isinstance(upload, UploadFile):
        raise RuleViolation("file: a multipart/form-data part named 'file' is required")
    if not isinstance(purpose, str):
        raise RuleViolation("purpose: a form field is required (batch, assistants or user_data)")
    seconds, anchor = form.get("expires_after[seconds]"), form.get("expires_after[anchor]")
    for name, text in (("file", upload.filename or ""), ("purpose", purpose), ("expires_after", f"{seconds}{anchor}")):
        check_storable(text, name)  # the text fields: the file's bytes are data and may hold anything
    return UploadFileCommand(
        principal=principal,
        filename=upload.filename or "",
        purpose=purpose,
        content=await upload.read(),
        expires_after_seconds=None if seconds is None else _integer(str(seconds), "expires_after[seconds]"),
        expires_after_anchor=None if anchor is None else str(anchor),
    )


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RuleViolation(f"{name}: must be an integer") from None
