"""AWS credentials for Bedrock, from the standard places: the catalog's environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), else botocore's own chain (shared config and credentials files,
SSO, container and instance roles), refreshed by botocore when they expire. Never logged, never in the catalog."""

from __future__ import annotations

from collections.abc import Mapping

import botocore.session
from botocore.credentials import Credentials

from infrastructure.llm.catalog_fields import CatalogError


def aws_credentials(env: Mapping[str, str], *, model: str) -> Credentials:
    access_key, secret_key = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if access_key and secret_key:
        return Credentials(access_key, secret_key, env.get("AWS_SESSION_TOKEN") or None)
    found = botocore.session.Session().get_credentials()
    if found is None:
        raise CatalogError(
            f"model '{model}': no AWS credentials for provider bedrock (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a profile, or an instance role)"
        )
    return found
