"""Bedrock's endpoints, ``POST /model/{modelId}/converse`` and ``/converse-stream``. Each request must carry a
SigV4 signature for the ``bedrock`` service that botocore, given the fake's credentials, computes the same from
what arrived (method, path, signed headers, body); anything else is a 403, as from AWS."""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.upstream import bedrock_wire, handlers
from tests.fakes.upstream.behaviours import error
from tests.fakes.upstream.transport import Exchange

ACCESS_KEY: Final = "AKIDFAKEBEDROCK"
SECRET_KEY: Final = "sk-test-0123456789abcdef"  # the contract suite's SECRET: its key-echo test covers Bedrock too
REGION: Final = "us-east-1"
_AUTH: Final = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/bedrock/aws4_request, "
    r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})"
)


def signature_problem(path: str, headers: dict[str, str], raw: bytes, host: str) -> str | None:
    """Why the request's SigV4 signature is not the one its content and the fake's secret give (None: it is)."""
    match = _AUTH.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "Missing Authentication Token"
    access_key, region, signed, signature = match.groups()
    if access_key != ACCESS_KEY or region != REGION:
        return "The security token included in the request is invalid."
    names = signed.split(";")
    request = AWSRequest(
        method="POST", url=f"http://{host}{path}", data=raw, headers={n: headers[n] for n in names if n != "host"}
    )
    request.context["timestamp"] = headers.get("x-amz-date", "")
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, headers.get("x-amz-security-token")), "bedrock", REGION)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return (
        None
        if expected == signature
        else "The request signature we calculated does not match the signature you provided."
    )


async def route(
    up: handlers.Upstream, raw_path: str, headers: dict[str, str], body: Any, raw: bytes, bad_json: bool, ex: Exchange
) -> None:
    model, _, operation = unquote(raw_path.removeprefix(bedrock_wire.PREFIX)).rpartition("/")
    if operation not in ("converse", "converse-stream") or not model:
        return await handlers.send_error(up, ex, "bedrock", error(404, message="Unknown operation"), model)
    problem = signature_problem(raw_path, headers, raw, headers.get("host", ""))
    if problem is not None:
        return await handlers.send_error(up, ex, "bedrock", error(403, message=problem), model)
    if isinstance(body, dict):
        body = {**body, "_model": model, "_stream": operation == "converse-stream"}
    verified = {**headers, "authorization": f"Bearer {ACCESS_KEY}"}
    return await handlers.completion(up, "bedrock", verified, body, bad_json, ex)
