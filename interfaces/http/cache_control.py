"""The client's say over the response cache, from its ``Cache-Control`` request header.

``no-store`` / ``no-cache`` / ``max-age=0``: bypass (neither read nor write). ``max-age=N`` (N > 0) or ``max-stale``:
opt in, whatever the temperature. Nothing: the default, deterministic (temperature 0) requests only.
"""

from __future__ import annotations

from application.usage.context import CachePolicy

CACHE_HEADER = "X-Switchboard-Cache"


def cache_policy(header: str | None) -> CachePolicy:
    if not header:
        return CachePolicy.DEFAULT
    directives = {}
    for part in header.lower().split(","):
        name, _, value = part.strip().partition("=")
        directives[name] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives or directives.get("max-age") == "0":
        return CachePolicy.BYPASS
    if "max-age" in directives or "max-stale" in directives:
        return CachePolicy.PREFER
    return CachePolicy.DEFAULT
