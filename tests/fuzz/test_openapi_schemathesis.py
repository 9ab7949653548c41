"""Property-based fuzzing of every operation in the OpenAPI document (schemathesis), in process over ASGI.

Each operation gets positive and negative examples, authenticated with an access token or an API key, and every
response goes through schemathesis's checks: no 5xx, status codes, content types, headers and bodies as documented,
invalid data rejected, valid data accepted. Examples are bounded and derandomized, so a run is quick and repeatable.

(The operations are driven with plain Hypothesis over ``APIOperation.as_strategy`` rather than schemathesis's lazy
pytest plugin, which does not run under pytest 9.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi

from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, make_settings

pytestmark = pytest.mark.api
MAX_EXAMPLES = 10
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@pytest.fixture(scope="module")
def app_and_credentials() -> Iterator[tuple[Any, dict[str, str]]]:
    app = create_app(make_settings())
    with asgi.get_client(app) as client:
        email = "fuzz@example.com"
        assert client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        token = client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
        jwt = {"Authorization": f"Bearer {token['access_token']}"}
        scopes = ["chat", "models", "usage", "keys"]
        key = client.post("/api/v1/api-keys", json={"name": "fuzz", "scopes": scopes}, headers=jwt).json()["key"]
        client.post("/api/v1/conversations", json={"title": "seed"}, headers=jwt)
        yield app, {"jwt": jwt["Authorization"], "api_key": f"Bearer {key}"}
    asgi.shutdown_lifespans()


# Rules JSON Schema cannot state (between two fields of one request, against the clock, unique custom_ids): a
# schema-valid request may break them, and is then refused with a clear 400 or 422 (every other rule is in the
# schema, so valid data must be accepted).
CROSS_FIELD_RULES = re.compile(
    r"(?:requests\[\d+\] \(custom_id '[\w-]*'\): )?"  # a message batch names the request that broke one
    r"(?:tool_choice: '.*' is not one of the tools|tools: two tools have the same name"
    r"|since must be before until|the time range must be at most 366 days|expires_at must be in the future"
    r"|custom_id '[\w-]*' is used by an earlier line|tool_choice.name: required when tool_choice.type is tool"
    r"|chunking_strategy\.static\.chunk_overlap_tokens: must be between 0 and half of max_chunk_size_tokens"
    r"|background: a background response must be stored"
    r"|background: a background response cannot use the file_search tool"
    r"|response_format: json_schema is required when type is json_schema"
    r"|text\.format: a json_schema format needs a name and a schema"
    r"|file_search: vector_store_ids must name between 1 and \d+ vector stores"  # flat, or nested in file_search
    r"|tools: at most one file_search tool)",
    re.S,
)


def _cross_field_refusal(response: Any) -> bool:
    if response.status_code not in (400, 422):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    text = error.get("message", "") if isinstance(error, dict) else body.get("detail", "")
    return bool(CROSS_FIELD_RULES.match(str(text)))


def _fuzz(operation: Any, mode: GenerationMode, authorization: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ_SETTINGS
    def run(case: Any) -> None:
        own = "authorization" in {name.lower() for name in case.headers or {}}
        headers = None if own else {"Authorization": authorization}  # else: a credential of the case's own making
        response = case.call(headers=headers)
        excluded = [positive_data_acceptance] if _cross_field_refusal(response) else []
        # With an explicit credential, schemathesis also probes the same call without it and with a wrong one.
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    run()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


@pytest.mark.parametrize("document", ["/openapi.json", "/v1/openapi.json"])
def test_every_reference_resolves(app_and_credentials: tuple[Any, dict[str, str]], document: str) -> None:
    app, _ = app_and_credentials
    with asgi.get_client(app) as client:
        spec = client.get(document).json()
    schemas = spec["components"]["schemas"]
    refs = set(_refs(spec))
    assert refs
    assert {ref for ref in refs if ref.removeprefix("#/components/schemas/") not in schemas} == set()


# The native document, and the /v1 one (OpenAI's and Anthropic's shapes), with how many operations each has at least.
DOCUMENTS = {"/openapi.json": 15, "/v1/openapi.json": 35}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("credential", ["jwt", "api_key"])
@pytest.mark.parametrize("document", list(DOCUMENTS))
def test_every_operation_honours_its_documentation(
    app_and_credentials: tuple[Any, dict[str, str]], document: str, credential: str, mode: GenerationMode
) -> None:
    app, credentials = app_and_credentials
    schema = schemathesis.openapi.from_asgi(document, app)
    # No text may hold a NUL (U+0000): every request carrying one is refused at the edge (tests/api/test_nul_api.py).
    schema.config.generation.update(allow_x00=False)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= DOCUMENTS[document]
    for operation in operations:
        try:
            _fuzz(operation, mode, credentials[credential])
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body): no negative case exists
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # every operation is fuzzed; all failures are reported together
            failures.append(f"{operation.label}:\n{exc}")
    assert not failures, "\n\n".join(failures)
